"""ERP rows (from SQL or a REST API) to ``erp.order`` and ``erp.inventory`` events.

Shared by ``erp_sql`` and ``erp_rest``: both read the same business objects, only the
transport differs. Values may be native (psycopg gives Decimal and aware datetimes) or JSON
text; both are coerced strictly, and what cannot be read is a :class:`RecordError`.

Event ids include the row version (``updated_at`` in microseconds): a later update of the
same order is a new event, a re-read of the same version gets the same id and dedups.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from dealstream.connectors.sdk.errors import RecordError
from dealstream.schemas.envelope import derive_event_id, to_millis

ORDER = "erp.order"
INVENTORY = "erp.inventory"
STATUSES = frozenset(
    {"CREATED", "CONFIRMED", "SHIPPED", "DELIVERED", "CANCELLED", "RETURNED", "UNKNOWN"}
)
_CENT = Decimal("0.01")


def raw_bytes(row: Mapping[str, Any]) -> bytes:
    """The source row as JSON, kept in dead letters."""
    return json.dumps(row, default=str, ensure_ascii=False, sort_keys=True).encode()


def timestamp(value: Any, name: str) -> datetime:
    """Aware UTC datetime from a datetime (naive = UTC) or an ISO-8601 string with offset."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, str) and value.strip():
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                raise RecordError("naive_timestamp", f"{name}={value!r} has no UTC offset")
            return moment.astimezone(UTC)
    raise RecordError("bad_timestamp", f"{name}={value!r} is not an ISO-8601 time")


def version_us(moment: datetime) -> int:
    """Microseconds since the epoch: the row version (PostgreSQL keeps microseconds).

    >>> version_us(datetime(1970, 1, 1, 0, 0, 1, 5, tzinfo=UTC))
    1000005
    """
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _text(row: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = row.get(name)
    text = "" if value is None else str(value).strip()
    if not text and required:
        raise RecordError("missing_field", f"{name} is empty")
    return text or None


def _req(row: Mapping[str, Any], name: str) -> str:
    text = _text(row, name)
    assert text is not None
    return text


def _int(row: Mapping[str, Any], name: str) -> int:
    value = row.get(name)
    if isinstance(value, bool) or value is None:
        raise RecordError("bad_integer", f"{name}={value!r} is not an integer")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise RecordError("bad_integer", f"{name}={value!r} is not an integer") from None
    if number != number.to_integral_value():
        raise RecordError("bad_integer", f"{name}={value!r} is not an integer")
    return int(number)


def _money(row: Mapping[str, Any], name: str, *, required: bool = True) -> Decimal | None:
    value = row.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise RecordError("missing_field", f"{name} is empty")
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise RecordError("bad_decimal", f"{name}={value!r} is not a number") from None
    if not number.is_finite():
        raise RecordError("not_finite", f"{name}={value!r} is not a finite number")
    return number.quantize(_CENT)


def _status(raw: str | None, status_map: Mapping[str, str]) -> str:
    code = (raw or "").strip()
    mapped = status_map.get(code, code.upper())
    return mapped if mapped in STATUSES else "UNKNOWN"


def order_event(
    row: Mapping[str, Any],
    lines: Sequence[Mapping[str, Any]],
    *,
    source: str,
    ingested_at_ms: int,
    status_map: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One ``erp.order`` event: the whole order as of ``updated_at`` (lines included)."""
    order_id = _req(row, "order_id")
    updated = timestamp(row.get("updated_at"), "updated_at")
    created_raw = row.get("created_at")
    created = None if created_raw in (None, "") else timestamp(created_raw, "created_at")
    total = _money(row, "total_amount")
    payload = {
        "order_id": order_id,
        "customer_id": _req(row, "customer_id"),
        "dealer_id": _text(row, "dealer_id", required=False),
        "sales_rep_id": _text(row, "sales_rep_id", required=False),
        "region": _req(row, "region"),
        "status": _status(_text(row, "status", required=False), status_map or {}),
        "currency": _text(row, "currency", required=False) or "CNY",
        "total_amount": total,
        "lines": [
            {
                "line_no": _int(line, "line_no"),
                "sku": _req(line, "sku"),
                "quantity": _int(line, "quantity"),
                "unit_price": _money(line, "unit_price"),
                "amount": _money(line, "amount", required=False),
            }
            for line in lines
        ],
        "created_at": None if created is None else to_millis(created),
        "updated_at": to_millis(updated),
    }
    return {
        "event_id": derive_event_id(source, "order", order_id, version_us(updated)),
        "source": source,
        "event_type": ORDER,
        "occurred_at": to_millis(updated),
        "ingested_at": ingested_at_ms,
        "customer_ref": None,  # an ERP customer is a business account, not a person
        "payload": payload,
    }


def inventory_event(row: Mapping[str, Any], *, source: str, ingested_at_ms: int) -> dict[str, Any]:
    """One ``erp.inventory`` snapshot: one SKU in one warehouse as of ``updated_at``."""
    sku = _req(row, "sku")
    warehouse = _req(row, "warehouse_id")
    updated = timestamp(row.get("updated_at"), "updated_at")
    turnover = row.get("turnover_days")
    try:
        turnover_days = None if turnover in (None, "") else float(turnover)
    except (TypeError, ValueError):
        raise RecordError("bad_number", f"turnover_days={turnover!r} is not a number") from None
    return {
        "event_id": derive_event_id(source, "inventory", sku, warehouse, version_us(updated)),
        "source": source,
        "event_type": INVENTORY,
        "occurred_at": to_millis(updated),
        "ingested_at": ingested_at_ms,
        "customer_ref": None,
        "payload": {
            "sku": sku,
            "warehouse_id": warehouse,
            "region": _req(row, "region"),
            "on_hand": _int(row, "on_hand"),
            "reserved": _int(row, "reserved"),
            "reorder_point": _int(row, "reorder_point"),
            "unit_cost": _money(row, "unit_cost"),
            "turnover_days": turnover_days,
            "snapshot_at": to_millis(updated),
        },
    }
