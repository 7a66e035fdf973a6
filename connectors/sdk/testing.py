"""Test kit: run a connector with an in-memory output and look at what it produced.

No Kafka needed; records are validated and Avro-encoded exactly as the Kafka output does, so
a record that passes here passes in production::

    output = MemoryOutput()
    run_pull(MyConnector(settings, output=output))
    assert output.event_ids("erp.order") == {...}
    assert output.dead_letter_codes() == {"bad_decimal": 1}

For push sources, ``serving(connector)`` runs it in a thread and yields it with ``.url`` set.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from dealstream.connectors.base import RunStats
from dealstream.connectors.output import DeliveryError
from dealstream.connectors.sdk.pull import PullConnector
from dealstream.connectors.sdk.push import PushConnector
from dealstream.schemas import codec, validation


@dataclass(frozen=True)
class Produced:
    event_type: str
    record: Mapping[str, Any]
    position: str


@dataclass(frozen=True)
class DeadLetter:
    event_type: str
    raw: bytes
    position: str
    code: str
    message: str
    stage: str


class MemoryOutput:
    """An :class:`~dealstream.connectors.sdk.output.Output` that keeps everything in lists.

    ``fail_flushes`` makes the next N flushes raise :class:`DeliveryError` (and forget the
    records written since the last good flush), to test that cursors hold.
    """

    def __init__(self, *, fail_flushes: int = 0) -> None:
        self.produced: list[Produced] = []
        self.dead_letters: list[DeadLetter] = []
        self.flushes = 0
        self.fail_flushes = fail_flushes
        self._acked = 0

    def write(
        self, event_type: str, record: Mapping[str, Any], *, raw: bytes, position: str
    ) -> bool:
        problems = validation.validate(event_type, record)
        if problems:
            message = "; ".join(str(p) for p in problems)
            self._dead(DeadLetter(event_type, raw, position, problems[0].code, message, "VALIDATE"))
            return False
        try:
            codec.encode(event_type, record)
        except codec.EncodeError as error:
            self._dead(DeadLetter(event_type, raw, position, error.code, error.message, "VALIDATE"))
            return False
        self.produced.append(Produced(event_type, record, position))
        return True

    def reject(
        self, event_type: str, *, raw: bytes, position: str, code: str, message: str
    ) -> None:
        self._dead(DeadLetter(event_type, raw, position, code, message, "SOURCE"))

    def _dead(self, letter: DeadLetter) -> None:
        self.dead_letters.append(letter)

    def flush(self, timeout_s: float = 60.0) -> None:
        self.flushes += 1
        if self.fail_flushes > 0:
            self.fail_flushes -= 1
            del self.produced[self._acked :]
            raise DeliveryError("MemoryOutput: simulated delivery failure")
        self._acked = len(self.produced)

    # -- assertions helpers -----------------------------------------------------------------
    def records(self, event_type: str | None = None) -> list[Mapping[str, Any]]:
        return [p.record for p in self.produced if event_type in (None, p.event_type)]

    def event_ids(self, event_type: str | None = None) -> list[str]:
        """In production order, duplicates kept (compare with a set to ignore re-sends)."""
        return [str(r["event_id"]) for r in self.records(event_type)]

    def dead_letter_codes(self) -> dict[str, int]:
        return dict(Counter(d.code for d in self.dead_letters))


PC = TypeVar("PC", bound=PullConnector[Any])
QC = TypeVar("QC", bound=PushConnector[Any])


def run_pull(connector: PullConnector[Any]) -> RunStats:
    """Run a pull connector until every stream is caught up (``stop_when_idle``)."""
    connector.settings = connector.settings.model_copy(update={"stop_when_idle": True})
    return connector.execute()


@contextmanager
def serving(connector: QC, *, timeout_s: float = 10.0) -> Iterator[QC]:
    """Run a push connector in a thread while the block runs; re-raise what it raised."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            connector.execute()
        except BaseException as error:  # handed to the test thread below
            errors.append(error)

    thread = threading.Thread(target=target, name=f"serve-{connector.name}", daemon=True)
    thread.start()
    if not connector.ready.wait(timeout_s):
        connector.stop()
        thread.join(timeout_s)
        raise RuntimeError(f"{connector.name} did not start: {errors[:1]}")
    try:
        yield connector
    finally:
        connector.stop()
        thread.join(timeout_s)
    if errors:
        raise errors[0]
