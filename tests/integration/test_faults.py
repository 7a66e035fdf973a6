"""Fault injection on the real broker: ClickHouse outages, killed workers and connectors, a
restarted broker. Each test checks that every produced event ends up stored exactly once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import OperationalError
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient
from prometheus_client import REGISTRY

from dealstream.broker.clients import make_consumer, make_producer
from dealstream.broker.headers import producer_headers, record_headers
from dealstream.broker.local import runner
from dealstream.broker.local.config import LocalBrokerSettings
from dealstream.broker.settings import KafkaSettings
from dealstream.broker.standard_topics import standard_topics
from dealstream.broker.topics import ensure_topics
from dealstream.connectors.output import EventWriter
from dealstream.connectors.pos_file.parse import event_id as pos_event_id
from dealstream.connectors.pos_file.reader import read_lines
from dealstream.connectors.simulator.pos import write_export
from dealstream.schemas import codec
from dealstream.schemas.codec import decoder_for
from dealstream.schemas.samples import sample_event
from dealstream.sinks.clickhouse import BatchingSink, ClickHouseSettings, connect, migrate
from dealstream.sinks.kafka.alerts import AlertPublisher
from dealstream.streams.engine import Engine
from dealstream.streams.pos import TOPIC as POS
from dealstream.streams.pos import PosTransactionsPipeline

pytestmark = pytest.mark.slow


def pos_event(event_id: str) -> dict[str, Any]:
    record = sample_event("pos.transaction", event_id=event_id)
    record["occurred_at"] = record["ingested_at"] = int(time.time() * 1000)
    return record


def produce_pos(kafka: KafkaSettings, ids: list[str]) -> None:
    """Produce one valid POS event per id and wait for every acknowledgement."""
    producer = make_producer(kafka, client_id="it-faults")
    failures: list[str] = []

    def delivered(error: Any, message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    for event_id in ids:
        value, headers = codec.encode("pos.transaction", pos_event(event_id))
        while True:
            try:
                producer.produce(
                    kafka.topic(POS), value=value, key=event_id.encode(),
                    headers=producer_headers(headers),
                    on_delivery=delivered,
                )  # fmt: skip
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(30) == 0 and not failures, failures


def committed(kafka: KafkaSettings, group: str, topic: str) -> int:
    """Sum of the group's committed offsets over the topic's partitions (0 where none).

    Asked through the admin API: a probe consumer with the group's id would take part in it.
    """
    admin = AdminClient(kafka.client_config())
    parts = [TopicPartition(topic, p) for p in range(kafka.topic_partitions)]
    request = ConsumerGroupTopicPartitions(group, parts)
    result = admin.list_consumer_group_offsets([request], request_timeout=10)[group].result()
    return sum(max(tp.offset, 0) for tp in result.topic_partitions)


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.2)


def query(chdb: Path, sql: str) -> list[tuple[Any, ...]]:
    client = connect(settings=ClickHouseSettings(url=f"chdb://{chdb}"))
    try:
        return [tuple(row) for row in client.query(sql).result_rows]
    finally:
        client.close()


# -- 2. ClickHouse unavailable -------------------------------------------------------------------


class FlakyInserts:
    """Makes the client's inserts fail (as a server that went away) while ``down`` is set."""

    def __init__(self, client: Client) -> None:
        self.down = threading.Event()
        self.failed = 0
        self._insert = client.insert
        client.insert = self  # type: ignore[method-assign]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.down.is_set():
            self.failed += 1
            raise OperationalError("injected: ClickHouse is unavailable")
        return self._insert(*args, **kwargs)


@pytest.fixture
def chdb_client(tmp_path: Path) -> Iterator[tuple[Client, ClickHouseSettings]]:
    settings = ClickHouseSettings(
        url=f"chdb://{tmp_path / 'chdb'}",
        batch_rows=1_000,
        max_pending_rows=4_000,
        flush_retry_s=0.2,
    )
    client = connect(settings=settings)
    migrate(client)
    yield client, settings
    client.close()


