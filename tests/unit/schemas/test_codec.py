from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import BytesIO
from typing import Any

import pytest
from fastavro import schemaless_reader, schemaless_writer
from fastavro.utils import generate_many

from dealstream.schemas import catalog, codec
from dealstream.schemas.catalog import EventType, SchemaVersion, fingerprint_of, parse
from dealstream.schemas.codec import DecodeError, Decoder, EncodeError
from dealstream.schemas.logical import _FAST_MS, _timestamp_millis
from dealstream.schemas.samples import sample_event


@pytest.mark.parametrize("et", catalog.all_types(), ids=lambda et: et.name)
def test_round_trip_every_type(et: EventType) -> None:
    record = sample_event(et.name)
    value, headers = codec.encode(et, record)
    assert headers == [
        ("dealstream-schema", et.subject.encode()),
        ("dealstream-fingerprint", et.fingerprint),
    ]
    decoded = Decoder(et).decode(value, headers)
    assert decoded == record
    # same as fastavro's own logical-type conversion
    assert decoded == schemaless_reader(BytesIO(value), et.schema, None)
    assert Decoder(et).decode(value, None) == record  # header-less: current schema


def test_round_trip_keeps_chinese_text_and_money() -> None:
    record = sample_event("wecom.message", text="保证收益，年化 8%！😀", product_line="热水器")
    value, headers = codec.encode("wecom.message", record)
    decoded = codec.decoder_for("wecom.messages.v1").decode(value, headers)
    assert decoded["payload"]["text"] == "保证收益，年化 8%！😀"
    refund = sample_event(
        "pos.transaction", quantity=-1, amount=Decimal("-4699.00"), is_refund=True
    )
    out = codec.decoder_for("pos.transactions.v1").decode(*codec.encode("pos.transaction", refund))
    assert out["payload"]["amount"] == Decimal("-4699.00")
    assert str(out["payload"]["unit_price"]) == "4999.00"


def test_decode_many_returns_errors_in_place() -> None:
    value, headers = codec.encode("iot.telemetry", sample_event("iot.telemetry"))
    dec = codec.decoder_for("iot.telemetry.v1")
    out = dec.decode_many([(value, headers), (value[:-3], headers), (value, headers)])
    assert isinstance(out[0], dict) and isinstance(out[2], dict)
    assert isinstance(out[1], DecodeError) and out[1].code == "truncated"


def test_encode_rejects_bad_records() -> None:
    missing = sample_event("pos.transaction")
    del missing["payload"]["sku"]
    extra = sample_event("pos.transaction", payload={"colour": "red"})
    bad_scale = sample_event("pos.transaction", amount=Decimal("1.005"))
    bad_enum = sample_event("wecom.message", channel="EMAIL")
    for record in (missing, extra, bad_scale, bad_enum):
        with pytest.raises(EncodeError) as err:
            codec.encode("pos.transaction" if record is not bad_enum else "wecom.message", record)
        assert err.value.code == "bad_record"
    defaulted = sample_event("pos.transaction")
    del defaulted["payload"]["is_refund"], defaulted["payload"]["currency"]
    out = Decoder("pos.transaction").decode(*codec.encode("pos.transaction", defaulted))
    assert out["payload"]["is_refund"] is False and out["payload"]["currency"] == "CNY"


def _codes(dec: Decoder, value: bytes, headers: Any) -> str:
    with pytest.raises(DecodeError) as err:
        dec.decode(value, headers)
    return err.value.code


def test_decode_error_codes() -> None:
    et = catalog.event_type("pos.transaction")
    value, headers = codec.encode(et, sample_event(et.name))
    dec = Decoder(et)
    assert _codes(dec, value[:10], headers) == "truncated"
    assert _codes(dec, value + b"\x00", headers) == "trailing_bytes"
    assert _codes(dec, value, [("dealstream-fingerprint", b"\x00" * 8)]) == "unknown_schema"
    assert _codes(dec, value, [("dealstream-schema", b"dealstream.Alert")]) == "wrong_subject"
    assert _codes(Decoder(et, require_fingerprint=True), value, []) == "missing_schema"
    assert _codes(dec, b"\x02\xff\xfe", None) == "bad_bytes"  # invalid UTF-8 in event_id
    assert _codes(dec, "text", None) == "bad_bytes"  # type: ignore[arg-type]
    assert _codes(dec, value, [("x",)]) == "bad_bytes"  # malformed header tuple
    err = DecodeError("truncated", "x")
    assert (err.code, err.message, str(err)) == ("truncated", "x", "truncated: x")


