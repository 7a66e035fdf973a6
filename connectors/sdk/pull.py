"""Pulling sources: a poll loop over named streams, each with a durable cursor.

Per stream and poll: ``fetch(stream, cursor, limit)`` returns at most ``max_batch`` items and
the cursor after them (bounded buffering); the SDK produces them, waits for Kafka's
acknowledgement, and only then saves the cursor. A crash re-sends at most one batch, whose
deterministic event ids dedup downstream.

Transient errors are retried with tenacity (exponential backoff with jitter, or the source's
``retry_after``); every attempt passes an aiolimiter rate limit. When retries run out the poll
counts as failed, the cursor stays, and the loop tries again after ``poll_interval_s``: an
outage must not end the connector. Any other exception ends ``run`` (fail fast).
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiolimiter import AsyncLimiter
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

from dealstream.connectors.cursor import CursorStore
from dealstream.connectors.sdk.errors import TransientError
from dealstream.connectors.sdk.items import Item
from dealstream.connectors.sdk.settings import PullSettings
from dealstream.connectors.sdk.source import SourceConnector

log = logging.getLogger(__name__)

P = TypeVar("P", bound=PullSettings)

MAX_RETRY_AFTER_S = 300.0


@dataclass(frozen=True)
class Batch:
    items: Sequence[Item]
    cursor: Any
    """JSON value saved once ``items`` are acknowledged; passed to the next ``fetch``."""
    more: bool = False
    """True when the source has more right now: poll again without waiting."""
    meta: dict[str, Any] = field(default_factory=dict)


class PullConnector(SourceConnector[P]):
    """Subclasses implement ``streams``, ``fetch`` and ``acheck`` (and ``open``/``close``)."""

    def __init__(self, settings: P, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self._cursors: CursorStore | None = None
        self._limiter: AsyncLimiter | None = None
        self.polls = 0

    @abstractmethod
    def streams(self) -> Sequence[str]:
        """Names of the independent streams (each has its own cursor)."""

    @abstractmethod
    async def fetch(self, stream: str, cursor: Any, limit: int) -> Batch:
        """Up to ``limit`` items after ``cursor`` (None on the first run).

        Raise :class:`TransientError` for what a retry may fix; return :class:`Reject` items
        for unusable records; raise anything else for what needs a human.
        """

    def cursor(self, stream: str) -> Any:
        assert self._cursors is not None, "call setup() first"
        return self._cursors.get(stream)

    def setup(self) -> None:
        self._cursors = CursorStore(self.settings.cursor_file)
        super().setup()

    async def main(self) -> None:
        # aiolimiter binds to the running loop, so it is made here rather than in __init__.
        self._limiter = AsyncLimiter(self.settings.rate_per_s, 1.0)
        while self.running:
            more = False
            for stream in self.streams():
                if not self.running:
                    break
                more |= await self.poll_stream(stream)
            if more:
                continue
            if self.settings.stop_when_idle:
                return
            await self.sleep(self.settings.poll_interval_s)

    async def poll_stream(self, stream: str) -> bool:
        """One poll of one stream; True when the source said it has more."""
        assert self._cursors is not None
        batch = await self._fetch_with_retries(stream, self._cursors.get(stream))
        if batch is None:
            return False
        self.polls += 1
        for item in batch.items:
            self.emit(item)
        await self.flush()
        self._cursors.set(stream, batch.cursor)
        self.metrics.cursor_confirmed()
        return batch.more

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, TransientError) and error.retry_after is not None:
            return min(max(error.retry_after, 0.0), MAX_RETRY_AFTER_S)
        backoff = wait_exponential_jitter(
            multiplier=self.settings.retry_initial_s,
            max=self.settings.retry_max_wait_s,
            jitter=self.settings.retry_initial_s,
        )
        return float(backoff(state))

    async def _attempt(self, stream: str, cursor: Any) -> Batch:
        assert self._limiter is not None
        async with self._limiter:
            try:
                return await self.fetch(stream, cursor, self.settings.max_batch)
            except TransientError as error:
                self.metrics.poll_error(type(error).__name__)
                log.warning("%s: %s poll failed, will retry: %s", self.name, stream, error)
                raise

    async def _fetch_with_retries(self, stream: str, cursor: Any) -> Batch | None:
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TransientError),
            wait=self._wait,
            stop=stop_after_attempt(self.settings.retry_attempts),
            sleep=self.sleep,
            reraise=True,
        )
        try:
            return await retrying(self._attempt, stream, cursor)
        except TransientError as error:
            log.error("%s: %s unavailable after retries, cursor kept: %s", self.name, stream, error)
            return None
