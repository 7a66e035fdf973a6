"""ERP over SQL against a real PostgreSQL: keyset cursor, late updates, dead letters, restarts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from pydantic import SecretStr

from dealstream.broker.clients import make_consumer
from dealstream.broker.settings import KafkaSettings
from dealstream.connectors.erp_sql.connector import ErpSqlConnector, ErpSqlSettings
from dealstream.connectors.sdk.testing import MemoryOutput, run_pull
from dealstream.schemas.codec import decoder_for
from tests.integration import peers

postgres_server, postgres = peers.postgres_server, peers.postgres  # fixtures
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
SHIP = "UPDATE erp_orders SET status='SHIPPED', updated_at=%s WHERE order_id=%s"

SCHEMA = """
CREATE TABLE erp_orders (
    order_id text PRIMARY KEY, customer_id text, dealer_id text, sales_rep_id text,
    region text, status text, currency text, total_amount numeric(18,2),
    created_at timestamptz, updated_at timestamptz NOT NULL);
CREATE TABLE erp_order_lines (
    order_id text, line_no int, sku text, quantity int, unit_price numeric(18,2),
    amount numeric(18,2), PRIMARY KEY (order_id, line_no));
CREATE TABLE erp_inventory (
    sku text, warehouse_id text, region text, on_hand int, reserved int, reorder_point int,
    unit_cost numeric(18,2), turnover_days double precision, updated_at timestamptz NOT NULL,
    PRIMARY KEY (sku, warehouse_id));
