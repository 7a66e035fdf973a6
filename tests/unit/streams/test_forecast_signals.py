"""Signals, model routing and grain of the forecast pipeline, in memory (no broker)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Message

from dealstream.models.periods import DAY_MS
from dealstream.models.registry import ModelConfigError
from dealstream.schemas import codec
from dealstream.schemas.samples import sample_event
from dealstream.streams.forecast import FORECASTS, ForecastPipeline, ForecastSettings
from dealstream.streams.forecast_signals import STATE_KEY
from dealstream.streams.pipeline import Row
from tests.unit.streams.test_forecast_pipeline import TOPIC, DictChangelog, chunks

WEEK_MS = 7 * DAY_MS
MON = 1_704_067_200_000  # Monday 1 Jan 2024
TENDERS, PLANS, IOT = "tenders.notices.v1", "procurement.plans.v1", "iot.telemetry.v1"
SIGNAL_TOPICS = (TENDERS, PLANS, IOT)
C = {name: i for i, name in enumerate(FORECASTS.columns)}
# (sku, region, store, product line, partition): two CN-EAST keys on different partitions
KEYS = (
    ("AC-1", "CN-EAST", "SH01", "AC", 0),
    ("AC-2", "CN-EAST", "SH02", "AC", 1),
    ("MED-7", "CN-NORTH", "BJ01", "MED-BED", 1),
)


class ListFeed:
    """The signal topics in a list: ``poll`` hands out what lies past the positions."""

    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages
        self.positions: dict[tuple[str, int], int] = {}
        self.polls = 0

    def seek(self, positions: Mapping[tuple[str, int], int]) -> None:
        self.positions.update(positions)

    def catch_up(self) -> list[Message]:
        return self.poll()

    def poll(self) -> list[Message]:
        self.polls += 1
        out = []
        for m in self.messages:
            tp = (m.topic(), m.partition())
            if m.offset() >= self.positions.get(tp, 0):  # type: ignore[arg-type]
                out.append(m)
                self.positions[tp] = m.offset() + 1  # type: ignore[index,operator]
        return out


def encode(event_type: str, topic: str, offset: int, at_ms: int, **payload: Any) -> Message:
    record = sample_event(event_type, **payload)
    record["occurred_at"] = record["ingested_at"] = datetime.fromtimestamp(at_ms / 1000, tz=UTC)
    value, headers = codec.encode(event_type, record)
    return Message(topic=topic, partition=0, offset=offset, value=value, headers=headers)


def sales(weeks: int, discount_weeks: frozenset[int] = frozenset()) -> list[Message]:
    offsets = {0: 0, 1: 0}
    out = []
    for w in range(weeks):
        for i, (sku, region, store, line, partition) in enumerate(KEYS):
            at = MON + w * WEEK_MS + DAY_MS + i * 1000
            record = sample_event(
                "pos.transaction", sku=sku, region=region, store_id=store, product_line=line,
                quantity=3 + w % 4, amount=Decimal(30), transaction_id=f"T{partition}-{w}-{i}",
                discount=Decimal(50 if w in discount_weeks else 0),
            )  # fmt: skip
            record["occurred_at"] = record["ingested_at"] = datetime.fromtimestamp(
                at / 1000, tz=UTC
            )
            value, headers = codec.encode("pos.transaction", record)
            key = f"{sku}|{region}".encode()
            out.append(Message(topic=TOPIC, partition=partition, offset=offsets[partition],
                               key=key, value=value, headers=headers))  # fmt: skip
            offsets[partition] += 1
    return out


def signals() -> list[Message]:
    """Awards in CN-EAST every third week, a plan for week 6, IoT usage at store SH01."""
    out = [
        encode("tender.notice", TENDERS, n, MON + w * WEEK_MS + 2 * DAY_MS, kind="AWARD",
               region="CN-EAST", published_at=datetime.fromtimestamp(
                   (MON + w * WEEK_MS + 2 * DAY_MS) / 1000, tz=UTC))
        for n, w in enumerate(range(0, 20, 3))
    ]  # fmt: skip
    out.append(encode("procurement_plan", PLANS, 0, MON, region="上海市", budget=500_000.0,
                      planned_date=date(2024, 2, 12)))  # fmt: skip
    out.append(encode("iot.telemetry", IOT, 0, MON + 3 * WEEK_MS, store_id="SH01",
                      metric="usage_count", value=42.0))  # fmt: skip
    return out


def settings(**overrides: Any) -> ForecastSettings:
    base: dict[str, Any] = {
        "family": "linear", "season": 4, "min_history": 4,
        "region_aliases": {"上海市": "CN-EAST"},
    }  # fmt: skip
    return ForecastSettings(**(base | overrides))


def pipeline(feed: ListFeed | None = None, changelog: DictChangelog | None = None,
             **overrides: Any) -> ForecastPipeline:  # fmt: skip
    return ForecastPipeline(
        state_reader=changelog or DictChangelog(), settings=settings(**overrides),
        signal_feed=feed, signal_topics=SIGNAL_TOPICS,
    )  # fmt: skip


def forecasts(p: ForecastPipeline, batches: list[list[Message]]) -> list[Row]:
    return [row for b in batches for row in p.process(b).rows[FORECASTS.name]]


def by_key(rows: list[Row]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for row in rows:
        out.setdefault(row[C["key"]], []).append(row)
    return out


def test_region_signals_reach_every_key_of_the_region_on_any_partition() -> None:
    rows = by_key(forecasts(pipeline(ListFeed(signals())), chunks(sales(12), 5)))
    for key in ("AC-1|CN-EAST", "AC-2|CN-EAST"):  # partitions 0 and 1
        fresh = rows[key][-1][C["signal_freshness"]]
        assert {"tender_award", "procurement_plan", "sales", "calendar"} <= set(fresh)
    assert "iot_usage" in rows["AC-1|CN-EAST"][-1][C["signal_freshness"]]  # store SH01's region
    assert "tender_award" not in rows["MED-7|CN-NORTH"][-1][C["signal_freshness"]]
    last = rows["AC-1|CN-EAST"][-1]
    assert last[C["freshness"]] == max(last[C["signal_freshness"]].values())
    assert last[C["model_family"]] == "linear" and last[C["grain"]] == "sku|region"


def test_awards_become_features_of_the_linear_model() -> None:
    p = pipeline(ListFeed(signals()))
    forecasts(p, chunks(sales(16), 7))
    model = p.keys["AC-2|CN-EAST"].forecaster.model
    features = model.features(1)  # type: ignore[attr-defined]
    assert {"tender_award", "tender_award_lag3", "cal_quarter_end", "cal_year_sin1"} <= set(
        features
    )


def test_a_missing_or_silent_feed_never_holds_forecasts_back() -> None:
    messages = sales(10)
    silent = forecasts(pipeline(ListFeed([])), chunks(messages, 5))
    without = forecasts(pipeline(None), chunks(messages, 5))
    fed = forecasts(pipeline(ListFeed(signals())), chunks(messages, 5))
    assert len(silent) == len(without) == len(fed) == len(KEYS) * 9 * 3


def test_promotions_are_a_per_key_signal_from_the_pos_line() -> None:
    rows = by_key(forecasts(pipeline(None), chunks(sales(8, frozenset({2, 5})), 4)))
    assert "promo_discount" in rows["AC-1|CN-EAST"][-1][C["signal_freshness"]]
    off = by_key(forecasts(pipeline(None, promotions=False), chunks(sales(8, frozenset({2})), 4)))
    assert "promo_discount" not in off["AC-1|CN-EAST"][-1][C["signal_freshness"]]


def test_signal_state_is_snapshotted_and_a_restored_run_gives_the_same_forecasts() -> None:
    messages, feed_messages = sales(16), signals()
    straight = forecasts(pipeline(ListFeed(feed_messages)), chunks(messages, 6))
    changelog, feed = DictChangelog(), ListFeed(feed_messages)
    first = pipeline(feed, changelog)
    head = []
    for batch in chunks(messages[:24], 6):
        head += forecasts(first, [batch])
        changelog.write(first.snapshot())
    assert STATE_KEY in changelog.partitions[0] and STATE_KEY in changelog.partitions[1]
    fresh_feed = ListFeed(feed_messages)
    second = pipeline(fresh_feed, changelog)
    second.assigned([(TOPIC, 0), (TOPIC, 1)])
    assert fresh_feed.positions == first.signals.positions  # resumes, does not re-read
    assert second.signals.board.lookup("CN-EAST", 2818) == first.signals.board.lookup(
        "CN-EAST", 2818
    )
    tail = forecasts(second, chunks(messages[24:], 6))
    strip = C["produced_at"]
    assert [r[:strip] + r[strip + 1 :] for r in head + tail] == [
        r[:strip] + r[strip + 1 :] for r in straight
    ]


def test_model_per_key_family_from_a_models_file_with_name_and_version(tmp_path: Path) -> None:
    models = tmp_path / "models.yaml"
    models.write_text(
        "models:\n"
        "  default: {family: holt_winters, name: hw, version: '3', params: {seasonality: 4}}\n"
        "  medical: {family: linear, name: lin-med, version: '2',\n"
        "            params: {horizons: [1, 4, 13], seasonality: 4, calendar: week}}\n"
        "families:\n"
        "  - {family: medical, match: {product_line: 'MED-*'}}\n"
    )
    changelog = DictChangelog()
    p = pipeline(None, changelog, models_file=models)
    rows = by_key(forecasts(p, chunks(sales(8), 5)))
    med, ac = rows["MED-7|CN-NORTH"][-1], rows["AC-1|CN-EAST"][-1]
    assert (med[C["model_name"]], med[C["model_version"]], med[C["key_family"]]) == (
        "lin-med", "2", "medical",
    )  # fmt: skip
    assert (ac[C["model_name"]], ac[C["model_version"]], ac[C["model_family"]]) == (
        "hw", "3", "holt_winters",
    )  # fmt: skip
    changelog.write(p.snapshot())
    models.write_text(models.read_text().replace("version: '3'", "version: '4'"))
    restored = pipeline(None, changelog, models_file=models)
    restored.assigned([(TOPIC, 0), (TOPIC, 1)])
    assert restored.keys["AC-1|CN-EAST"].forecaster.model_version == "4"
    assert restored.keys["AC-1|CN-EAST"].forecaster.steps == 0  # the new version starts over
    assert restored.keys["MED-7|CN-NORTH"].forecaster.steps == 7  # unchanged spec kept


def test_bad_models_file_and_grains_that_span_partitions_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: {default: {family: holt_winters}}\nfamilies: [{family: nope, "
                   "match: {region: 'CN-*'}}]\n")  # fmt: skip
    with pytest.raises(ModelConfigError, match="no model configured for key family 'nope'"):
        settings(models_file=bad).routing()
    with pytest.raises(ValueError, match="spans POS partitions"):
        settings(key_fields=("product_line", "store_id"))
    assert settings(key_fields=("product_line", "store_id"), input_keyed_by_grain=True).grain == (
        "product_line|store_id"
    )


def test_configured_grain_keys_periods_and_late_events() -> None:
    p = pipeline(None, key_fields=("sku", "store_id"))
    rows = forecasts(p, chunks(sales(6), 5))
    assert {r[C["key"]] for r in rows} == {"AC-1|SH01", "AC-2|SH02", "MED-7|BJ01"}
    assert {r[C["grain"]] for r in rows} == {"sku|store_id"}
    state = p.keys["AC-1|SH01"]
    closed = state.buckets.watermark_ms
    assert closed is not None
    late = [m for m in sales(6) if m.partition() == 0][-2]  # week 4 of AC-1, already closed
    relabelled = Message(topic=TOPIC, partition=0, offset=999, value=late.value(),
                         headers=late.headers())  # fmt: skip
    before = state.forecaster.steps
    assert p.process([relabelled]).processed == 1
    assert state.forecaster.steps == before  # a revision of a closed period, not a new one
