"""Every stateful pipeline of the worker reports how many state entries it holds, and the
engine publishes them (``dealstream_state_entries``) with its snapshot times at checkpoints."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import Consumer, Message
from prometheus_client import REGISTRY

from dealstream.broker.settings import KafkaSettings
from dealstream.schemas import catalog, codec
from dealstream.schemas.samples import sample_event
from dealstream.streams import worker
from dealstream.streams.changelog import EmptyChangelog
from dealstream.streams.engine import Engine
from dealstream.streams.pipeline import StatefulPipeline
from tests.unit.streams.test_engine_state import NullAlerts, NullSink

PREFIX = "entries."


class CountingProducer:
    def __init__(self) -> None:
        self.records = 0

    def produce(self, *args: Any, **kwargs: Any) -> None:
        self.records += 1

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return 0


def events(count: int) -> list[Message]:
    """``count`` distinct good records of every enveloped event type, on its topic."""
    out = []
    for et in catalog.event_types():
        if not et.enveloped:
            continue
        for i in range(count):
            record = sample_event(et.name)
            record["event_id"] = f"{record['event_id']}-{i}"
            value, headers = codec.encode(et, record)
            out.append(
                Message(topic=PREFIX + et.topic, partition=0, offset=i, value=value,
                        key=et.key(record), headers=list(headers))
            )  # fmt: skip
    return out


@pytest.fixture
def stateful() -> list[StatefulPipeline]:
    kafka = KafkaSettings(topic_prefix=PREFIX)
    found = [
        p
        for p in worker.default_pipelines(kafka, state_reader=EmptyChangelog())
        if isinstance(p, StatefulPipeline)
    ]
    for p in found:
        p.assigned([(t, 0) for t in p.topics])
    return found


def test_state_entries_grow_with_state(stateful: list[StatefulPipeline]) -> None:
    before = {p.name: p.state_entries() for p in stateful}
    assert max(before.values()) <= 1  # cold: at most a fresh model (review sentiment)
    batch = events(3)
    for p in stateful:
        p.process([m for m in batch if m.topic() in p.topics])
        p.snapshot()  # some count what their changelog holds
    still = [p.name for p in stateful if p.state_entries() <= before[p.name]]
    assert still == []


def test_the_engine_publishes_state_entries_and_snapshot_times(
    stateful: list[StatefulPipeline],
) -> None:
    consumer = Consumer({"bootstrap.servers": "127.0.0.1:1", "group.id": "unit", "log_level": 0})
    producer = CountingProducer()
    engine = Engine(
        pipelines=stateful,
        consumer=consumer,
        producer=producer,  # type: ignore[arg-type]
        sink=NullSink(),
        alerts=NullAlerts(),
        events=NullAlerts(),  # type: ignore[arg-type]
    )
    batch = events(3)
    engine._handle(batch)
    engine._snapshot_state()
    assert producer.records > 0
    for p in stateful:
        labels = {"pipeline": p.name}
        assert REGISTRY.get_sample_value("dealstream_state_entries", labels) == p.state_entries()
        assert REGISTRY.get_sample_value("dealstream_snapshot_seconds_count", labels)
    consumer.close()
