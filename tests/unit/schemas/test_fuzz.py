"""Decoding must never raise anything but DecodeError, and never hang, whatever the bytes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dealstream.schemas import catalog, codec
from dealstream.schemas.codec import DecodeError, Decoder
from dealstream.schemas.samples import sample_event

TYPES = catalog.all_types()
ENCODED = {et.name: codec.encode(et, sample_event(et.name)) for et in TYPES}
FUZZ = settings(max_examples=300, deadline=1000)


def _decode_or_error(dec: Decoder, value: bytes, headers: list[tuple[str, bytes]] | None) -> None:
    try:
        out = dec.decode(value, headers)
    except DecodeError as err:
        assert err.code in {
            "truncated",
            "bad_bytes",
            "trailing_bytes",
            "unknown_schema",
            "incompatible_schema",
            "bad_framing",
        }, err.code
    else:
        assert isinstance(out, dict)


@pytest.mark.parametrize("et", TYPES, ids=lambda et: et.name)
@FUZZ
@given(data=st.binary(max_size=512))
def test_random_bytes(et: catalog.EventType, data: bytes) -> None:
    dec = Decoder(et)
    _decode_or_error(dec, data, ENCODED[et.name][1])
    _decode_or_error(dec, data, None)


@pytest.mark.parametrize("et", TYPES, ids=lambda et: et.name)
@FUZZ
@given(cut=st.integers(min_value=0, max_value=10_000))
def test_truncated(et: catalog.EventType, cut: int) -> None:
    value, headers = ENCODED[et.name]
    cut %= len(value)
    with pytest.raises(DecodeError):
        Decoder(et).decode(value[:cut], headers)


@pytest.mark.parametrize("et", TYPES, ids=lambda et: et.name)
@FUZZ
@given(
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1, max_size=4)
)
def test_flipped_bytes(et: catalog.EventType, flips: list[tuple[int, int]]) -> None:
    value, headers = ENCODED[et.name]
    mutated = bytearray(value)
    for pos, mask in flips:
        mutated[pos % len(mutated)] ^= mask
    _decode_or_error(Decoder(et), bytes(mutated), headers)


@FUZZ
@given(
    data=st.binary(max_size=64),
    headers=st.lists(
        st.tuples(
            st.sampled_from(["dealstream-fingerprint", "dealstream-schema", "x"]),
            st.one_of(st.none(), st.binary(max_size=12)),
        ),
        max_size=3,
    ),
)
def test_random_headers_and_confluent_values(
    data: bytes, headers: list[tuple[str, bytes | None]]
) -> None:
    et = catalog.event_type("iot.telemetry")
    dec = Decoder(et, resolver=lambda schema_id: et.raw)
    with contextlib.suppress(DecodeError):
        dec.decode(b"\x00" + data, headers)


def test_huge_declared_lengths_do_not_allocate_or_hang() -> None:
    alert = catalog.alert_schema()
    huge = b"\xfe\xff\xff\xff\xff\xff\xff\xff\x7f"  # zig-zag long ~ 2**62
    for value in (huge, b"\x02a" + huge, huge * 40):
        with pytest.raises(DecodeError):
            Decoder(alert).decode(value, None)
    # an array block count of ~2**62 items with nothing behind it
    body, headers = ENCODED["alert"]
    marker = body.index(b"\x02@0f4c")  # input_event_ids: one block of one 32-char string
    with pytest.raises(DecodeError):
        Decoder(alert).decode(body[:marker] + huge, headers)
