"""dealstream throughput/latency benchmark: `python -m bench.run` (or `make bench`).

One run, one broker, one pre-produced topic (unique prefix, 4 partitions, deleted at the end):

1. ceiling    - bare confluent-kafka ``consume(num_messages=1000)`` + codec decode of every event
2. full path  - the real ``dealstream worker`` process (faust app + batch engine + chDB sink)
3. scaling    - two worker processes in one consumer group over the same 4 partitions
4. latency    - paced load (1k and 5k events/s) on a second topic set, see README.md

Figures go to a rich table and to ``bench/results/latest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import psutil
import yaml
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from bench import pipeline_costs
from bench.events import CHAT_EVERY, CHAT_TOPIC, Encoded, make_events
from dealstream.broker.clients import make_consumer, make_producer
from dealstream.broker.headers import producer_headers, record_headers
from dealstream.broker.settings import KafkaSettings
from dealstream.broker.standard_topics import standard_topics
from dealstream.broker.topics import delete_topics, ensure_topics
from dealstream.schemas import codec
from dealstream.streams.business import BUNDLED_RULES
from dealstream.streams.pos import TOPIC as POS_TOPIC
from dealstream.streams.rules.bench import compliance_messages_per_second

RESULTS = Path(__file__).parent / "results" / "latest.json"
PIPELINE = "pos-transactions"
POLL_S = 0.2
console = Console()

METHOD = {
    "ceiling": (
        "bare confluent-kafka consume(num_messages=1000) + codec Decoder.decode, fresh group; "
        "events / (last batch received - first batch received)"
    ),
    "events_per_s": (
        "real `dealstream worker --idle-stop 3` subprocess, fresh group and chDB dir; its /metrics "
        "dealstream_events_processed_total{pipeline=pos-transactions} polled every 0.2 s; "
        "(count at last change - count at first non-zero reading) / (time between them). "
        "Excludes startup, assignment and the idle stop; resolution +-0.2 s."
    ),
    "clickhouse_rows_per_s": (
        "count() of pos_transactions (not FINAL) read after the worker stopped / the same window "
        "(rows are inserted by the measured path; the final flush may land after the last "
        "counter change)"
    ),
    "peak_rss_mb": "max RSS of the worker process (+children) sampled by psutil every 0.2 s",
    "scaling": (
        "2 worker processes started together in one fresh group (own chDB dir each); counters "
        "summed; same window rule. The second one to join triggers a cooperative rebalance "
        "inside the window (see first_processed_s per worker). all_active_events_per_s: "
        "same rule from the first reading where both workers had processed something."
    ),
    "p99_ms_at_5k": (
        "event -> alert: for every chat written to break a compliance rule, time the bench "
        "consumer received its alert on alerts.compliance.v1 minus the time the chat was "
        "produced, at 5k mixed events/s offered (one in 7 a chat, 10% of chats violating). "
        "Exact per alert, p99 over the window."
    ),
    "p99_ms_at_5k_bare_consume": (
        "exact per-event produce() -> consume + decode latency of a bare confluent consumer "
        "(make_consumer defaults, 20 ms consume timeout) reading the same paced topics at the same "
        "time as the worker (producer from make_producer: linger.ms=5, lz4, acks=all)"
    ),
}

INPUT_PIPELINES = ("pos-transactions", "compliance")  # each consumed record counted once
MANIFESTS = Path(__file__).resolve().parent.parent / "deploy" / "k8s"


@dataclass(frozen=True)
class Role:
    """A worker as one process runs it: its pipelines, the pipelines whose input counters add up
    to every consumed record once, and the table whose rows say what it wrote."""

    name: str
    env: dict[str, str] = field(default_factory=dict)  # DEALSTREAM_WORKER_* overrides
    counted: tuple[str, ...] = INPUT_PIPELINES
    table: str = "pos_transactions"

    @property
    def pipelines(self) -> list[str]:
        return list(json.loads(self.env.get("DEALSTREAM_WORKER_PIPELINES", "[]")))


ALL_IN_ONE = Role("all pipelines (the embedded default)")


def deployed_roles(manifests: Path = MANIFESTS) -> list[Role]:
    """The workers of the Kubernetes deployment, read from its manifests, so that the bench
    measures exactly the pipeline split production runs (``DEALSTREAM_WORKER_PIPELINES``)."""
    roles = []
    for name in ("worker.yaml", "worker-global.yaml"):
        for doc in yaml.safe_load_all((manifests / name).read_text()):
            if not doc or doc.get("kind") != "Deployment":
                continue
            (container,) = doc["spec"]["template"]["spec"]["containers"]
            env = {
                e["name"]: str(e["value"])
                for e in container.get("env", [])
                if e["name"] in ("DEALSTREAM_WORKER_PIPELINES", "DEALSTREAM_WORKER_APP_ID")
            }
            role = Role(doc["metadata"]["name"], env)
            if not set(INPUT_PIPELINES) <= set(role.pipelines):
                # The global worker: journeys read every event topic (POS lines and chats).
                role = Role(role.name, env, counted=("journeys",), table="journey_steps")
            roles.append(role)
    return roles


def produce_all(kafka: KafkaSettings, events: list[Encoded]) -> None:
    producer = make_producer(kafka, client_id="bench-producer")
    for base, key, value, headers, _ in events:
        while True:
            try:
                producer.produce(
                    kafka.topic(base), value=value, key=key, headers=producer_headers(headers)
                )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    left = producer.flush(120)
    if left:
        raise RuntimeError(f"{left} record(s) not acknowledged")


@contextmanager
def fresh_topics(broker: KafkaSettings, events: list[Encoded]) -> Iterator[KafkaSettings]:
    """A new topic set holding the same events, deleted afterwards.

    State changelogs are per topic prefix, so a second group on a used prefix would restore
    the previous run's state and skip the stateful work: every measured run gets its own.
    """
    kafka = broker.model_copy(update={"topic_prefix": f"bench{uuid.uuid4().hex[:8]}."})
    topics = [t.name for t in standard_topics(kafka)]
    ensure_topics(kafka, standard_topics(kafka))
    try:
        produce_all(kafka, events)
        yield kafka
    finally:
        delete_topics(kafka, topics)


# --------------------------------------------------------------------------- ceiling


def ceiling(kafka: KafkaSettings, expected: int) -> dict[str, Any]:
    """Bare consume(1000) + decode; rate measured from the first to the last record received."""
    consumer = make_consumer(
        kafka, group_id=f"bench-ceiling-{uuid.uuid4().hex[:8]}", client_id="bench"
    )
    decoders = {kafka.topic(t): codec.decoder_for(t).decode for t in (POS_TOPIC, CHAT_TOPIC)}
    consumer.subscribe(list(decoders))
    seen = errors = 0
    first = last = 0.0
    deadline = time.monotonic() + 120
    try:
        while seen < expected and time.monotonic() < deadline:
            batch = consumer.consume(num_messages=1000, timeout=1.0)
            if not batch:
                continue
            if not first:
                first = time.perf_counter()
            for msg in batch:
                if msg.error():
                    errors += 1
                    continue
                decoders[cast(str, msg.topic())](cast(bytes, msg.value()), record_headers(msg))
                seen += 1
            last = time.perf_counter()
    finally:
        consumer.close()
    elapsed = last - first
    return {
        "events": seen,
        "errors": errors,
        "elapsed_s": round(elapsed, 3),
        "events_per_s": round(seen / elapsed) if elapsed > 0 else None,
    }


# --------------------------------------------------------------------------- workers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Worker:
    """A ``dealstream worker`` process with its own chDB directory, group and /metrics port."""

    kafka: KafkaSettings
    group: str
    chdb: Path
    idle_stop: float | None = 3.0
    role: Role = ALL_IN_ONE
    env: dict[str, str] = field(default_factory=dict)  # more settings, after the role's
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    peak_rss: int = 0

    def start(self) -> None:
        env = {
            **os.environ,
            "DEALSTREAM_KAFKA_BOOTSTRAP": self.kafka.bootstrap,
            "DEALSTREAM_KAFKA_TOPIC_PREFIX": self.kafka.topic_prefix,
            "DEALSTREAM_CLICKHOUSE_URL": f"chdb://{self.chdb}",
            "DEALSTREAM_WORKER_GROUP_ID": self.group,
            "DEALSTREAM_WORKER_WEB_PORT": str(self.port),
            **self.role.env,
            **self.env,
        }
        args = [sys.executable, "-m", "dealstream.cli.main", "worker"]
        if self.idle_stop is not None:
            args += ["--idle-stop", str(self.idle_stop)]
        self.proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL)

    def metrics(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=1) as r:
                text = r.read().decode()
        except OSError:
            return None
        samples: dict[str, Any] = {"buckets": {}, "batch": {}, "state": {}}
        counted, primary = self.role.counted, self.role.counted[0]
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == "dealstream_commits_total" and primary in s.labels["pipeline"]:
                    samples["commits"] = s.value  # labelled by engine: "pos-transactions+..."
                if s.name == "dealstream_state_entries":
                    samples["state"][s.labels["pipeline"]] = int(s.value)
                if s.name == "dealstream_events_in_total" and s.labels.get("pipeline") in counted:
                    samples["processed"] = samples.get("processed", 0.0) + s.value
                if s.labels.get("pipeline") != primary:
                    continue
                if s.name == "dealstream_record_age_seconds_bucket":
                    samples["buckets"][s.labels["le"]] = s.value
                elif s.name.startswith("dealstream_batch_seconds_"):
                    key = s.labels.get("le", s.name.rsplit("_", 1)[-1])
                    samples["batch"][key] = s.value
        return samples

    def sample_rss(self) -> None:
        if self.proc is None:
            return
        try:
            proc = psutil.Process(self.proc.pid)
            rss = proc.memory_info().rss + sum(
                c.memory_info().rss for c in proc.children(recursive=True)
            )
        except psutil.Error:
            return
        self.peak_rss = max(self.peak_rss, rss)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 30 s, if it still runs."""
        if self.proc is not None and self.running():
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def count_rows(chdb: Path, table: str = "pos_transactions") -> int:
    """Rows in ``table`` (not FINAL), read in a child process: chDB is one per process."""
    code = (
        "import sys;from dealstream.sinks.clickhouse.client import connect;"
        "from dealstream.sinks.clickhouse.settings import ClickHouseSettings;"
        "c=connect(settings=ClickHouseSettings(url=sys.argv[1]));"
        "print(c.query('SELECT count() FROM ' + sys.argv[2]).result_rows[0][0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, f"chdb://{chdb}", table],
        capture_output=True,
        check=True,
        timeout=120,
    )
    return int(out.stdout.decode().split()[-1])


