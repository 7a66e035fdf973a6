"""Hostile input through the worker's pipelines in memory: a row, an alert or a dead letter.

Every record of the corpus (``tests/corpus.py``) must come out of ``process()`` as exactly one
of: a row that ClickHouse accepts (a row it refuses would fail its whole batch and stall the
worker), an alert, or a dead letter carrying the original bytes and a reason. Nothing raises.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Message
from hypothesis import given, settings
from hypothesis import strategies as st

from dealstream.schemas import catalog, codec
from dealstream.schemas.codec import DecodeError, Decoder
from dealstream.schemas.samples import sample_event
from dealstream.sinks.clickhouse import ClickHouseSettings, connect, migrate, tables
from dealstream.sinks.clickhouse.batching import BatchingSink
from dealstream.streams.compliance import CompliancePipeline, ComplianceSettings
from dealstream.streams.dead_letter_archive import DeadLetterArchivePipeline
from dealstream.streams.pipeline import BatchResult, Pipeline
from dealstream.streams.pos import PosTransactionsPipeline
from dealstream.streams.rules.errors import RuleError
from dealstream.streams.rules.language.parser import parse
from tests.corpus import (
    CHAT_TOPIC,
    INJECTIONS,
    POS_TOPIC,
    Case,
    chat_cases,
    dead_letter_cases,
    pos_cases,
)

TAG = "unit"


KafkaHeaders = list[tuple[str, str | bytes | None]]


def kafka_headers(headers: Sequence[tuple[str, bytes]] | None) -> KafkaHeaders | None:
    return None if headers is None else [(name, value) for name, value in headers]


def messages(cases: Sequence[Case]) -> list[Message]:
    return [
        Message(
            topic=c.topic, partition=0, offset=i, value=c.value, headers=kafka_headers(c.headers)
        )
        for i, c in enumerate(cases)
    ]


@pytest.fixture(scope="module")
def chdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    directory: Path = tmp_path_factory.mktemp("chdb")
    database = f"h_{uuid.uuid4().hex[:10]}"
    client = connect(settings=ClickHouseSettings(url=f"chdb://{directory}?database={database}"))
    migrate(client)
    yield client
    client.close()


def insert(client: Client, pipeline: Pipeline, result: BatchResult) -> None:
    """Write the rows as the worker would: a failure here is a poison row."""
    sink = BatchingSink(
        client, settings=ClickHouseSettings(url="chdb:///unused", flush_retry_s=0), name="hostile"
    )
    for table in pipeline.tables:
        sink.register(table.name, table.columns)
        sink.add(table.name, result.rows.get(table.name, []))
    sink.flush_all()


def check_dead_letters(cases: Sequence[Case], result: BatchResult, topic: str) -> set[int]:
    dead = {letter.offset: letter for letter in result.dead_letters}
    assert len(dead) == len(result.dead_letters), "one dead letter per record"
    for offset, letter in dead.items():
        assert offset is not None
        case = cases[offset]
        assert case.fate == "dead", f"{case.name} was dead-lettered: {letter.error_message}"
        assert letter.stage in ("DECODE", "VALIDATE") and letter.error_code and letter.error_message
        assert letter.value == case.value and letter.topic == topic
        if case.code:
            assert letter.error_code == case.code, (case.name, letter.error_message)
        codec.encode("dead_letter", letter.to_record())  # the dead letter itself is publishable
    missing = [c.name for i, c in enumerate(cases) if c.fate == "dead" and i not in dead]
    assert not missing, f"accepted as valid: {missing}"
    return {o for o in dead if o is not None}


def test_pos_corpus_rows_are_verbatim_and_insertable_the_rest_dead_letters(chdb: Client) -> None:
    cases = pos_cases(TAG)
    pipeline = PosTransactionsPipeline(topic=POS_TOPIC)
    result = pipeline.process(messages(cases))
    dead = check_dead_letters(cases, result, POS_TOPIC)
    rows = result.rows[tables.POS_TRANSACTIONS]
    columns = tables.POS_TRANSACTIONS_COLUMNS
    by_offset = {
        row[columns.index("kafka_offset")]: dict(zip(columns, row, strict=True)) for row in rows
    }
    assert set(by_offset) | dead == set(range(len(cases))) and not set(by_offset) & dead
    for offset, row in by_offset.items():
        case = cases[offset]
        assert case.fate == "row" and row["event_id"] == case.event_id
        for name, value in case.expect.items():
            assert row[name] == value, (case.name, name)
    insert(chdb, pipeline, result)
    stored: dict[str, str] = dict(
        chdb.query(  # type: ignore[arg-type]
            "SELECT event_id, sku FROM pos_transactions FINAL WHERE event_id LIKE {p:String}",
            parameters={"p": f"{TAG}-%"},
        ).result_rows
    )
    expected = {c.event_id for c in cases if c.fate == "row"}
    assert set(stored) == expected  # the duplicate collapsed
    for i, text in enumerate(INJECTIONS):
        assert stored[f"{TAG}-inject-{i}"] == text  # stored as data, byte for byte


def test_chat_corpus_alerts_keep_the_text_and_bad_records_are_dead_letters(chdb: Client) -> None:
    cases = chat_cases(TAG)
    pipeline = CompliancePipeline(ComplianceSettings().load(), topic=CHAT_TOPIC)
    result = pipeline.process(messages(cases))
    dead = check_dead_letters(cases, result, CHAT_TOPIC)
    alerted = {alert["input_event_ids"][0] for alert in result.alerts}
    assert alerted == {c.event_id for c in cases if c.fate == "alert"}
    assert result.processed == len(cases) - len(dead)
    for alert in result.alerts:
        codec.encode("alert", alert)  # every alert is publishable as it is
    insert(chdb, pipeline, result)


def test_dead_letter_archive_stores_readable_letters_and_skips_garbage(chdb: Client) -> None:
    cases = dead_letter_cases(TAG)
    pipeline = DeadLetterArchivePipeline()
    result = pipeline.process(messages(cases))
    rows = result.rows[tables.DEAD_LETTERS]
    sources = [row[tables.DEAD_LETTERS_COLUMNS.index("source")] for row in rows]
    assert sorted(sources) == sorted(c.event_id for c in cases if c.fate == "row")
    insert(chdb, pipeline, result)  # negative or oversized positions must not poison the batch


@pytest.mark.parametrize("case", pos_cases(TAG) + chat_cases(TAG), ids=lambda c: c.name)
def test_each_record_alone_never_raises(case: Case) -> None:
    pipeline: Pipeline
    if case.topic == POS_TOPIC:
        pipeline = PosTransactionsPipeline(topic=POS_TOPIC)
    else:
        pipeline = CompliancePipeline(ComplianceSettings().load(), topic=CHAT_TOPIC)
    result = pipeline.process(messages([case]))
    outcomes = len(result.dead_letters) + result.processed
    assert outcomes == 1, case.name


HEADER_SETS: list[list[tuple[str, bytes]] | None] = [
    None,
    *(codec.encode(et, sample_event(et.name))[1] for et in catalog.all_types()),
]


PIPELINES: dict[str, Any] = {
    "pos": PosTransactionsPipeline(topic=POS_TOPIC),
    "chat": CompliancePipeline(ComplianceSettings().load(), topic=CHAT_TOPIC),
    "archive": DeadLetterArchivePipeline(),
}


@settings(max_examples=200, deadline=None)
@given(
    value=st.binary(max_size=400),
    headers=st.sampled_from(HEADER_SETS),
    extra=st.lists(st.tuples(st.text(max_size=20), st.binary(max_size=20)), max_size=2),
)
def test_pipelines_turn_any_bytes_into_exactly_one_outcome(
    value: bytes, headers: list[tuple[str, bytes]] | None, extra: list[tuple[str, bytes]]
) -> None:
    merged = kafka_headers([*(headers or []), *extra] or None)
    for pipeline in (PIPELINES["pos"], PIPELINES["chat"]):
        topic = pipeline.topics[0]
        message = Message(topic=topic, partition=0, offset=0, value=value, headers=merged)
        result = pipeline.process([message])
        assert len(result.dead_letters) + result.processed == 1
    archive = PIPELINES["archive"].process(
        [Message(topic="dlq." + POS_TOPIC, partition=0, offset=0, value=value, headers=merged)]
    )
    assert len(archive.rows[tables.DEAD_LETTERS]) <= 1


@pytest.mark.parametrize("reader", catalog.all_types(), ids=lambda et: et.name)
def test_every_other_types_bytes_only_raise_decode_error(reader: catalog.EventType) -> None:
    """Another event type's bytes, with and without their headers, on every decoder."""
    decoder = Decoder(reader)
    for writer in catalog.all_types():
        value, headers = codec.encode(writer, sample_event(writer.name))
        for sent in (headers, None, [(name, v[:3]) for name, v in headers]):
            try:
                decoder.decode(value, sent)
            except DecodeError:
                continue
            assert writer.name == reader.name or sent is None


UNICODE_SOUP = st.sampled_from(
    [*"0123456789.eE+-*/%()[],<>=! \"'\\\n\t_xyz", "١٢", "߀", "𝟘", "\uff11", "1e999", "payload.",
     "and", "or", "not", "in", "true", "null", "min_over(", '"7d"', "é", "\x00"]
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(UNICODE_SOUP, max_size=80).map("".join))
def test_parser_only_raises_rule_error_on_unicode_digits_and_structure(source: str) -> None:
    """Extends tests/unit/rules: Unicode digits that ``\\d`` matches, NULs, huge exponents."""
    with contextlib.suppress(RuleError):
        parse(source)
