"""Rep forecasts in memory: weekly order amounts per rep, accuracy rows, deviation alerts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Message
from pydantic import SecretStr

from dealstream.broker.standard_topics import REP_FORECAST_STATE_TOPIC
from dealstream.models.periods import DAY_MS
from dealstream.schemas import codec
from dealstream.schemas.samples import sample_event
from dealstream.sinks.clickhouse import tables
from dealstream.streams.changelog import State
from dealstream.streams.decoding import RecordReader
from dealstream.streams.pipeline import BatchResult, StateRecord
from dealstream.streams.rep_forecast import (
    CHANGELOG_TOPIC,
    RepForecastPipeline,
    RepForecastSettings,
)
from dealstream.streams.state_signing import StateSigner

TOPIC = "erp.orders.v1"
WEEK_MS = 7 * DAY_MS
MON = 1_704_067_200_000  # Monday 1 Jan 2024
R = {name: i for i, name in enumerate(tables.REP_FORECAST_ACCURACY_COLUMNS)}
TABLE = tables.REP_FORECAST_ACCURACY


class DictChangelog:
    def __init__(self) -> None:
        self.partitions: State = {}

    def write(self, records: Iterable[StateRecord]) -> None:
        for r in records:
            assert r.topic == CHANGELOG_TOPIC == REP_FORECAST_STATE_TOPIC and r.partition == 0
            self.partitions.setdefault(r.partition, {})[r.key] = r.value or b""

    def read(self, topic: str, partitions: Sequence[int]) -> State:
        return {p: dict(self.partitions.get(p, {})) for p in partitions}


def settings(**overrides: Any) -> RepForecastSettings:
    base: dict[str, Any] = {"family": "holt_winters", "season": 4, "min_history": 4}
    return RepForecastSettings(**(base | overrides))


def order(
    order_id: str,
    rep: str | None,
    at_ms: int,
    amount: float,
    *,
    partition: int = 0,
    offset: int = 0,
    status: str = "CONFIRMED",
    updated_ms: int | None = None,
) -> Message:
    created = datetime.fromtimestamp(at_ms / 1000, tz=UTC)
    updated = datetime.fromtimestamp((updated_ms or at_ms) / 1000, tz=UTC)
    record = sample_event(
        "erp.order",
        order_id=order_id,
        sales_rep_id=rep,
        customer_id=f"C-{order_id}",
        total_amount=Decimal(f"{amount:.2f}"),
        status=status,
        created_at=created,
        updated_at=updated,
        occurred_at=updated,
    )
    value, headers = codec.encode("erp.order", record)
    return Message(topic=TOPIC, partition=partition, offset=offset, key=record["payload"]
                   ["customer_id"].encode(), value=value, headers=headers)  # fmt: skip


def weekly_orders(amounts: dict[str, list[float]]) -> list[Message]:
    """Two orders per rep and week (Tue, Thu) splitting the amount; 4 partitions by order."""
    offsets = [0, 0, 0, 0]
    out = []
    for w in range(max(len(v) for v in amounts.values())):
        for day in (1, 3):
            for i, (rep, series) in enumerate(sorted(amounts.items())):
                if w >= len(series):
                    continue
                part = (w + day + i) % 4
                at = MON + w * WEEK_MS + day * DAY_MS + i * 1000
                out.append(order(f"SO-{rep}-{w}-{day}", rep, at, series[w] / 2,
                                 partition=part, offset=offsets[part]))  # fmt: skip
                offsets[part] += 1
    return out


def run(pipeline: RepForecastPipeline, messages: list[Message], size: int = 5) -> BatchResult:
    total = BatchResult(rows={TABLE: []})
    for i in range(0, len(messages), size):
        total.extend(pipeline.process(messages[i : i + size]))
    return total


STEADY = [1000.0 + 30 * (w % 3) for w in range(16)]
DROP = [*STEADY[:10], 450.0, 480.0, 420.0, 470.0, 440.0, 460.0]


def new(reader: DictChangelog | None = None, **kw: Any) -> RepForecastPipeline:
    p = RepForecastPipeline(state_reader=reader or DictChangelog(), settings=settings(**kw))
    p.assigned([(TOPIC, n) for n in range(4)])
    return p


def test_weeks_close_into_accuracy_rows_per_rep_without_alerts_for_a_steady_rep() -> None:
    result = run(new(), weekly_orders({"EMP-1": STEADY}))
    rows = result.rows[TABLE]
    # 16 weeks: week w closes when week w+1 starts; the first week's forecast is scored at w=1.
    assert [r[R["period"]] for r in rows] == [f"2024-W{w:02d}" for w in range(2, 16)]
    assert all(r[R["rep"]] == "EMP-1" and r[R["horizon"]] == 1 for r in rows)
    assert rows[0][R["actual"]] == STEADY[1]
    last = rows[-1]
    assert last[R["n"]] == 14 and 0 < last[R["wape"]] < 0.1
    assert last[R["model_name"]] == "rep-weekly-orders" and last[R["model_version"]] == "1"
    assert result.alerts == []


def test_a_rep_below_forecast_for_three_weeks_raises_one_alert_with_its_audit_trail() -> None:
    messages = weekly_orders({"EMP-1": STEADY, "EMP-2": DROP})
    result = run(new(), messages)
    assert len(result.alerts) == 1
    alert = result.alerts[0]
    assert alert["kind"] == "forecast" and alert["entity_key"] == "EMP-2"
    assert (alert["model_name"], alert["model_version"]) == ("rep-weekly-orders", "1")
    assert alert["attributes"]["weeks"] == "2024-W11,2024-W12,2024-W13"
    assert all(float(d) > 0.15 for d in alert["attributes"]["deviations"].split(","))
    # every order of EMP-2 in those weeks (2 per week), and no order of anyone else
    assert len(alert["input_event_ids"]) == 6
    records = [r for _, r in RecordReader("erp.order").read(messages).records]
    in_weeks = {r["event_id"] for r in records if r["payload"]["sales_rep_id"] == "EMP-2"
                and r["payload"]["created_at"].isocalendar().week in (11, 12, 13)}  # fmt: skip
    assert set(alert["input_event_ids"]) == in_weeks
    codec.encode("alert", alert)  # valid against alert.avsc


def test_threshold_and_weeks_are_configurable() -> None:
    messages = weekly_orders({"EMP-2": DROP})
    assert run(new(threshold=0.9), messages).alerts == []
    early = run(new(weeks=2), messages).alerts
    assert [a["attributes"]["weeks"] for a in early] == ["2024-W11,2024-W12"]


def test_order_revisions_replace_the_amount_and_cancellations_count_zero() -> None:
    p = new()
    at = MON + DAY_MS
    p.process([order("SO-1", "EMP-1", at, 500.0, offset=0)])
    p.process([order("SO-1", "EMP-1", at, 800.0, offset=1, updated_ms=at + 1000)])
    p.process([order("SO-2", "EMP-1", at, 300.0, offset=2)])
    p.process([order("SO-2", "EMP-1", at, 300.0, offset=3, status="CANCELLED",
                     updated_ms=at + 2000)])  # fmt: skip
    p.process([order("SO-3", "EMP-1", at + WEEK_MS, 10.0, offset=4)])
    closed = p.reps["EMP-1"].key.forecaster.model._history  # type: ignore[attr-defined]
    assert list(closed) == [800.0]


def test_unassigned_orders_are_skipped_and_quiet_reps_still_close_weeks() -> None:
    p = new()
    p.process([order("SO-1", None, MON + DAY_MS, 100.0, offset=0)])
    assert p.reps == {}
    p.process([order("SO-2", "EMP-1", MON + DAY_MS, 100.0, offset=1)])
    # another rep's orders move the watermark: EMP-1's empty weeks close too
    result = p.process([order("SO-3", "EMP-9", MON + 3 * WEEK_MS + DAY_MS, 50.0, offset=2)])
    assert p.reps["EMP-1"].key.forecaster.steps == 3
    assert {r[R["rep"]] for r in result.rows[TABLE]} == {"EMP-1"}


def comparable(result: BatchResult) -> tuple[list[Any], list[Any]]:
    rows = sorted(tuple(v for k, v in zip(R, r, strict=True) if k != "produced_at")
                  for r in result.rows[TABLE])  # fmt: skip
    alerts = [{k: v for k, v in a.items() if k != "raised_at"} for a in result.alerts]
    return rows, alerts


def test_state_survives_snapshot_and_restore_with_the_same_rows_and_alerts() -> None:
    messages = weekly_orders({"EMP-1": STEADY, "EMP-2": DROP})
    whole = run(new(), messages)
    log = DictChangelog()
    first = new(log)
    half = len(messages) // 2
    before = run(first, messages[:half])
    log.write(first.snapshot())
    assert first.snapshot() == []  # nothing changed since
    second = new(log)
    after = run(second, messages[half:])
    before.extend(after)
    assert comparable(before) == comparable(whole)


def test_a_replay_after_a_crash_skips_applied_orders_and_re_emits_unsaved_output() -> None:
    messages = weekly_orders({"EMP-2": DROP})
    log = DictChangelog()
    first = new(log)
    run(first, messages[:10])
    log.write(first.snapshot())
    lost = run(first, messages[10:])  # processed, its sink flush lost in a crash
    log.write(first.snapshot())  # ...but the snapshot made it
    second = new(log)
    replayed = run(second, messages[10:])
    assert comparable(replayed) == comparable(lost)
    assert second.reps["EMP-2"].key.forecaster.steps == first.reps["EMP-2"].key.forecaster.steps


def test_a_snapshot_with_a_bad_signature_is_never_loaded() -> None:
    log = DictChangelog()
    first = new(log)
    run(first, weekly_orders({"EMP-1": STEADY[:4]}))
    log.write(first.snapshot())
    other = RepForecastPipeline(state_reader=log, settings=settings(),
                                signer=StateSigner(SecretStr("someone-else")))  # fmt: skip
    other.assigned([(TOPIC, 0)])
    assert other.reps == {}


def test_only_the_owner_of_partition_zero_keeps_rep_state() -> None:
    p = RepForecastPipeline(state_reader=DictChangelog(), settings=settings())
    p.assigned([(TOPIC, 1)])
    assert p.process([order("SO-1", "EMP-1", MON, 10.0, partition=1)]).processed == 0
    assert p.reps == {}
    p.assigned([(TOPIC, 0)])
    assert p.process([order("SO-2", "EMP-1", MON, 10.0, partition=1, offset=1)]).processed == 1
    p.revoked([(TOPIC, 0)])
    assert p.reps == {}


def test_unknown_family_fails_fast() -> None:
    with pytest.raises(ValueError, match="FAMILY"):
        settings(family="prophet").spec()


def test_model_per_rep_family_from_a_models_file(tmp_path: Path) -> None:
    models = tmp_path / "models.yaml"
    models.write_text(
        "models:\n"
        "  default: {family: holt_winters, name: rep-hw, version: '2', params: {seasonality: 4}}\n"
        "  key_accounts: {family: seasonal_naive, name: rep-naive, version: '5',\n"
        "                 params: {season: 1}}\n"
        "families:\n"
        "  - {family: key_accounts, match: {rep: 'KA-*'}}\n"
    )
    result = run(new(models_file=models), weekly_orders({"EMP-1": STEADY, "KA-7": DROP}))
    by_rep = {r[R["rep"]]: (r[R["model_name"]], r[R["model_version"]]) for r in result.rows[TABLE]}
    assert by_rep == {"EMP-1": ("rep-hw", "2"), "KA-7": ("rep-naive", "5")}
    assert all(a["model_name"] == "rep-naive" for a in result.alerts if a["entity_key"] == "KA-7")
