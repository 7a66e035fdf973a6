"""Runs an :class:`Engine` on its own thread inside the faust worker's service tree.

The engine's loop is synchronous (librdkafka releases the GIL while it waits), so it gets a
thread; faust keeps the event loop for its web server, sensors and low-volume agents, and
stops the engine through the normal service shutdown on SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading

from mode import Service

from dealstream.streams.engine import Engine

log = logging.getLogger(__name__)


class EngineService(Service):
    """A mode service whose lifetime is the engine thread's lifetime."""

    def __init__(self, engine: Engine, *, stop_worker_when_done: bool = False) -> None:
        super().__init__()
        self.engine = engine
        self._stop_worker_when_done = stop_worker_when_done
        self._thread: threading.Thread | None = None

    @property
    def label(self) -> str:
        return f"Engine[{self.engine.name}]"

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    async def on_start(self) -> None:
        loop = asyncio.get_running_loop()
        self._thread = threading.Thread(
            target=self._run, args=(loop,), name=self.label, daemon=True
        )
        self._thread.start()

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            self.engine.run()
        except Exception as error:
            log.exception("engine %s crashed", self.engine.name)
            failure, crash = error, self.crash
            loop.call_soon_threadsafe(lambda: asyncio.ensure_future(crash(failure)))
            return
        if self._stop_worker_when_done and not self.should_stop:
            # Same path as an operator's SIGTERM: faust stops every service in order.
            os.kill(os.getpid(), signal.SIGTERM)

    async def on_stop(self) -> None:
        self.engine.stop()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 60.0)