def run_workers(
    kafka: KafkaSettings, n: int, expected: int, work: Path, label: str, role: Role = ALL_IN_ONE
) -> dict[str, Any]:
    """Start ``n`` workers in one fresh group; poll /metrics and RSS every 0.2 s until they stop.

    events/s = (processed at the last change - processed at the first non-zero reading) /
    (time of the last change - time of the first non-zero reading), counters summed over workers.
    """
    group = f"bench-{label}-{uuid.uuid4().hex[:8]}"
    workers = [Worker(kafka, group, work / f"{label}-chdb-{i}", role=role) for i in range(n)]
    started = time.monotonic()
    for w in workers:
        w.start()
    first_t = last_t = 0.0
    first_c = last_c = 0.0
    both_t = both_c = 0.0
    per_worker = [0.0] * n
    first_seen: list[float | None] = [None] * n
    while any(w.running() for w in workers):
        if time.monotonic() - started > 600:
            raise RuntimeError(f"{label}: workers still running after 600 s")
        for i, w in enumerate(workers):
            w.sample_rss()
            m = w.metrics()
            if m and "processed" in m:
                per_worker[i] = m["processed"]
                if m["processed"] and first_seen[i] is None:
                    first_seen[i] = time.monotonic() - started
        now, total = time.perf_counter(), sum(per_worker)
        if total and not first_t:
            first_t, first_c = now, total
        if total != last_c:
            last_t, last_c = now, total
        if n > 1 and not both_t and all(per_worker):
            both_t, both_c = now, total
        time.sleep(POLL_S)
    wall = time.monotonic() - started
    codes = [w.proc.returncode if w.proc else None for w in workers]
    rows = [count_rows(w.chdb, role.table) for w in workers]
    elapsed = last_t - first_t
    rate = (last_c - first_c) / elapsed if elapsed > 0 else None
    both = (last_c - both_c) / (last_t - both_t) if both_t and last_t > both_t else None
    return {
        "workers": n,
        "exit_codes": codes,
        "processed_total": int(last_c),
        "processed_per_worker": [int(c) for c in per_worker],
        "expected": expected,
        "elapsed_s": round(elapsed, 3),
        "process_wall_s": round(wall, 2),
        "events_per_s": round(rate) if rate else None,
        "all_active_events": int(last_c - both_c) if both_t else None,
        "all_active_events_per_s": round(both) if both else None,
        "clickhouse_rows": sum(rows),
        "clickhouse_rows_per_s": round(sum(rows) / elapsed) if elapsed > 0 else None,
        "peak_rss_mb_per_worker": [round(w.peak_rss / 2**20, 1) for w in workers],
        "first_processed_s": [None if f is None else round(f, 2) for f in first_seen],
    }


