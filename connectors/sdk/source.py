"""Base class of SDK connectors: the lifecycle of :mod:`connectors.base` on one event loop.

``setup`` creates the event loop and the output and calls ``open`` (connect), ``run`` runs
``main`` on that loop, ``cleanup`` calls ``close`` and flushes; async clients (psycopg, httpx,
aiohttp) stay bound to the loop they were opened on. ``stop`` still only flips a flag.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import abstractmethod
from typing import ClassVar, Generic, TypeVar

from prometheus_client import start_http_server

from dealstream.broker.settings import KafkaSettings
from dealstream.connectors.base import CheckResult, Connector, RunStats
from dealstream.connectors.pii import Desensitizer, PiiSettings
from dealstream.connectors.sdk.items import Emit, Item
from dealstream.connectors.sdk.metrics import ConnectorMetrics
from dealstream.connectors.sdk.output import KafkaOutput, Output
from dealstream.connectors.sdk.settings import SourceSettings

log = logging.getLogger(__name__)

S = TypeVar("S", bound=SourceSettings)


class SourceConnector(Connector, Generic[S]):
    """Subclasses set ``name``, ``settings_class``, ``event_types`` and implement ``acheck``."""

    settings_class: ClassVar[type[SourceSettings]]
    event_types: ClassVar[tuple[str, ...]]

    def __init__(
        self,
        settings: S,
        *,
        kafka: KafkaSettings | None = None,
        pii: PiiSettings | None = None,
        output: Output | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.kafka = kafka or KafkaSettings()
        self.pii = Desensitizer((pii or PiiSettings()).key)
        self._output = output
        self.metrics = ConnectorMetrics(settings.source)
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def output(self) -> Output:
        assert self._output is not None, "call setup() first"
        return self._output

    # -- lifecycle -------------------------------------------------------------------------
    def check(self) -> CheckResult:
        return asyncio.run(self.acheck())

    @abstractmethod
    async def acheck(self) -> CheckResult:
        """Can the source be reached with this configuration? Never raises for that."""

    async def open(self) -> None:
        """Connect to the source (runs on the connector's loop)."""

    async def close(self) -> None:
        """Disconnect; runs in ``cleanup`` even after a failure."""

    @abstractmethod
    async def main(self) -> None:
        """The run loop; returns when ``self.running`` turns False (or the work is done)."""

    def setup(self) -> None:
        if self._output is None:
            self._output = KafkaOutput(
                self.kafka,
                source=self.settings.source,
                event_types=self.event_types,
                client_id=f"dealstream-{self.name}",
            )
        if self.settings.metrics_port is not None:
            start_http_server(self.settings.metrics_port)
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self.open())

    def run(self) -> RunStats:
        assert self._loop is not None, "call setup() first"
        self._loop.run_until_complete(self.main())
        return self.stats

    def cleanup(self, failed: bool) -> None:
        loop, self._loop = self._loop, None
        try:
            if loop is not None:
                loop.run_until_complete(self.close())
        finally:
            if self._output is not None:
                # A cursor never moved past unacknowledged records: a failure here loses nothing.
                with contextlib.suppress(Exception):
                    self._output.flush(10.0)
            if loop is not None:
                loop.close()

    # -- helpers for subclasses -------------------------------------------------------------
    def emit(self, item: Item) -> None:
        """Produce or dead-letter one item, keeping ``stats`` and metrics."""
        self.stats.read += 1
        self.metrics.read()
        if isinstance(item, Emit):
            ok = self.output.write(
                item.event_type, item.record, raw=item.raw, position=item.position
            )
        else:
            self.output.reject(
                item.event_type,
                raw=item.raw,
                position=item.position,
                code=item.code,
                message=item.message,
            )
            ok = False
        if ok:
            self.stats.produced += 1
            self.metrics.produced(item.event_type)
        else:
            self.stats.dead_letters += 1
            self.metrics.dead_lettered(item.event_type)

    async def flush(self) -> None:
        """Wait for Kafka's acknowledgements off the loop, so push sources keep serving."""
        await asyncio.to_thread(self.output.flush)

    async def sleep(self, seconds: float) -> None:
        """Sleep, waking early once ``stop`` was called."""
        end = asyncio.get_running_loop().time() + seconds
        while self.running:
            left = end - asyncio.get_running_loop().time()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.1))
