"""Hostile input for the worker's topics: every case says what the worker must make of it.

Shared by the in-memory unit test (``tests/unit/test_hostile_corpus.py``) and the run through a
real worker (``tests/integration/test_hostile_worker.py``). Each case is one Kafka record and its
expected fate: ``row`` (stored, verbatim), ``dead`` (a dead letter with a reason) or ``alert``
(a compliance violation raised on valid text).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from decimal import Decimal
from io import BytesIO
from typing import Any, Literal

from fastavro import parse_schema, schemaless_writer

from dealstream.broker.dead_letters import DeadLetter
from dealstream.schemas import catalog, codec
from dealstream.schemas.samples import sample_event

POS_TOPIC = "pos.transactions.v1"
CHAT_TOPIC = "wecom.messages.v1"
DLQ_POS_TOPIC = "dlq." + POS_TOPIC

Fate = Literal["row", "dead", "alert"]

INJECTIONS = (
    "'; DROP TABLE pos_transactions; --",
    '" OR 1=1 --',
    "<script>alert('x')</script>",
    "<img src=x onerror=alert(1)>",
    "{{7*7}} ${jndi:ldap://x/a} %s%n",
    "tab\tnew\nline\r\\back\\slash\x00nul",
    "漢字 🚀 \u202eRTL\u200b",
)
"""Text an attacker controls, to be stored byte for byte as data (never interpreted)."""

MAX_MESSAGE = 900_000  # under the producer's message.max.bytes (1 MiB) with headers


@dataclass(frozen=True)
class Case:
    name: str
    topic: str
    value: bytes
    headers: list[tuple[str, bytes]] | None
    fate: Fate
    event_id: str = ""  # for row/alert cases: the id that must be stored
    code: str = ""  # for dead cases: the expected error code, when it is stable
    expect: dict[str, Any] = field(default_factory=dict)  # stored column values to check


def _now_ms() -> int:
    return int(time.time() * 1000)


def pos_record(event_id: str, **payload: Any) -> dict[str, Any]:
    record = sample_event("pos.transaction", event_id=event_id)
    record["occurred_at"] = record["ingested_at"] = _now_ms()
    record["payload"].update(payload)
    return record


def chat_record(event_id: str, **payload: Any) -> dict[str, Any]:
    record = sample_event("wecom.message", event_id=event_id)
    record["occurred_at"] = record["ingested_at"] = _now_ms()
    record["payload"].update(payload)
    return record


def _encode(event_type: str, record: dict[str, Any]) -> tuple[bytes, list[tuple[str, bytes]]]:
    return codec.encode(event_type, record)


def _schemaless(schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    buf = BytesIO()
    schemaless_writer(buf, parse_schema(schema), record)
    return buf.getvalue()


def _retyped(event_type: str, field_name: str, new_type: Any) -> dict[str, Any]:
    """The event's schema with one payload field's type changed (a producer with its own idea)."""
    raw = json.loads(json.dumps(catalog.event_type(event_type).raw))
    payload = next(f for f in raw["fields"] if f["name"] == "payload")
    for f in payload["type"]["fields"]:
        if f["name"] == field_name:
            f["type"] = new_type
    return dict(raw)


def _without(event_type: str, field_name: str) -> dict[str, Any]:
    raw = json.loads(json.dumps(catalog.event_type(event_type).raw))
    payload = next(f for f in raw["fields"] if f["name"] == "payload")
    payload["type"]["fields"] = [f for f in payload["type"]["fields"] if f["name"] != field_name]
    return dict(raw)


def _patch(value: bytes, old: bytes, new: bytes) -> bytes:
    assert len(old) == len(new) and value.count(old) == 1, (old, new)
    return value.replace(old, new)


def pos_cases(tag: str) -> list[Case]:
    """POS records; ``tag`` makes event ids unique per run."""
    cases: list[Case] = []
    rng = random.Random(7)

    def good(name: str, **payload: Any) -> None:
        event_id = f"{tag}-{name}"
        value, headers = _encode("pos.transaction", pos_record(event_id, **payload))
        cases.append(Case(name, POS_TOPIC, value, headers, "row", event_id, expect=payload))

    def dead(name: str, value: bytes, headers: list[tuple[str, bytes]] | None, code: str) -> None:
        cases.append(Case(name, POS_TOPIC, value, headers, "dead", code=code))

    def invalid(name: str, code: str, **payload: Any) -> None:
        dead(name, *_encode("pos.transaction", pos_record(f"{tag}-{name}", **payload)), code)

    good("baseline")
    for i, text in enumerate(INJECTIONS):
        good(f"inject-{i}", sku=text, store_id=text[:200], cashier_id=text)
    good("refund-negative-ok", quantity=-2, amount=Decimal("-10.00"), is_refund=True)
    good("max-int-quantity", quantity=2**31 - 1, line_no=2**31 - 1)
    good("max-money", unit_price=Decimal("9999999999999999.99"))
    # The same event twice (a re-sent record): two rows in, one after dedup.
    value, headers = _encode("pos.transaction", pos_record(f"{tag}-duplicate"))
    for copy in ("a", "b"):
        cases.append(
            Case(f"duplicate-{copy}", POS_TOPIC, value, headers, "row", f"{tag}-duplicate")
        )

    ok_value, ok_headers = _encode("pos.transaction", pos_record(f"{tag}-template"))
    dead("empty", b"", ok_headers, "truncated")
    dead("empty-no-headers", b"", None, "truncated")
    for cut in (1, 7, len(ok_value) // 2, len(ok_value) - 1):
        dead(f"truncated-{cut}", ok_value[:cut], ok_headers, "")
    for i in range(4):
        noise = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300)))
        dead(f"random-{i}", noise, None, "")
        dead(f"random-headers-{i}", noise, ok_headers, "")
    dead("trailing-byte", ok_value + b"\x00", ok_headers, "trailing_bytes")
    dead(
        "unknown-fingerprint", ok_value, [("dealstream-fingerprint", b"\x01" * 8)], "unknown_schema"
    )
    dead("short-fingerprint", ok_value, [("dealstream-fingerprint", b"\x01")], "unknown_schema")
    dead("confluent-framing", b"\x00\x00\x00\x00\x07" + ok_value, None, "")
    chat_value, chat_headers = _encode("wecom.message", chat_record(f"{tag}-wrong-topic"))
    dead("chat-bytes-with-headers", chat_value, chat_headers, "wrong_subject")
    dead("chat-bytes-without-headers", chat_value, None, "")
    dead("json", json.dumps({"event_id": "x", "quantity": "NaN"}).encode(), None, "")
    dead("json-nan", b'{"amount": NaN, "quantity": Infinity}', None, "")
    # Wrong types: written with a schema whose field has another type, sent header-less.
    as_string = _retyped("pos.transaction", "quantity", "string")
    record = pos_record(f"{tag}-qty-string")
    record["payload"]["quantity"] = "three"
    dead("quantity-as-string", _schemaless(as_string, record), None, "")
    as_double = _retyped("pos.transaction", "quantity", "double")
    record = pos_record(f"{tag}-qty-nan")
    record["payload"]["quantity"] = float("nan")
    dead("quantity-as-nan-double", _schemaless(as_double, record), None, "")
    # Missing required field: a writer that has no `sku` at all.
    missing = _without("pos.transaction", "sku")
    record = pos_record(f"{tag}-no-sku")
    del record["payload"]["sku"]
    dead("missing-sku-field", _schemaless(missing, record), None, "")
    invalid("blank-sku", "empty", sku="")
    invalid("blank-transaction", "empty", transaction_id="   ")
    blank = pos_record("")
    blank["event_id"] = " "
    dead("blank-event-id", *_encode("pos.transaction", blank), "empty")
    invalid("negative-quantity", "negative", quantity=-3, is_refund=False)
    invalid("negative-amount", "negative", amount=Decimal("-1.00"), is_refund=False)
    invalid("negative-line-no", "negative", line_no=-1)
    invalid("negative-price", "negative", unit_price=Decimal("-0.01"))
    # Money beyond decimal(18, 2), written by a producer with a wider decimal: real headers.
    wide = _retyped(
        "pos.transaction",
        "amount",
        {"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 2},
    )
    record = pos_record(f"{tag}-money-too-big", amount=Decimal("99999999999999999999.00"))
    dead("money-too-big", _schemaless(wide, record), ok_headers, "")
    invalid("huge-sku", "too_long", sku="S" * MAX_MESSAGE)
    times = {
        "year-1970": 0,
        "year-1900": -2_208_988_800_000,
        "year-2200": 7_258_118_400_000,
        "next-week": _now_ms() + 7 * 86_400_000,
    }
    for name, when in times.items():
        record = pos_record(f"{tag}-{name}")
        record["occurred_at"] = when
        dead(f"occurred-{name}", *_encode("pos.transaction", record), "")
    record = pos_record(f"{tag}-overflow-time")
    record["occurred_at"] = 2**62
    dead("occurred-overflow", *_encode("pos.transaction", record), "")
    # Invalid UTF-8 inside a string field, with a correct length prefix.
    value, headers = _encode("pos.transaction", pos_record(f"{tag}-bad-utf8", sku="SKUXX"))
    dead("invalid-utf8", _patch(value, b"SKUXX", b"SK\xff\xfeX"), headers, "bad_bytes")
    value, headers = _encode("pos.transaction", pos_record(f"{tag}-surrogate", sku="SKUXXX"))
    dead("utf8-surrogate", _patch(value, b"SKUXXX", b"SK\xed\xa0\x80X"), headers, "bad_bytes")
    return cases


def chat_cases(tag: str) -> list[Case]:
    cases: list[Case] = []

    def clean(name: str, text: str) -> None:
        event_id = f"{tag}-{name}"
        record = chat_record(event_id, text=text, speaker_role="CUSTOMER")
        value, headers = _encode("wecom.message", record)
        cases.append(Case(name, CHAT_TOPIC, value, headers, "row", event_id))

    def alert(name: str, text: str) -> None:
        event_id = f"{tag}-{name}"
        record = chat_record(event_id, text=text, speaker_role="SALES_REP")
        value, headers = _encode("wecom.message", record)
        cases.append(
            Case(name, CHAT_TOPIC, value, headers, "alert", event_id, expect={"text": text})
        )

    def dead(name: str, value: bytes, headers: list[tuple[str, bytes]] | None, code: str) -> None:
        cases.append(Case(name, CHAT_TOPIC, value, headers, "dead", code=code))

    for i, text in enumerate(INJECTIONS):
        clean(f"inject-{i}", text)
        alert(f"inject-alert-{i}", f"{text} 稳赚不赔 {text}")
    clean("empty-text", "")
    ok_value, ok_headers = _encode("wecom.message", chat_record(f"{tag}-template"))
    dead("truncated", ok_value[:10], ok_headers, "truncated")
    dead("random", bytes(random.Random(3).getrandbits(8) for _ in range(200)), None, "")
    pos_value, pos_headers = _encode("pos.transaction", pos_record(f"{tag}-pos-on-chat"))
    dead("pos-bytes-with-headers", pos_value, pos_headers, "wrong_subject")
    dead("pos-bytes-without-headers", pos_value, None, "")
    huge = chat_record(f"{tag}-huge", text="保" * (MAX_MESSAGE // 3))
    dead("huge-text", *_encode("wecom.message", huge), "too_long")
    blank = chat_record(f"{tag}-blank", conversation_id="")
    dead("blank-conversation", *_encode("wecom.message", blank), "empty")
    value, headers = _encode("wecom.message", chat_record(f"{tag}-bad-utf8", text="TEXTXX"))
    dead("invalid-utf8", _patch(value, b"TEXTXX", b"TE\xc3\x28XX"), headers, "bad_bytes")
    # An enum index out of range, sent with the real schema's headers.
    record = chat_record(f"{tag}-enum")
    record["payload"]["channel"] = 99
    as_int = _retyped("wecom.message", "channel", "int")
    dead("enum-out-of-range", _schemaless(as_int, record), ok_headers, "")
    record = chat_record(f"{tag}-future")
    record["occurred_at"] = _now_ms() + 30 * 86_400_000
    dead("occurred-future", *_encode("wecom.message", record), "in_future")
    return cases


def dead_letter_cases(tag: str) -> list[Case]:
    """Records on a dead-letter topic: readable ones are archived, garbage is skipped."""
    cases: list[Case] = []
    for name, partition, offset in (("dlq-ok", 3, 10), ("dlq-negative-offset", 0, -5),
                                    ("dlq-partition-too-big", 70_000, 1),
                                    ("dlq-negative-partition", -1, 2)):  # fmt: skip
        letter = DeadLetter(
            topic=POS_TOPIC, value=b"\xff" + name.encode(), error_code="hostile",
            error_message=f"{tag}-{name}", stage="DECODE", source=f"{tag}-{name}",
            partition=partition, offset=offset,
        )  # fmt: skip
        value, headers = codec.encode("dead_letter", letter.to_record())
        cases.append(Case(name, DLQ_POS_TOPIC, value, headers, "row", f"{tag}-{name}"))
    cases.append(Case("dlq-garbage", DLQ_POS_TOPIC, b"\x01\x02garbage", None, "dead"))
    cases.append(Case("dlq-empty", DLQ_POS_TOPIC, b"", None, "dead"))
    return cases