"""


def seed(dsn: str, orders: int, *, same_time_every: int = 4) -> None:
    """``orders`` orders; groups of ``same_time_every`` share one updated_at (page edges)."""
    with psycopg.connect(dsn) as conn:
        conn.execute(SCHEMA)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO erp_orders VALUES (%s,%s,NULL,'EMP-1','CN-EAST','CONFIRMED','CNY',"
                "%s,%s,%s)",
                [
                    (f"SO-{i:05d}", f"CUST-{i % 7}", "100.00", T0,
                     T0 + timedelta(seconds=i // same_time_every))
                    for i in range(orders)
                ],
            )  # fmt: skip
            cur.executemany(
                "INSERT INTO erp_order_lines VALUES (%s,1,'AC-1',2,'50.00','100.00')",
                [(f"SO-{i:05d}",) for i in range(orders)],
            )
            cur.executemany(
                "INSERT INTO erp_inventory VALUES (%s,%s,'CN-EAST',10,2,5,'99.50',NULL,%s)",
                [(f"SKU-{s}", f"WH-{w}", T0) for s in range(3) for w in range(2)],
            )


def settings(dsn: str, tmp_path: Path, **extra: object) -> ErpSqlSettings:
    return ErpSqlSettings(
        dsn=SecretStr(dsn),
        cursor_file=tmp_path / "cursor.json",
        settle_s=0,
        max_batch=3,
        rate_per_s=1000,
        **extra,  # type: ignore[arg-type]
    )


def test_incremental_pull_with_late_updates_and_bad_rows(postgres: str, tmp_path: Path) -> None:
    seed(postgres, 10)
    out = MemoryOutput()
    stats = run_pull(ErpSqlConnector(settings(postgres, tmp_path), output=out))
    assert stats.produced == 16 and stats.dead_letters == 0
    orders = out.records("erp.order")
    assert [r["payload"]["order_id"] for r in orders] == [f"SO-{i:05d}" for i in range(10)]
    assert orders[0]["payload"]["lines"][0]["sku"] == "AC-1"
    inventory = {
        (r["payload"]["sku"], r["payload"]["warehouse_id"]) for r in out.records("erp.inventory")
    }
    assert len(inventory) == 6

    # Late updates: one order gets a new version; one row with the cursor's own timestamp
    # arrives late (a key after the cursor's); one row is unusable.
    with psycopg.connect(postgres) as conn:
        conn.execute(SHIP, (T0 + timedelta(minutes=5), "SO-00003"))
        conn.execute("INSERT INTO erp_orders VALUES ('SO-99999','C',NULL,NULL,'CN-EAST','CREATED',"
                     "'CNY','1.00',NULL,%s)", (T0 + timedelta(seconds=2),))  # fmt: skip
        conn.execute("INSERT INTO erp_orders VALUES ('SO-ZZZ','C',NULL,NULL,'', 'CREATED','CNY',"
                     "'1.00',NULL,%s)", (T0 + timedelta(minutes=6),))  # fmt: skip
    out2 = MemoryOutput()
    run_pull(ErpSqlConnector(settings(postgres, tmp_path), output=out2))
    payloads = [r["payload"] for r in out2.records("erp.order")]
    assert [(p["order_id"], p["status"]) for p in payloads] == [
        ("SO-99999", "CREATED"),
        ("SO-00003", "SHIPPED"),
    ]
    assert out2.dead_letter_codes() == {"missing_field": 1}
    assert not set(out2.event_ids()) & set(out.event_ids())

    # A full re-read (cursor lost) gives the same ids for the same versions: sinks dedup.
    (tmp_path / "cursor.json").unlink()
    out3 = MemoryOutput()
    run_pull(ErpSqlConnector(settings(postgres, tmp_path), output=out3))
    assert set(out.event_ids()) - set(out3.event_ids()) == {out.records("erp.order")[3]["event_id"]}
    assert len(out3.event_ids()) == len(set(out3.event_ids())) == 17


def test_check_reports_missing_tables_and_bad_dsn(postgres: str, tmp_path: Path) -> None:
    result = ErpSqlConnector(settings(postgres, tmp_path)).check()
    assert not result.ok and "erp_orders" in result.message
    bad = ErpSqlConnector(settings("host=127.0.0.1 port=1 user=x connect_timeout=1", tmp_path))
    assert not bad.check().ok


def _consume_ids(kafka: KafkaSettings, topic: str, expect: int, timeout: float = 30) -> list[str]:
    consumer = make_consumer(kafka, group_id=f"it-{uuid.uuid4().hex[:6]}", client_id="it")
    consumer.subscribe([kafka.topic(topic)])
    decoder = decoder_for(topic)
    ids: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and len(ids) < expect:
            for message in consumer.consume(500, timeout=0.5):
                if message.error() is None:
                    ids.append(decoder.decode(message.value())["event_id"])
        # drain a little more, to see duplicates that arrive after the expected count
        for message in consumer.consume(500, timeout=1.0):
            if message.error() is None:
                ids.append(decoder.decode(message.value())["event_id"])
    finally:
        consumer.close()
    return ids


def test_killed_connector_resumes_from_its_cursor(
    postgres: str, kafka: KafkaSettings, tmp_path: Path
) -> None:
    total = 600
    seed(postgres, total)
    config = tmp_path / "erp.yaml"
    cursor = tmp_path / "cursor.json"
    config.write_text(json.dumps({
        "dsn": postgres, "cursor_file": str(cursor), "settle_s": 0, "max_batch": 20,
        "rate_per_s": 20, "streams": ["orders"], "stop_when_idle": True,
    }))  # fmt: skip
    env = {**os.environ, "DEALSTREAM_KAFKA_BOOTSTRAP": kafka.bootstrap,
           "DEALSTREAM_KAFKA_TOPIC_PREFIX": kafka.topic_prefix}  # fmt: skip
    args = [sys.executable, "-m", "dealstream.cli.main", "connectors", "run", "erp-sql",
            "--config", str(config)]  # fmt: skip
    first = subprocess.Popen(args, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        saved = json.loads(cursor.read_text()) if cursor.exists() else {}
        if saved.get("orders", {}).get("key", [""])[0] >= "SO-00200":
            break
        time.sleep(0.05)
    assert first.poll() is None, "the kill must land mid-run"
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    killed_at = json.loads(cursor.read_text())["orders"]["key"][0]

    # While it is down, an order already read gets a new version.
    with psycopg.connect(postgres) as conn:
        conn.execute(SHIP, (T0 + timedelta(hours=1), "SO-00010"))
    subprocess.run(args, env=env, check=True, timeout=120)

    ids = _consume_ids(kafka, "erp.orders.v1", total + 1)
    assert len(set(ids)) == total + 1, f"gap: {total + 1 - len(set(ids))} version(s) missing"
    duplicates = len(ids) - len(set(ids))
    print(f"killed at {killed_at}; {len(ids)} records, {duplicates} re-sent duplicate(s)")
    assert duplicates <= 20, "at most one batch (max_batch) is re-sent after a kill"
