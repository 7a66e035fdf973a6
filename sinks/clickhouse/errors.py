"""Typed errors of the ClickHouse sink, so callers can tell "pause" from "fix the config"."""

from __future__ import annotations


class SinkError(Exception):
    """Base class of every error raised by the ClickHouse sink."""


class SinkConfigError(SinkError):
    """The configuration or environment is wrong; retrying will not help."""


class ChdbDirectoryLocked(SinkConfigError):
    """Another process owns the chDB directory (chDB would corrupt or refuse it)."""


class ChdbPathMismatch(SinkConfigError):
    """chDB did not store data where we asked (e.g. an ignored ``chdb_path=`` argument)."""


class MigrationError(SinkConfigError):
    """The database schema does not match the migrations shipped with this build."""


class SinkBackpressure(SinkError):
    """Too many rows wait for ClickHouse; pause consumption until a flush succeeds.

    The rows passed to the failing ``add`` were *not* accepted: hand them in again later.
    """

    def __init__(self, table: str, pending: int, limit: int) -> None:
        super().__init__(
            f"{pending} rows pending (limit {limit}) while adding to {table!r}: "
            "pause consumption and flush before adding more"
        )
        self.table = table
        self.pending = pending
        self.limit = limit


class SinkUnavailable(SinkError):
    """An insert failed after bounded retries; the batch is kept for the next flush.

    ``transient`` is False when retrying alone cannot help (bad data, a closed client): the
    caller must fix the cause, e.g. reconnect or migrate, before flushing again.
    """

    def __init__(self, table: str, rows: int, cause: BaseException, *, transient: bool) -> None:
        kind = "transient" if transient else "not transient"
        super().__init__(f"insert of {rows} rows into {table!r} failed ({kind}): {cause}")
        self.table = table
        self.rows = rows
        self.transient = transient
