"""The POS path on the real broker: file export → connector → Kafka → worker → chDB."""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY

from dealstream.broker.clients import make_producer
from dealstream.broker.settings import KafkaSettings
from dealstream.connectors.output import EventWriter
from dealstream.connectors.pii import Desensitizer, PiiSettings
from dealstream.connectors.pos_file.connector import PosFileConnector, PosFileSettings
from dealstream.connectors.pos_file.parse import EVENT_TYPE, to_event
from dealstream.connectors.simulator.pos import live_rows, write_export
from tests.integration.observe import chdb_query, metric, wait_for_metric


def test_export_flows_to_clickhouse_and_bad_rows_to_the_dead_letter_table(
    kafka: KafkaSettings, tmp_path: Path, worker_factory: Any
) -> None:
    export = tmp_path / "export.csv"
    spoiled = write_export(export, rows=1_500, seed=21, bad_rate=0.05)
    source = f"pos-file-{uuid.uuid4().hex[:6]}"
    connector = PosFileConnector(
        PosFileSettings(
            paths=[export], cursor_file=tmp_path / "c.json", checkpoint_every=200, source=source
        ),
        kafka=kafka,
    )
    stats = connector.execute()
    assert stats.read == 1_500 and stats.dead_letters == spoiled
    # The connector's Prometheus series agree with its run statistics.
    sample = REGISTRY.get_sample_value
    labels = {"connector": source, "event_type": "pos.transaction"}
    assert sample("dealstream_connector_records_read_total", {"connector": source}) == 1_500
    assert sample("dealstream_connector_records_produced_total", labels) == stats.produced
    assert sample("dealstream_connector_records_dead_lettered_total", labels) == spoiled
    age = sample("dealstream_connector_cursor_age_seconds", {"connector": source})
    assert age is not None and 0 <= age < 60
    # Garbage that no connector would send, straight onto the topic: the worker must DLQ it.
    producer = make_producer(kafka, client_id="it-garbage")
    for value in (b"\x02T", b"\xff" * 33, b""):
        producer.produce(kafka.topic("pos.transactions.v1"), value=value)
    producer.flush(10)

    chdb = tmp_path / "chdb"
    worker = worker_factory(kafka, chdb, f"it-{uuid.uuid4().hex[:6]}", "--idle-stop", "4")
    process = worker.start()
    decode_letters = 0.0  # the worker's dead-letter counter, while it still serves /metrics
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        seen = metric(
            worker.port, "dealstream_dead_letters_total",
            pipeline="pos-transactions", stage="DECODE",
        )  # fmt: skip
        decode_letters = max(decode_letters, seen or 0.0)
        time.sleep(0.2)
    assert process.wait(timeout=60) == 0

    assert chdb_query(chdb, "SELECT count() FROM pos_transactions FINAL") == [(stats.produced,)]
    stages = dict(chdb_query(chdb, "SELECT stage, count() FROM dead_letters FINAL GROUP BY stage"))
    assert stages.get("DECODE") == 3
    assert stages.get("SOURCE", 0) + stages.get("VALIDATE", 0) == spoiled
    raw_phones = chdb_query(
        chdb, "SELECT count() FROM pos_transactions WHERE match(member_id, '^1[0-9]{10}$')"
    )
    assert raw_phones == [(0,)]
    assert decode_letters >= 1


def test_worker_killed_mid_stream_ends_with_every_event_exactly_once(
    kafka: KafkaSettings, tmp_path: Path, worker_factory: Any
) -> None:
    total = 30_000
    writer = EventWriter(
        make_producer(kafka, client_id="it-load"),
        event_type=EVENT_TYPE, source="it", topic_prefix=kafka.topic_prefix,
    )  # fmt: skip
    pii = Desensitizer(PiiSettings().key)
    expected_ids: set[str] = set()
    expected_amount = 0
    for row in live_rows(seed=5, count=total):
        record = to_event(row, pii=pii, source="it", ingested_at_ms=int(time.time() * 1000))
        assert writer.write(record, raw=b"", position="it")
        expected_ids.add(record["event_id"])
        expected_amount += record["payload"]["amount"]
    writer.flush()

    chdb = tmp_path / "chdb"
    group = f"it-{uuid.uuid4().hex[:6]}"
    # Small batches and a slow commit cadence: the kill lands between commits, with rows
    # processed (some maybe written) whose offsets were not committed yet.
    env = {"DEALSTREAM_WORKER_MAX_BATCH": "500", "DEALSTREAM_WORKER_COMMIT_INTERVAL_S": "2"}
    first = worker_factory(kafka, chdb, group, **env)
    process = first.start()
    processed = wait_for_metric(
        first.port, "dealstream_events_processed_total",
        at_least=total / 4, pipeline="pos-transactions",
    )  # fmt: skip
    assert 0 < processed < total, "the kill must land mid-stream"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)

    worker_factory(kafka, chdb, group, "--idle-stop", "4", **env).run()

    ((count, distinct, amount),) = chdb_query(
        chdb, "SELECT count(), uniqExact(event_id), sum(amount) FROM pos_transactions FINAL"
    )
    assert (count, distinct) == (total, total)
    assert amount == expected_amount
    ids = {row[0] for row in chdb_query(chdb, "SELECT event_id FROM pos_transactions FINAL")}
    assert ids == expected_ids
