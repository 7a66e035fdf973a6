"""Mini-program tracker endpoint: ``POST /v1/events`` with a JSON batch of user actions.

Body ``{"events": [event, ...]}`` (or a bare list). An event::

    {"event_id": "c-91", "openid": "o6_b...", "unionid": "oX...", "session_id": "s-1",
     "action": "add_to_cart", "page": "/pages/product/detail", "sku": "WP-100",
     "amount": "1299.00", "ts": 1767225600000}

Unlike POS batches, a tracker cannot fix and resend a batch (it fires and forgets from phones),
so one bad event never costs the others: good events are produced, bad ones dead-lettered and
listed in the answer. ``openid``/``unionid``/``phone`` are replaced by HMAC references before
anything (events or dead letters) reaches Kafka; the unionid is preferred as the customer
reference because it is the same across the brand's apps and WeCom, which stitches journeys.
The event id derives from the client's event id (or session + sequence), so resends dedup.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from dealstream.connectors.output import DeliveryError
from dealstream.connectors.pii import Desensitizer
from dealstream.connectors.sdk import (
    Emit,
    PushConnector,
    PushSettings,
    RecordError,
    Reject,
    error_response,
)
from dealstream.schemas import validation
from dealstream.schemas.envelope import derive_event_id, to_millis

EVENT_TYPE = "miniprogram.event"
ACTIONS = {"page_view": "PAGE_VIEW", "add_to_cart": "ADD_TO_CART", "order": "ORDER",
           "search": "SEARCH", "share": "SHARE"}  # fmt: skip
PII_FIELDS = ("openid", "unionid", "phone")
_OPTIONAL = ("sku", "series", "store_id", "query")


class MiniprogramSettings(PushSettings):
    model_config = SettingsConfigDict(env_prefix="DEALSTREAM_MINIPROGRAM_", extra="forbid")

    source: str = "miniprogram"
    path: str = "/v1/events"
    max_events: int = Field(1_000, gt=0)


def desensitise(event: Mapping[str, Any], pii: Desensitizer) -> dict[str, Any]:
    """The event with every customer identifier replaced by its reference."""
    safe = dict(event)
    for name in PII_FIELDS:
        value = safe.get(name)
        if isinstance(value, str) and value:
            safe[name] = pii.phone(value) if name == "phone" else pii.ref(name, value)
    return safe


def _time_ms(value: Any) -> int:
    if isinstance(value, bool):
        raise RecordError("bad_time", "ts is a boolean")
    if isinstance(value, int | float):
        return int(value * 1000) if value < 10**11 else int(value)  # seconds or millis
    if isinstance(value, str) and value:
        try:
            return to_millis(datetime.fromisoformat(value))
        except ValueError:
            pass
    raise RecordError("bad_time", f"ts {value!r} is neither epoch time nor ISO 8601")


def _amount(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise RecordError("bad_amount", f"amount {value!r} is not a number") from None
    if not amount.is_finite():
        raise RecordError("bad_amount", f"amount {value!r} is not finite")
    return amount


def to_event(safe: Mapping[str, Any], *, source: str, ingested_at_ms: int) -> dict[str, Any]:
    """Map one desensitised tracker event; raises :class:`RecordError` when unusable."""
    action = ACTIONS.get(str(safe.get("action", "")).lower())
    if action is None:
        raise RecordError("bad_action", f"action {safe.get('action')!r} not in {sorted(ACTIONS)}")
    session = safe.get("session_id")
    if not isinstance(session, str) or not session:
        raise RecordError("missing_session", "session_id is required")
    client_id = safe.get("event_id") or safe.get("seq")
    if client_id in (None, ""):
        raise RecordError("missing_event_id", "event_id (or seq) is required for idempotence")
    optional = {name: str(safe[name]) if safe.get(name) else None for name in _OPTIONAL}
    customer = safe.get("unionid") or safe.get("openid") or safe.get("phone")
    phone = safe.get("phone") or None  # kept beside the union id: it links POS membership
    return {
        "event_id": derive_event_id(source, session, client_id),
        "source": source,
        "event_type": EVENT_TYPE,
        "occurred_at": _time_ms(safe.get("ts")),
        "ingested_at": ingested_at_ms,
        "customer_ref": customer or None,
        "payload": {
            "session_id": session,
            "action": action,
            "page": str(safe.get("page") or ""),
            "amount": _amount(safe.get("amount")),
            "phone_ref": phone if phone != customer else None,
            **optional,
        },
    }


class MiniprogramConnector(PushConnector[MiniprogramSettings]):
    """HTTP endpoint receiving mini-program tracker batches (JSON)."""

    name = "miniprogram"
    settings_class = MiniprogramSettings
    event_types = (EVENT_TYPE,)

    def routes(self) -> Sequence[web.RouteDef]:
        return [web.post(self.settings.path, self.receive)]

    async def _events(self, request: web.Request) -> list[Any] | web.Response:
        try:
            parsed = json.loads(await request.read())
        except web.HTTPRequestEntityTooLarge:
            return error_response(413, f"body larger than {self.settings.max_body_bytes} bytes")
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            return error_response(400, f"body is not JSON: {error}")
        events = parsed.get("events") if isinstance(parsed, dict) else parsed
        if not isinstance(events, list):
            return error_response(400, 'expected {"events": [...]} or a JSON list')
        if len(events) > self.settings.max_events:
            return error_response(413, f"{len(events)} events; at most {self.settings.max_events}")
        return events

    def _item(self, index: int, event: Any, where: str, now_ms: int) -> Emit | Reject:
        if not isinstance(event, dict):
            raw = json.dumps(event, ensure_ascii=False, default=str).encode()[:4096]
            return Reject(EVENT_TYPE, raw, where, "not_an_object", "event is not a JSON object")
        safe = desensitise(event, self.pii)
        raw = json.dumps(safe, ensure_ascii=False, default=str).encode()
        try:
            record = to_event(safe, source=self.settings.source, ingested_at_ms=now_ms)
        except RecordError as error:
            return Reject(EVENT_TYPE, raw, where, error.code, error.message)
        problems = validation.validate(EVENT_TYPE, record, now_ms=now_ms)
        if problems:
            message = "; ".join(str(p) for p in problems)
            return Reject(EVENT_TYPE, raw, where, problems[0].code, message)
        return Emit(EVENT_TYPE, record, raw, where)

    async def receive(self, request: web.Request) -> web.Response:
        events = await self._events(request)
        if isinstance(events, web.Response):
            return events
        now_ms = int(time.time() * 1000)
        items = [
            self._item(i, event, f"{request.remote}:{i}", now_ms) for i, event in enumerate(events)
        ]
        try:
            await self.publish(items)
        except DeliveryError as error:
            return error_response(503, f"Kafka did not acknowledge the batch, resend it: {error}")
        rejected = [
            {"index": i, "code": item.code, "message": item.message}
            for i, item in enumerate(items)
            if isinstance(item, Reject)
        ]
        return web.json_response(
            {"accepted": len(items) - len(rejected), "rejected": rejected, "events": len(items)}
        )
