"""Tender portals, polled: each configured listing is a stream with its own durable cursor.

The cursor keeps the portal keys (guid, id or URL) already handled, bounded to the last
``remember`` per stream, plus the listing's ``ETag`` so an unchanged feed costs a 304. A notice
found on several pages or portals, or re-published under a new URL, gets one stable
``notice_id`` (:func:`extract.stable_id`) and so one event id per kind: it is produced once
per run and dedups in the sinks across restarts.

Portals flake (timeouts, 5xx, anti-bot 403s), so every HTTP failure is transient: retried with
backoff, then the stream's cursor stays and the next poll tries again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import httpx
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from dealstream.connectors.base import CheckResult
from dealstream.connectors.sdk import (
    Batch,
    ConfigError,
    Emit,
    Item,
    PullConnector,
    PullSettings,
    RecordError,
    Reject,
    TransientError,
)
from dealstream.connectors.tenders.extract import extract
from dealstream.connectors.tenders.sources import Listing, TenderSource, html_text, parse_listing
from dealstream.schemas.envelope import derive_event_id, to_millis

EVENT_TYPE = "tender.notice"


class TendersSettings(PullSettings):
    model_config = SettingsConfigDict(env_prefix="DEALSTREAM_TENDERS_", extra="forbid")

    source: str = "tenders"
    sources: list[TenderSource] = Field(default_factory=list)
    poll_interval_s: float = Field(600.0, ge=0)
    rate_per_s: float = Field(1.0, gt=0)
    """Be polite to public portals: one request per second by default."""
    timeout_s: float = Field(20.0, gt=0)
    remember: int = Field(5_000, gt=0)
    user_agent: str = "dealstream-tenders/0.1 (+procurement notice monitor)"


def to_record(
    listing: Listing, text: str, *, source: str, region: str, now_ms: int
) -> dict[str, Any]:
    """A ``tender.notice`` event from a listing entry and its text."""
    if not listing.title:
        raise RecordError("missing_title", "notice without a title")
    if not listing.url:
        raise RecordError("missing_url", "notice without a link")
    found = extract(listing.title, text, buyer=listing.buyer, region=listing.region or region)
    published = to_millis(listing.published_at) if listing.published_at else now_ms
    return {
        "event_id": derive_event_id(source, found.notice_id, found.kind),
        "source": source,
        "event_type": EVENT_TYPE,
        "occurred_at": published,
        "ingested_at": now_ms,
        "customer_ref": None,
        "payload": {
            "notice_id": found.notice_id,
            "kind": found.kind,
            "title": listing.title,
            "buyer": found.buyer,
            "region": found.region,
            "category": found.category,
            "currency": "CNY",
            "budget": found.budget,
            "deadline": found.deadline,
            "winner": found.winner,
            "award_amount": found.award_amount,
            "url": listing.url,
            "published_at": published,
        },
    }


class TendersConnector(PullConnector[TendersSettings]):
    """Polls RSS/Atom feeds, JSON list APIs and HTML list pages of procurement notices."""

    name = "tenders"
    settings_class = TendersSettings
    event_types = (EVENT_TYPE,)

    def __init__(self, settings: TendersSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self._client: httpx.AsyncClient | None = None
        self._emitted: set[str] = set()
        self._pending: set[str] = set()
        names = [s.name for s in settings.sources]
        if len(set(names)) != len(names):
            raise ConfigError(f"tender source names must be unique: {names}")
        self._sources = {s.name: s for s in settings.sources}

    def streams(self) -> Sequence[str]:
        return list(self._sources)

    async def open(self) -> None:
        if not self._sources:
            raise ConfigError("no tender sources configured (settings.sources)")
        self._client = httpx.AsyncClient(
            timeout=self.settings.timeout_s,
            follow_redirects=True,
            headers={"User-Agent": self.settings.user_agent},
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def _get(self, url: str, etag: str | None = None) -> httpx.Response:
        assert self._client is not None
        headers = {"If-None-Match": etag} if etag else {}
        try:
            answer = await self._client.get(url, headers=headers)
        except httpx.HTTPError as error:
            raise TransientError(f"{url}: {error!r}") from error
        if answer.status_code == 304:
            return answer
        if answer.status_code >= 400:
            retry = answer.headers.get("Retry-After", "")
            raise TransientError(
                f"{url}: HTTP {answer.status_code}",
                retry_after=float(retry) if retry.isdigit() else None,
            )
        return answer

    async def acheck(self) -> CheckResult:
        await self.open()
        try:
            for source in self._sources.values():
                await self._get(source.urls[0])
        except TransientError as error:
            return CheckResult(False, str(error))
        finally:
            await self.close()
        return CheckResult(True, f"{len(self._sources)} listing(s) reachable")

    async def _text(self, source: TenderSource, listing: Listing) -> str:
        if source.detail_selector is None:
            return listing.text
        page = await self._get(listing.url)
        return html_text(page.text, source.detail_selector) or listing.text

    async def poll_stream(self, stream: str) -> bool:
        """Notices count as emitted (for other pages and portals) once Kafka has them."""
        polls, self._pending = self.polls, set()
        more = await super().poll_stream(stream)
        if self.polls > polls:
            self._emitted |= self._pending
            if len(self._emitted) > 4 * self.settings.remember:
                self._emitted = set(self._pending)  # bounded; the sinks dedup what comes again
        return more

    async def fetch(self, stream: str, cursor: Any, limit: int) -> Batch:
        source = self._sources[stream]
        self._pending = set()  # a retried attempt starts over
        state = cursor if isinstance(cursor, dict) else {}
        seen: list[str] = list(state.get("seen", []))
        etags: dict[str, str] = dict(state.get("etags", {}))
        known = set(seen)
        items: list[Item] = []
        more = False
        now_ms = int(time.time() * 1000)
        for url in source.urls:
            answer = await self._get(url, etags.get(url))
            if answer.status_code == 304:
                continue
            try:
                listings = parse_listing(answer.content, source, str(answer.url))
            except RecordError as error:
                items.append(
                    Reject(EVENT_TYPE, answer.content[:65536], url, error.code, error.message)
                )
                continue
            fresh = [entry for entry in listings if entry.key not in known]
            for listing in fresh:
                if len(items) >= limit:
                    more = True
                    break
                known.add(listing.key)
                seen.append(listing.key)
                items.extend(await self._items(source, listing, now_ms))
            if more:
                break
            if etag := answer.headers.get("ETag"):
                etags[url] = etag
        new_state = {"seen": seen[-self.settings.remember :], "etags": etags}
        return Batch(items, new_state, more=more)

    async def _items(self, source: TenderSource, listing: Listing, now_ms: int) -> list[Item]:
        raw = json.dumps(listing.__dict__, ensure_ascii=False, default=str).encode()
        try:
            text = await self._text(source, listing)
            record = to_record(
                listing, text, source=self.settings.source, region=source.region, now_ms=now_ms
            )
        except RecordError as error:
            return [Reject(EVENT_TYPE, raw, listing.url, error.code, error.message)]
        event_id = str(record["event_id"])
        if event_id in self._emitted or event_id in self._pending:
            return []  # the same notice on another page or portal, or re-published
        self._pending.add(event_id)
        return [Emit(EVENT_TYPE, record, raw, listing.url)]
