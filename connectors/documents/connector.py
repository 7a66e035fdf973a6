"""Procurement documents in watched folders (or given files) → ``procurement_plan`` events.

Each poll lists the folders' PDFs and images, oldest first, and handles up to
``max_documents`` new ones: text layer or OCR per page (:mod:`.pages`), fields per item
(:mod:`.extract`), one event per item. A document is identified by the SHA-256 of its bytes;
the cursor keeps the ids of documents whose events Kafka acknowledged, so a restarted
connector, a renamed copy or a re-scan never emits a document twice, and the deterministic
``plan_id`` (document id + item index) dedups whatever a crash re-sends.

A document that cannot be read, or yields no item, is dead-lettered (its first 64 kB) once and
counted as done.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from dealstream.connectors.base import CheckResult
from dealstream.connectors.documents.extract import PlanItem, extract_items
from dealstream.connectors.documents.ocr import OcrUnavailable, check
from dealstream.connectors.documents.pages import SUFFIXES, Page, read_pages
from dealstream.connectors.sdk import (
    Batch,
    ConfigError,
    Emit,
    Item,
    PullConnector,
    PullSettings,
    RecordError,
    Reject,
)
from dealstream.schemas.envelope import derive_event_id

EVENT_TYPE = "procurement_plan"
STREAM = "documents"
RAW_LIMIT = 65_536


class DocumentsSettings(PullSettings):
    model_config = SettingsConfigDict(env_prefix="DEALSTREAM_DOCUMENTS_", extra="forbid")

    source: str = "documents"
    folders: list[Path] = Field(default_factory=list)
    """Watched folders (not recursive); new files are picked up at every poll."""
    paths: list[Path] = Field(default_factory=list)
    """Single files, read once."""
    cursor_file: Path = Path(".local/cursors/documents.json")
    languages: str = "chi_sim"
    """Tesseract models for scanned pages (Debian: tesseract-ocr-chi-sim). chi_sim reads the
    Latin letters and digits of these documents too; adding ``+eng`` made it misread amounts."""
    dpi: int = Field(default=300, ge=72, le=600)
    min_text_chars: int = Field(default=20, ge=0)
    """A PDF page with less text than this is OCRed as a scan."""
    max_documents: int = Field(default=5, gt=0)
    """Documents per poll: bounds the work re-done after a crash."""
    poll_interval_s: float = Field(default=30.0, ge=0)
    currency: str = "CNY"


def document_id(data: bytes) -> str:
    """32 hex characters of the SHA-256 of a document's bytes."""
    return hashlib.sha256(data).hexdigest()[:32]


def plan_record(
    item: PlanItem,
    index: int,
    *,
    doc_id: str,
    page: Page,
    file_name: str,
    source: str,
    currency: str,
    occurred_ms: int,
    now_ms: int,
) -> dict[str, Any]:
    """The ``procurement_plan`` event of item ``index`` (0-based) of a document."""
    plan_id = derive_event_id(doc_id, index)
    return {
        "event_id": derive_event_id(EVENT_TYPE, plan_id),
        "source": source,
        "event_type": EVENT_TYPE,
        "occurred_at": occurred_ms,
        "ingested_at": now_ms,
        "customer_ref": None,
        "payload": {
            "plan_id": plan_id,
            "document_id": doc_id,
            "buyer": item.buyer or "",
            "region": item.region or "",
            "item": item.item or "",
            "category": item.category,
            "quantity": item.quantity,
            "budget": item.budget,
            "currency": currency,
            "planned_date": item.planned_date,
            "source_file": file_name,
            "page": page.number,
            "extraction": page.extraction,
        },
    }


class DocumentsConnector(PullConnector[DocumentsSettings]):
    """Procurement plans from PDFs (text layer or OCR) and scanned images (Tesseract)."""

    name = "documents"
    settings_class = DocumentsSettings
    event_types = (EVENT_TYPE,)

    def streams(self) -> Sequence[str]:
        return [STREAM]

    async def acheck(self) -> CheckResult:
        problems = [f"{f} is not a folder" for f in self.settings.folders if not f.is_dir()]
        problems += [f"{p} is not a file" for p in self.settings.paths if not p.is_file()]
        try:
            check(self.settings.languages)
        except OcrUnavailable as error:
            problems.append(str(error))
        if problems:
            return CheckResult(False, "; ".join(problems))
        return CheckResult(True, f"{len(self._files())} document(s) visible, OCR ready")

    async def open(self) -> None:
        if not self.settings.folders and not self.settings.paths:
            raise ConfigError("no documents configured: set folders or paths")
        try:
            check(self.settings.languages)
        except OcrUnavailable as error:
            raise ConfigError(str(error)) from None

    def _files(self) -> list[Path]:
        found = {p.resolve() for p in self.settings.paths if p.is_file()}
        for folder in self.settings.folders:
            if folder.is_dir():
                found |= {
                    p.resolve()
                    for p in folder.iterdir()
                    if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith(".")
                }
        return sorted(found, key=lambda p: (p.stat().st_mtime_ns, str(p)))

    async def fetch(self, stream: str, cursor: Any, limit: int) -> Batch:
        done: list[str] = list(cursor.get("done", [])) if isinstance(cursor, dict) else []
        known = set(done)
        items: list[Item] = []
        handled = 0
        more = False
        for path in self._files():
            try:
                data = path.read_bytes()
            except OSError:
                continue  # vanished or still being written: the next poll sees it again
            doc_id = document_id(data)
            if doc_id in known:
                continue
            if handled >= self.settings.max_documents:
                more = True
                break
            handled += 1
            known.add(doc_id)
            done.append(doc_id)
            items.extend(await asyncio.to_thread(self._document, path, data, doc_id))
        return Batch(items, {"done": done}, more=more)

    def _document(self, path: Path, data: bytes, doc_id: str) -> list[Item]:
        """Events of one document, or its dead letter (runs off the event loop: OCR is slow)."""
        s = self.settings
        try:
            pages = read_pages(path, data, languages=s.languages, dpi=s.dpi,
                               min_chars=s.min_text_chars)  # fmt: skip
            found = extract_items([(page.number, page.text) for page in pages])
            if not found:
                raise RecordError("no_items", f"{path.name}: no procurement item found")
        except RecordError as error:
            return [Reject(EVENT_TYPE, data[:RAW_LIMIT], str(path), error.code, error.message)]
        by_number = {page.number: page for page in pages}
        now_ms = int(time.time() * 1000)
        occurred_ms = int(os.path.getmtime(path) * 1000)
        out: list[Item] = []
        for index, item in enumerate(found):
            record = plan_record(
                item, index, doc_id=doc_id, page=by_number[item.page], file_name=path.name,
                source=s.source, currency=s.currency, occurred_ms=min(occurred_ms, now_ms),
                now_ms=now_ms,
            )  # fmt: skip
            raw = json.dumps(record["payload"], ensure_ascii=False, default=str).encode()
            out.append(Emit(EVENT_TYPE, record, raw, f"{path}#{index}"))
        return out
