"""Prometheus series of every connector, labelled by its instance name (``settings.source``).

Module-level, like ``streams.metrics``: one set per process, children per connector.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge

RECORDS_READ = Counter(
    "dealstream_connector_records_read_total", "Source records read", ["connector"]
)
RECORDS_PRODUCED = Counter(
    "dealstream_connector_records_produced_total",
    "Events handed to Kafka",
    ["connector", "event_type"],
)
RECORDS_DEAD_LETTERED = Counter(
    "dealstream_connector_records_dead_lettered_total",
    "Source records sent to a dead-letter topic",
    ["connector", "event_type"],
)
POLL_ERRORS = Counter(
    "dealstream_connector_poll_errors_total",
    "Failed attempts to read the source (each retry counts)",
    ["connector", "kind"],
)
CURSOR_AGE = Gauge(
    "dealstream_connector_cursor_age_seconds",
    "Seconds since the cursor was last confirmed by a successful poll (grows while stuck)",
    ["connector"],
)


class ConnectorMetrics:
    """The children of the series above for one connector instance."""

    def __init__(self, connector: str) -> None:
        self.connector = connector
        self._confirmed = time.monotonic()
        CURSOR_AGE.labels(connector).set_function(self.cursor_age)

    def cursor_age(self) -> float:
        return time.monotonic() - self._confirmed

    def cursor_confirmed(self) -> None:
        self._confirmed = time.monotonic()

    def read(self, count: int = 1) -> None:
        RECORDS_READ.labels(self.connector).inc(count)

    def produced(self, event_type: str) -> None:
        RECORDS_PRODUCED.labels(self.connector, event_type).inc()

    def dead_lettered(self, event_type: str) -> None:
        RECORDS_DEAD_LETTERED.labels(self.connector, event_type).inc()

    def poll_error(self, kind: str) -> None:
        POLL_ERRORS.labels(self.connector, kind).inc()
