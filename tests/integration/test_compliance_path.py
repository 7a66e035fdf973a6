"""Chats on the real broker: violations alert on alerts.compliance.v1, disclosures do not."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer

from dealstream.broker.clients import make_producer
from dealstream.broker.settings import KafkaSettings
from dealstream.connectors.output import EventWriter
from dealstream.connectors.simulator.chats import chats
from dealstream.schemas.codec import Decoder
from tests.integration.observe import chdb_query, wait_for_metric


def read_alerts(kafka: KafkaSettings, at_least: int, timeout_s: float = 30) -> list[dict[str, Any]]:
    """Everything on the alert topic: read until ``at_least`` arrived and 2 s pass quietly."""
    consumer = Consumer(
        {
            **kafka.client_config(),
            "group.id": f"it-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([kafka.topic("alerts.compliance.v1")])
    decode = Decoder("alert").decode
    alerts: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    quiet = 0
    try:
        while time.monotonic() < deadline and (len(alerts) < at_least or quiet < 2):
            batch = [m for m in consumer.consume(500, 1.0) if m.error() is None]
            quiet = 0 if batch else quiet + 1
            alerts.extend(decode(m.value() or b"", m.headers()) for m in batch)  # type: ignore[arg-type]
    finally:
        consumer.close()
    return alerts


def test_planted_violations_alert_exactly_once_each(
    kafka: KafkaSettings, tmp_path: Path, worker_factory: Any
) -> None:
    writer = EventWriter(
        make_producer(kafka, client_id="it-chats"),
        event_type="wecom.message",
        source="it",
        topic_prefix=kafka.topic_prefix,
    )
    planted = set()
    generated = list(chats(seed=3, count=800, violation_rate=0.08))
    for chat in generated:
        assert writer.write(chat.record, raw=b"", position="it")
        if chat.violating:
            planted.add(chat.record["event_id"])
    writer.flush()
    assert 20 < len(planted) < 120

    chdb = tmp_path / "chdb"
    worker = worker_factory(kafka, chdb, f"it-{uuid.uuid4().hex[:6]}", "--idle-stop", "4")
    process = worker.start()
    # Every alert raised by a record is timed from that record to the broker's acknowledgement.
    timed = wait_for_metric(
        worker.port, "dealstream_event_to_alert_seconds_count",
        at_least=len(planted), kind="compliance",
    )  # fmt: skip
    assert process.wait(timeout=90) == 0
    assert timed >= len(planted)

    alerts = read_alerts(kafka, at_least=len(planted))
    alerted = {alert["input_event_ids"][0] for alert in alerts}
    assert alerted == planted
    # one alert per violation (a message may hold two), never one twice
    assert len(alerts) == len({a["alert_id"] for a in alerts}) >= len(planted)
    assert {a["rule_id"] for a in alerts} <= {
        "promise.principal",
        "promise.return",
        "claim.absolute",
    }
    assert all(a["rule_version"] == 1 and a["entity_key"].startswith("conv-") for a in alerts)

    rows = chdb_query(
        chdb, "SELECT count(), uniqExact(message_event_id) FROM compliance_violations FINAL"
    )
    assert rows == [(len(alerts), len(planted))]
