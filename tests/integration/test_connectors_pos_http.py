"""POS HTTP endpoint on the real broker: a posted batch is on the topic once Kafka acked it."""

from __future__ import annotations

import uuid

import httpx

from dealstream.broker.clients import make_consumer
from dealstream.broker.settings import KafkaSettings
from dealstream.connectors.pos_file.parse import event_id
from dealstream.connectors.pos_http.connector import PosHttpConnector, PosHttpSettings
from dealstream.connectors.sdk.testing import serving
from dealstream.schemas.codec import decoder_for

ROW = {
    "transaction_id": "T9", "store_id": "S1", "region": "CN-EAST", "sku": "AC-1",
    "quantity": 1, "unit_price": "10.00", "amount": "10.00",
    "occurred_at": "2026-09-01T09:00:00+08:00",
}  # fmt: skip


def test_posted_batch_reaches_kafka(kafka: KafkaSettings) -> None:
    connector = PosHttpConnector(PosHttpSettings(port=0), kafka=kafka)
    with serving(connector):
        batch = [{**ROW, "line_no": n} for n in range(1, 51)]
        answer = httpx.post(f"{connector.url}/v1/transactions", json=batch, timeout=30)
        assert answer.status_code == 200 and answer.json()["accepted"] == 50
    consumer = make_consumer(kafka, group_id=f"it-{uuid.uuid4().hex[:6]}", client_id="it")
    consumer.subscribe([kafka.topic("pos.transactions.v1")])
    decoder = decoder_for("pos.transactions.v1")
    ids: set[str] = set()
    try:
        for _ in range(40):
            for message in consumer.consume(100, timeout=0.5):
                if message.error() is None:
                    ids.add(decoder.decode(message.value(), message.headers())["event_id"])
            if len(ids) == 50:
                break
    finally:
        consumer.close()
    assert ids == {event_id("T9", n) for n in range(1, 51)}
