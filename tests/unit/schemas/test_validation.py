from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from dealstream.schemas import validation
from dealstream.schemas.samples import OCCURRED, sample_event
from dealstream.schemas.validation import ValidationError, check, validate

NOW_MS = int(OCCURRED.timestamp() * 1000) + 60_000


def problems(name: str, **overrides: Any) -> list[tuple[str, str]]:
    return [
        (p.code, p.field) for p in validate(name, sample_event(name, **overrides), now_ms=NOW_MS)
    ]


def test_negative_quantity_only_for_refunds() -> None:
    assert problems("pos.transaction", quantity=-1) == [("negative", "payload.quantity")]
    assert problems("pos.transaction", quantity=-1, amount=Decimal("-10.00"), is_refund=True) == []
    assert problems("pos.transaction", amount=Decimal("-10.00")) == [("negative", "payload.amount")]


def test_money_must_be_a_finite_decimal_with_two_places() -> None:
    assert problems("pos.transaction", amount=Decimal("NaN")) == [("not_finite", "payload.amount")]
    assert problems("pos.transaction", amount=Decimal("Infinity")) == [
        ("not_finite", "payload.amount")
    ]
    assert problems("pos.transaction", amount=Decimal("1.005")) == [("bad_scale", "payload.amount")]
    assert problems("pos.transaction", amount=Decimal("1e17")) == [
        ("out_of_range", "payload.amount")
    ]
    assert problems("pos.transaction", amount=12.5) == []  # floats are numbers (encode rejects)
    assert problems("pos.transaction", amount="12") == [("bad_type", "payload.amount")]
    assert problems("iot.telemetry", value=math.nan) == [("not_finite", "payload.value")]
    assert problems("iot.telemetry", value=-12.0) == []  # sensors may read negative


def test_timestamps_bounds() -> None:
    future = OCCURRED + timedelta(days=2)
    assert problems("pos.transaction", occurred_at=future) == [("in_future", "occurred_at")]
    assert problems("pos.transaction", occurred_at=datetime(1999, 12, 31, tzinfo=UTC)) == [
        ("too_old", "occurred_at")
    ]
    assert problems("pos.transaction", occurred_at=NOW_MS) == []  # epoch millis accepted
    assert problems("pos.transaction", occurred_at=datetime(2025, 1, 1)) == []  # naive = UTC
    assert problems("pos.transaction", occurred_at="2025-01-01") == [("bad_type", "occurred_at")]
    assert problems("erp.order", updated_at=future) == [("in_future", "payload.updated_at")]


def test_required_ids_and_event_type() -> None:
    assert problems("pos.transaction", store_id=" ") == [("empty", "payload.store_id")]
    assert problems("pos.transaction", event_id=" ") == [("empty", "event_id")]
    assert problems("wecom.message", conversation_id=None) == [("empty", "payload.conversation_id")]
    assert problems("pos.transaction", event_type="pos.txn") == [("unexpected", "event_type")]


def test_string_size_limits() -> None:
    long_text = "长" * (validation.MAX_TEXT + 1)
    assert problems("wecom.message", text=long_text) == [("too_long", "payload.text")]
    assert problems("wecom.message", text="长" * validation.MAX_TEXT) == []
    assert problems("pos.transaction", sku="S" * 300) == [("too_long", "payload.sku")]
    assert problems("alert", attributes={"k": "x" * (validation.MAX_TEXT + 1)}) == [
        ("too_long", "attributes.k")
    ]
    big = b"\x00" * (validation.MAX_TEXT * 2)
    assert problems("dead_letter", value=big) == []  # original bytes kept whatever their size


def test_fan_out_over_order_lines() -> None:
    record = sample_event("erp.order")
    record["payload"]["lines"][1]["quantity"] = -2
    record["payload"]["lines"][0]["sku"] = ""
    got = [(p.code, p.field) for p in validate("erp.order", record, now_ms=NOW_MS)]
    assert got == [("empty", "payload.lines[0].sku"), ("negative", "payload.lines[1].quantity")]
    assert str(validate("erp.order", record, now_ms=NOW_MS)[0]).startswith(
        "empty: payload.lines[0].sku"
    )
    record["payload"]["status"] = "RETURNED"  # returns carry negative quantities
    got = [(p.code, p.field) for p in validate("erp.order", record, now_ms=NOW_MS)]
    assert got == [("empty", "payload.lines[0].sku")]


def test_check_raises_the_first_problem_and_register_extends() -> None:
    with pytest.raises(ValidationError) as err:
        check("pos.transaction", sample_event("pos.transaction", quantity=-1), now_ms=NOW_MS)
    assert (err.value.code, err.value.field) == ("negative", "payload.quantity")
    check("pos.transaction", sample_event("pos.transaction"), now_ms=NOW_MS)

    validation.register("iot.telemetry", validation.one_of("payload.unit", frozenset({"C", "W"})))
    try:
        assert problems("iot.telemetry", unit="F") == [("unexpected", "payload.unit")]
    finally:
        validation._RULES["iot.telemetry"].pop()
        validation._compiled.pop("iot.telemetry", None)
    with pytest.raises(KeyError):
        validation.register("no.such.type")


def test_missing_payload_is_reported_not_crashing() -> None:
    record = sample_event("pos.transaction")
    record["payload"] = None
    codes = {p.code for p in validate("pos.transaction", record, now_ms=NOW_MS)}
    assert codes == {"empty"}
