"""The batch engine: consume many records per call, process them as one batch, commit after flush.

faust's own consumer path costs ~75 µs per Kafka message in ``Consumer._drain_messages``
(see DESIGN.md §5), more than everything dealstream does with an event. This engine replaces only
that loop: it runs inside the faust worker as a service, reads with confluent-kafka
``consume(num_messages=N)``, hands the whole batch to a pure :class:`Pipeline`, buffers rows in a
batching sink and commits offsets only after the rows, alerts and dead letters they produced are
durably written (at-least-once; ClickHouse dedups by event_id).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import cast

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from dealstream.broker.dead_letters import DeadLetterPublisher
from dealstream.schemas import codec
from dealstream.schemas.registry import Encoder
from dealstream.sinks.clickhouse.errors import SinkBackpressure
from dealstream.streams import metrics
from dealstream.streams.pipeline import (
    AlertSink,
    EventSink,
    Pipeline,
    Row,
    RowSink,
    StatefulPipeline,
    StateRecord,
    Totals,
)

log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """A flush or commit failed; offsets stay uncommitted and the records will be re-read."""


class Engine:
    """Runs pipelines over their topics until :meth:`stop` is called (from any thread).

    One consumer serves every pipeline of the worker, so one sink, one thread and one commit
    cover them all; records are routed to a pipeline by topic.
    """

    def __init__(
        self,
        *,
        pipelines: Sequence[Pipeline],
        consumer: Consumer,
        producer: Producer,
        sink: RowSink,
        alerts: AlertSink,
        events: EventSink | None = None,
        max_batch: int = 2_000,
        poll_timeout_s: float = 0.05,
        commit_interval_s: float = 1.0,
        max_pending_rows: int = 200_000,
        stop_when_idle_s: float | None = None,
        encode: Encoder = codec.encode,
        standby_sink: RowSink | None = None,
    ) -> None:
        self.pipelines = tuple(pipelines)
        self.name = "+".join(p.name for p in self.pipelines)
        names = [p.name for p in self.pipelines]
        if len(set(names)) != len(names):
            raise ValueError(f"pipeline names must be unique: {names}")
        # Several pipelines may read one topic (POS feeds storage and forecasts): each gets
        # the same batch, and one consumer offset covers them all.
        self._topics = tuple(dict.fromkeys(t for p in self.pipelines for t in p.topics))
        self._consumer = consumer
        self._producer = producer
        self._sink = sink
        # With a standby sink, periodic checkpoints run on a flusher thread: the loop swaps
        # sinks and keeps consuming while the full one is written and its offsets committed,
        # so a ClickHouse insert never stalls the events behind it (event -> alert latency).
        self._standby: RowSink | None = standby_sink
        self._failed: RowSink | None = None  # a swapped-out sink whose write failed
        self._flusher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sink-flush")
        self._inflight: Future[None] | None = None
        self._inflight_offsets: dict[tuple[str, int], int] = {}
        self._inflight_sink: RowSink | None = None
        self._alerts = alerts
        self._events = events
        self._dead_letters = DeadLetterPublisher(producer, encode=encode)
        self._max_batch = max_batch
        self._poll_timeout_s = poll_timeout_s
        self._commit_interval_s = commit_interval_s
        self._max_pending_rows = max_pending_rows
        self._stop_when_idle_s = stop_when_idle_s
        self._stopping = threading.Event()
        self._uncommitted: dict[tuple[str, int], int] = {}
        self._paused = False
        self._assigned = False  # idle time counts only once partitions are ours
        self._last_checkpoint = time.monotonic()
        self._last_record = time.monotonic()
        self.totals = Totals()
        for pipeline in self.pipelines:
            for table in pipeline.tables:
                sink.register(table.name, table.columns)
                if standby_sink is not None:
                    standby_sink.register(table.name, table.columns)
        self._stateful: tuple[StatefulPipeline, ...] = tuple(
            p for p in self.pipelines if isinstance(p, StatefulPipeline)
        )

    # -- lifecycle -------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the loop to finish its batch, flush, commit and return; safe from any thread."""
        self._stopping.set()

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def stopped(self) -> bool:
        return self._stopping.is_set()

    def run(self) -> Totals:
        """Consume until stopped (or idle, when configured); return totals."""
        self._consumer.subscribe(
            list(self._topics),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        try:
            while not self._stopping.is_set():
                self._step()
            self._checkpoint_quietly()
        finally:
            self._flusher.shutdown(wait=True)
            self._consumer.close()
        return self.totals

    # -- the loop --------------------------------------------------------------------------
    def _step(self) -> None:
        if self._inflight is not None and self._inflight.done():
            self._collect_inflight()
        if self._paused:
            self._try_resume()
        messages = self._next_batch()
        now = time.monotonic()
        if messages:
            self._last_record = now
            self._handle(messages)
        elif (
            self._stop_when_idle_s is not None
            and self._assigned
            and now - self._last_record > self._stop_when_idle_s
            and not self._paused
        ):
            self._stopping.set()
        if self._uncommitted and (
            now - self._last_checkpoint >= self._commit_interval_s or self._sink.due()
        ):
            if self._standby is not None and self._failed is None and not self._paused:
                self._checkpoint_in_background()
            else:
                self._checkpoint_quietly()

    def _next_batch(self) -> list[Message]:
        """Wait for the first record only, then take whatever else is already queued.

        ``consume(n, timeout)`` alone would hold a record back until ``n`` arrived or the
        timeout passed, adding up to the timeout to every event's latency at low rates; this
        way batches are as large as the backlog (large under load, small when idle) and never
        wait for company.
        """
        first = self._consumer.poll(self._poll_timeout_s)
        if first is None:
            return []
        return [first, *self._consumer.consume(self._max_batch - 1, 0)]

    def _handle(self, messages: Sequence[Message]) -> None:
        by_topic: dict[str, list[Message]] = {}
        uncommitted = self._uncommitted
        for message in messages:
            if message.error() is not None:
                self._log_consumer_error(message)
                continue
            topic = cast(str, message.topic())
            by_topic.setdefault(topic, []).append(message)
            uncommitted[(topic, cast(int, message.partition()))] = cast(int, message.offset())
        for pipeline in self.pipelines:
            parts = [by_topic[t] for t in pipeline.topics if t in by_topic]
            if len(parts) == 1:
                self._run_pipeline(pipeline, parts[0])
            elif parts:
                self._run_pipeline(pipeline, [m for part in parts for m in part])

    def _run_pipeline(self, pipeline: Pipeline, batch: Sequence[Message]) -> None:
        started = time.perf_counter()
        result = pipeline.process(batch)
        self._dead_letters.publish(result.dead_letters)
        self._alerts.publish(result.alerts, result.alert_sources)
        if result.events:
            if self._events is None:
                raise RuntimeError(
                    f"pipeline {pipeline.name} made events but the engine has no sink"
                )
            self._events.publish(result.events)
        for table, rows in result.rows.items():
            self._add_rows(table, rows)
        metrics.observe_batch(pipeline.name, batch, result, time.perf_counter() - started)
        totals = self.totals
        totals.processed += result.processed
        totals.dead_letters += len(result.dead_letters)
        totals.alerts += len(result.alerts)
        if self._sink.pending_rows >= self._max_pending_rows:
            self._pause("pending rows above limit")

    def _add_rows(self, table: str, rows: Sequence[Row]) -> None:
        """Hand rows to the sink; while it is full, flush (and wait) instead of reading more."""
        while True:
            try:
                self._sink.add(table, rows)
                return
            except SinkBackpressure as error:
                self._pause(str(error))
                if self._checkpoint_quietly():
                    continue
                if self._stopping.is_set():
                    # Offsets of these rows are uncommitted: they are re-read after restart.
                    raise CheckpointError("stopping while the sink is unavailable") from error
                # Paused: this call only keeps the group membership alive. Anything it still
                # returns is put back with a seek, never dropped.
                self._rewind(self._consumer.consume(self._max_batch, 0.5))

    def _rewind(self, messages: Sequence[Message]) -> None:
        first: dict[tuple[str, int], int] = {}
        for message in messages:
            if message.error() is None:
                first.setdefault((message.topic(), message.partition()), message.offset())  # type: ignore[arg-type]
        for (topic, partition), offset in first.items():
            self._consumer.seek(TopicPartition(topic, partition, offset))

    # -- checkpoints -----------------------------------------------------------------------
    def checkpoint(self) -> None:
        """Flush rows, wait for alert and dead-letter delivery, then commit covered offsets.

        Synchronous: used on revoke, on stop, under backpressure and without a standby sink.
        """
        self._await_inflight()
        self._last_checkpoint = time.monotonic()
        self._snapshot_state()
        try:
            if self._failed is not None:
                self._failed.flush_all()
                self._standby, self._failed = self._failed, None
            self._sink.flush_all()
        except Exception as error:
            raise CheckpointError(f"sink flush failed: {error}") from error
        remaining = self._producer.flush(30.0)
        if remaining:
            raise CheckpointError(f"{remaining} alerts/dead letters/state records not acknowledged")
        if not self._uncommitted:
            return
        offsets = [
            TopicPartition(topic, partition, offset + 1)
            for (topic, partition), offset in self._uncommitted.items()
        ]
        self._consumer.commit(offsets=offsets, asynchronous=False)
        self._uncommitted.clear()
        metrics.COMMITS.labels(self.name).inc()

    def _checkpoint_in_background(self) -> None:
        """Swap sinks and let the flusher write the full one; its offsets are committed here,
        on the consumer's own thread, once the write is done (see ``_collect_inflight``)."""
        if self._inflight is not None:
            if not self._inflight.done():
                return  # one write at a time; the next checkpoint takes both batches
            if not self._collect_inflight():
                return
        assert self._standby is not None
        self._last_checkpoint = time.monotonic()
        self._snapshot_state()
        full, self._sink, self._standby = self._sink, self._standby, None
        offsets, self._uncommitted = self._uncommitted, {}
        self._inflight_sink, self._inflight_offsets = full, offsets
        self._inflight = self._flusher.submit(self._write, full)

    def _write(self, sink: RowSink) -> None:
        """Runs on the flusher thread: rows to ClickHouse, then Kafka acknowledgements.

        Offsets are not committed here: synchronous commits from a second thread were seen to
        block for good under load, so every consumer call stays on the engine's thread.
        """
        sink.flush_all()
        remaining = self._producer.flush(30.0)
        if remaining:
            raise CheckpointError(f"{remaining} alerts/dead letters/state records not acknowledged")

    def _commit(self, offsets: dict[tuple[str, int], int]) -> None:
        if offsets:
            self._consumer.commit(
                offsets=[TopicPartition(t, p, o + 1) for (t, p), o in offsets.items()],
                asynchronous=False,
            )

    def _collect_inflight(self) -> bool:
        """Take the finished background write back; on failure keep its rows and offsets."""
        assert self._inflight is not None and self._inflight_sink is not None
        future, sink, offsets = self._inflight, self._inflight_sink, self._inflight_offsets
        self._inflight, self._inflight_sink, self._inflight_offsets = None, None, {}
        try:
            future.result()
        except Exception as error:
            for key, offset in offsets.items():
                self._uncommitted[key] = max(offset, self._uncommitted.get(key, -1))
            self._failed = sink
            metrics.CHECKPOINT_FAILURES.labels(self.name, type(error).__name__).inc()
            log.warning("background checkpoint failed, offsets stay uncommitted: %s", error)
            self._pause(str(error))
            return False
        self._standby = sink
        try:
            self._commit(offsets)
        except Exception as error:  # e.g. a rebalance in progress: the rows are written
            for key, offset in offsets.items():
                self._uncommitted[key] = max(offset, self._uncommitted.get(key, -1))
            metrics.CHECKPOINT_FAILURES.labels(self.name, type(error).__name__).inc()
            log.warning("commit failed, will retry: %s", error)
            return False
        metrics.COMMITS.labels(self.name).inc()
        return True

    def _await_inflight(self) -> None:
        if self._inflight is not None:
            self._collect_inflight()  # Future.result() there waits for the write

    def _snapshot_state(self) -> None:
        """Produce every stateful pipeline's changed state (before the offsets it covers are
        committed), timing each: the loop waits meanwhile, so it adds to event latency."""
        for pipeline in self._stateful:
            started = time.perf_counter()
            for record in pipeline.snapshot():
                self._produce_state(record)
            metrics.SNAPSHOT_SECONDS.labels(pipeline.name).observe(time.perf_counter() - started)
            metrics.STATE_ENTRIES.labels(pipeline.name).set(pipeline.state_entries())

    def _produce_state(self, record: StateRecord) -> None:
        while True:
            try:
                self._producer.produce(
                    record.topic, key=record.key, value=record.value, partition=record.partition
                )
                return
            except BufferError:
                self._producer.poll(0.1)
            except KafkaException as error:
                # A snapshot Kafka refuses (too large) must not stop the worker: the state is
                # still in memory and still right; only a restart would restore an older one.
                metrics.STATE_RECORDS_REFUSED.labels(self.name, record.topic).inc()
                log.error(
                    "state record for %r on %s refused (%d bytes): %s",
                    record.key, record.topic, len(record.value or b""), error,
                )  # fmt: skip
                return

    def _checkpoint_quietly(self) -> bool:
        try:
            self.checkpoint()
        except CheckpointError as error:
            metrics.CHECKPOINT_FAILURES.labels(self.name, type(error.__cause__).__name__).inc()
            log.warning("checkpoint failed, offsets stay uncommitted: %s", error)
            self._pause(str(error))
            return False
        except Exception as error:  # commit failures (e.g. during a rebalance) are retried later
            metrics.CHECKPOINT_FAILURES.labels(self.name, type(error).__name__).inc()
            log.warning("commit failed, will retry: %s", error)
            return False
        return True

    def _pause(self, reason: str) -> None:
        if self._paused:
            return
        assignment = self._consumer.assignment()
        if assignment:
            self._consumer.pause(assignment)
        self._paused = True
        metrics.PAUSED.labels(self.name).set(1)
        log.warning("pausing consumption: %s", reason)

    def _try_resume(self) -> None:
        if time.monotonic() - self._last_checkpoint < min(1.0, self._commit_interval_s):
            return
        if self._checkpoint_quietly() and self._sink.pending_rows < self._max_pending_rows:
            assignment = self._consumer.assignment()
            if assignment:
                self._consumer.resume(assignment)
            self._paused = False
            metrics.PAUSED.labels(self.name).set(0)
            log.info("resumed consumption")

    # -- rebalance callbacks (run inside consume(), on this thread) ------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("assigned %s", _describe(partitions))
        if partitions:
            self._assigned = True
            for pipeline in self._stateful:
                mine = [
                    (tp.topic, tp.partition) for tp in partitions if tp.topic in pipeline.topics
                ]
                if mine:
                    pipeline.assigned(mine)
            # Idle time starts after the restores: a slow restore is not a quiet topic.
            self._last_record = time.monotonic()
        if self._paused and partitions:
            consumer.pause(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("revoked %s", _describe(partitions))
        self._checkpoint_quietly()
        self._release(partitions)

    def _release(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._uncommitted.pop((tp.topic, tp.partition), None)
        for pipeline in self._stateful:
            mine = [(tp.topic, tp.partition) for tp in partitions if tp.topic in pipeline.topics]
            if mine:
                pipeline.revoked(mine)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.warning("lost %s", _describe(partitions))
        self._release(partitions)

    def _log_consumer_error(self, message: Message) -> None:
        error = message.error()
        if isinstance(error, KafkaError) and error.code() == KafkaError._PARTITION_EOF:
            return
        log.warning("consumer error on %s: %s", message.topic(), error)


def _describe(partitions: Sequence[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"