# --------------------------------------------------------------------------- latency


def diff(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items()}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency(
    broker: KafkaSettings,
    events: list[Encoded],
    work: Path,
    rates: list[int],
    seconds: float,
    role: Role = ALL_IN_ONE,
) -> dict[str, Any]:
    """Paced mixed load on a separate topic set; event -> alert latency measured exactly.

    A real worker reads the paced topics. Every chat written to break a compliance rule is
    remembered with its produce time; a consumer on ``alerts.compliance.v1`` takes, for each
    alert, (time the alert was consumed - time its input event was produced): event to alert
    publication as a downstream system sees it. A bare consumer on the same topics gives the
    floor (produce -> consume + decode), with the same 20 ms poll timeout as the worker.
    """
    kafka = broker.model_copy(update={"topic_prefix": f"benchlat{uuid.uuid4().hex[:8]}."})
    topics = standard_topics(kafka)
    ensure_topics(kafka, topics)
    run_id = uuid.uuid4().hex[:8]
    worker = Worker(
        kafka, f"bench-lat-{run_id}", work / f"lat-chdb-{run_id}", idle_stop=None, role=role
    )
    bare_ms: list[float] = []
    alert_ms: list[float] = []
    sent: dict[str, float] = {}
    stop = threading.Event()

    def bare() -> None:
        consumer = make_consumer(
            kafka, group_id=f"bench-latbare-{uuid.uuid4().hex[:8]}", client_id="bench"
        )
        decoders = {kafka.topic(t): codec.decoder_for(t).decode for t in (POS_TOPIC, CHAT_TOPIC)}
        consumer.subscribe(list(decoders))
        while not stop.is_set():
            first = consumer.poll(0.02)  # the same wait-for-one-then-drain as the worker
            batch = [first, *consumer.consume(num_messages=999, timeout=0)] if first else []
            for msg in batch:
                if msg.error():
                    continue
                decoders[cast(str, msg.topic())](cast(bytes, msg.value()), record_headers(msg))
                bare_ms.append(time.time() * 1000 - msg.timestamp()[1])
        consumer.close()

    def alerts() -> None:
        consumer = make_consumer(
            kafka, group_id=f"bench-alerts-{uuid.uuid4().hex[:8]}", client_id="bench"
        )
        decode = codec.Decoder("alert").decode
        consumer.subscribe([kafka.topic("alerts.compliance.v1")])
        while not stop.is_set():
            first = consumer.poll(0.02)
            for msg in [first, *consumer.consume(num_messages=999, timeout=0)] if first else []:
                if msg.error():
                    continue
                now = time.time() * 1000
                alert = decode(cast(bytes, msg.value()), record_headers(msg))
                produced = sent.get(alert["input_event_ids"][0])
                if produced is not None:
                    alert_ms.append(now - produced)
        consumer.close()

    def send(producer: Any, event: Encoded) -> None:
        base, key, value, headers, alerting = event
        if alerting is not None:
            sent[alerting] = time.time() * 1000
        producer.produce(kafka.topic(base), value=value, key=key, headers=producer_headers(headers))

    results: dict[str, Any] = {}
    try:
        worker.start()
        readers = [threading.Thread(target=f, daemon=True) for f in (bare, alerts)]
        for reader in readers:
            reader.start()
        producer = make_producer(kafka, client_id="bench-paced")
        warm = events[:300]  # warm-up: worker and readers assigned and past their first fetch
        for event in warm:
            send(producer, event)
        producer.flush(30)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            m = worker.metrics()
            if m and m.get("processed", 0) >= len(warm) and len(bare_ms) >= len(warm):
                break
            time.sleep(0.2)
        offset = len(warm)
        for rate in rates:
            count = int(rate * seconds)
            before = worker.metrics() or {"batch": {}}
            bare_ms.clear()
            alert_ms.clear()
            expected_alerts = 0
            t0 = time.monotonic()
            for i in range(count):
                event = events[(offset + i) % len(events)]
                expected_alerts += event[4] is not None
                delay = t0 + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                send(producer, event)
                producer.poll(0)
                if i % 1000 == 0:
                    worker.sample_rss()
            producer.flush(30)
            offered_s = time.monotonic() - t0
            offset += count
            deadline = time.monotonic() + 30
            after = before
            while time.monotonic() < deadline:
                after = worker.metrics() or after
                if len(bare_ms) >= count and len(alert_ms) >= expected_alerts:
                    break
                time.sleep(0.2)
            batch = diff(after["batch"], before["batch"])
            n_batches = batch.get("count", 0.0)

            def summary(values: list[float]) -> dict[str, Any]:
                return {
                    "samples": len(values),
                    "p50": round(pct(values, 0.50), 1) if values else None,
                    "p95": round(pct(values, 0.95), 1) if values else None,
                    "p99": round(pct(values, 0.99), 1) if values else None,
                    "max": round(max(values), 1) if values else None,
                }

            results[f"{rate}"] = {
                "offered_events_per_s": round(count / offered_s),
                "events": count,
                "event_to_alert_ms": summary(list(alert_ms)),
                "alerts_expected": expected_alerts,
                "bare_consume_latency_ms": summary(list(bare_ms)),
                "worker_batches": int(n_batches),
                "worker_batch_ms_mean": (
                    round(batch.get("sum", 0.0) / n_batches * 1000, 2) if n_batches else None
                ),
                "worker_commits": int(after.get("commits", 0) - before.get("commits", 0)),
                "worker_processed": int(after.get("processed", 0) - before.get("processed", 0)),
            }
    finally:
        stop.set()
        worker.stop()
        delete_topics(kafka, [t.name for t in topics])
    results["worker_peak_rss_mb"] = round(worker.peak_rss / 2**20, 1)
    return results


