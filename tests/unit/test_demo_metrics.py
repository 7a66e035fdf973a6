"""The demo's metrics check: scrapes a live /metrics and names the operator series missing."""

from __future__ import annotations

import socket
import time

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from dealstream.cli.demo_metrics import MetricsWatch, missing


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_watch_keeps_the_last_scrape_and_missing_names_absent_series() -> None:
    registry = CollectorRegistry()
    events = Counter("dealstream_events_in_total", "in", ["topic"], registry=registry)
    Histogram("dealstream_record_age_seconds", "age", registry=registry).observe(0.2)
    Counter("dealstream_dead_letters_total", "dlq", ["topic"], registry=registry)  # no child yet
    events.labels("pos").inc(3)
    port = free_port()
    server, _ = start_http_server(port, addr="127.0.0.1", registry=registry)
    watch = MetricsWatch(f"http://127.0.0.1:{port}/metrics", every_s=0.05).start()
    try:
        deadline = time.monotonic() + 10
        while "dealstream_events_in_total" not in watch.last and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        watch.stop()
        server.shutdown()
    wanted = (
        "dealstream_events_in_total",
        "dealstream_record_age_seconds",
        "dealstream_dead_letters_total",
        "dealstream_consumer_lag",
    )
    assert missing(watch.last, wanted) == [
        "dealstream_dead_letters_total",
        "dealstream_consumer_lag",
    ]
