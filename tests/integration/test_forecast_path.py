"""Forecasts on the real broker: POS sales → worker (forecast pipeline, changelog) → chDB."""

from __future__ import annotations

import random
import signal
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from dealstream.broker.clients import make_producer
from dealstream.broker.settings import KafkaSettings
from dealstream.broker.standard_topics import standard_topics
from dealstream.broker.topics import delete_topics, ensure_topics
from dealstream.connectors.output import EventWriter
from dealstream.models.periods import DAY_MS
from dealstream.schemas.samples import sample_event
from tests.integration.observe import chdb_query, wait_for_metric

WEEK_MS = 7 * DAY_MS
MON = 1_704_067_200_000  # Monday 1 Jan 2024
WEEKS = 30
HORIZONS = 3
ENV = {"DEALSTREAM_FORECAST_SEASON": "4", "DEALSTREAM_FORECAST_MIN_HISTORY": "4"}


def produce_sales(kafka: KafkaSettings, keys: int, per_week: int, seed: int = 3) -> int:
    """``WEEKS`` weeks of sales (some refunds) for ``keys`` SKU|region keys, in time order."""
    rng = random.Random(seed)
    writer = EventWriter(
        make_producer(kafka, client_id="it-forecast"),
        event_type="pos.transaction", source="it", topic_prefix=kafka.topic_prefix,
    )  # fmt: skip
    events = []
    for w in range(WEEKS):
        for k in range(keys):
            for _ in range(per_week):
                at = MON + w * WEEK_MS + rng.randrange(WEEK_MS)
                refund = rng.random() < 0.05
                qty = -1 if refund else rng.randint(1, 3 + (w % 4) + k % 3)
                events.append((at, k, qty, refund))
    events.sort()
    for n, (at, k, qty, refund) in enumerate(events):
        record = sample_event(
            "pos.transaction", sku=f"SKU-{k:03d}", region=("CN-EAST", "CN-NORTH")[k % 2],
            quantity=qty, amount=Decimal(qty * 10), is_refund=refund,
            transaction_id=f"T-{n}", event_id=uuid.UUID(int=n + 1).hex,
        )  # fmt: skip
        record["occurred_at"] = record["ingested_at"] = datetime.fromtimestamp(at / 1000, tz=UTC)
        assert writer.write(record, raw=b"", position=f"it:{n}")
    writer.flush()
    return len(events)


def forecasts(chdb: Path) -> list[tuple[Any, ...]]:
    return chdb_query(
        chdb,
        "SELECT key, period_start, horizon, round(point, 6), round(lower, 6), round(upper, 6), "
        "status, periods_seen, event_id FROM forecasts FINAL "
        "ORDER BY key, period_start, horizon",
    )


def test_worker_writes_forecasts_with_intervals_and_statuses(
    kafka: KafkaSettings, tmp_path: Path, worker_factory: Any
) -> None:
    keys = 4
    produced = produce_sales(kafka, keys=keys, per_week=6)
    chdb = tmp_path / "chdb"
    group = f"it-{uuid.uuid4().hex[:6]}"
    worker_factory(kafka, chdb, group, "--idle-stop", "4", **ENV).run()

    assert chdb_query(chdb, "SELECT count() FROM pos_transactions FINAL") == [(produced,)]
    rows = forecasts(chdb)
    # Each key's last week stays open: WEEKS - 1 closed periods (at most, a key may start late).
    assert keys * (WEEKS - 2) * HORIZONS <= len(rows) <= keys * (WEEKS - 1) * HORIZONS
    assert all(lower <= point <= upper for _, _, _, point, lower, upper, *_ in rows)
    statuses = {row[6] for row in rows}
    assert "insufficient_history" in statuses and statuses - {"insufficient_history"}
    latest = chdb_query(chdb, "SELECT key, horizon FROM forecasts_latest")
    assert len(latest) == keys * HORIZONS
    ((scored, bad),) = chdb_query(
        chdb, "SELECT count(), countIf(abs_error != abs(forecast - actual)) "
        "FROM forecast_accuracy FINAL",
    )  # fmt: skip
    assert scored > 0 and bad == 0