SOAK_CHUNK = 20_000


def short_horizons(horizon_s: int, work: Path) -> dict[str, str]:
    """Worker settings that end the state of an unanswered conversation after ``horizon_s``:
    the bundled rules with every absence rule's ``within`` shortened (72 h), and channel health's
    SLA clock (30 min + 1 h of lateness). Soaked with these, state is at its steady size once
    the warm-up is longer than the horizon, so RSS growth after it is a leak, not retention."""
    rules = yaml.safe_load(BUNDLED_RULES.read_text(encoding="utf-8"))
    for rule in rules["rules"]:
        if rule.get("absence"):
            rule["absence"]["within"] = f"{horizon_s}s"
    path = work / f"rules-{horizon_s}s.yaml"
    path.write_text(yaml.safe_dump(rules, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return {
        "DEALSTREAM_BUSINESS_RULES_FILE": str(path),
        "DEALSTREAM_CHANNEL_HEALTH_SLA_S": str(horizon_s),
        "DEALSTREAM_JOURNEYS_SLA_LATENESS_S": "0",
    }


def soak(
    broker: KafkaSettings, work: Path, rate: int, seconds: float, horizon_s: int | None = None
) -> dict[str, Any]:
    """Memory over a long paced run of fresh events (new ids, event time moving with the wall
    clock): RSS every 5 s; growth after the first fifth (warm-up). ``horizon_s``: see
    :func:`short_horizons` (None: the shipped settings, whose 72 h outlast any soak)."""
    kafka = broker.model_copy(update={"topic_prefix": f"benchsoak{uuid.uuid4().hex[:8]}."})
    topics = standard_topics(kafka)
    ensure_topics(kafka, topics)
    env = short_horizons(horizon_s, work) if horizon_s else {}
    group = f"bench-soak-{uuid.uuid4().hex[:8]}"
    worker = Worker(kafka, group, work / f"soak-chdb-{group}", idle_stop=None, env=env)
    series: list[tuple[float, float]] = []
    state: list[tuple[float, dict[str, int]]] = []  # state entries per pipeline, every 30 s
    try:
        worker.start()
        producer = make_producer(kafka, client_id="bench-soak")
        t0 = time.monotonic()
        next_sample = t0
        i = 0
        chunk: list[Encoded] = []
        while time.monotonic() - t0 < seconds:
            if i % SOAK_CHUNK == 0:
                # Fresh ids and event times each chunk: replaying the same events would keep
                # event time still (no eviction) and measure duplicates, not a live stream.
                chunk = make_events(SOAK_CHUNK, seed=1_000 + i // SOAK_CHUNK)
            base, key, value, headers, _ = chunk[i % SOAK_CHUNK]
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            producer.produce(
                kafka.topic(base), value=value, key=key, headers=producer_headers(headers)
            )
            producer.poll(0)
            i += 1
            if time.monotonic() >= next_sample:
                worker.peak_rss = 0
                worker.sample_rss()
                at = round(time.monotonic() - t0, 1)
                series.append((at, round(worker.peak_rss / 2**20, 1)))
                if len(series) % 6 == 1:
                    state.append((at, (worker.metrics() or {}).get("state", {})))
                next_sample += 5.0
        producer.flush(30)
    finally:
        worker.stop()
        delete_topics(kafka, [t.name for t in topics])
    warm_up_s = seconds / 5
    warm = [mb for t, mb in series if t >= warm_up_s]
    warm_state = [entries for t, entries in state if t >= warm_up_s and entries]
    half = len(warm) // 2
    first_half = statistics.fmean(warm[:half]) if half else None
    second_half = statistics.fmean(warm[half:]) if half else None
    return {
        "rate": rate,
        "seconds": seconds,
        "horizon_s": horizon_s,
        "events": i,
        "rss_mb_after_warmup_first_half_mean": first_half and round(first_half, 1),
        "rss_mb_after_warmup_second_half_mean": second_half and round(second_half, 1),
        "rss_mb_max": max((mb for _, mb in series), default=None),
        "rss_mb_per_min_second_half": growth_mb_per_min(series, since_s=(warm_up_s + seconds) / 2),
        # What grew: state entries per pipeline at the first and last sample after warm-up.
        "state_entries_after_warmup": warm_state[0] if warm_state else None,
        "state_entries_at_end": warm_state[-1] if warm_state else None,
        "state_entries_series": state,
        "series_mb": series,
    }


def growth_mb_per_min(series: list[tuple[float, float]], *, since_s: float) -> float | None:
    """Least-squares slope of RSS (MB per minute) over the samples from ``since_s`` on: what a
    flat run shows as noise around zero, and a leak or filling state as a steady rise.

    >>> growth_mb_per_min([(0.0, 100.0), (60.0, 101.0), (120.0, 102.0)], since_s=0)
    1.0
    """
    points = [(t, mb) for t, mb in series if t >= since_s]
    if len(points) < 2:
        return None
    slope = statistics.linear_regression([t for t, _ in points], [mb for _, mb in points]).slope
    return round(slope * 60, 2)


# --------------------------------------------------------------------------- main


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _ratio(rate: float | None, ceiling_rate: float | None) -> float | None:
    return round(rate / ceiling_rate, 3) if rate and ceiling_rate else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--latency-rates", default="1000,5000")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-scaling", action="store_true")
    parser.add_argument(
        "--skip-deployed",
        action="store_true",
        help="skip the runs of each deployed worker role (deploy/k8s) on its own",
    )
    parser.add_argument(
        "--soak-seconds", type=float, default=0.0, help="also run a paced memory soak this long"
    )
    parser.add_argument("--soak-rate", type=int, default=5_000)
    parser.add_argument(
        "--soak-horizon-s",
        type=int,
        default=0,
        help="also soak with unanswered conversations' state ending after this many seconds "
        "(shorter than the warm-up: what still grows is a leak)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    broker = KafkaSettings()
    kafka = broker.model_copy(
        update={"topic_prefix": f"bench{uuid.uuid4().hex[:8]}.", "topic_partitions": 4}
    )
    topics = standard_topics(kafka)
    topic = kafka.topic(POS_TOPIC)
    work = Path(tempfile.mkdtemp(prefix="dealstream-bench-"))
    notes: list[str] = []
    result: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat(timespec="seconds")}
    try:
        t = time.monotonic()
        events = make_events(args.events)
        sizes = [len(v) for _, _, v, _, _ in events]
        took = time.monotonic() - t
        console.print(f"{len(events)} events ({statistics.fmean(sizes):.0f} B avg) in {took:.1f}s")
        ensure_topics(kafka, topics)
        t = time.monotonic()
        produce_all(kafka, events)
        console.print(f"produced to {topic} and chats in {time.monotonic() - t:.1f}s")
        n = len(events)

        ceil = ceiling(kafka, n)
        console.print(f"ceiling: {ceil}")
        one = run_workers(kafka, 1, n, work, "w1")
        console.print(f"1 worker: {one}")
        two = None
        if not args.skip_scaling:
            with fresh_topics(broker, events) as scaled:
                two = run_workers(scaled, 2, n, work, "w2")
            console.print(f"2 workers: {two}")
        deployed: dict[str, Any] = {}
        if not args.skip_deployed:
            for role in deployed_roles():
                with fresh_topics(broker, events) as own:
                    run = run_workers(own, 1, n, work, role.name, role)
                deployed[role.name] = {
                    "pipelines": role.pipelines,
                    "events_per_s": run["events_per_s"],
                    "ratio": _ratio(run["events_per_s"], ceil["events_per_s"]),
                    "clickhouse_table": role.table,
                    "clickhouse_rows_per_s": run["clickhouse_rows_per_s"],
                    "peak_rss_mb": max(run["peak_rss_mb_per_worker"]),
                    "processed_total": run["processed_total"],
                }
                console.print(f"deployed {role.name}: {deployed[role.name]}")
        lat = None
        if not args.skip_latency:
            rates = [int(r) for r in args.latency_rates.split(",")]
            lat = latency(broker, events, work, rates, args.latency_seconds)
            console.print(f"latency: {lat}")
            for role in deployed_roles() if not args.skip_deployed else []:
                if set(INPUT_PIPELINES) <= set(role.pipelines):  # the worker raising alerts
                    own_lat = latency(broker, events, work, rates, args.latency_seconds, role)
                    deployed[role.name]["latency"] = own_lat
                    deployed[role.name]["p99_ms_at_5k"] = (
                        own_lat.get("5000", {}).get("event_to_alert_ms", {}).get("p99")
                    )
                    console.print(f"latency, deployed {role.name}: {own_lat}")
        else:
            notes.append("latency skipped (--skip-latency)")

        phrases_per_s = round(compliance_messages_per_second(n_phrases=5_000))
        console.print(f"compliance matching, 5,000 phrases: {phrases_per_s:,} messages/s")
        costs = pipeline_costs.measure(
            pipeline_costs.build(kafka), pipeline_costs.messages(min(n, 50_000), kafka), 1_000
        )
        console.print(f"pipeline costs in memory: {costs}")

        soaked = None
        if args.soak_seconds:
            soaked = soak(broker, work, args.soak_rate, args.soak_seconds)
            console.print(f"soak: { ({k: v for k, v in soaked.items() if k != 'series_mb'}) }")
        soaked_short = None
        if args.soak_seconds and args.soak_horizon_s:
            soaked_short = soak(
                broker, work, args.soak_rate, args.soak_seconds, args.soak_horizon_s
            )
            shown = {k: v for k, v in soaked_short.items() if k != "series_mb"}
            console.print(f"soak, {args.soak_horizon_s} s horizons: {shown}")
        if statistics.fmean(sizes) < 250:
            notes.append(
                f"events average {statistics.fmean(sizes):.0f} B of Avro value (real simulator "
                "events, not padded); DESIGN.md section 5 used ~270 B"
            )
        if two and min(two["processed_per_worker"]) < 0.25 * n:
            notes.append(
                f"scaling is unbalanced: per-worker events {two['processed_per_worker']}, first "
                f"processed at {two['first_processed_s']} s after start; the 2-worker figure "
                "measures join/rebalance behaviour more than parallelism (2 CPUs shared with "
                "the broker too)"
            )
        for label, r in (("1 worker", one), ("2 workers", two)):
            if r and r["processed_total"] != n:
                notes.append(f"{label}: processed {r['processed_total']} of {n} events")
        ratio = _ratio(one["events_per_s"], ceil["events_per_s"])
        at5k = (lat or {}).get("5000", {})
        result.update(
            {
                "events": n,
                "event_bytes_avg": round(statistics.fmean(sizes)),
                "partitions": 4,
                "ceiling_events_per_s": ceil["events_per_s"],
                "events_per_s": one["events_per_s"],
                "ratio": ratio,
                "clickhouse_rows_per_s": one["clickhouse_rows_per_s"],
                "peak_rss_mb": max(one["peak_rss_mb_per_worker"]),
                "p99_ms_at_5k": at5k.get("event_to_alert_ms", {}).get("p99"),
                "p99_ms_at_5k_bare_consume": at5k.get("bare_consume_latency_ms", {}).get("p99"),
                "scaling": (
                    {
                        "workers": 2,
                        "events_per_s": two["events_per_s"],
                        "speedup_vs_1": (
                            round(two["events_per_s"] / one["events_per_s"], 2)
                            if two["events_per_s"] and one["events_per_s"]
                            else None
                        ),
                        "processed_per_worker": two["processed_per_worker"],
                        "first_processed_s": two["first_processed_s"],
                        "all_active_events_per_s": two["all_active_events_per_s"],
                        "all_active_events": two["all_active_events"],
                        "clickhouse_rows_per_s": two["clickhouse_rows_per_s"],
                        "peak_rss_mb_per_worker": two["peak_rss_mb_per_worker"],
                    }
                    if two
                    else None
                ),
                "latency": lat,
                "deployed": deployed or None,
                "compliance_messages_per_s_5000_phrases": phrases_per_s,
                "pipeline_costs_in_memory": costs,
                "soak": soaked,
                "soak_short_horizons": soaked_short,
                "details": {"ceiling": ceil, "one_worker": one, "two_workers": two},
                "machine": machine(),
                "method": METHOD,
                "notes": notes,
            }
        )
    finally:
        delete_topics(kafka, [t.name for t in topics])
        shutil.rmtree(work, ignore_errors=True)

    table = Table(
        title=f"dealstream bench: {result['events']} events (POS + 1/{CHAT_EVERY} chats), "
        "4 partitions"
    )
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("ceiling (bare consume+decode) events/s", str(result["ceiling_events_per_s"]))
    table.add_row("full path, 1 worker events/s", str(result["events_per_s"]))
    table.add_row("ratio full/ceiling", str(result["ratio"]))
    table.add_row("ClickHouse rows/s (1 worker)", str(result["clickhouse_rows_per_s"]))
    table.add_row("peak RSS 1 worker (MB)", str(result["peak_rss_mb"]))
    if result["scaling"]:
        s = result["scaling"]
        table.add_row("2 workers events/s (speedup)", f"{s['events_per_s']} ({s['speedup_vs_1']}x)")
        table.add_row("2 workers events/s while both active", str(s["all_active_events_per_s"]))
    for name, d in (result.get("deployed") or {}).items():
        table.add_row(
            f"deployed {name}, 1 process events/s (ratio)", f"{d['events_per_s']} ({d['ratio']})"
        )
        if d.get("p99_ms_at_5k") is not None:
            table.add_row(f"deployed {name}: event -> alert p99 @5k/s ms", str(d["p99_ms_at_5k"]))
    if lat:
        for rate in [k for k in lat if k.isdigit()]:
            r = lat[rate]
            b, w = r["bare_consume_latency_ms"], r["event_to_alert_ms"]
            table.add_row(
                f"@{rate}/s bare consume p50/p95/p99 ms", f"{b['p50']}/{b['p95']}/{b['p99']}"
            )
            table.add_row(
                f"@{rate}/s event -> alert p50/p95/p99 ms ({w['samples']} alerts)",
                f"{w['p50']}/{w['p95']}/{w['p99']}",
            )
    console.print(table)
    for note in result["notes"]:
        console.print(f"note: {note}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