def test_clickhouse_outage_pauses_keeps_offsets_bounds_memory_and_loses_nothing(
    kafka: KafkaSettings, chdb_client: tuple[Client, ClickHouseSettings]
) -> None:
    client, settings = chdb_client
    flaky = FlakyInserts(client)
    group = f"it-outage-{uuid.uuid4().hex[:6]}"
    topic = kafka.topic(POS)
    before = [f"before-{i}" for i in range(3_000)]
    during = [f"during-{i}" for i in range(20_000)]
    produce_pos(kafka, before)

    sinks = [BatchingSink(client, settings=settings, name=f"outage-{n}") for n in "ab"]
    producer = make_producer(kafka, client_id="it-outage")
    max_batch = 500
    engine = Engine(
        pipelines=[PosTransactionsPipeline(topic=topic)],
        consumer=make_consumer(kafka, group_id=group, client_id="it-outage"),
        producer=producer,
        sink=sinks[0],
        standby_sink=sinks[1],
        alerts=AlertPublisher(producer, topic_prefix=kafka.topic_prefix),
        max_batch=max_batch,
        commit_interval_s=0.5,
        max_pending_rows=settings.max_pending_rows,
    )
    runner = threading.Thread(target=engine.run, name="engine")
    runner.start()
    peak = 0
    try:
        wait_for(lambda: committed(kafka, group, topic) == len(before), 30, "first commits")
        flaky.down.set()
        produce_pos(kafka, during)
        wait_for(lambda: engine.paused, 20, "the engine to pause")
        paused_metric = REGISTRY.get_sample_value("dealstream_paused", {"pipeline": engine.name})
        assert paused_metric == 1
        frozen = committed(kafka, group, topic)
        outage_end = time.monotonic() + 6
        while time.monotonic() < outage_end:
            peak = max(peak, sum(s.pending_rows for s in sinks))
            time.sleep(0.05)
        assert committed(kafka, group, topic) == frozen == len(before), "committed during outage"
        assert flaky.failed > 0 and engine.paused
        flaky.down.clear()
        total = len(before) + len(during)
        wait_for(lambda: committed(kafka, group, topic) == total, 40, "catch-up commits")
        assert not engine.paused
        assert REGISTRY.get_sample_value("dealstream_paused", {"pipeline": engine.name}) == 0
    finally:
        flaky.down.clear()
        engine.stop()
        runner.join(60)
    assert not runner.is_alive()
    ((count, distinct, raw),) = client.query(
        "SELECT count(), uniqExact(event_id), (SELECT count() FROM pos_transactions) "
        "FROM pos_transactions FINAL"
    ).result_rows
    print(f"outage: produced {total}, stored {count} ({distinct} distinct, {raw} before dedup), "
          f"peak pending {peak}, {flaky.failed} failed inserts")  # fmt: skip
    assert (count, distinct) == (total, total)
    ids = {row[0] for row in client.query("SELECT event_id FROM pos_transactions").result_rows}
    assert ids == set(before) | set(during)
    assert 0 < peak <= settings.max_pending_rows + max_batch, f"{peak} rows pending"


# -- helpers for subprocess workers ---------------------------------------------------------------


def processed(port: int, pipeline: str = "pos-transactions") -> float:
    """The worker's processed-events counter, 0 while its /metrics does not answer yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return 0.0
    prefix = f'dealstream_events_processed_total{{pipeline="{pipeline}"}}'
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix))


def ready(port: int) -> bool:
    """The worker's readiness endpoint answers 200 (engines alive, not paused)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def end_offsets(kafka: KafkaSettings, topic: str) -> int:
    probe = Consumer({**kafka.client_config(), "group.id": "it-probe", "log_level": 0})
    try:
        return sum(
            probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(kafka.topic_partitions)
        )
    finally:
        probe.close()


