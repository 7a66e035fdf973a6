"""Looking at a running or finished worker from a test: its chDB tables and its /metrics."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from dealstream.sinks.clickhouse.client import connect
from dealstream.sinks.clickhouse.settings import ClickHouseSettings


def chdb_query(chdb: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` in a worker's chDB directory (the worker must have stopped: one owner)."""
    client = connect(settings=ClickHouseSettings(url=f"chdb://{chdb}"))
    try:
        return [tuple(row) for row in client.query(sql).result_rows]
    finally:
        client.close()


def metric(port: int, name: str, **labels: str) -> float | None:
    """Current value of one sample of a worker's /metrics; None while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def wait_for_metric(
    port: int, name: str, *, at_least: float, timeout_s: float = 60, **labels: str
) -> float:
    """Poll until the sample reaches ``at_least`` (or the timeout); return the last value."""
    deadline = time.monotonic() + timeout_s
    value = 0.0
    while time.monotonic() < deadline:
        value = metric(port, name, **labels) or 0.0
        if value >= at_least:
            break
        time.sleep(0.05)
    return value
