"""ERP over REST (httpx): cursor-paginated JSON lists of orders and inventory.

API contract (adapt others with a small proxy or a subclass overriding ``fetch``):
``GET {base_url}{path}?limit=N&updated_since=ISO`` starts a walk, ``?limit=N&cursor=C``
continues it; the body is ``{"data": [...], "next_cursor": "C" | null}`` in
``(updated_at, id)`` order. Orders carry their ``lines`` inline.

The durable cursor per stream is ``{"page": C | null, "since": ISO | null, "seen": [ids]}``:
mid-walk it resumes the page; between walks ``updated_since`` is inclusive, so a late record
with the same ``updated_at`` is not skipped, and ``seen`` (ids at ``since``) keeps the
boundary records from being re-sent on every idle poll.

429 (honouring ``Retry-After``), 5xx and network errors are transient; other 4xx fail fast.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from dealstream.connectors.base import CheckResult
from dealstream.connectors.erp_sql import mapping
from dealstream.connectors.sdk import (
    Batch,
    Emit,
    PullConnector,
    PullSettings,
    RecordError,
    Reject,
)
from dealstream.connectors.sdk.http import check_pages, get_data_page, json_client

Stream = Literal["orders", "inventory"]


def _all_streams() -> list[Stream]:
    return ["orders", "inventory"]


class ErpRestSettings(PullSettings):
    model_config = SettingsConfigDict(env_prefix="DEALSTREAM_ERP_REST_", extra="forbid")

    source: str = "erp-rest"
    base_url: str = "http://127.0.0.1:8000/api"
    token: SecretStr | None = None
    """Sent as ``Authorization: Bearer``; keep it in the environment."""
    cursor_file: Path = Path(".local/cursors/erp-rest.json")
    streams: list[Stream] = Field(default_factory=_all_streams)
    orders_path: str = "/orders"
    inventory_path: str = "/inventory"
    timeout_s: float = Field(30.0, gt=0)
    status_map: dict[str, str] = Field(default_factory=dict)


def _record_key(stream: str, item: Mapping[str, Any]) -> str:
    if stream == "orders":
        return str(item.get("order_id"))
    return f"{item.get('sku')}/{item.get('warehouse_id')}"


class ErpRestConnector(PullConnector[ErpRestSettings]):
    """ERP orders and inventory from a cursor-paginated JSON API (httpx)."""

    name = "erp-rest"
    settings_class = ErpRestSettings
    event_types = (mapping.ORDER, mapping.INVENTORY)

    def __init__(self, settings: ErpRestSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self._client: httpx.AsyncClient | None = None

    def streams(self) -> Sequence[str]:
        return self.settings.streams

    def _make_client(self) -> httpx.AsyncClient:
        s = self.settings
        return json_client(s.base_url, token=s.token, timeout_s=s.timeout_s)

    async def acheck(self) -> CheckResult:
        paths = [self._path(stream) for stream in self.settings.streams]
        async with self._make_client() as client:
            return await check_pages(client, self.settings.base_url, paths)

    async def open(self) -> None:
        self._client = self._make_client()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _path(self, stream: str) -> str:
        return self.settings.orders_path if stream == "orders" else self.settings.inventory_path

    async def _get(self, stream: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self._client is not None
        return await get_data_page(
            self._client, self._path(stream), params, what=stream, check="base_url, paths and token"
        )

    async def fetch(self, stream: str, cursor: Any, limit: int) -> Batch:
        state = dict(cursor or {"page": None, "since": None, "seen": []})
        params: dict[str, Any] = {"limit": limit}
        if state["page"]:
            params["cursor"] = state["page"]
        elif state["since"]:
            params["updated_since"] = state["since"]
        body = await self._get(stream, params)
        since = datetime.fromisoformat(state["since"]) if state["since"] else None
        seen = set(state["seen"])
        now_ms = int(time.time() * 1000)
        items: list[Emit | Reject] = []
        for raw_item in body["data"]:
            item = raw_item if isinstance(raw_item, dict) else {"value": raw_item}
            key = _record_key(stream, item)
            try:
                updated = mapping.timestamp(item.get("updated_at"), "updated_at")
            except RecordError as error:
                items.append(self._reject(stream, item, key, error))
                continue
            if since is not None and (updated < since or (updated == since and key in seen)):
                continue  # already produced in an earlier walk
            if since is None or updated > since:
                since, seen = updated, set()
            seen.add(key)
            items.append(self._item(stream, item, key, now_ms))
        next_page = body.get("next_cursor") or None
        new_cursor = {
            "page": next_page,
            "since": since.isoformat() if since else None,
            "seen": sorted(seen),
        }
        return Batch(items, new_cursor, more=next_page is not None)

    def _reject(self, stream: str, item: Mapping[str, Any], key: str, error: RecordError) -> Reject:
        event_type = mapping.ORDER if stream == "orders" else mapping.INVENTORY
        return Reject(
            event_type, mapping.raw_bytes(item), f"{stream}:{key}", error.code, error.message
        )

    def _item(self, stream: str, item: Mapping[str, Any], key: str, now_ms: int) -> Emit | Reject:
        source = self.settings.source
        try:
            if stream == "orders":
                lines = item.get("lines") or []
                if not isinstance(lines, list):
                    raise RecordError("bad_lines", "lines is not a list")
                record = mapping.order_event(
                    item, lines, source=source, ingested_at_ms=now_ms,
                    status_map=self.settings.status_map,
                )  # fmt: skip
                event_type = mapping.ORDER
            else:
                record = mapping.inventory_event(item, source=source, ingested_at_ms=now_ms)
                event_type = mapping.INVENTORY
        except RecordError as error:
            return self._reject(stream, item, key, error)
        return Emit(event_type, record, mapping.raw_bytes(item), f"{stream}:{key}")
