"""Reviews over a JSON API (httpx), one stream and one durable cursor per platform.

API contract (adapt others with a small proxy or a subclass overriding ``fetch``):
``GET {base_url}{path}?limit=N[&cursor=C]`` with ``path`` = ``path_template`` formatted with the
platform, answering ``{"data": [...], "next_cursor": "C" | null}``: reviews in posting order
after ``C``, and the cursor after the last one returned. The durable cursor is the last
``next_cursor`` seen; ``null`` (caught up, nothing new) keeps the one before, so an idle poll
never re-reads from the top.

429 (honouring ``Retry-After``), 5xx and network errors are transient; other 4xx fail fast.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from dealstream.connectors.base import CheckResult
from dealstream.connectors.reviews.mapping import EVENT_TYPE, raw_bytes, review_event
from dealstream.connectors.sdk import (
    Batch,
    Emit,
    Item,
    PullConnector,
    PullSettings,
    RecordError,
    Reject,
)
from dealstream.connectors.sdk.http import check_pages, get_data_page, json_client


class ReviewsApiSettings(PullSettings):
    model_config = SettingsConfigDict(env_prefix="DEALSTREAM_REVIEWS_API_", extra="forbid")

    source: str = "reviews-api"
    base_url: str = "http://127.0.0.1:8000/api"
    token: SecretStr | None = None
    """Sent as ``Authorization: Bearer``; keep it in the environment."""
    platforms: list[str] = Field(default_factory=lambda: ["meituan"])
    path_template: str = "/platforms/{platform}/reviews"
    default_region: str = ""
    """Region for records that carry none (one API per region is common)."""
    cursor_file: Path = Path(".local/cursors/reviews-api.json")
    timeout_s: float = Field(default=30.0, gt=0)


class ReviewsApiConnector(PullConnector[ReviewsApiSettings]):
    """Delivery-platform and e-commerce reviews from a cursor-paginated JSON API (httpx)."""

    name = "reviews-api"
    settings_class = ReviewsApiSettings
    event_types = (EVENT_TYPE,)

    def __init__(
        self,
        settings: ReviewsApiSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(settings, **kwargs)
        self._transport = transport  # tests pass httpx.MockTransport
        self._client: httpx.AsyncClient | None = None

    def streams(self) -> Sequence[str]:
        return self.settings.platforms

    def _make_client(self) -> httpx.AsyncClient:
        s = self.settings
        return json_client(
            s.base_url, token=s.token, timeout_s=s.timeout_s, transport=self._transport
        )

    def _path(self, platform: str) -> str:
        return self.settings.path_template.format(platform=platform)

    async def acheck(self) -> CheckResult:
        paths = [self._path(platform) for platform in self.settings.platforms]
        async with self._make_client() as client:
            return await check_pages(client, self.settings.base_url, paths)

    async def open(self) -> None:
        self._client = self._make_client()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _get(self, platform: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self._client is not None
        return await get_data_page(
            self._client, self._path(platform), params,
            what=platform, check="base_url, path_template and token",
        )  # fmt: skip

    async def fetch(self, stream: str, cursor: Any, limit: int) -> Batch:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        body = await self._get(stream, params)
        now_ms = int(time.time() * 1000)
        items: list[Item] = [self._item(stream, raw, now_ms) for raw in body["data"]]
        next_cursor = body.get("next_cursor") or None
        more = next_cursor is not None and next_cursor != cursor and bool(body["data"])
        return Batch(items, next_cursor or cursor, more=more)

    def _item(self, platform: str, raw: Any, now_ms: int) -> Item:
        item = raw if isinstance(raw, dict) else {"value": raw}
        position = f"{platform}:{item.get('review_id') or item.get('id')}"
        try:
            record = review_event(
                item, platform=platform, source=self.settings.source, pii=self.pii,
                ingested_at_ms=now_ms, default_region=self.settings.default_region,
            )  # fmt: skip
        except RecordError as error:
            return Reject(EVENT_TYPE, raw_bytes(item), position, error.code, error.message)
        return Emit(EVENT_TYPE, record, raw_bytes(item), position)
