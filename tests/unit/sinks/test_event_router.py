"""The engine's alert sink also publishes store tasks to their own topic, and never crashes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from confluent_kafka import Producer

from dealstream.schemas import codec
from dealstream.schemas.samples import sample_event
from dealstream.sinks.kafka.alerts import AlertPublisher
from dealstream.sinks.kafka.events import EventRouter


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def produce(self, topic: str, **kw: Any) -> None:
        self.sent.append({"topic": topic, **kw})

    def poll(self, timeout: float) -> int:
        return 0


class Alerts(AlertPublisher):
    def __init__(self) -> None:
        self.calls: list[tuple[int, Mapping[str, int] | None]] = []

    def publish(
        self, alerts: Sequence[dict[str, Any]], sources: Mapping[str, int] | None = None
    ) -> int:
        self.calls.append((len(alerts), sources))
        return len(alerts)


def test_alerts_pass_through_and_tasks_go_to_their_topic_and_listeners() -> None:
    producer, alerts = FakeProducer(), Alerts()
    heard: list[dict[str, Any]] = []
    router = EventRouter(
        cast(Producer, producer), alerts, event_types=["store.task"], topic_prefix="p.",
        listeners=[heard.extend],
    )  # fmt: skip
    task = sample_event("store.task")
    broken = sample_event("store.task", views=None)  # does not fit the schema
    count = router.publish([sample_event("alert"), task, broken], {"a": 1})
    assert count == 2 and alerts.calls == [(1, {"a": 1})]
    (sent,) = producer.sent
    assert sent["topic"] == "p.tasks.store.v1" and sent["key"] == b"SH001"
    decoded = codec.decoder_for("tasks.store.v1").decode(sent["value"], sent["headers"])
    assert decoded["payload"]["task_id"] == task["payload"]["task_id"]
    assert heard == [task]
