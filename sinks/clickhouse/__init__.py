"""ClickHouse sink: settings, client factory (embedded chDB or server), migrations, batching."""

from __future__ import annotations

from dealstream.sinks.clickhouse.batching import BatchingSink, FlushReport
from dealstream.sinks.clickhouse.client import connect
from dealstream.sinks.clickhouse.errors import (
    ChdbDirectoryLocked,
    ChdbPathMismatch,
    MigrationError,
    SinkBackpressure,
    SinkConfigError,
    SinkError,
    SinkUnavailable,
)
from dealstream.sinks.clickhouse.migrate import AppliedMigration, migrate
from dealstream.sinks.clickhouse.settings import ClickHouseSettings

__all__ = [
    "AppliedMigration",
    "BatchingSink",
    "ChdbDirectoryLocked",
    "ChdbPathMismatch",
    "ClickHouseSettings",
    "FlushReport",
    "MigrationError",
    "SinkBackpressure",
    "SinkConfigError",
    "SinkError",
    "SinkUnavailable",
    "connect",
    "migrate",
]
