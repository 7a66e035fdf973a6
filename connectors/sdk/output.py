"""Where a connector's items go: Kafka through :class:`EventWriter`, or memory in tests.

:class:`Output` is the narrow interface the SDK needs; ``flush`` returning means everything
written so far is durable, the only moment a cursor may advance.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from dealstream.broker.clients import make_producer
from dealstream.broker.settings import KafkaSettings
from dealstream.connectors.output import EventWriter
from dealstream.schemas import registry


class Output(Protocol):
    def write(
        self, event_type: str, record: Mapping[str, Any], *, raw: bytes, position: str
    ) -> bool:
        """Validate and produce; False when the record was dead-lettered instead."""
        ...

    def reject(
        self, event_type: str, *, raw: bytes, position: str, code: str, message: str
    ) -> None: ...

    def flush(self, timeout_s: float = 60.0) -> None:
        """Return once everything written is acknowledged; raise if anything was not."""
        ...


class KafkaOutput:
    """One idempotent producer shared by one :class:`EventWriter` per event type."""

    def __init__(
        self, kafka: KafkaSettings, *, source: str, event_types: Iterable[str], client_id: str
    ) -> None:
        producer = make_producer(kafka, client_id=client_id)
        encode = registry.encoder()
        self._writers = {
            name: EventWriter(
                producer,
                event_type=name,
                source=source,
                topic_prefix=kafka.topic_prefix,
                encode=encode,
            )
            for name in event_types
        }

    def _writer(self, event_type: str) -> EventWriter:
        try:
            return self._writers[event_type]
        except KeyError:
            raise ValueError(f"{event_type!r} is not in this connector's event_types") from None

    def write(
        self, event_type: str, record: Mapping[str, Any], *, raw: bytes, position: str
    ) -> bool:
        return self._writer(event_type).write(record, raw=raw, position=position)

    def reject(
        self, event_type: str, *, raw: bytes, position: str, code: str, message: str
    ) -> None:
        self._writer(event_type).reject(raw=raw, position=position, code=code, message=message)

    def flush(self, timeout_s: float = 60.0) -> None:
        for writer in self._writers.values():
            writer.flush(timeout_s)
