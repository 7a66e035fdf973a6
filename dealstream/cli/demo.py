"""``dealstream demo``: the POS path end to end on the embedded defaults, then a summary.

Starts the local broker if none answers, creates the demo's topics (prefix ``demo.``), runs a
worker process, feeds it the bundled POS exports (with deliberately bad rows) and a short live
stream, waits for the worker to go idle and reads the results back from chDB.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from confluent_kafka import Consumer, TopicPartition
from rich.console import Console
from rich.table import Table

from dealstream.broker.clients import make_producer
from dealstream.broker.local import runner
from dealstream.broker.local.config import LocalBrokerSettings
from dealstream.broker.settings import KafkaSettings
from dealstream.broker.standard_topics import standard_topics
from dealstream.broker.topics import delete_topics, ensure_topics
from dealstream.cli import demo_metrics
from dealstream.cli.demo_metrics import MetricsWatch
from dealstream.connectors.base import RunStats
from dealstream.connectors.output import EventWriter
from dealstream.connectors.pii import Desensitizer, PiiSettings
from dealstream.connectors.pos_file.connector import PosFileConnector, PosFileSettings
from dealstream.connectors.pos_file.parse import EVENT_TYPE, RowError, to_event
from dealstream.connectors.simulator.chats import chats
from dealstream.connectors.simulator.erp import inventory_snapshots, weekly_orders
from dealstream.connectors.simulator.market import competitor_prices
from dealstream.connectors.simulator.pos import live_rows
from dealstream.sinks.clickhouse.client import connect
from dealstream.sinks.clickhouse.settings import ClickHouseSettings

SAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "samples"
PREFIX = "demo."


@dataclass
class Fed:
    read: int = 0
    produced: int = 0
    dead_letters: int = 0
    chats: int = 0
    planted: int = 0  # chat messages written to break a compliance rule


def _chats(kafka: KafkaSettings, count: int, fed: Fed) -> None:
    """WeCom chats, about 5% of them breaking a compliance rule, for the compliance pipeline."""
    writer = EventWriter(
        make_producer(kafka, client_id="dealstream-demo-chats"),
        event_type="wecom.message",
        source="wecom-sim",
        topic_prefix=kafka.topic_prefix,
    )
    for chat in chats(seed=8, count=count, violation_rate=0.05):
        fed.chats += int(writer.write(chat.record, raw=b"", position="sim"))
        fed.planted += int(chat.violating)
    writer.flush()


def _stream(kafka: KafkaSettings, count: int, rate: float, fed: Fed) -> None:
    """Simulated POS terminals sending ticket lines live, paced to ``rate`` events/s."""
    writer = EventWriter(
        make_producer(kafka, client_id="dealstream-demo-stream"),
        event_type=EVENT_TYPE,
        source="pos-live-sim",
        topic_prefix=kafka.topic_prefix,
    )
    pii = Desensitizer(PiiSettings().key)
    for row in live_rows(seed=99, count=count, rate_per_s=rate):
        fed.read += 1
        try:
            record = to_event(
                row, pii=pii, source="pos-live-sim", ingested_at_ms=int(time.time() * 1000)
            )
        except RowError:
            fed.dead_letters += 1
            continue
        fed.produced += int(writer.write(record, raw=b"", position="live"))
    writer.flush()


def _world(env: dict[str, str], home: Path) -> dict[str, Any]:
    """``dealstream simulate``: 60 days of the seeded world (POS, mini-program, WeCom, tenders,
    IoT) through the connectors' own mapping code; returns the planted truth it wrote."""
    effects = home / "world.json"
    subprocess.run(  # noqa: S603
        [sys.executable, "-m", "dealstream.cli.main", "simulate", "--days", "60",
         "--scale", "0.5", "--topic-prefix", PREFIX, "--effects", str(effects),
         "--no-create-topics"],
        env=env, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    truth: dict[str, Any] = json.loads(effects.read_text(encoding="utf-8"))
    return truth


def _pos_files(kafka: KafkaSettings, home: Path) -> RunStats:
    """The bundled exports through the POS file connector (its producer goes when it returns,
    while the broker still runs: a producer left for the end logs connection errors)."""
    files = [SAMPLES / "pos_export.csv", SAMPLES / "pos_export.jsonl"]
    connector = PosFileConnector(
        PosFileSettings(paths=files, cursor_file=home / "cursors" / "pos-file.json"), kafka=kafka
    )
    return connector.execute()


def _erp(kafka: KafkaSettings) -> dict[str, int]:
    """ERP inventory snapshots (some turning slowly), 16 weeks of orders by sales rep and
    competitor prices (some cut by more than 5 %), for the business rules and rep forecasts."""
    producer = make_producer(kafka, client_id="dealstream-demo-erp")
    counts: dict[str, int] = {}
    for event_type, records in (
        ("erp.inventory", inventory_snapshots(4)),
        ("erp.order", weekly_orders(4)),
        ("market.competitor_price", competitor_prices(4)),
    ):
        writer = EventWriter(
            producer, event_type=event_type, source="erp-sim", topic_prefix=kafka.topic_prefix
        )
        counts[event_type] = sum(writer.write(r, raw=b"", position="sim") for r in records)
        writer.flush()
    return counts


def _records(kafka: KafkaSettings, topic: str) -> int:
    """Records on a topic (end offsets summed; the demo's topics are new and never compacted)."""
    probe = Consumer({**kafka.client_config(), "group.id": "dealstream-demo-probe", "log_level": 0})
    try:
        partitions = probe.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(
            probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions
        )
    finally:
        probe.close()


def _inject_garbage(kafka: KafkaSettings, count: int) -> int:
    """Records no connector would send: truncated Avro and random bytes, for the worker's DLQ."""
    producer = make_producer(kafka, client_id="dealstream-demo-garbage")
    rng = random.Random(5)
    for index in range(count):
        value = rng.randbytes(rng.randrange(1, 64)) if index % 2 else b"\x02T"
        producer.produce(kafka.topic("pos.transactions.v1"), value=value)
    producer.flush(30)
    return count


def demo(
    live_events: int = typer.Option(3_000, help="Events in the simulated live stream."),
    rate: float = typer.Option(1_500.0, help="Events/s of the simulated live stream."),
    chat_messages: int = typer.Option(2_000, help="Simulated WeCom chat messages."),
    keep_broker: bool = typer.Option(False, help="Leave a broker started here running."),
) -> None:
    """Run the POS path end to end and print what went in and what came out."""
    console = Console()
    started = time.monotonic()
    home = Path.cwd() / ".local" / "demo"
    shutil.rmtree(home, ignore_errors=True)
    kafka = KafkaSettings(topic_prefix=PREFIX)
    broker_settings = LocalBrokerSettings()
    we_started = not runner.broker_reachable(kafka)
    if we_started:
        console.print("starting the local Kafka broker ...")
        runner.start(kafka, broker_settings)
    try:
        topics = standard_topics(kafka)
        delete_topics(kafka, [t.name for t in topics])
        time.sleep(1.0)
        ensure_topics(kafka, topics)
        chdb_url = f"chdb://{home / 'chdb'}"
        env = {
            **os.environ,
            "DEALSTREAM_KAFKA_BOOTSTRAP": kafka.bootstrap,
            "DEALSTREAM_KAFKA_TOPIC_PREFIX": PREFIX,
            "DEALSTREAM_CLICKHOUSE_URL": chdb_url,
            "DEALSTREAM_WORKER_GROUP_ID": f"demo-{uuid.uuid4().hex[:8]}",
            "DEALSTREAM_WORKER_WEB_PORT": os.environ.get("DEALSTREAM_WORKER_WEB_PORT", "6066"),
        }
        console.print("starting a worker (faust app + batch engine) ...")
        worker = subprocess.Popen(
            [sys.executable, "-m", "dealstream.cli.main", "worker", "--idle-stop", "6"], env=env
        )
        watch = MetricsWatch(
            f"http://127.0.0.1:{env['DEALSTREAM_WORKER_WEB_PORT']}/metrics"
        ).start()
        fed = Fed()
        live = threading.Thread(target=_stream, args=(kafka, live_events, rate, fed))
        live.start()
        file_stats = _pos_files(kafka, home)
        console.print(
            f"pos-file connector: {file_stats.read} lines, {file_stats.produced} produced, "
            f"{file_stats.dead_letters} dead-lettered"
        )
        world = _world(env, home)
        console.print(
            f"simulated world: {world['produced']} events "
            + ", ".join(f"{n} {k}" for k, n in sorted(world["counts"].items()))
        )
        erp = _erp(kafka)
        console.print("ERP: " + ", ".join(f"{n} {k}" for k, n in erp.items()))
        garbage = _inject_garbage(kafka, 24)
        console.print(f"{garbage} undecodable records sent straight to the topic")
        _chats(kafka, chat_messages, fed)
        console.print(f"chats: {fed.chats} messages, {fed.planted} written to break a rule")
        live.join()
        console.print(f"live stream: {fed.produced} events at ~{rate:.0f}/s")
        code = worker.wait(timeout=300)
        watch.stop()
        if code != 0:
            raise typer.Exit(code)
        _metrics(console, home, watch.last)
        totals = Fed(
            read=file_stats.read + fed.read + world["counts"].get("pos.transaction", 0),
            produced=file_stats.produced + fed.produced + world["counts"].get("pos.transaction", 0),
            dead_letters=file_stats.dead_letters + fed.dead_letters + garbage,
            chats=fed.chats + world["counts"].get("wecom.message", 0),
            planted=fed.planted + world["chats"]["planted_violations"],
        )
        flowing = {t.name: _records(kafka, t.name) for t in topics if _shown(t.name)}
        _summary(console, chdb_url, totals, time.monotonic() - started, flowing)
    finally:
        if we_started and not keep_broker:
            runner.stop(broker_settings)


def _metrics(console: Console, home: Path, worker_text: str) -> None:
    worker_file, connector_file = demo_metrics.save(home, worker_text)
    gaps = demo_metrics.missing(worker_text, demo_metrics.WORKER_SERIES)
    gaps += demo_metrics.missing(connector_file.read_text(), demo_metrics.CONNECTOR_SERIES)
    series = len(demo_metrics.WORKER_SERIES) + len(demo_metrics.CONNECTOR_SERIES)
    console.print(
        f"/metrics: {series - len(gaps)} of {series} operator series had samples "
        f"({worker_file}, {connector_file})" + (f"; missing: {', '.join(gaps)}" if gaps else "")
    )


def _shown(topic: str) -> bool:
    return not topic.startswith(("dlq.", PREFIX + "state.", PREFIX + "config."))


def _summary(
    console: Console, chdb_url: str, fed: Fed, took: float, flowing: dict[str, int]
) -> None:
    read, produced, rejected = fed.read, fed.produced, fed.dead_letters
    client = connect(settings=ClickHouseSettings(url=chdb_url))
    try:
        rows = client.query("SELECT count() FROM pos_transactions FINAL").result_rows[0][0]
        raw_rows = client.query("SELECT count() FROM pos_transactions").result_rows[0][0]
        dlq = client.query(
            "SELECT stage, error_code, count() FROM dead_letters FINAL GROUP BY stage, error_code "
            "ORDER BY count() DESC"
        ).result_rows
        revenue = client.query("SELECT sum(amount) FROM pos_transactions FINAL").result_rows[0][0]
        violations, alerted = client.query(
            "SELECT count(), uniqExact(message_event_id) FROM compliance_violations FINAL"
        ).result_rows[0]
        tasks, converted = client.query(
            "SELECT sum(tasks), sum(converted) FROM store_task_conversion_rates"
        ).result_rows[0]
        journeys = client.query(
            "SELECT (SELECT count() FROM journey_steps FINAL), (SELECT uniqExact(customer_id) "
            "FROM journey_steps_resolved), (SELECT count() FROM customer_merges FINAL), "
            "(SELECT countIf(alerting = 1) FROM channel_health_latest), "
            "(SELECT count() FROM channel_health_latest)"
        ).result_rows[0]
    finally:
        client.close()
    table = Table(title="dealstream demo: five source families -> worker -> ClickHouse and alerts")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("POS lines in (export files, live stream, simulated world)", str(read))
    table.add_row("POS events produced to Kafka", str(produced))
    table.add_row("rows in ClickHouse pos_transactions (FINAL)", str(rows))
    table.add_row("rows before dedup", str(raw_rows))
    table.add_row("dead letters (ClickHouse dead_letters)", str(sum(n for _, _, n in dlq)))
    for stage, code, count in dlq:
        table.add_row(f"  {stage} / {code}", str(count))
    table.add_row("revenue in ClickHouse (CNY)", f"{revenue:,.2f}")
    table.add_row("chat messages checked", str(fed.chats))
    table.add_row("  written to break a rule / alerted", f"{fed.planted} / {alerted}")
    table.add_row("  compliance alerts (violations)", str(violations))
    table.add_row(
        "journey steps / customers / merges; channels below health threshold",
        "{} / {} / {}; {} of {}".format(*journeys),
    )
    rate = f" ({converted / tasks:.0%})" if tasks else ""
    table.add_row("store tasks raised / converted (tasks.store.v1)", f"{tasks} / {converted}{rate}")
    table.add_row("records per topic (all five source families, and alerts)", "")
    for topic, count in flowing.items():
        table.add_row(f"  {topic}", str(count))
    table.add_row("time taken", f"{took:.1f} s")
    console.print(table)
    ok = rows == produced and sum(n for _, _, n in dlq) == rejected and alerted == fed.planted
    if ok:
        console.print(
            "consistent: every produced event is in ClickHouse once, every bad one in the DLQ,"
            " every planted violation alerted"
        )
    else:
        console.print(
            f"[red]MISMATCH: produced {produced}, rows {rows}, rejected {rejected}, "
            f"violations planted {fed.planted}, alerted {alerted}"
        )
    if not ok:
        raise typer.Exit(1)
    console.print(
        f"look at it: DEALSTREAM_CLICKHOUSE_URL={chdb_url} dealstream dashboard  "
        "(then open http://127.0.0.1:8050)"
    )