def test_confluent_framing() -> None:
    body = b"\x01\x02"
    framed = codec.frame_confluent(123456, body)
    assert framed[:5] == b"\x00\x00\x01\xe2\x40"
    assert codec.unframe_confluent(framed) == (123456, body)
    for bad in (b"", b"\x00\x00", b"\x01\x00\x00\x00\x01x"):
        with pytest.raises(DecodeError) as err:
            codec.unframe_confluent(bad)
        assert err.value.code == "bad_framing"
    with pytest.raises(ValueError):
        codec.frame_confluent(2**32, body)


def test_confluent_value_decodes_with_a_resolver() -> None:
    et = catalog.event_type("iot.telemetry")
    record = sample_event(et.name)
    body, _ = codec.encode(et, record)
    ids = {42: json.dumps(et.raw)}
    dec = Decoder(et, resolver=ids.__getitem__)
    assert dec.decode(codec.frame_confluent(42, body), None) == record
    assert _codes(dec, codec.frame_confluent(7, body), None) == "unknown_schema"


def _evolved(et: EventType, new_raw: dict[str, Any]) -> EventType:
    """A 'current' type whose released v1 is ``et``'s schema."""
    old = SchemaVersion(1, et.fingerprint, et.raw, et.schema)
    return EventType(
        name=et.name,
        topic=et.topic,
        schema=parse(copy.deepcopy(new_raw)),
        key_fields=et.key_fields,
        version=2,
        fingerprint=fingerprint_of(new_raw),
        subject=et.subject,
        raw=new_raw,
        history=(old,),
        enveloped=et.enveloped,
    )


def test_old_writer_is_resolved_into_current_schema() -> None:
    et = catalog.event_type("pos.transaction")
    new_raw = copy.deepcopy(et.raw)
    payload = new_raw["fields"][-1]["type"]
    payload["fields"].append(
        {"name": "coupon_code", "type": ["null", "string"], "default": None, "doc": "x"}
    )
    for f in payload["fields"]:
        if f["name"] == "line_no":
            f["type"] = "long"  # promotion
    new = _evolved(et, new_raw)
    old_value, old_headers = codec.encode(et, sample_event(et.name))
    out = Decoder(new).decode(old_value, old_headers)
    assert out["payload"]["coupon_code"] is None
    assert out["payload"]["line_no"] == 1
    assert out["payload"]["amount"] == Decimal("4699.00")
    # new writers are read too, and the old decoder refuses their fingerprint
    new_record = sample_event(et.name, payload={"coupon_code": "618"})
    new_value, new_headers = codec.encode(new, new_record)
    assert Decoder(new).decode(new_value, new_headers)["payload"]["coupon_code"] == "618"
    assert _codes(Decoder(et), new_value, new_headers) == "unknown_schema"


def test_incompatible_history_gives_a_decode_error() -> None:
    et = catalog.event_type("iot.telemetry")
    new_raw = copy.deepcopy(et.raw)
    for f in new_raw["fields"][-1]["type"]["fields"]:
        if f["name"] == "value":
            f["type"] = "string"
    new = _evolved(et, new_raw)
    value, headers = codec.encode(et, sample_event(et.name))
    assert _codes(Decoder(new), value, headers) == "incompatible_schema"


def test_fastavro_writer_interop() -> None:
    """Values written by plain fastavro (another producer) decode the same."""
    et = catalog.event_type("erp.order")
    record = sample_event(et.name)
    buf = BytesIO()
    schemaless_writer(buf, et.schema, record)
    assert codec.decoder_for("erp.orders.v1").decode(buf.getvalue(), None) == record


@pytest.mark.parametrize("et", catalog.all_types(), ids=lambda et: et.name)
def test_fast_logical_conversion_matches_fastavro(et: EventType) -> None:
    """The decoder converts decimals and timestamps itself; it must agree with fastavro."""
    dec = Decoder(et)
    for datum in generate_many(et.schema, 50):
        buf = BytesIO()
        schemaless_writer(buf, et.schema, datum)
        value = buf.getvalue()
        try:
            expected = schemaless_reader(BytesIO(value), et.schema, None)
        except (OverflowError, ValueError):  # random timestamps beyond year 9999
            with pytest.raises(DecodeError):
                dec.decode(value, None)
            continue
        if _beyond_precision(expected):
            continue  # fastavro rounds these to 18 digits; we keep them exact
        assert dec.decode(value, None) == expected


def _beyond_precision(node: Any) -> bool:
    if isinstance(node, dict):
        return any(_beyond_precision(v) for v in node.values())
    if isinstance(node, list):
        return any(_beyond_precision(v) for v in node)
    return isinstance(node, Decimal) and node.as_tuple().exponent != -2


def test_timestamp_conversion_is_exact_on_both_paths() -> None:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for ms in (0, 1, 999, -1, -86_400_001, _FAST_MS - 1, _FAST_MS, 253_402_300_799_999):
        assert _timestamp_millis(ms) == epoch + timedelta(milliseconds=ms), ms
