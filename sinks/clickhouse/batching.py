"""Buffer rows per table and insert them in large batches (ClickHouse wants few, big inserts).

The caller drives it, so that Kafka offsets are committed only after what they cover is written::

    sink.add("pos_transactions", rows)        # may raise SinkBackpressure: pause consuming
    if sink.due():
        sink.flush()                          # size- or time-triggered tables only
    ...
    sink.flush_all(); consumer.commit()       # on checkpoint / rebalance / shutdown

Rows are never dropped. A failed insert keeps its batch and raises ``SinkUnavailable``; the next
flush retries exactly that batch with the same ``insert_deduplication_token``, so an insert that
did land (a lost response) is not written twice. Not thread-safe: one sink per worker loop.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import (
    DatabaseError,
    DataError,
    InternalError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
)
from clickhouse_connect.driver.insert import InsertContext
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

from dealstream.sinks.clickhouse import metrics
from dealstream.sinks.clickhouse.errors import SinkBackpressure, SinkUnavailable
from dealstream.sinks.clickhouse.settings import ClickHouseSettings

Row = Sequence[Any]


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: network trouble and server-side errors, not bad data or bad calls."""
    if isinstance(exc, DataError | ProgrammingError | NotSupportedError):
        return False
    return isinstance(exc, OperationalError | InternalError | DatabaseError | OSError)


@dataclass(frozen=True, slots=True)
class FlushReport:
    """What one flush wrote: rows per table and how long it took."""

    rows: dict[str, int] = field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


@dataclass(slots=True)
class _Table:
    columns: tuple[str, ...]
    context: InsertContext
    rows: list[Row] = field(default_factory=list)
    since: float | None = None  # clock() when the oldest pending row arrived
    retry: tuple[int, str] | None = None  # size and token of a batch that failed


class BatchingSink:
    """Per-table buffers flushed by size or age, with one reused insert context per table."""

    def __init__(
        self,
        client: Client,
        *,
        settings: ClickHouseSettings,
        name: str = "clickhouse",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._settings = settings
        self._name = name
        self._clock = clock
        self._tables: dict[str, _Table] = {}
        self._instance = uuid.uuid4().hex[:16]
        self._seq = 0

    def register(self, table: str, columns: Sequence[str]) -> None:
        """Fix the column order of ``table``'s rows; fails fast if the table does not exist."""
        if table in self._tables:
            raise ValueError(f"table {table!r} is already registered")
        context = self._client.create_insert_context(table=table, column_names=list(columns))
        self._tables[table] = _Table(columns=tuple(columns), context=context)
        metrics.PENDING_ROWS.labels(self._name, table).set(0)

    @property
    def pending_rows(self) -> int:
        return sum(len(t.rows) for t in self._tables.values())

    def pending(self, table: str) -> int:
        return len(self._state(table).rows)

    def add(self, table: str, rows: Sequence[Row]) -> None:
        """Buffer rows (in registered column order); no I/O.

        Raises ``SinkBackpressure`` without taking any of ``rows`` when the sink is full.
        """
        state = self._state(table)
        width = len(state.columns)
        bad = next((r for r in rows if len(r) != width), None)
        if bad is not None:
            raise ValueError(f"{table!r} rows need {width} values {state.columns}, got {bad!r}")
        pending = self.pending_rows
        if pending and pending + len(rows) > self._settings.max_pending_rows:
            raise SinkBackpressure(table, pending, self._settings.max_pending_rows)
        if not rows:
            return
        if not state.rows:
            state.since = self._clock()
        state.rows.extend(rows)
        metrics.PENDING_ROWS.labels(self._name, table).set(len(state.rows))

    def due(self) -> list[str]:
        """Tables holding ``batch_rows`` rows or rows older than ``batch_interval_s``."""
        now = self._clock()
        return [
            name
            for name, t in self._tables.items()
            if t.rows
            and (
                len(t.rows) >= self._settings.batch_rows
                or (t.since is not None and now - t.since >= self._settings.batch_interval_s)
            )
        ]

    def flush(self) -> FlushReport:
        """Write the tables that are due; raises ``SinkUnavailable`` on failure."""
        return self._flush(self.due())

    def flush_all(self) -> FlushReport:
        """Write everything pending (before committing offsets or shutting down)."""
        return self._flush([name for name, t in self._tables.items() if t.rows])

    def _state(self, table: str) -> _Table:
        try:
            return self._tables[table]
        except KeyError:
            raise KeyError(f"table {table!r} is not registered with this sink") from None

    def _flush(self, tables: list[str]) -> FlushReport:
        start = time.perf_counter()
        written: dict[str, int] = {}
        for table in tables:
            written[table] = self._flush_table(table, self._tables[table])
        return FlushReport(rows=written, duration_s=time.perf_counter() - start)

    def _flush_table(self, table: str, state: _Table) -> int:
        written = 0
        while state.rows:
            if state.retry is None:
                self._seq += 1
                size = min(len(state.rows), self._settings.batch_rows)
                state.retry = (size, f"{self._instance}-{self._seq}")
            size, token = state.retry
            self._insert(table, state, state.rows[:size], token)
            del state.rows[:size]
            state.retry = None
            written += size
            metrics.PENDING_ROWS.labels(self._name, table).set(len(state.rows))
        state.since = None
        return written

    def _insert(self, table: str, state: _Table, batch: list[Row], token: str) -> None:
        labels = (self._name, table)

        def attempt() -> None:
            state.context.data = batch
            if self._settings.dedup_tokens:
                state.context.settings["insert_deduplication_token"] = token
            try:
                self._client.insert(context=state.context)
            except Exception:
                metrics.INSERT_FAILURES.labels(*labels).inc()
                raise
            finally:
                state.context.data = None  # never keep a failed batch alive twice

        start = time.perf_counter()
        retrying = Retrying(
            stop=stop_after_delay(self._settings.flush_retry_s),
            wait=wait_exponential(multiplier=0.05, max=1.0),
            retry=retry_if_exception(is_transient),
            reraise=True,
        )
        try:
            retrying(attempt)
        except Exception as exc:
            raise SinkUnavailable(table, len(batch), exc, transient=is_transient(exc)) from exc
        metrics.FLUSH_SECONDS.labels(*labels).observe(time.perf_counter() - start)
        metrics.BATCH_ROWS.labels(*labels).observe(len(batch))
        metrics.ROWS_WRITTEN.labels(*labels).inc(len(batch))
