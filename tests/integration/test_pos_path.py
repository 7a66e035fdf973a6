"""The POS path on the real broker: file export → connector → Kafka → worker → chDB."""

from __future__ import annotations

import signal
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from dealstream.broker.clients import make_producer
from dealstream.broker.settings import KafkaSettings
from dealstream.connectors.output import EventWriter
from dealstream.connectors.pii import Desensitizer, PiiSettings
from dealstream.connectors.pos_file.connector import PosFileConnector, PosFileSettings
from dealstream.connectors.pos_file.parse import EVENT_TYPE, to_event
from dealstream.connectors.simulator.pos import live_rows, write_export
from dealstream.sinks.clickhouse.client import connect
from dealstream.sinks.clickhouse.settings import ClickHouseSettings


def query(chdb: Path, sql: str) -> list[tuple[Any, ...]]:
    client = connect(settings=ClickHouseSettings(url=f"chdb://{chdb}"))
    try:
        return [tuple(row) for row in client.query(sql).result_rows]
    finally:
        client.close()


def metrics_text(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
        return str(response.read().decode())


def test_export_flows_to_clickhouse_and_bad_rows_to_the_dead_letter_table(
    kafka: KafkaSettings, tmp_path: Path, worker_factory: Any
) -> None:
    export = tmp_path / "export.csv"
    spoiled = write_export(export, rows=1_500, seed=21, bad_rate=0.05)
    connector = PosFileConnector(
        PosFileSettings(paths=[export], cursor_file=tmp_path / "cursor.json", checkpoint_every=200),
        kafka=kafka,
    )
    stats = connector.execute()
    assert stats.read == 1_500 and stats.dead_letters == spoiled
    # Garbage that no connector would send, straight onto the topic: the worker must DLQ it.
    producer = make_producer(kafka, client_id="it-garbage")
    for value in (b"\x02T", b"\xff" * 33, b""):
        producer.produce(kafka.topic("pos.transactions.v1"), value=value)
    producer.flush(10)

    chdb = tmp_path / "chdb"
    worker = worker_factory(kafka, chdb, f"it-{uuid.uuid4().hex[:6]}", "--idle-stop", "4")
    process = worker.start()
    seen_metrics = ""
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        try:
            text = metrics_text(worker.port)
            if "dealstream_events_processed_total" in text:
                seen_metrics = text
        except OSError:
            pass
        time.sleep(0.3)
    assert process.wait(timeout=60) == 0

    assert query(chdb, "SELECT count() FROM pos_transactions FINAL") == [(stats.produced,)]
    stages = dict(query(chdb, "SELECT stage, count() FROM dead_letters FINAL GROUP BY stage"))
    assert stages.get("DECODE") == 3
    assert stages.get("SOURCE", 0) + stages.get("VALIDATE", 0) == spoiled
    raw_phones = query(
        chdb, "SELECT count() FROM pos_transactions WHERE match(member_id, '^1[0-9]{10}$')"
    )
    assert raw_phones == [(0,)]
    assert 'dealstream_dead_letters_total{code="truncated"' in seen_metrics or (
        "dealstream_dead_letters_total" in seen_metrics
    )


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
    deadline = time.monotonic() + 60
    processed = 0.0
    while time.monotonic() < deadline and processed < total / 4:
        try:
            for line in metrics_text(first.port).splitlines():
                if line.startswith(
                    'dealstream_events_processed_total{pipeline="pos-transactions"}'
                ):
                    processed = float(line.split()[-1])
        except OSError:
            pass
        time.sleep(0.1)
    assert 0 < processed < total, "the kill must land mid-stream"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)

    worker_factory(kafka, chdb, group, "--idle-stop", "4", **env).run()

    ((count, distinct, amount),) = query(
        chdb, "SELECT count(), uniqExact(event_id), sum(amount) FROM pos_transactions FINAL"
    )
    assert (count, distinct) == (total, total)
    assert amount == expected_amount
    ids = {row[0] for row in query(chdb, "SELECT event_id FROM pos_transactions FINAL")}
    assert ids == expected_ids
