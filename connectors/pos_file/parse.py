"""POS export rows (CSV or JSON Lines) to ``pos.transaction`` events.

A row is one ticket line. Parsing is strict: a value that cannot be read is a
:class:`RowError` with a stable code, which the connector turns into a dead letter carrying
the original line.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from dealstream.connectors.pii import Desensitizer
from dealstream.schemas.envelope import derive_event_id

EVENT_TYPE = "pos.transaction"
COLUMNS = (
    "transaction_id", "line_no", "store_id", "region", "sku", "product_line", "quantity",
    "unit_price", "discount", "amount", "currency", "payment_method", "member_phone",
    "cashier_id", "occurred_at", "is_refund",
)  # fmt: skip
REQUIRED = (
    "transaction_id",
    "line_no",
    "store_id",
    "region",
    "sku",
    "quantity",
    "amount",
    "occurred_at",
)
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f", ""}


class RowError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def event_id(transaction_id: str, line_no: int) -> str:
    """Deterministic: the same ticket line always gets the same id, so re-sends dedup.

    Keyed on the POS system, not on this connector: a line that also arrives through the HTTP
    ingestion endpoint gets the same id.

    >>> event_id("T1", 1) == event_id("T1", 1) != event_id("T1", 2)
    True
    """
    return derive_event_id("pos", transaction_id, line_no)


def _text(row: Mapping[str, Any], name: str) -> str:
    value = row.get(name)
    return "" if value is None else str(value).strip()


def _int(row: Mapping[str, Any], name: str) -> int:
    text = _text(row, name)
    try:
        return int(text)
    except ValueError:
        raise RowError("bad_integer", f"{name}={text!r} is not an integer") from None


def _money(row: Mapping[str, Any], name: str, default: str = "0") -> Decimal:
    text = _text(row, name) or default
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise RowError("bad_decimal", f"{name}={text!r} is not a number") from None
    if not value.is_finite():
        raise RowError("not_finite", f"{name}={text!r} is not a finite number")
    return value.quantize(Decimal("0.01"))


def _timestamp_ms(row: Mapping[str, Any], name: str) -> int:
    text = _text(row, name)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RowError("bad_timestamp", f"{name}={text!r} is not an ISO-8601 time") from None
    if moment.tzinfo is None:
        raise RowError("naive_timestamp", f"{name}={text!r} has no UTC offset")
    return int(moment.astimezone(UTC).timestamp() * 1000)


def _bool(row: Mapping[str, Any], name: str) -> bool:
    raw = row.get(name)
    if isinstance(raw, bool):
        return raw
    text = _text(row, name).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise RowError("bad_boolean", f"{name}={text!r} is not a boolean")


def to_event(
    row: Mapping[str, Any], *, pii: Desensitizer, source: str, ingested_at_ms: int
) -> dict[str, Any]:
    """Map one export row to a full ``pos.transaction`` record (envelope + payload)."""
    missing = [name for name in REQUIRED if not _text(row, name)]
    if missing:
        raise RowError("missing_field", f"required column(s) empty: {', '.join(missing)}")
    transaction_id = _text(row, "transaction_id")
    line_no = _int(row, "line_no")
    phone = _text(row, "member_phone")
    member = pii.phone(phone) if phone else None
    return {
        "event_id": event_id(transaction_id, line_no),
        "source": source,
        "event_type": EVENT_TYPE,
        "occurred_at": _timestamp_ms(row, "occurred_at"),
        "ingested_at": ingested_at_ms,
        "customer_ref": member,
        "payload": {
            "transaction_id": transaction_id,
            "line_no": line_no,
            "store_id": _text(row, "store_id"),
            "region": _text(row, "region"),
            "sku": _text(row, "sku"),
            "product_line": _text(row, "product_line"),
            "quantity": _int(row, "quantity"),
            "unit_price": _money(row, "unit_price"),
            "discount": _money(row, "discount"),
            "amount": _money(row, "amount"),
            "currency": _text(row, "currency") or "CNY",
            "payment_method": _text(row, "payment_method") or "UNKNOWN",
            "member_id": member,
            "cashier_id": _text(row, "cashier_id") or None,
            "is_refund": _bool(row, "is_refund"),
        },
    }
