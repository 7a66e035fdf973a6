"""Store tasks end to end on the real broker: repeated views → a task on tasks.store.v1 and a WeCom
message (to a local fake of the API) for the usual store's staff → a later purchase converts it,
and chDB shows the conversion rate."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from dealstream.broker.clients import make_producer
from dealstream.broker.settings import KafkaSettings
from dealstream.connectors.output import EventWriter
from dealstream.schemas.codec import Decoder
from dealstream.schemas.samples import sample_event
from dealstream.sinks.wecom.testing import FakeWecom, running
from tests.integration.observe import chdb_query

DAY = 86_400_000
T0 = int(datetime(2026, 3, 2, 2, 0, tzinfo=UTC).timestamp() * 1000)
WHO = "phone:it-store-task-customer"


class Tasks:
    """Reads tasks.store.v1 from the beginning, keeping everything seen."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self.consumer = Consumer(
            {**kafka.client_config(), "group.id": f"it-{uuid.uuid4().hex}",
             "auto.offset.reset": "earliest"}
        )  # fmt: skip
        self.consumer.subscribe([kafka.topic("tasks.store.v1")])
        self.decode = Decoder("store.task").decode
        self.seen: list[dict[str, Any]] = []

    def wait(self, status: str, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for m in self.consumer.consume(100, 0.2):
                if m.error() is None:
                    self.seen.append(self.decode(m.value() or b"", m.headers()))  # type: ignore[arg-type]
            for task in self.seen:
                if task["payload"]["status"] == status:
                    return task
        raise AssertionError(f"no {status} task within {timeout_s}s: {self.seen}")


def _until(done: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        time.sleep(0.1)


def test_views_raise_a_task_sent_to_wecom_and_a_purchase_converts_it(
    kafka: KafkaSettings, tmp_path: Path, worker_factory: Any
) -> None:
    producer = make_producer(kafka, client_id="it-store-tasks")
    writers = {
        et: EventWriter(producer, event_type=et, source="it", topic_prefix=kafka.topic_prefix)
        for et in ("erp.inventory", "pos.transaction", "miniprogram.event")
    }

    def send(event_type: str, at: int, **fields: Any) -> None:
        when = datetime.fromtimestamp(at / 1000, tz=UTC)
        record = sample_event(event_type, occurred_at=when, ingested_at=when, **fields)
        assert writers[event_type].write(record, raw=b"", position="it")
        producer.flush(10)

    def buy(at: int, store: str, sku: str, line: str, ticket: str) -> None:
        price = Decimal("2199.00")
        send("pos.transaction", at, customer_ref=WHO, member_id=WHO, transaction_id=ticket,
             store_id=store, region="CN-EAST", sku=sku, product_line=line, quantity=1,
             unit_price=price, discount=Decimal("0"), amount=price)  # fmt: skip

    buy(T0 - 20 * DAY, "SH001", "FL-01", "滤芯", "IT-T1")  # the usual store: SH001
    buy(T0 - 10 * DAY, "SH001", "FL-02", "滤芯", "IT-T2")
    send("erp.inventory", T0 - DAY, sku="WP-200", warehouse_id="SH001", region="CN-EAST",
         on_hand=7, snapshot_at=datetime.fromtimestamp((T0 - DAY) / 1000, tz=UTC))  # fmt: skip
    for i in range(3):  # viewed in the mini program three days running, store SH002 selected
        send("miniprogram.event", T0 + i * DAY, customer_ref=WHO, session_id=f"it-s{i}",
             page="/pages/product/WP-200", action="PAGE_VIEW", sku="WP-200", series="净水器",
             store_id="SH002", amount=None)  # fmt: skip

    chdb = tmp_path / "chdb"
    with running(corp_id="ww-it", secret="it-secret") as fake:
        fake.expire_next()  # the first send meets an expired token: refreshed and resent
        worker = worker_factory(
            kafka, chdb, f"it-{uuid.uuid4().hex[:6]}",
            DEALSTREAM_WECOM_SEND_BASE_URL=fake.base_url, DEALSTREAM_WECOM_SEND_CORP_ID="ww-it",
            DEALSTREAM_WECOM_SEND_CORP_SECRET="it-secret", DEALSTREAM_WECOM_SEND_AGENT_ID="1000002",
            DEALSTREAM_WECOM_SEND_STORE_USERS='{"SH001": "zhang|li"}',
            DEALSTREAM_WECOM_SEND_BACKOFF_S="0",
        )  # fmt: skip
        log = tmp_path / "worker.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                worker.args, env=worker.env, stdout=out, stderr=subprocess.STDOUT
            )
            try:
                tasks = Tasks(kafka)
                opened = tasks.wait("OPEN", 120)
                _until(lambda: bool(fake.messages), 30)
                buy(T0 + 4 * DAY, "SH003", "WP-200", "净水器", "IT-T3")  # bought, another store
                converted = tasks.wait("CONVERTED", 60)
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        check_wecom(fake, opened)

    task = opened["payload"]
    assert opened["customer_ref"] == WHO
    assert (task["store_id"], task["region"], task["series"], task["sku"]) == (
        "SH001", "CN-EAST", "净水器", "WP-200",
    )  # fmt: skip
    assert (task["views"], task["stock_on_hand"], task["stock_scope"]) == (3, 7, "STORE")
    assert task["preference_tags"] == ["净水器", "滤芯"]
    assert converted["payload"]["task_id"] == task["task_id"]
    assert converted["payload"]["conversion_store_id"] == "SH003"
    assert converted["payload"]["conversion_amount"] == Decimal("2199.00")

    assert chdb_query(chdb, "SELECT task_id, store_id, views FROM store_tasks FINAL") == [
        (task["task_id"], "SH001", 3)
    ]
    assert chdb_query(
        chdb, "SELECT task_id, conversion_store_id FROM store_task_conversions FINAL"
    ) == [(task["task_id"], "SH003")]
    # the state went to the deployment's own (prefixed) changelog
    assert _records(kafka, kafka.topic("state.store-tasks.v1")) > 0
    assert chdb_query(
        chdb,
        "SELECT store_id, rule_id, tasks, converted, conversion_rate "
        "FROM store_task_conversion_rates",
    ) == [("SH001", "repeat_series_views", 1, 1, 1.0)]


def _records(kafka: KafkaSettings, topic: str) -> int:
    probe = Consumer({**kafka.client_config(), "group.id": f"it-{uuid.uuid4().hex}"})
    try:
        low, high = probe.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        return int(high - low)
    finally:
        probe.close()


def check_wecom(fake: FakeWecom, opened: dict[str, Any]) -> None:
    assert len(fake.messages) == 1, fake.messages
    message = fake.messages[0]
    assert message["touser"] == "zhang|li" and message["agentid"] == 1000002
    assert opened["payload"]["script"] in message["textcard"]["description"]
    assert fake.token_requests == 2  # the first token expired on the first send
