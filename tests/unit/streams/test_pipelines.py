"""The worker's pipelines on in-memory records (confluent-kafka ``Message`` objects, no broker)."""

from __future__ import annotations

import time
from decimal import Decimal

from confluent_kafka import Message

from dealstream.broker.dead_letters import DeadLetter
from dealstream.schemas import codec
from dealstream.schemas.samples import sample_event
from dealstream.sinks.clickhouse import tables
from dealstream.streams.dead_letter_archive import DeadLetterArchivePipeline, dead_letter_topics
from dealstream.streams.pos import PosTransactionsPipeline

TOPIC = "pos.transactions.v1"


def message(
    value: bytes, headers: list[tuple[str, bytes]] | None = None, offset: int = 0
) -> Message:
    return Message(
        topic=TOPIC, partition=1, offset=offset, value=value, headers=headers, timestamp=(1, 0)
    )


def pos_event(**payload: object) -> dict:
    record = sample_event("pos.transaction")
    record["occurred_at"] = record["ingested_at"] = int(time.time() * 1000)
    record["payload"].update(payload)
    return record


def test_valid_events_become_rows_in_table_column_order() -> None:
    record = pos_event(quantity=3, amount=Decimal("30.00"))
    value, headers = codec.encode("pos.transaction", record)
    result = PosTransactionsPipeline().process([message(value, headers, offset=41)])
    assert result.dead_letters == [] and result.processed == 1
    (row,) = result.rows[tables.POS_TRANSACTIONS]
    named = dict(zip(tables.POS_TRANSACTIONS_COLUMNS, row, strict=True))
    assert named["event_id"] == record["event_id"]
    assert named["quantity"] == 3 and named["amount"] == Decimal("30.00")
    assert (named["kafka_topic"], named["kafka_partition"], named["kafka_offset"]) == (TOPIC, 1, 41)


def test_bad_records_become_dead_letters_with_original_bytes_and_position() -> None:
    good_value, headers = codec.encode("pos.transaction", pos_event())
    negative, neg_headers = codec.encode("pos.transaction", pos_event(quantity=-2, is_refund=False))
    batch = [
        message(good_value[:5], headers, offset=1),  # truncated
        message(b"\xff" * 40, None, offset=2),  # random bytes, no headers
        message(good_value, [("dealstream-fingerprint", b"12345678")], offset=3),
        message(negative, neg_headers, offset=4),
        message(good_value, headers, offset=5),
    ]
    result = PosTransactionsPipeline().process(batch)
    assert result.processed == 1
    letters = {letter.offset: letter for letter in result.dead_letters}
    assert sorted(letters) == [1, 2, 3, 4]
    assert letters[1].stage == "DECODE" and letters[1].error_code == "truncated"
    assert letters[1].value == good_value[:5]
    assert letters[3].error_code == "unknown_schema"
    assert letters[4].stage == "VALIDATE" and letters[4].error_code == "negative"
    assert all(letter.partition == 1 and letter.topic == TOPIC for letter in letters.values())
    assert {letter.dlq_topic for letter in letters.values()} == {"dlq." + TOPIC}


def test_dead_letters_round_trip_into_the_archive_table() -> None:
    letter = DeadLetter(
        topic=TOPIC, value=b"\x00raw", error_code="truncated", error_message="short",
        stage="DECODE", source="pos-transactions", partition=2, offset=7, key=b"k",
        headers=[("h", b"v")],
    )  # fmt: skip
    value, headers = codec.encode("dead_letter", letter.to_record())
    archived = DeadLetterArchivePipeline().process(
        [Message(topic=letter.dlq_topic, partition=0, offset=0, value=value, headers=headers)]
    )
    (row,) = archived.rows[tables.DEAD_LETTERS]
    named = dict(zip(tables.DEAD_LETTERS_COLUMNS, row, strict=True))
    assert named["original_topic"] == TOPIC and named["value"] == b"\x00raw"
    assert (named["kafka_partition"], named["kafka_offset"], named["stage"]) == (2, 7, "DECODE")


def test_archive_skips_and_counts_unreadable_dead_letters() -> None:
    archive = DeadLetterArchivePipeline()
    result = archive.process([Message(topic="dlq." + TOPIC, partition=0, offset=0, value=b"\x01")])
    assert result.processed == 0 and result.rows[tables.DEAD_LETTERS] == []


def test_dead_letter_topics_follow_the_prefix() -> None:
    assert "dlq.t1.pos.transactions.v1" in dead_letter_topics("t1.")