def stop_gracefully(process: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
        raise


class PacedProducer(threading.Thread):
    """Produces POS events at a steady rate, so that faults land mid-stream."""

    def __init__(self, kafka: KafkaSettings, ids: list[str], per_s: float) -> None:
        super().__init__(name="paced-producer", daemon=True)
        self.kafka, self.ids, self.per_s = kafka, ids, per_s
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            chunk = 500
            for start in range(0, len(self.ids), chunk):
                produce_pos(self.kafka, self.ids[start : start + chunk])
                time.sleep(chunk / self.per_s)
        except BaseException as error:  # reported by the test thread
            self.error = error


# -- 1. two workers, one SIGKILLed -----------------------------------------------------------------


def test_second_worker_takes_over_a_killed_workers_partitions_and_nothing_is_lost(
    kafka: KafkaSettings, tmp_path: Path, worker_factory: Any
) -> None:
    tag = uuid.uuid4().hex[:6]
    ids = [f"{tag}-{i}" for i in range(40_000)]
    group = f"it-pair-{tag}"
    env = {"DEALSTREAM_WORKER_MAX_BATCH": "500", "DEALSTREAM_WORKER_COMMIT_INTERVAL_S": "2"}
    dirs = [tmp_path / "chdb-a", tmp_path / "chdb-b"]
    first, second = (worker_factory(kafka, d, group, **env) for d in dirs)
    producing = PacedProducer(kafka, ids, per_s=5_000)
    processes = [first.start(), second.start()]
    try:
        producing.start()
        wait_for(lambda: processed(first.port) >= 4_000 and processed(second.port) > 0, 60,
                 "both workers processing")  # fmt: skip
        killed_after = processed(first.port)
        processes[0].send_signal(signal.SIGKILL)
        processes[0].wait(timeout=10)
        producing.join(60)
        assert producing.error is None and not producing.is_alive()
        topic = kafka.topic(POS)
        total = end_offsets(kafka, topic)
        assert total == len(ids)
        wait_for(lambda: committed(kafka, group, topic) == total, 60, "the survivor to catch up")
        stop_gracefully(processes[1])
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
    sql = "SELECT event_id, kafka_partition FROM pos_transactions FINAL"
    stored = [query(d, sql) for d in dirs]
    union = {row[0] for rows in stored for row in rows}
    overlap = len({r[0] for r in stored[0]} & {r[0] for r in stored[1]})
    print(
        f"two workers: produced {len(ids)}, killed after {killed_after:.0f}; stored "
        f"{len(stored[0])} + {len(stored[1])}, {len(union)} distinct, {overlap} in both"
    )
    assert union == set(ids)
    assert 0 < len(stored[0]) < len(ids)
    assert {row[1] for row in stored[1]} == set(range(kafka.topic_partitions)), "no takeover"


# -- 4. connector SIGKILLed mid-file -------------------------------------------------------------


def consume_all(kafka: KafkaSettings, topic: str) -> list[str]:
    """Every record's event_id on ``topic``, in order per partition, read by a fresh consumer."""
    decode = decoder_for(POS).decode
    total = end_offsets(kafka, topic)
    consumer = make_consumer(kafka, group_id=f"it-read-{uuid.uuid4().hex[:6]}", client_id="it")
    consumer.subscribe([topic])
    ids: list[str] = []
    deadline = time.monotonic() + 30
    try:
        while len(ids) < total and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                if message.error() is None:
                    ids.append(decode(message.value() or b"", record_headers(message))["event_id"])
    finally:
        consumer.close()
    return ids


def test_connector_killed_mid_file_resumes_from_its_cursor(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    export = tmp_path / "export.csv"
    write_export(export, rows=60_000, seed=11, bad_rate=0.0, prefix="K")
    lines = [line for line in read_lines(export) if line.fields is not None]
    expected = [pos_event_id(str(ln.fields["transaction_id"]).strip(), int(ln.fields["line_no"]))
                for ln in lines if ln.fields is not None]  # fmt: skip
    line_at = {line.end_offset: i + 1 for i, line in enumerate(lines)}
    cursor = tmp_path / "cursor.json"
    every = 1_000
    env = {
        **os.environ,
        "DEALSTREAM_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "DEALSTREAM_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "DEALSTREAM_POS_FILE_CURSOR_FILE": str(cursor),
        "DEALSTREAM_POS_FILE_CHECKPOINT_EVERY": str(every),
    }
    args = [sys.executable, "-m", "dealstream.cli.main", "connectors", "pos-file", str(export)]

    def saved_offset() -> int:
        try:
            return int(next(iter(json.loads(cursor.read_text()).values()))["offset"])
        except (FileNotFoundError, ValueError, StopIteration):
            return 0

    process = subprocess.Popen(args, env=env)
    try:
        wait_for(lambda: saved_offset() >= 5 * every or process.poll() is not None, 60, "cursor")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    killed_at = saved_offset()
    resumed_line = line_at[killed_at]
    assert 0 < resumed_line < len(lines), "the kill must land mid-file"
    subprocess.run(args, env=env, check=True, timeout=120)
    assert line_at[saved_offset()] == len(lines)

    seen = consume_all(kafka, kafka.topic(POS))
    counts: dict[str, int] = {}
    for event in seen:
        counts[event] = counts.get(event, 0) + 1
    duplicated = {event for event, n in counts.items() if n > 1}
    window = set(expected[resumed_line : resumed_line + every])
    print(f"connector: {len(lines)} lines, killed with cursor at line {resumed_line}; "
          f"{len(seen)} records, {len(counts)} distinct, {len(duplicated)} re-sent")  # fmt: skip
    assert set(counts) == set(expected)
    assert all(counts[event] == 2 for event in duplicated)
    assert duplicated <= window, "re-sent lines outside the checkpoint window after the cursor"


# -- 3. broker stopped and restarted -------------------------------------------------------------


def free_port_pair() -> int:
    """A port p with p + 1 free too (the local broker's controller listens on p + 1)."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port >= 65_000:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("no free port pair")


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[tuple[KafkaSettings, LocalBrokerSettings]]:
    """A second single-node broker of this test only, reusing the project's jars."""
    shared = LocalBrokerSettings()
    if not any(shared.libs_dir.glob("kafka_2.13-*.jar")):
        pytest.skip(f"no Kafka jars in {shared.libs_dir}")
    home = tmp_path / "kafka"
    settings = LocalBrokerSettings(home=home, heap="384m")
    settings.libs_dir.parent.mkdir(parents=True)
    settings.libs_dir.symlink_to(shared.libs_dir.resolve(), target_is_directory=True)
    kafka = KafkaSettings(
        bootstrap=f"127.0.0.1:{free_port_pair()}", topic_prefix=f"rb{uuid.uuid4().hex[:6]}."
    )
    runner.start(kafka, settings)
    try:
        ensure_topics(kafka, standard_topics(kafka))
        yield kafka, settings
    finally:
        runner.stop(settings)


def test_connector_and_worker_ride_out_a_broker_restart(
    own_broker: tuple[KafkaSettings, LocalBrokerSettings], tmp_path: Path, worker_factory: Any
) -> None:
    kafka, broker = own_broker
    tag = uuid.uuid4().hex[:6]
    ids = [f"{tag}-{i}" for i in range(6_000)]
    writer = EventWriter(
        make_producer(kafka, client_id="it-restart"), event_type="pos.transaction",
        source="it", topic_prefix=kafka.topic_prefix,
    )  # fmt: skip
    errors: list[BaseException] = []

    def write_all() -> None:
        try:
            for i, event in enumerate(ids):
                writer.write(pos_event(event), raw=b"", position=str(i))
                if i % 100 == 99:
                    time.sleep(0.1)  # ~1,000 events/s: the restart lands mid-stream
            writer.flush(120)  # raises unless Kafka acknowledged every event
        except BaseException as error:
            errors.append(error)

    chdb = tmp_path / "chdb"
    group = f"it-restart-{tag}"
    worker = worker_factory(kafka, chdb, group, DEALSTREAM_WORKER_COMMIT_INTERVAL_S="1")
    process = worker.start()
    thread = threading.Thread(target=write_all, name="writer")
    try:
        wait_for(lambda: ready(worker.port) or process.poll() is not None, 60, "worker ready")
        thread.start()
        wait_for(lambda: writer.produced >= 1_500, 30, "events before the restart")
        runner.stop(broker)
        stopped_at = writer.produced
        time.sleep(3)
        runner.start(kafka, broker)
        thread.join(120)
        assert not thread.is_alive() and not errors, errors
        topic = kafka.topic(POS)
        assert end_offsets(kafka, topic) >= len(ids)
        wait_for(lambda: committed(kafka, group, topic) == end_offsets(kafka, topic), 60,
                 "the worker to catch up")  # fmt: skip
        assert process.poll() is None, "the worker died with the broker"
        stop_gracefully(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    ((count, distinct),) = query(
        chdb, "SELECT count(), uniqExact(event_id) FROM pos_transactions FINAL"
    )
    stored = {row[0] for row in query(chdb, "SELECT event_id FROM pos_transactions")}
    print(f"broker restart: produced {len(ids)} (broker stopped after {stopped_at}), "
          f"stored {count} ({distinct} distinct)")  # fmt: skip
    assert stored == set(ids) and count == len(ids)
