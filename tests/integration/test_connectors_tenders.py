"""Tender portals (recorded pages on a local server) to the real broker, deduplicated."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from dealstream.broker.clients import make_consumer
from dealstream.broker.settings import KafkaSettings
from dealstream.connectors.tenders.connector import TendersConnector, TendersSettings
from dealstream.schemas.codec import decoder_for
from tests.unit.connectors.test_tenders import portal as portal_fixture
from tests.unit.connectors.test_tenders import sources

portal = portal_fixture  # fixture: the recorded RSS / JSON / HTML pages


def test_notices_reach_kafka_once(portal: str, kafka: KafkaSettings, tmp_path: Path) -> None:
    settings = TendersSettings(cursor_file=tmp_path / "c.json", sources=sources(portal),
                               rate_per_s=1000, stop_when_idle=True)  # fmt: skip
    TendersConnector(settings, kafka=kafka).execute()
    TendersConnector(settings, kafka=kafka).execute()  # restart: cursor says all seen
    consumer = make_consumer(kafka, group_id=f"it-{uuid.uuid4().hex[:6]}", client_id="it")
    consumer.subscribe([kafka.topic("tenders.notices.v1")])
    decoder = decoder_for("tenders.notices.v1")
    ids: list[str] = []
    try:
        deadline = time.monotonic() + 15
        idle = 0
        while time.monotonic() < deadline and idle < 4:
            batch = consumer.consume(100, timeout=0.5)
            idle = idle + 1 if not batch and ids else 0
            for message in batch:
                if message.error() is None:
                    ids.append(decoder.decode(message.value(), message.headers())["event_id"])
    finally:
        consumer.close()
    assert len(ids) == len(set(ids)) == 8
