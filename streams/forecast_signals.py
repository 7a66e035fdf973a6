"""Region signals for the forecast pipeline: read in full by every worker, kept in its snapshot.

Why not through the consumer group: POS is partitioned by SKU+region, so one region's keys sit
on every partition and every worker needs every region's tender awards, procurement plans and
IoT usage. A group would hand each worker only some partitions of the signal topics. Re-keying
the signals would need a copy per partition; instead each worker's :class:`KafkaSignalFeed`
assigns itself *all* partitions of the signal topics (its own consumer, no group, no commits,
as the changelog reader does) and the pipeline folds what it reads into a
``models.signals.SignalBoard`` (a few floats per region and period).

When partitions are assigned the feed first catches up: it reads the signal topics to the end
they had then (bounded by ``catch_up_s``, like the changelog restore), so signals published
before the worker started are on the board before the first sale is processed. After that,
reading never blocks: ``poll`` returns what librdkafka has already fetched (``consume`` with a
zero timeout), a missing topic (``procurement.plans.v1`` before its producer exists) is skipped
and looked for again later, and a period with no signal is learned without one. So a stale or
absent feed degrades the features, never the forecasts' timeliness. The price is that which
signals a key sees when its period closes depends on arrival order across topics, as for any
stream join without aligned watermarks; POS-borne signals (promotions) and the calendar do not.

The board and the feed's positions are one :class:`SignalState`, written (signed) under a
reserved key into every changelog partition the worker owns, at the same checkpoint as the
keys. A worker that restores partitions without state of its own takes the most advanced copy
and resumes the feed there, so signals are neither lost nor counted twice across a restart.
"""

from __future__ import annotations

import logging
import pickle
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, cast

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from prometheus_client import Counter, Gauge

from dealstream.broker.settings import KafkaSettings
from dealstream.models.signals import SignalBoard, from_event
from dealstream.schemas import catalog
from dealstream.schemas.codec import SchemaResolver
from dealstream.streams.decoding import RecordReader

log = logging.getLogger(__name__)

STATE_KEY = b"\x00signals"  # never a forecast key: keys are printable field values
_VERSION = 1

SIGNALS = Counter(
    "dealstream_forecast_signals_total",
    "Signal records read by the forecast pipeline, by what became of them",
    ["topic", "outcome"],
)
SIGNAL_NEWEST = Gauge(
    "dealstream_forecast_signal_newest_timestamp_seconds",
    "Event time of the newest input per forecast signal (freshness; compare with time())",
    ["signal"],
)


class SignalFeed(Protocol):
    """Records of the signal topics, every partition, from the given positions on."""

    def seek(self, positions: Mapping[tuple[str, int], int]) -> None: ...
    def poll(self) -> list[Message]: ...
    def catch_up(self) -> list[Message]: ...


@dataclass
class SignalState:
    """Everything the pipeline keeps about signals; pickled under ``STATE_KEY``."""

    board: SignalBoard
    positions: dict[tuple[str, int], int] = field(default_factory=dict)  # next offset to read
    dirty: bool = False

    @property
    def progress(self) -> int:
        """How far the feed got, to pick the most advanced of several copies."""
        return sum(self.positions.values())


def encode_state(state: SignalState) -> bytes:
    return bytes([_VERSION]) + pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


def decode_state(value: bytes) -> SignalState:
    """Inverse of :func:`encode_state` (signature checked by the caller)."""
    if not value or value[0] != _VERSION:
        raise ValueError(f"not a signal state entry (version {value[:1]!r})")
    state = pickle.loads(value[1:])  # noqa: S301 - our own signed changelog only
    if not isinstance(state, SignalState):
        raise ValueError(f"entry holds {type(state).__name__}, not SignalState")
    state.dirty = False
    return state


class SignalReader:
    """Turns feed records into board entries (decoding per topic's event type)."""

    def __init__(
        self,
        topics: Sequence[str],
        *,
        usage_metrics: Sequence[str],
        resolver: SchemaResolver | None = None,
        topic_prefix: str = "",
        region_aliases: Mapping[str, str] | None = None,
    ) -> None:
        self._readers: dict[str, RecordReader] = {}
        for topic in topics:
            name = topic.removeprefix(topic_prefix)
            try:
                event_type = catalog.for_topic(name).name
            except (KeyError, ValueError):
                log.warning("signal topic %s has no event type in the catalog: ignored", topic)
                continue
            self._readers[topic] = RecordReader(event_type, resolver=resolver)
        self._usage = tuple(usage_metrics)
        # Plans name the region as the document writes it (上海市); forecasts use sales regions.
        self._aliases = dict(region_aliases or {})

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(self._readers)

    def apply(self, messages: Sequence[Message], state: SignalState) -> None:
        """Add the signals of ``messages`` to ``state`` and advance its positions."""
        by_topic: dict[str, list[Message]] = {}
        for message in messages:
            topic, partition = cast(str, message.topic()), cast(int, message.partition())
            state.positions[(topic, partition)] = cast(int, message.offset()) + 1
            by_topic.setdefault(topic, []).append(message)
            state.dirty = True
        for topic, batch in by_topic.items():
            reader = self._readers.get(topic)
            if reader is None:
                SIGNALS.labels(topic, "unknown_topic").inc(len(batch))
                continue
            checked = reader.read(batch)
            if checked.rejected:  # their own topic's pipeline dead-letters them
                SIGNALS.labels(topic, "undecodable").inc(len(checked.rejected))
            for _, record in checked.records:
                found = from_event(reader.event_type, record, state.board.stores, self._usage)
                if not found:
                    SIGNALS.labels(topic, "no_signal").inc()
                for signal in found:
                    region = self._aliases.get(signal.region)
                    if region is not None:
                        signal = replace(signal, region=region)  # noqa: PLW2901
                    if state.board.add(signal):
                        SIGNALS.labels(topic, "applied").inc()
                        SIGNAL_NEWEST.labels(signal.name).set(signal.at_ms / 1000)
                    else:
                        SIGNALS.labels(topic, "too_late").inc()


