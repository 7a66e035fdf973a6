"""A state snapshot Kafka refuses is counted and logged; the engine does not crash."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException
from prometheus_client import REGISTRY

from dealstream.streams.engine import Engine
from dealstream.streams.pipeline import StateRecord
from dealstream.streams.pos import PosTransactionsPipeline


class RefusingProducer:
    """Refuses every record the way librdkafka refuses one larger than message.max.bytes."""

    def produce(self, *args: Any, **kwargs: Any) -> None:
        raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return 0


class NullSink:
    pending_rows = 0

    def register(self, table: str, columns: Any) -> None: ...
    def add(self, table: str, rows: Any) -> None: ...
    def due(self) -> list[str]:
        return []

    def flush_all(self) -> None: ...


class NullAlerts:
    def publish(self, alerts: Any, sources: Any = None) -> int:
        return 0


def test_refused_state_record_is_counted_not_raised() -> None:
    consumer = Consumer({"bootstrap.servers": "127.0.0.1:1", "group.id": "unit", "log_level": 0})
    engine = Engine(
        pipelines=[PosTransactionsPipeline(topic="unit.pos.transactions.v1")],
        consumer=consumer,
        producer=RefusingProducer(),  # type: ignore[arg-type]
        sink=NullSink(),
        alerts=NullAlerts(),
    )
    labels = {"pipeline": engine.name, "topic": "unit.state.forecast.v1"}
    before = REGISTRY.get_sample_value("dealstream_state_records_refused_total", labels) or 0.0
    engine._produce_state(StateRecord("unit.state.forecast.v1", 0, b"key", b"x" * 2_000_000))
    after = REGISTRY.get_sample_value("dealstream_state_records_refused_total", labels)
    assert after == before + 1
    consumer.close()
