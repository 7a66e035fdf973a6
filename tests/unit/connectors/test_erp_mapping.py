"""ERP rows to events: strict coercion, versioned ids, status mapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from dealstream.connectors.erp_sql import mapping
from dealstream.connectors.sdk.errors import RecordError
from dealstream.schemas import codec, validation

T = datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)
NOW = int(T.timestamp() * 1000) + 60_000
ORDER = {
    "order_id": "SO-1", "customer_id": "C-1", "dealer_id": None, "sales_rep_id": "E-1",
    "region": "CN-EAST", "status": "shipped", "currency": None, "total_amount": Decimal("10"),
    "created_at": None, "updated_at": T,
}  # fmt: skip
LINES = [{"line_no": 1, "sku": "A", "quantity": "2", "unit_price": 5, "amount": None}]
STOCK = {
    "sku": "A", "warehouse_id": "W1", "region": "CN-EAST", "on_hand": 5, "reserved": 1,
    "reorder_point": 2, "unit_cost": "3.5", "turnover_days": None,
    "updated_at": "2026-03-01T16:00:00+08:00",
}  # fmt: skip


def order(**overrides: Any) -> dict[str, Any]:
    return mapping.order_event({**ORDER, **overrides}, LINES, source="erp", ingested_at_ms=NOW)


def test_order_is_valid_and_encodes() -> None:
    record = order()
    assert record["payload"]["status"] == "SHIPPED" and record["payload"]["currency"] == "CNY"
    assert record["payload"]["lines"][0]["quantity"] == 2
    assert validation.validate("erp.order", record, now_ms=NOW) == []
    codec.encode("erp.order", record)


def test_event_id_is_the_version() -> None:
    assert order()["event_id"] == order(status="CONFIRMED")["event_id"]
    assert order()["event_id"] != order(updated_at=T + timedelta(microseconds=1))["event_id"]


def test_status_map_and_unknown_codes() -> None:
    mapped = mapping.order_event(
        {**ORDER, "status": "40"},
        LINES,
        source="e",
        ingested_at_ms=NOW,
        status_map={"40": "DELIVERED"},
    )
    assert mapped["payload"]["status"] == "DELIVERED"
    assert order(status="weird")["payload"]["status"] == "UNKNOWN"


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"region": " "}, "missing_field"),
        ({"total_amount": "1,5"}, "bad_decimal"),
        ({"total_amount": "Infinity"}, "not_finite"),
        ({"updated_at": "2026-03-01T08:00:00"}, "naive_timestamp"),
        ({"updated_at": "later"}, "bad_timestamp"),
    ],
)
def test_bad_values_are_record_errors(overrides: dict[str, Any], code: str) -> None:
    with pytest.raises(RecordError) as raised:
        order(**overrides)
    assert raised.value.code == code


def test_inventory_snapshot_per_sku_and_warehouse() -> None:
    record = mapping.inventory_event(STOCK, source="erp", ingested_at_ms=NOW)
    assert (
        record["payload"]["snapshot_at"] == datetime(2026, 3, 1, 8, tzinfo=UTC).timestamp() * 1000
    )
    assert record["payload"]["unit_cost"] == Decimal("3.50")
    assert validation.validate("erp.inventory", record, now_ms=NOW) == []
    other = mapping.inventory_event(
        {**STOCK, "warehouse_id": "W2"}, source="erp", ingested_at_ms=NOW
    )
    assert other["event_id"] != record["event_id"]
    with pytest.raises(RecordError, match="bad_integer"):
        mapping.inventory_event({**STOCK, "on_hand": 1.5}, source="erp", ingested_at_ms=NOW)
