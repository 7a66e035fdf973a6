"""Prometheus metrics of the ClickHouse sink.

Created once at import in the default registry (which ``/metrics`` serves); the ``sink`` label
keeps two sinks of one process (or of one test session) apart.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ROWS_WRITTEN = Counter(
    "dealstream_clickhouse_rows_written",
    "Rows inserted into ClickHouse",
    ["sink", "table"],
)
BATCH_ROWS = Histogram(
    "dealstream_clickhouse_batch_rows",
    "Rows per insert",
    ["sink", "table"],
    buckets=(100, 1_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000),
)
FLUSH_SECONDS = Histogram(
    "dealstream_clickhouse_flush_seconds",
    "Duration of one insert, retries included",
    ["sink", "table"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
PENDING_ROWS = Gauge(
    "dealstream_clickhouse_pending_rows",
    "Rows buffered and not yet written",
    ["sink", "table"],
)
INSERT_FAILURES = Counter(
    "dealstream_clickhouse_insert_failures",
    "Failed insert attempts (each retry counts)",
    ["sink", "table"],
)
