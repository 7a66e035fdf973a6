"""Journeys and channel health on the real broker: events of four channels → worker → chDB
(journey steps under one resolved customer, a merge) and alerts.channel.v1 (once, for the
falling channel only)."""

from __future__ import annotations

import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from dealstream.broker.clients import make_producer
from dealstream.broker.settings import KafkaSettings
from dealstream.connectors.output import EventWriter
from dealstream.schemas.codec import Decoder
from dealstream.schemas.samples import sample_event
from dealstream.streams.identity import customer_id
from tests.integration.observe import chdb_query, wait_for_metric

T0 = (datetime.now(UTC) - timedelta(days=10)).replace(microsecond=0)
X_IDS = ["unionid:it-x", "phone:it-x", "wecom_external:it-x", "erp_customer:C-X"]


class Producer:
    def __init__(self, kafka: KafkaSettings) -> None:
        self.producer = make_producer(kafka, client_id="it-journeys")
        self.prefix = kafka.topic_prefix
        self.writers: dict[str, EventWriter] = {}
        self.count = 0

    def send(self, event_type: str, hours: float, ref: str | None, **fields: Any) -> None:
        writer = self.writers.get(event_type)
        if writer is None:
            writer = self.writers[event_type] = EventWriter(
                self.producer, event_type=event_type, source="it", topic_prefix=self.prefix
            )
        record = sample_event(event_type, customer_ref=ref, **fields)
        record["occurred_at"] = record["ingested_at"] = T0 + timedelta(hours=hours)
        record["event_id"] = uuid.uuid4().hex
        assert writer.write(record, raw=b"", position=f"it:{self.count}")
        self.count += 1

    def flush(self) -> None:
        for writer in self.writers.values():
            writer.flush()

    # -- the channels ------------------------------------------------------------------------
    def view(self, hours: float, union: str, phone: str | None, store: str = "SH001") -> None:
        self.send("miniprogram.event", hours, union, phone_ref=phone, action="PAGE_VIEW",
                  store_id=store, session_id=f"s-{union}-{hours}")  # fmt: skip

    def added(self, hours: float, external: str, union: str, store: str, conv: str) -> None:
        self.send("wecom.message", hours, external, conversation_id=conv, unionid_ref=union,
                  store_id=store, msg_type="add_external_contact", speaker_role="BOT",
                  message_id=f"add-{conv}", text="[add_external_contact]")  # fmt: skip

    def say(self, hours: float, external: str, conv: str, role: str, n: int) -> None:
        self.send("wecom.message", hours, external, conversation_id=conv, speaker_role=role,
                  message_id=f"{conv}-{n}", text="请问您方便什么时候到店体验？")  # fmt: skip

    def sale(self, hours: float, phone: str, ticket: str, store: str = "SH001") -> None:
        self.send("pos.transaction", hours, phone, member_id=phone, store_id=store,
                  region="CN-EAST", transaction_id=ticket, line_no=1)  # fmt: skip

    def order(self, hours: float, account: str, phone: str) -> None:
        self.send("erp.order", hours, phone, customer_id=account, order_id=f"SO-{account}",
                  dealer_id="DLR-IT", total_amount=Decimal("100.00"))  # fmt: skip

    def questions(self, conv: str, store: str, reply_after_h: float, count: int) -> None:
        external = f"wecom_external:{conv}"
        self.added(0, external, f"unionid:{conv}", store, conv)
        for n in range(count):
            self.say(1 + 10 * n, external, conv, "CUSTOMER", 2 * n)
            self.say(1 + 10 * n + reply_after_h, external, conv, "SALES_REP", 2 * n + 1)