class KafkaSignalFeed:
    """Every partition of the signal topics through one group-less consumer (module doc)."""

    def __init__(
        self,
        kafka: KafkaSettings,
        topics: Sequence[str],
        *,
        max_records: int = 5_000,
        recheck_s: float = 60.0,
        catch_up_s: float = 15.0,
    ) -> None:
        self._kafka = kafka
        self._catch_up_s = catch_up_s
        self._topics = tuple(topics)
        self._max_records = max_records
        self._recheck_s = recheck_s
        self._positions: dict[tuple[str, int], int] = {}
        self._consumer: Consumer | None = None
        self._assigned: set[str] = set()
        self._counts: dict[str, int] = {}  # partitions per existing topic
        self._checked_at = -float("inf")

    def seek(self, positions: Mapping[tuple[str, int], int]) -> None:
        """Resume from restored positions (before the first poll, or re-assign)."""
        self._positions.update(positions)
        if self._consumer is not None:
            self._consumer.assign(self._partitions(self._assigned))

    def poll(self) -> list[Message]:
        """What is already fetched (never waits); missing topics are looked for now and then."""
        if self._consumer is None:
            self._consumer = Consumer(self._config())
        now = time.monotonic()
        if len(self._assigned) < len(self._topics) and now - self._checked_at >= self._recheck_s:
            self._checked_at = now
            self._assign_existing()
        if not self._assigned:
            return []
        return self._read(0)

    def _read(self, timeout_s: float, eof: set[tuple[str, int]] | None = None) -> list[Message]:
        """Fetched records; partitions that reached their end are removed from ``eof``."""
        assert self._consumer is not None
        out = []
        for message in self._consumer.consume(self._max_records, timeout_s):
            error = message.error()
            tp = (cast(str, message.topic()), cast(int, message.partition()))
            if error is None:
                out.append(message)
                self._positions[tp] = cast(int, message.offset()) + 1
            elif error.code() == KafkaError._PARTITION_EOF:
                if eof is not None:
                    eof.discard(tp)
            else:
                log.warning("signal feed: %s", error)
        return out

    def catch_up(self) -> list[Message]:
        """Everything up to the end of every signal partition (at most ``catch_up_s``)."""
        if self._consumer is None:
            self._consumer = Consumer(self._config())
        self._checked_at = time.monotonic()
        self._assign_existing()
        # Behind = the next offset to read is below the partition's end. End-of-partition
        # events alone are not enough: a partition already read to its end (an earlier
        # assignment) or empty from the start sends none, and catch-up would wait it out.
        ends = self._ends(self._partitions(self._assigned))
        behind = {tp for tp, (low, high) in ends.items() if self._positions.get(tp, low) < high}
        out: list[Message] = []
        deadline = time.monotonic() + self._catch_up_s
        while behind and time.monotonic() < deadline:
            out += self._read(0.2, eof=behind)
            behind = {tp for tp in behind if self._positions.get(tp, ends[tp][0]) < ends[tp][1]}
        if behind:
            log.warning("signal feed not caught up within %.0fs: %s behind", self._catch_up_s,
                        sorted(behind))  # fmt: skip
        return out

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def _assign_existing(self) -> None:
        assert self._consumer is not None
        try:
            metadata = self._consumer.list_topics(timeout=10)
        except KafkaException as error:  # broker away for a moment: look again next time
            log.warning("signal feed: no topic metadata (%s); signals wait", error)
            return
        found = metadata.topics
        self._counts = {t: len(found[t].partitions) for t in self._topics if t in found}
        existing = {t for t, n in self._counts.items() if n}
        missing = set(self._topics) - existing
        if missing:
            log.info("signal topics not there yet (skipped for now): %s", sorted(missing))
        if existing != self._assigned:
            self._assigned = existing
            self._consumer.assign(self._partitions(existing))

    def _ends(self, partitions: list[TopicPartition]) -> dict[tuple[str, int], tuple[int, int]]:
        """(low, high) watermark of each partition, asked of the broker now; a partition whose
        watermarks cannot be had (no leader yet) is read until its end-of-partition event."""
        assert self._consumer is not None
        ends = {}
        for tp in partitions:
            try:
                low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(tp.topic, tp.partition), timeout=5, cached=False
                )
            except KafkaException as error:
                log.info("signal feed: no watermarks for %s[%d]: %s", tp.topic, tp.partition, error)
                low, high = 0, sys.maxsize
            ends[(tp.topic, tp.partition)] = (low, high)
        return ends

    def _partitions(self, topics: set[str]) -> list[TopicPartition]:
        counts = self._counts
        return [
            TopicPartition(t, p, self._positions.get((t, p), OFFSET_BEGINNING))
            for t in sorted(topics)
            for p in range(counts.get(t, 0))
        ]

    def _config(self) -> dict[str, Any]:
        return {
            **self._kafka.client_config(),
            "group.id": f"dealstream-signals-{uuid.uuid4().hex[:8]}",  # assign() only
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,  # how catch_up knows it reached the end
            "queued.max.messages.kbytes": 8192,
        }


class NoSignals:
    """A feed with nothing in it (signals disabled, or a test without them)."""

    def seek(self, positions: Mapping[tuple[str, int], int]) -> None:
        pass

    def poll(self) -> list[Message]:
        return []

    def catch_up(self) -> list[Message]:
        return []
