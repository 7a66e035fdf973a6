"""The forecast pipeline in memory: periods close into forecasts, state survives a restore."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Message
from pydantic import SecretStr

from dealstream.models.periods import DAY_MS
from dealstream.models.registry import ModelConfigError
from dealstream.schemas import codec
from dealstream.schemas.samples import sample_event
from dealstream.sinks.clickhouse import ClickHouseSettings, connect, migrate, tables
from dealstream.sinks.clickhouse.batching import BatchingSink
from dealstream.streams.changelog import State
from dealstream.streams.forecast import (
    CHANGELOG_TOPIC,
    ForecastPipeline,
    ForecastSettings,
    decode_entry,
)
from dealstream.streams.forecast_signals import STATE_KEY
from dealstream.streams.pipeline import Row, StateRecord
from dealstream.streams.state_signing import StateSettings, StateSigner

TOPIC = "pos.transactions.v1"
WEEK_MS = 7 * DAY_MS
MON = 1_704_067_200_000  # Monday 1 Jan 2024
KEYS = (("AC-1", "CN-EAST", 0), ("AC-2", "CN-EAST", 1), ("WH-9", "CN-NORTH", 1))
F = {name: i for i, name in enumerate(tables.FORECASTS_COLUMNS)}
A = {name: i for i, name in enumerate(tables.FORECAST_ACCURACY_COLUMNS)}


class DictChangelog:
    """A compacted changelog in a dict: latest value per key per partition."""

    def __init__(self) -> None:
        self.partitions: State = {}

    def write(self, records: Iterable[StateRecord]) -> None:
        for r in records:
            values = self.partitions.setdefault(r.partition, {})
            if r.value is None:
                values.pop(r.key, None)
            else:
                values[r.key] = r.value

    def read(self, topic: str, partitions: Sequence[int]) -> State:
        assert topic == CHANGELOG_TOPIC
        return {p: dict(self.partitions.get(p, {})) for p in partitions}


def settings(**overrides: Any) -> ForecastSettings:
    base: dict[str, Any] = {"family": "holt_winters", "season": 4, "min_history": 4}
    return ForecastSettings(**(base | overrides))


def pos_message(
    sku: str, region: str, partition: int, offset: int, at_ms: int, quantity: int
) -> Message:
    refund = quantity < 0
    record = sample_event(
        "pos.transaction",
        sku=sku,
        region=region,
        quantity=quantity,
        amount=Decimal(quantity * 10),
        is_refund=refund,
        transaction_id=f"T-{partition}-{offset}",
    )
    record["occurred_at"] = record["ingested_at"] = datetime.fromtimestamp(at_ms / 1000, tz=UTC)
    value, headers = codec.encode("pos.transaction", record)
    key = f"{sku}|{region}".encode()
    return Message(
        topic=TOPIC, partition=partition, offset=offset, key=key, value=value, headers=headers
    )


def sales(weeks: int) -> list[Message]:
    """Two sales per key and week (one a refund every fifth week), offsets per partition."""
    offsets = {0: 0, 1: 0}
    out = []
    for w in range(weeks):
        for i, (sku, region, partition) in enumerate(KEYS):
            for day, qty in ((1, 3 + (w % 4) * 2 + i), (4, -1 if w % 5 == 0 else 2)):
                at = MON + w * WEEK_MS + day * DAY_MS + i * 1000
                out.append(pos_message(sku, region, partition, offsets[partition], at, qty))
                offsets[partition] += 1
    return out


def chunks(messages: list[Message], size: int) -> list[list[Message]]:
    return [messages[i : i + size] for i in range(0, len(messages), size)]


def run(pipeline: ForecastPipeline, batches: Iterable[list[Message]]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {tables.FORECASTS: [], tables.FORECAST_ACCURACY: []}
    for batch in batches:
        for table, rows in pipeline.process(batch).rows.items():
            out[table].extend(rows)
    return out


def comparable(rows: list[Row], columns: dict[str, int]) -> dict[tuple[Any, ...], Row]:
    """Rows by dedup key, without the wall-clock column (what ReplacingMergeTree keeps)."""
    keep = [i for name, i in columns.items() if name != "produced_at"]
    return {(r[0], r[columns["period_start"]], r[columns["horizon"]]): tuple(r[i] for i in keep)
            for r in rows}  # fmt: skip


def test_forecasts_appear_once_periods_close_one_row_per_key_period_horizon() -> None:
    pipeline = ForecastPipeline(state_reader=DictChangelog(), settings=settings())
    messages = sales(20)
    first_week = run(pipeline, [messages[: 2 * len(KEYS)]])
    assert first_week[tables.FORECASTS] == []  # nothing closed yet
    out = run(pipeline, chunks(messages[2 * len(KEYS) :], 7))
    rows = out[tables.FORECASTS]
    # week w closes with the first sale of week w+1: 19 closed periods per key, 3 horizons.
    assert len(rows) == len(KEYS) * 19 * 3
    assert len(comparable(rows, F)) == len(rows)
    row = rows[-1]
    assert row[F["key"]] == "WH-9|CN-NORTH" and row[F["period"]] == "2024-W19"
    assert row[F["lower"]] <= row[F["point"]] <= row[F["upper"]]
    assert row[F["target_start"]] > row[F["period_start"]]
    statuses = {r[F["status"]] for r in rows}
    assert {"insufficient_history"} < statuses <= {"insufficient_history", "ok", "too_uncertain"}
    assert row[F["model_name"]] == "holt_winters" and row[F["model_version"]] == "1"
    assert row[F["kafka_partition"]] == 1 and isinstance(row[F["factors"]], dict)
    accuracy = out[tables.FORECAST_ACCURACY]
    assert len(comparable(accuracy, A)) == len(accuracy) > 0
    assert all(r[A["abs_error"]] == abs(r[A["forecast"]] - r[A["actual"]]) for r in accuracy)


def test_refunds_reduce_the_period_actual() -> None:
    pipeline = ForecastPipeline(
        state_reader=DictChangelog(), settings=settings(family="seasonal_naive", season=1)
    )
    batch = [
        pos_message("AC-1", "CN-EAST", 0, 0, MON + DAY_MS, 5),
        pos_message("AC-1", "CN-EAST", 0, 1, MON + 2 * DAY_MS, -2),
        pos_message("AC-1", "CN-EAST", 0, 2, MON + WEEK_MS + DAY_MS, 1),
    ]
    rows = pipeline.process(batch).rows[tables.FORECASTS]
    assert [r[F["point"]] for r in rows] == [3.0, 3.0, 3.0]
    assert rows[0][F["event_id"]] and rows[0][F["kafka_offset"]] == 2


def test_undecodable_and_invalid_records_are_skipped_without_dead_letters() -> None:
    good = pos_message("AC-1", "CN-EAST", 0, 0, MON, 1)
    record = sample_event("pos.transaction", quantity=-2, is_refund=False)
    invalid, headers = codec.encode("pos.transaction", record)
    batch = [
        Message(topic=TOPIC, partition=0, offset=1, value=b"\xff" * 9),
        Message(topic=TOPIC, partition=0, offset=2, value=invalid, headers=headers),
        good,
    ]
    result = ForecastPipeline(state_reader=DictChangelog()).process(batch)
    assert result.processed == 1 and result.dead_letters == []


@pytest.mark.parametrize("family", ["holt_winters", "snarimax", "linear", "seasonal_naive"])
def test_restored_pipeline_continues_with_identical_forecasts(family: str) -> None:
    messages = sales(30)
    straight = run(
        ForecastPipeline(state_reader=DictChangelog(), settings=settings(family=family)),
        chunks(messages, 11),
    )
    changelog = DictChangelog()
    first = ForecastPipeline(state_reader=changelog, settings=settings(family=family))
    head: dict[str, list[Row]] = {tables.FORECASTS: [], tables.FORECAST_ACCURACY: []}
    for batch in chunks(messages[:100], 11):  # a checkpoint after every batch
        for table, rows in run(first, [batch]).items():
            head[table].extend(rows)
        changelog.write(first.snapshot())
    assert first.snapshot() == []  # only dirty keys are written
    second = ForecastPipeline(state_reader=changelog, settings=settings(family=family))
    second.assigned([(TOPIC, 0), (TOPIC, 1)])
    assert sorted(second.keys) == sorted(f"{s}|{r}" for s, r, _ in KEYS)
    tail = run(second, chunks(messages[100:], 11))
    for table, columns in ((tables.FORECASTS, F), (tables.FORECAST_ACCURACY, A)):
        got = comparable(head[table] + tail[table], columns)
        assert got == comparable(straight[table], columns)


def test_crash_after_state_was_written_replays_without_double_counting() -> None:
    messages = sales(24)
    straight = run(ForecastPipeline(state_reader=DictChangelog(), settings=settings()),
                   chunks(messages, 10))  # fmt: skip
    changelog = DictChangelog()
    first = ForecastPipeline(state_reader=changelog, settings=settings())
    committed = run(first, [messages[:60]])  # checkpoint 1: state, rows and offsets saved
    changelog.write(first.snapshot())
    lost = run(first, [messages[60:90]])  # checkpoint 2 wrote state, then the process died
    changelog.write(first.snapshot())
    assert lost[tables.FORECASTS], "the lost batch closed periods"

    second = ForecastPipeline(state_reader=changelog, settings=settings())
    second.assigned([(TOPIC, 0), (TOPIC, 1)])
    replay = run(second, [messages[60:90], messages[90:]])  # re-read from offsets of ckpt 1
    got = comparable(committed[tables.FORECASTS] + replay[tables.FORECASTS], F)
    assert got == comparable(straight[tables.FORECASTS], F)


def test_changelog_records_follow_the_input_partition_and_revoke_drops_keys() -> None:
    pipeline = ForecastPipeline(state_reader=DictChangelog(), settings=settings())
    run(pipeline, [sales(3)])
    snapshot = pipeline.snapshot()
    records = [r for r in snapshot if r.key != STATE_KEY]
    assert {(r.key, r.partition) for r in records} == {(f"{s}|{r}".encode(), p) for s, r, p in KEYS}
    # the signal state (here: the stores seen) goes to every partition the worker owns
    assert {r.partition for r in snapshot if r.key == STATE_KEY} == {0, 1}
    assert all(r.topic == CHANGELOG_TOPIC and r.value for r in records)
    signer = StateSigner(StateSettings().key)
    offset, state, _ = decode_entry(signer.verify(records[0].value or b""))
    assert offset >= 0 and state.key == records[0].key.decode()
    pipeline.revoked([(TOPIC, 1)])
    assert sorted(pipeline.keys) == ["AC-1|CN-EAST"]


def test_changelog_entries_not_signed_with_our_key_are_never_unpickled() -> None:
    changelog = DictChangelog()
    first = ForecastPipeline(state_reader=changelog, settings=settings())
    run(first, [sales(3)])
    changelog.write(first.snapshot())
    forged = ForecastPipeline(
        state_reader=changelog,
        settings=settings(),
        signer=StateSigner(SecretStr("someone-else")),
    )
    forged.assigned([(TOPIC, 0), (TOPIC, 1)])
    assert forged.keys == {}
    trusted = ForecastPipeline(state_reader=changelog, settings=settings())
    trusted.assigned([(TOPIC, 0), (TOPIC, 1)])
    assert sorted(trusted.keys) == sorted(first.keys)


def test_settings_from_environment_and_unknown_family(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEALSTREAM_FORECAST_HORIZONS", "[4, 1]")
    monkeypatch.setenv("DEALSTREAM_FORECAST_FAMILY", "snarimax")
    s = ForecastSettings()
    assert s.horizons == (1, 4) and s.spec().family == "snarimax"
    with pytest.raises(ModelConfigError, match="DEALSTREAM_FORECAST_FAMILY"):
        ForecastSettings(family="prophet").spec()


def test_per_event_cost_is_small() -> None:
    """A coarse guard (and the figure quoted in the hand-over): decode + validate + learn."""
    messages = sales(60)
    pipeline = ForecastPipeline(state_reader=DictChangelog(), settings=settings())
    started = time.perf_counter()
    run(pipeline, chunks(messages, 500))
    per_event_us = (time.perf_counter() - started) / len(messages) * 1e6
    print(f"forecast pipeline: {per_event_us:.1f} us/event over {len(messages)} events")
    assert per_event_us < 2_000


def test_rows_land_in_the_migrated_tables_and_replays_collapse(tmp_path: Path) -> None:
    ch = ClickHouseSettings(url=f"chdb://{tmp_path / 'chdb'}", flush_retry_s=0)
    client = connect(settings=ch)
    try:
        migrate(client)
        for spec in ForecastPipeline.tables:
            described = client.query(
                "SELECT name FROM system.columns WHERE database = currentDatabase() "
                "AND table = {t:String} ORDER BY position",
                parameters={"t": spec.name},
            ).result_rows
            assert tuple(r[0] for r in described) == spec.columns
        sink = BatchingSink(client, settings=ch)
        for spec in ForecastPipeline.tables:
            sink.register(spec.name, spec.columns)
        messages = sales(12)
        for _ in range(2):  # the second run is a replay: same dedup keys
            out = run(ForecastPipeline(state_reader=DictChangelog(), settings=settings()),
                      [messages])  # fmt: skip
            for table, rows in out.items():
                sink.add(table, rows)
            sink.flush_all()
        expected = len(out[tables.FORECASTS])
        assert client.command("SELECT count() FROM forecasts FINAL") == expected
        latest = client.query(
            "SELECT key, horizon, period, factors FROM forecasts_latest ORDER BY key, horizon"
        ).result_rows
        assert len(latest) == len(KEYS) * 3 and {r[2] for r in latest} == {"2024-W11"}
        assert client.command("SELECT count() FROM forecast_accuracy FINAL") == len(
            out[tables.FORECAST_ACCURACY]
        )
    finally:
        client.close()