def test_worker_killed_mid_stream_ends_with_the_forecasts_of_an_uninterrupted_run(
    kafka: KafkaSettings, tmp_path: Path, worker_factory: Any
) -> None:
    total = produce_sales(kafka, keys=24, per_week=40, seed=9)
    env = {**ENV, "DEALSTREAM_WORKER_MAX_BATCH": "500", "DEALSTREAM_WORKER_COMMIT_INTERVAL_S": "1"}
    chdb = tmp_path / "killed"
    group = f"it-{uuid.uuid4().hex[:6]}"
    first = worker_factory(kafka, chdb, group, **env)
    process = first.start()
    processed = wait_for_metric(
        first.port, "dealstream_events_processed_total",
        at_least=total / 3, timeout_s=90, pipeline="forecast",
    )  # fmt: skip
    assert 0 < processed < total, "the kill must land mid-stream"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    worker_factory(kafka, chdb, group, "--idle-stop", "4", **env).run(timeout=180)

    # The uninterrupted run needs its own changelog (state topics are per prefix, shared by
    # groups), so the same input goes to a second prefix: same keys, partitions and offsets.
    clean_kafka = kafka.model_copy(update={"topic_prefix": f"it{uuid.uuid4().hex[:8]}."})
    topics = standard_topics(clean_kafka)
    ensure_topics(clean_kafka, topics)
    try:
        assert produce_sales(clean_kafka, keys=24, per_week=40, seed=9) == total
        clean = tmp_path / "clean"
        worker_factory(clean_kafka, clean, f"it-{uuid.uuid4().hex[:6]}", "--idle-stop", "4",
                       **env).run(timeout=180)  # fmt: skip
    finally:
        delete_topics(clean_kafka, [t.name for t in topics])
    expected = forecasts(clean)
    assert len(expected) > 24 * 20 * HORIZONS
    assert forecasts(chdb) == expected
    assert chdb_query(chdb, "SELECT count() FROM pos_transactions FINAL") == [(total,)]


def produce_awards(kafka: KafkaSettings, region: str, weeks: range) -> None:
    """Tender award notices in ``region`` (a signal topic the worker reads in full)."""
    writer = EventWriter(
        make_producer(kafka, client_id="it-forecast-tenders"),
        event_type="tender.notice", source="it", topic_prefix=kafka.topic_prefix,
    )  # fmt: skip
    for w in weeks:
        at = datetime.fromtimestamp((MON + w * WEEK_MS + DAY_MS) / 1000, tz=UTC)
        record = sample_event("tender.notice", kind="AWARD", region=region,
                              notice_id=f"N-{w}", published_at=at)  # fmt: skip
        record["occurred_at"] = record["ingested_at"] = at
        record["event_id"] = uuid.UUID(int=10_000 + w).hex
        assert writer.write(record, raw=b"", position=f"it-tender:{w}")
    writer.flush()


def test_region_signals_from_a_topic_reach_the_forecasts_of_that_region(
    kafka: KafkaSettings, tmp_path: Path, worker_factory: Any
) -> None:
    produce_awards(kafka, "CN-EAST", range(0, WEEKS, 3))
    produce_sales(kafka, keys=4, per_week=6)
    chdb = tmp_path / "chdb"
    env = {**ENV, "DEALSTREAM_FORECAST_FAMILY": "linear"}
    worker_factory(kafka, chdb, f"it-{uuid.uuid4().hex[:6]}", "--idle-stop", "4", **env).run()

    rows = chdb_query(
        chdb,
        "SELECT region, countIf(mapContains(signal_freshness, 'tender_award')), count(), "
        "any(model_family), any(grain) FROM forecasts FINAL GROUP BY region ORDER BY region",
    )
    (east, east_signal, east_total, family, grain), (north, north_signal, _, _, _) = rows
    assert (east, north, family, grain) == ("CN-EAST", "CN-NORTH", "linear", "sku|region")
    # every CN-EAST key (on whichever partition) sees the awards, once the feed has caught up
    assert 0 < east_signal <= east_total and north_signal == 0
    latest = chdb_query(
        chdb, "SELECT key FROM forecasts_latest WHERE region = 'CN-EAST' "
        "AND mapContains(signal_freshness, 'tender_award')",
    )  # fmt: skip
    assert len(latest) == 2 * HORIZONS
