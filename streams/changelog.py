"""Reads a compacted changelog topic back into the latest value per key, one partition at a time.

Stateful pipelines restore from here when partitions are assigned (DESIGN §3.3). The reader
assigns partitions directly (no group, no commits, so it never disturbs the worker's group) and
stops at the high watermark it saw when it started: everything written before the assignment is
in, anything later belongs to the new owner anyway.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any, Protocol, cast

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from dealstream.broker.settings import KafkaSettings

log = logging.getLogger(__name__)

State = dict[int, dict[bytes, bytes]]
"""Latest value per key, per changelog partition."""


class ChangelogError(RuntimeError):
    """The changelog could not be read to its end in time; state would be incomplete."""


class StateReader(Protocol):
    """What a stateful pipeline needs to restore: the latest values of some partitions."""

    def read(self, topic: str, partitions: Sequence[int]) -> State: ...


class EmptyChangelog:
    """A :class:`StateReader` with nothing to restore: every pipeline starts cold (benchmarks
    and tests that build the worker's pipelines without a broker)."""

    def read(self, topic: str, partitions: Sequence[int]) -> State:
        return {p: {} for p in partitions}


_NO_LEADER_YET = frozenset(
    {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError._TIMED_OUT}
)


class ChangelogReader:
    """Reads partitions of a compacted topic from the beginning to their high watermark."""

    def __init__(self, kafka: KafkaSettings, *, timeout_s: float = 60.0) -> None:
        self._kafka = kafka
        self._timeout_s = timeout_s

    def _consumer(self) -> Consumer:
        config: dict[str, Any] = {
            **self._kafka.client_config(),
            # librdkafka wants a group id even for assign(); nothing is ever committed to it.
            "group.id": f"dealstream-changelog-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
        }
        return Consumer(config)

    def read(self, topic: str, partitions: Sequence[int]) -> State:
        """Latest value per key of each partition; tombstones delete the key."""
        state: State = {p: {} for p in partitions}
        if not partitions:
            return state
        consumer = self._consumer()
        try:
            ends = self._ends(consumer, topic, partitions)
            if ends:
                self._consume(consumer, topic, ends, state)
        finally:
            consumer.close()
        return state

    def _ends(self, consumer: Consumer, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        """High watermark of each non-empty partition (an unknown topic counts as empty).

        Right after a broker restart a partition has no leader for a while
        (NOT_LEADER_FOR_PARTITION, LEADER_NOT_AVAILABLE): retriable errors are retried until
        the reader's timeout, so a worker rejoining after the restart restores instead of
        stopping.
        """
        deadline = time.monotonic() + self._timeout_s
        ends: dict[int, int] = {}
        for partition in partitions:
            while True:
                try:
                    low, high = consumer.get_watermark_offsets(
                        TopicPartition(topic, partition),
                        timeout=max(0.5, deadline - time.monotonic()),
                    )
                    break
                except KafkaException as error:
                    kafka_error = error.args[0]
                    code = kafka_error.code()
                    if code in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_PARTITION):
                        log.warning(
                            "changelog %s[%d] does not exist: starting empty", topic, partition
                        )
                        low = high = 0
                        break
                    retriable = code in _NO_LEADER_YET or kafka_error.retriable()
                    if retriable and time.monotonic() < deadline:
                        time.sleep(0.5)
                        continue
                    raise ChangelogError(f"watermarks of {topic}[{partition}]: {error}") from error
            if high > low:
                ends[partition] = high
        return ends

    def _consume(self, consumer: Consumer, topic: str, ends: dict[int, int], state: State) -> None:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        pending = dict(ends)  # partition -> high watermark still to reach
        deadline = time.monotonic() + self._timeout_s
        while pending:
            if time.monotonic() > deadline:
                raise ChangelogError(
                    f"changelog {topic} not read to its end within {self._timeout_s}s: "
                    f"partitions {sorted(pending)} still behind"
                )
            for message in consumer.consume(1000, 0.2):
                partition = cast(int, message.partition())
                offset = cast(int, message.offset())
                error = message.error()
                if partition not in pending:
                    continue
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        raise ChangelogError(f"reading {topic}[{partition}]: {error}")
                    if offset >= pending[partition]:
                        del pending[partition]
                    continue
                if offset < pending[partition]:
                    _apply(state[partition], message.key(), message.value())
                if offset >= pending[partition] - 1:
                    del pending[partition]


def _apply(values: dict[bytes, bytes], key: bytes | None, value: bytes | None) -> None:
    if key is None:
        return
    if value is None:
        values.pop(key, None)
    else:
        values[key] = value