def channel_alerts(kafka: KafkaSettings) -> list[dict[str, Any]]:
    """Every alert on alerts.channel.v1 (read to the end offsets)."""
    topic = kafka.topic("alerts.channel.v1")
    group = f"it-{uuid.uuid4().hex}"
    consumer = Consumer({**kafka.client_config(), "group.id": group, "enable.partition.eof": True})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in meta}  # fmt: skip
        pending = {p for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, 0) for p in pending])
        decode, out = Decoder("alert").decode, []
        while pending:
            for m in consumer.consume(100, 1.0):
                if m.error() is None:
                    out.append(decode(m.value() or b"", m.headers()))  # type: ignore[arg-type]
                if (m.offset() or 0) >= ends[m.partition() or 0] - 1 or m.error() is not None:
                    pending.discard(m.partition() or 0)
        return out
    finally:
        consumer.close()


def test_four_channels_one_customer_a_merge_and_one_alert_for_the_slow_store(
    kafka: KafkaSettings, tmp_path: Path, worker_factory: Any
) -> None:
    send = Producer(kafka)
    # Customer X in four channels, linked by union id, phone and account.
    send.view(0, "unionid:it-x", "phone:it-x")
    send.added(1, "wecom_external:it-x", "unionid:it-x", "SH001", "conv-x")
    send.sale(5, "phone:it-x", "T-X")
    send.order(9, "C-X", "phone:it-x")
    # Customer Y shows up twice, unlinked for now: a member purchase and a WeCom contact.
    send.sale(2, "phone:it-y", "T-Y")
    send.added(3, "wecom_external:it-y", "unionid:it-y", "SH001", "conv-y")
    # Service: GZ003 answers three hours late (falls), SH001 within a minute (healthy).
    send.questions("slow", "GZ003", 3, 8)
    send.questions("fast", "SH001", 1 / 60, 8)
    send.flush()
    first = send.count
    chdb = tmp_path / "chdb"
    worker = worker_factory(kafka, chdb, f"it-{uuid.uuid4().hex[:6]}", "--idle-stop", "15")
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(worker.args, env=worker.env, stdout=out, stderr=out)
        try:
            seen = wait_for_metric(
                worker.port, "dealstream_events_processed_total",
                at_least=first, timeout_s=90, pipeline="journeys",
            )  # fmt: skip
            assert seen >= first, log.read_text()[-3000:]
            # Y authorises the phone in the mini program: the two known customers are one.
            send.view(20, "unionid:it-y", "phone:it-y")
            send.flush()
            assert process.wait(timeout=120) == 0
        finally:
            if process.poll() is None:
                process.kill()

    resolved = dict(
        chdb_query(
            chdb,
            "SELECT arrayStringConcat(arraySort(groupArray(step)), ','), "
            "groupUniqArray(customer_id) FROM journey_steps_resolved "
            "WHERE event_type != 'wecom.message' OR step = 'wecom_added' "
            "GROUP BY customer_id HAVING countIf(step = 'purchase') > 0",
        )
    )
    x = min(customer_id(i) for i in X_IDS)
    assert resolved["miniprogram_view,purchase,purchase,store_visit,wecom_added"] == [x]
    y_ids = ["phone:it-y", "unionid:it-y", "wecom_external:it-y"]
    y = min(customer_id(i) for i in y_ids)
    assert resolved["miniprogram_view,purchase,store_visit,wecom_added"] == [y]
    merges = chdb_query(chdb, "SELECT merged_id, customer_id FROM customer_merges FINAL")
    assert merges and all(into in (x, y) for _, into in merges)
    ((steps,),) = chdb_query(chdb, "SELECT count() FROM journey_steps FINAL")
    ((funnel_rows,),) = chdb_query(chdb, "SELECT count() FROM journey_funnel")
    health = dict(chdb_query(chdb, "SELECT channel_id, alerting FROM channel_health_latest"))
    assert health["GZ003"] == 1 and health["SH001"] == 0

    alerts = channel_alerts(kafka)
    assert [a["entity_key"] for a in alerts] == ["GZ003"]
    (alert,) = alerts
    assert alert["model_name"] == "channel-health" and alert["attributes"]["sla"] == "0.0000"
    assert len(alert["input_event_ids"]) >= 5
    print(
        f"journey rows {steps}, merges {len(merges)}, funnel channels {funnel_rows}, "
        f"channel alerts {len(alerts)} ({alert['message']})"
    )
