"""The engine's event sink publishes store tasks to their own topic, and never crashes."""

from __future__ import annotations

from typing import Any, cast

from confluent_kafka import Producer

from dealstream.schemas import codec
from dealstream.schemas.samples import sample_event
from dealstream.sinks.kafka.events import EventPublisher


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def produce(self, topic: str, **kw: Any) -> None:
        self.sent.append({"topic": topic, **kw})

    def poll(self, timeout: float) -> int:
        return 0


def test_tasks_go_to_their_topic_and_listeners_and_bad_events_are_counted_not_raised() -> None:
    producer = FakeProducer()
    heard: list[dict[str, Any]] = []
    router = EventPublisher(
        cast(Producer, producer), event_types=["store.task"], topic_prefix="p.",
        listeners=[heard.extend],
    )  # fmt: skip
    task = sample_event("store.task")
    broken = sample_event("store.task", views=None)  # does not fit the schema
    count = router.publish([sample_event("pos.transaction"), task, broken])  # no topic for POS
    assert count == 1
    (sent,) = producer.sent
    assert sent["topic"] == "p.tasks.store.v1" and sent["key"] == b"SH001"
    decoded = codec.decoder_for("tasks.store.v1").decode(sent["value"], sent["headers"])
    assert decoded["payload"]["task_id"] == task["payload"]["task_id"]
    assert heard == [task]
