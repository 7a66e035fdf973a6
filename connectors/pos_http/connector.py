"""POS HTTP ingestion: ``POST /v1/transactions`` with a JSON batch of ticket lines.

Body: ``{"transactions": [row, ...]}`` (or a bare list); a row has the POS export's columns
(``pos_file.parse.COLUMNS``), values as strings or JSON numbers/booleans.

- A batch is all or nothing: if any line is unusable the answer is 422 with every bad line
  (index, transaction_id, line_no, code, message) and nothing is produced, so the store
  system can fix and resend the batch as a whole. 413 past ``max_body_bytes`` or
  ``max_lines``, 400 for a body that is not the JSON expected, 401 without the bearer token.
- Idempotent by transaction id + line: the event id is the one the file connector derives
  (``pos_file.parse.event_id``), so a resent line dedups in the sinks; lines repeated within
  a batch or acknowledged recently (bounded in-memory memo) are not produced again.
- 200 means Kafka acknowledged every line; 503 when it did not (resend the batch).
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from dealstream.connectors.output import DeliveryError
from dealstream.connectors.pos_file.parse import EVENT_TYPE, RowError, to_event
from dealstream.connectors.sdk import Emit, PushConnector, PushSettings, error_response
from dealstream.schemas import validation


class PosHttpSettings(PushSettings):
    model_config = SettingsConfigDict(env_prefix="DEALSTREAM_POS_HTTP_", extra="forbid")

    source: str = "pos-http"
    max_lines: int = Field(5_000, gt=0)
    remember_ids: int = Field(200_000, ge=0)
    """Recently acknowledged event ids kept to skip resends (sinks dedup the rest)."""


class PosHttpConnector(PushConnector[PosHttpSettings]):
    """HTTP endpoint receiving POS transaction batches (JSON), idempotent per ticket line."""

    name = "pos-http"
    settings_class = PosHttpSettings
    event_types = (EVENT_TYPE,)

    def __init__(self, settings: PosHttpSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self._acked: OrderedDict[str, None] = OrderedDict()

    def routes(self) -> Sequence[web.RouteDef]:
        return [web.post("/v1/transactions", self.receive)]

    def _remember(self, event_ids: Sequence[str]) -> None:
        limit = self.settings.remember_ids
        for event_id in event_ids:
            self._acked[event_id] = None
            self._acked.move_to_end(event_id)
        while len(self._acked) > limit:
            self._acked.popitem(last=False)

    async def _rows(self, request: web.Request) -> list[Any] | web.Response:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return error_response(
                413, f"body larger than {self.settings.max_body_bytes} bytes: split the batch"
            )
        try:
            parsed = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            return error_response(400, f"body is not JSON: {error}")
        rows = parsed.get("transactions") if isinstance(parsed, dict) else parsed
        if not isinstance(rows, list):
            return error_response(400, 'expected {"transactions": [...]} or a JSON list')
        if len(rows) > self.settings.max_lines:
            return error_response(
                413, f"{len(rows)} lines; at most {self.settings.max_lines} per batch"
            )
        return rows

    async def receive(self, request: web.Request) -> web.Response:
        rows = await self._rows(request)
        if isinstance(rows, web.Response):
            return rows
        now_ms = int(time.time() * 1000)
        items: list[Emit] = []
        problems: list[dict[str, Any]] = []
        for index, row in enumerate(rows):
            where: dict[str, Any] = {"index": index}
            if not isinstance(row, dict):
                problems.append(
                    {**where, "code": "not_an_object", "message": "line is not a JSON object"}
                )
                continue
            where |= {"transaction_id": row.get("transaction_id"), "line_no": row.get("line_no")}
            try:
                record = to_event(
                    row, pii=self.pii, source=self.settings.source, ingested_at_ms=now_ms
                )
            except RowError as error:
                problems.append({**where, "code": error.code, "message": error.message})
                continue
            invalid = validation.validate(EVENT_TYPE, record, now_ms=now_ms)
            if invalid:
                message = "; ".join(str(p) for p in invalid)
                problems.append({**where, "code": invalid[0].code, "message": message})
                continue
            raw = json.dumps(row, ensure_ascii=False, default=str).encode()
            items.append(Emit(EVENT_TYPE, record, raw, f"{request.remote}:{index}"))
        if problems:
            return error_response(
                422, f"{len(problems)} of {len(rows)} line(s) rejected; nothing was produced",
                problems=problems,
            )  # fmt: skip
        fresh: dict[str, Emit] = {}
        for item in items:
            event_id = str(item.record["event_id"])
            if event_id not in self._acked:
                fresh.setdefault(event_id, item)
        try:
            await self.publish(list(fresh.values()))
        except DeliveryError as error:
            return error_response(503, f"Kafka did not acknowledge the batch, resend it: {error}")
        self._remember(list(fresh))
        return web.json_response(
            {"accepted": len(fresh), "duplicates": len(items) - len(fresh), "lines": len(rows)}
        )
