"""What a pipeline is: a pure function from a batch of Kafka records to rows, alerts and errors.

Keeping pipelines free of I/O is what lets the same code run under the Kafka engine, in the
in-memory test runner and in benchmarks, and what lets the engine batch every side effect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from confluent_kafka import Message

from dealstream.broker.dead_letters import DeadLetter

Row = tuple[Any, ...]


@dataclass
class BatchResult:
    """Everything one batch produced; the engine hands each part to its sink."""

    rows: dict[str, list[Row]] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    # Enveloped events the batch made (e.g. ``store.task``), for their event type's topic.
    events: list[dict[str, Any]] = field(default_factory=list)
    processed: int = 0
    # alert_id → Kafka timestamp (ms) of the record that raised it, for the event → alert
    # latency histogram; alerts raised by timers have no such record and are left out.
    alert_sources: dict[str, int] = field(default_factory=dict)

    def raised(self, alert: dict[str, Any], by: Message) -> None:
        """Add an alert raised by the record ``by``."""
        self.alerts.append(alert)
        kind, ts = by.timestamp()
        if kind and ts > 0:
            self.alert_sources[alert["alert_id"]] = ts

    def extend(self, other: BatchResult) -> None:
        for table, rows in other.rows.items():
            self.rows.setdefault(table, []).extend(rows)
        self.alerts.extend(other.alerts)
        self.alert_sources.update(other.alert_sources)
        self.events.extend(other.events)
        self.dead_letters.extend(other.dead_letters)
        self.processed += other.processed


@dataclass(frozen=True)
class TableSpec:
    """A ClickHouse table a pipeline writes, with its column order (rows are tuples in it)."""

    name: str
    columns: tuple[str, ...]


@dataclass
class Totals:
    """Counts since the engine started (counts only: a long-running worker must stay flat)."""

    processed: int = 0
    dead_letters: int = 0
    alerts: int = 0


class RowSink(Protocol):
    """The part of the ClickHouse batching sink the engine relies on."""

    @property
    def pending_rows(self) -> int: ...
    def register(self, table: str, columns: Sequence[str]) -> None: ...
    def add(self, table: str, rows: Sequence[Row]) -> None: ...
    def due(self) -> Sequence[str]: ...
    def flush_all(self) -> Any: ...


class AlertSink(Protocol):
    def publish(
        self, alerts: Sequence[dict[str, Any]], sources: Mapping[str, int] | None = None
    ) -> int: ...


class EventSink(Protocol):
    def publish(self, events: Sequence[dict[str, Any]]) -> int: ...


@dataclass(frozen=True)
class StateRecord:
    """One entry of a pipeline's changelog: the latest snapshot of one key's state.

    The changelog topic is compacted and has the input topic's partition count, so the state
    of input partition ``p`` lives in changelog partition ``p`` and can be restored alone.
    """

    topic: str
    partition: int
    key: bytes
    value: bytes | None  # None deletes the key (a tombstone)


class Pipeline(Protocol):
    """A stateless-or-snapshotted transformation of a batch of records from its topics."""

    name: str
    topics: tuple[str, ...]
    tables: tuple[TableSpec, ...]

    def process(self, messages: Sequence[Message]) -> BatchResult: ...


@runtime_checkable
class StatefulPipeline(Pipeline, Protocol):
    """A pipeline whose per-partition state comes only from its changelog (DESIGN §3.3).

    The engine calls ``snapshot`` at every checkpoint, produces the records before it commits
    the offsets they cover, calls ``assigned`` before the first record of a newly assigned
    partition is processed (restore there) and ``revoked`` after the final checkpoint of a
    partition (drop its state there).
    """

    def snapshot(self) -> list[StateRecord]: ...
    def assigned(self, partitions: Sequence[tuple[str, int]]) -> None: ...
    def revoked(self, partitions: Sequence[tuple[str, int]]) -> None: ...
    def state_entries(self) -> int:
        """Keys of state held in memory now (one changelog entry each): the
        ``dealstream_state_entries`` gauge, so that operators see state grow before memory."""
        ...
