"""What ``dealstream demo`` shows of its processes' Prometheus metrics.

The worker serves ``/metrics`` only while it runs, so a thread scrapes it every second and keeps
the last answer; the connectors run inside the demo process, whose own registry holds theirs.
Both are written next to the demo's chDB directory, and the summary says which of the series
operators rely on were there (issue: every process exposes them).
"""

from __future__ import annotations

import threading
import urllib.request
from pathlib import Path

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

WORKER_SERIES = (
    "dealstream_events_in_total",  # events in per topic and pipeline
    "dealstream_events_processed_total",
    "dealstream_alerts_total",  # out: alerts per kind
    "dealstream_events_out_total",  # out: events (store tasks)
    "dealstream_record_age_seconds",  # event time -> processed
    "dealstream_event_to_alert_seconds",  # event -> alert
    "dealstream_consumer_lag",
    "dealstream_dead_letters_total",
    "dealstream_clickhouse_batch_rows",  # sink batch sizes
    "dealstream_clickhouse_flush_seconds",  # and flush durations
    "dealstream_forecast_mape",  # forecast error per model family
)
CONNECTOR_SERIES = (
    "dealstream_connector_records_produced_total",
    "dealstream_connector_cursor_age_seconds",
)


class MetricsWatch:
    """Scrapes ``url`` every ``every_s`` seconds until :meth:`stop`; keeps the last answer."""

    def __init__(self, url: str, *, every_s: float = 1.0) -> None:
        self.url = url
        self.last = ""
        self._every_s = every_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-metrics", daemon=True)

    def start(self) -> MetricsWatch:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stopped.wait(self._every_s):
            try:
                with urllib.request.urlopen(self.url, timeout=2) as response:  # noqa: S310
                    self.last = response.read().decode()
            except OSError:
                continue  # not up yet, or gone: keep the last answer

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)


def families(text: str) -> set[str]:
    """Names of the metric families in a Prometheus text exposition that have samples.

    >>> sorted(families("# TYPE a_total counter\\na_total 1.0\\n# TYPE b gauge\\n"))
    ['a']
    """
    return {f.name for f in text_string_to_metric_families(text) if f.samples}


def missing(text: str, wanted: tuple[str, ...]) -> list[str]:
    """The wanted series (counters named with or without ``_total``) with no sample in ``text``."""
    have = families(text)
    return [w for w in wanted if w.removesuffix("_total") not in have and w not in have]


def save(home: Path, worker_text: str) -> tuple[Path, Path]:
    """Write the worker's last scrape and this process's (connector) metrics under ``home``."""
    worker_file, connector_file = home / "worker-metrics.prom", home / "connector-metrics.prom"
    worker_file.write_text(worker_text, encoding="utf-8")
    connector_file.write_bytes(generate_latest(REGISTRY))
    return worker_file, connector_file
