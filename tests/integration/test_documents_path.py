"""Procurement documents on the real broker: a text PDF and a scanned image become events."""

from __future__ import annotations

from pathlib import Path

from dealstream.broker.settings import KafkaSettings
from dealstream.connectors.documents.connector import DocumentsConnector, DocumentsSettings
from tests.integration.test_reviews_path import read_topic
from tests.procurement_docs import (
    CHINESE_EXPECTED,
    CHINESE_PLAN,
    SCANNED_EXPECTED,
    SCANNED_PLAN,
    scan,
    text_pdf,
)


def test_text_pdf_and_scan_are_read_back_from_kafka_once(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    text_pdf(inbox / "采购意向-2026.pdf", CHINESE_PLAN)
    scan(SCANNED_PLAN).save(inbox / "scan.jpg", quality=92)

    def run() -> int:
        settings = DocumentsSettings(
            folders=[inbox], cursor_file=tmp_path / "cursor.json", stop_when_idle=True
        )
        return DocumentsConnector(settings, kafka=kafka).execute().produced

    assert run() == 3
    assert run() == 0  # restarted: the cursor knows both documents

    events = read_topic(kafka, "procurement.plans.v1", "procurement_plan", at_least=3)
    assert len(events) == 3
    payloads = sorted((e["payload"] for e in events), key=lambda p: p["source_file"])
    scanned, *plans = payloads
    assert scanned["source_file"] == "scan.jpg" and scanned["extraction"] == "ocr"
    assert {k: scanned[k] for k in SCANNED_EXPECTED} == SCANNED_EXPECTED
    fields = tuple(CHINESE_EXPECTED[0])
    found = sorted(({k: p[k] for k in fields} for p in plans), key=lambda f: str(f["item"]))
    assert found == sorted(CHINESE_EXPECTED, key=lambda f: str(f["item"]))  # partitions reorder
    assert {p["extraction"] for p in plans} == {"text"}
    assert len({p["plan_id"] for p in payloads}) == 3
    assert all(e["event_type"] == "procurement_plan" for e in events)
