"""The three kinds of failure a connector meets (DESIGN §3.4), as types the SDK acts on.

- :class:`TransientError`: the source is briefly unavailable; retried with backoff.
- :class:`RecordError`: one record is unusable; it becomes a dead letter, the run goes on.
- :class:`ConfigError`: the configuration cannot work; fail fast with what to fix.
"""

from __future__ import annotations


class TransientError(Exception):
    """Worth retrying: timeouts, 5xx, 429, a dropped connection.

    ``retry_after`` (seconds) is the source's own hint (HTTP ``Retry-After``); when set, the
    SDK waits that long instead of its exponential backoff.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RecordError(ValueError):
    """One source record cannot become an event; ``code`` is stable, for dead-letter stats."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ConfigError(ValueError):
    """The configuration is wrong; the message says which setting to fix."""
