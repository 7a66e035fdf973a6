"""The connector lifecycle every source follows (Quix Streams ``Source``, Airbyte ``check``).

Construction takes configuration only; ``setup`` connects and validates; ``run`` loops until
``stop`` flips a flag; ``cleanup(failed)`` always runs last; ``check`` answers "can I reach the
source with this configuration?" for deploy-time health checks.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str


@dataclass
class RunStats:
    """What one run read, produced and dead-lettered (shown by the CLI and the demo)."""

    read: int = 0
    produced: int = 0
    dead_letters: int = 0
    skipped: int = 0


class Connector(ABC):
    """Base class: subclasses implement ``setup``, ``poll_once``-style ``run`` and ``check``."""

    name: str = "connector"

    def __init__(self) -> None:
        self._stopping = threading.Event()
        self.stats = RunStats()

    @property
    def running(self) -> bool:
        return not self._stopping.is_set()

    def stop(self) -> None:
        """Only flips a flag: ``run`` notices it, finishes its unit of work and returns."""
        self._stopping.set()

    @abstractmethod
    def check(self) -> CheckResult: ...

    @abstractmethod
    def setup(self) -> None: ...

    @abstractmethod
    def run(self) -> RunStats: ...

    def cleanup(self, failed: bool) -> None:  # noqa: B027 - optional hook
        """Release resources; ``failed`` says whether ``run`` raised."""

    def execute(self) -> RunStats:
        """setup → run → cleanup, the order the lifecycle promises."""
        self.setup()
        failed = True
        try:
            stats = self.run()
            failed = False
            return stats
        finally:
            self.cleanup(failed)
