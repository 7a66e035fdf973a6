"""Hot reload on the real broker: a new rule version applied through config.rules.v1 fires in a
running worker without a restart; an invalid document is logged with its position and ignored."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer

from dealstream.broker.clients import make_producer
from dealstream.broker.settings import KafkaSettings
from dealstream.cli.rules import apply_document
from dealstream.connectors.output import EventWriter
from dealstream.schemas.codec import Decoder
from dealstream.schemas.samples import sample_event
from dealstream.streams.business import BUNDLED_RULES
from dealstream.streams.rules_config import RuleDocument, publish

TEXT = BUNDLED_RULES.read_text(encoding="utf-8")
RULE = "  - id: slow_stock_markdown\n    version: "
V2 = TEXT.replace("> 45", "> 30").replace(RULE + "1", RULE + "2")
BROKEN = TEXT.replace('last("turnover_days") > 45', 'last("turnover_days") >> 45')


class Alerts:
    """Reads alerts.business.v1 from the beginning, keeping everything seen."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self.consumer = Consumer(
            {
                **kafka.client_config(),
                "group.id": f"it-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
            }
        )
        self.consumer.subscribe([kafka.topic("alerts.business.v1")])
        self.decode = Decoder("alert").decode
        self.seen: list[tuple[float, dict[str, Any]]] = []

    def wait(self, entity: str, version: int, timeout_s: float, tick: Any = None) -> float:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for m in self.consumer.consume(100, 0.2):
                if m.error() is None:
                    alert = self.decode(m.value() or b"", m.headers())  # type: ignore[arg-type]
                    self.seen.append((time.monotonic(), alert))
            for at, alert in self.seen:
                if alert["entity_key"] == entity and alert["rule_version"] == version:
                    return at
            if tick is not None:
                tick()
        raise AssertionError(f"no alert v{version} for {entity}: {[a for _, a in self.seen]}")


@pytest.fixture
def worker(kafka: KafkaSettings, tmp_path: Path, worker_factory: Any) -> Iterator[Path]:
    w = worker_factory(kafka, tmp_path / "chdb", f"it-{uuid.uuid4().hex[:6]}")
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(w.args, env=w.env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield log
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_new_rule_version_fires_without_restart(kafka: KafkaSettings, worker: Path) -> None:
    producer = make_producer(kafka, client_id="it-rules")
    writers = {
        et: EventWriter(producer, event_type=et, source="it", topic_prefix=kafka.topic_prefix)
        for et in ("erp.inventory", "pos.transaction")
    }
    n = 0
    t0 = int(datetime(2025, 6, 1, tzinfo=UTC).timestamp() * 1000)

    def stock(sku: str, days: float, discount: str) -> None:
        nonlocal n
        n += 1
        at = datetime.fromtimestamp((t0 + n * 60_000) / 1000, tz=UTC)
        inv = {"sku": sku, "region": "CN-EAST", "turnover_days": days, "snapshot_at": at}
        writers["erp.inventory"].write(_event("erp.inventory", at, inv), raw=b"", position="it")
        sale = {"sku": sku, "region": "CN-EAST", "quantity": 1, "unit_price": Decimal("100.00"),
                "discount": Decimal(discount), "amount": Decimal("100.00") - Decimal(discount),
                "transaction_id": f"T{n}"}  # fmt: skip
        writers["pos.transaction"].write(
            _event("pos.transaction", at, sale), raw=b"", position="it"
        )
        producer.flush(10)

    alerts = Alerts(kafka)
    started = time.monotonic()
    stock("SLOW-40", 40.0, "6.00")  # 40 days: below the v1 threshold of 45
    stock("CANARY-1", 60.0, "7.00")  # fires under v1: the worker is up
    alerts.wait("CANARY-1|CN-EAST", 1, 25)
    up = time.monotonic() - started

    # published directly: `rules apply` would refuse it (the worker must refuse it too)
    publish(kafka, RuleDocument("business", BROKEN, "broken", "it"))
    stock("CANARY-2", 60.0, "7.00")  # still v1: the broken document changed nothing
    alerts.wait("CANARY-2|CN-EAST", 1, 10)

    applied = time.monotonic()
    apply_document(RuleDocument("business", V2, "v2", "it"), kafka)
    first = alerts.wait("SLOW-40|CN-EAST", 2, 15, tick=lambda: stock("SLOW-40", 40.0, "6.00"))
    latency = first - applied

    v2 = [a for _, a in alerts.seen if a["rule_version"] == 2]
    assert v2[0]["attributes"]["rule_set_version"] == "v2"
    assert v2[0]["rule_id"] == "slow_stock_markdown"
    slow = [a for _, a in alerts.seen if a["entity_key"] == "SLOW-40|CN-EAST"]
    assert {a["rule_version"] for a in slow} == {2}
    text = worker.read_text(errors="replace")
    assert "rules business version broken by it rejected" in text and "line 27, column" in text
    print(
        f"up {up:.1f}s, apply -> first v2 alert {latency * 1000:.0f} ms, {len(alerts.seen)} alerts"
    )


def _event(event_type: str, at: datetime, payload: dict[str, Any]) -> dict[str, Any]:
    record = sample_event(event_type, payload=payload)  # event id derived from the natural key
    record["occurred_at"] = record["ingested_at"] = at
    return record
