"""ERP over REST against a local paginated JSON server: pages, 429 Retry-After, 5xx, cursors."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from pydantic import SecretStr

from dealstream.connectors.erp_rest.connector import ErpRestConnector, ErpRestSettings
from dealstream.connectors.sdk.errors import ConfigError
from dealstream.connectors.sdk.metrics import POLL_ERRORS
from dealstream.connectors.sdk.testing import MemoryOutput, run_pull


def order(i: int, updated: str = "2026-03-01T08:00:00+00:00", **extra: Any) -> dict[str, Any]:
    return {
        "order_id": f"SO-{i:03d}", "customer_id": "CUST-1", "region": "CN-EAST",
        "status": "CONFIRMED", "total_amount": "100.00", "updated_at": updated,
        "lines": [{"line_no": 1, "sku": "AC-1", "quantity": 1, "unit_price": 100}], **extra,
    }  # fmt: skip


class Api:
    """The fake ERP: sorted lists, opaque cursor = offset, scripted failures."""

    def __init__(self) -> None:
        self.orders: list[dict[str, Any]] = []
        self.inventory: list[dict[str, Any]] = []
        self.failures: list[tuple[int, dict[str, str]]] = []  # served before real answers
        self.requests: list[str] = []
        self.token = "s3cret"

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, str], Any]:
        if self.failures:
            status, headers = self.failures.pop(0)
            return status, headers, {"error": "scripted"}
        rows = self.orders if path.endswith("/orders") else self.inventory
        rows = sorted(rows, key=lambda r: (r["updated_at"], r.get("order_id") or r.get("sku")))
        if "updated_since" in query:
            rows = [r for r in rows if r["updated_at"] >= query["updated_since"][0]]
        start = int(query.get("cursor", ["0"])[0])
        limit = int(query["limit"][0])
        page = rows[start : start + limit] if "cursor" in query else rows[:limit]
        if "cursor" not in query:
            start = 0
        more = start + limit < len(rows)
        # a real API encodes the filter in the cursor; this one keeps the filtered list
        return 200, {}, {"data": page, "next_cursor": str(start + limit) if more else None}


@pytest.fixture
def api() -> Iterator[tuple[Api, str]]:
    state = Api()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            state.requests.append(self.path)
            if self.headers.get("Authorization") != f"Bearer {state.token}":
                status, headers, body = 401, {}, {"error": "token"}
            else:
                status, headers, body = state.answer(url.path, parse_qs(url.query))
            data = json.dumps(body).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/api"
    server.shutdown()
    server.server_close()


def settings(url: str, tmp_path: Path, **extra: Any) -> ErpRestSettings:
    values: dict[str, Any] = {
        "base_url": url, "token": SecretStr("s3cret"), "cursor_file": tmp_path / "c.json",
        "max_batch": 4, "rate_per_s": 1000, "retry_initial_s": 0.01, "retry_max_wait_s": 0.05,
        "streams": ["orders"],
    }  # fmt: skip
    return ErpRestSettings(**{**values, **extra})


def test_pages_retries_and_resume_without_resending(api: tuple[Api, str], tmp_path: Path) -> None:
    state, url = api
    state.orders = [order(i, f"2026-03-01T08:00:0{i // 3}+00:00") for i in range(10)]
    state.orders.append(order(99, "2026-03-01T08:00:01+00:00", total_amount="lots"))
    state.failures = [(429, {"Retry-After": "0"}), (503, {})]
    errors_before = POLL_ERRORS.labels("erp-rest", "TransientError")._value.get()
    out = MemoryOutput()
    started = time.monotonic()
    run_pull(ErpRestConnector(settings(url, tmp_path), output=out))
    assert time.monotonic() - started < 5
    assert sorted(r["payload"]["order_id"] for r in out.records()) == [
        f"SO-{i:03d}" for i in range(10)
    ]
    assert out.dead_letter_codes() == {"bad_decimal": 1}
    assert POLL_ERRORS.labels("erp-rest", "TransientError")._value.get() - errors_before == 2
    assert any("cursor=" in r for r in state.requests)

    # Idle re-poll: the inclusive `updated_since` re-serves the last records; none is re-sent.
    out2 = MemoryOutput()
    run_pull(ErpRestConnector(settings(url, tmp_path), output=out2))
    assert out2.produced == [] and out2.dead_letters == []
    # A late record with the cursor's own timestamp, and a new version of an old one.
    state.orders.append(order(50, "2026-03-01T08:00:03+00:00"))
    state.orders[0] = order(0, "2026-03-01T09:00:00+00:00", status="SHIPPED")
    run_pull(ErpRestConnector(settings(url, tmp_path), output=out2))
    assert [(r["payload"]["order_id"], r["payload"]["status"]) for r in out2.records()] == [
        ("SO-050", "CONFIRMED"),
        ("SO-000", "SHIPPED"),
    ]
    assert out2.event_ids()[1] not in out.event_ids()


def test_retry_after_is_honoured(api: tuple[Api, str], tmp_path: Path) -> None:
    state, url = api
    state.orders = [order(1)]
    state.failures = [(429, {"Retry-After": "1"})]
    out = MemoryOutput()
    started = time.monotonic()
    run_pull(ErpRestConnector(settings(url, tmp_path), output=out))
    assert time.monotonic() - started >= 0.95 and len(out.produced) == 1


def test_outage_keeps_the_cursor_and_wrong_token_fails_fast(
    api: tuple[Api, str], tmp_path: Path
) -> None:
    state, url = api
    state.orders = [order(1)]
    state.failures = [(500, {})] * 3
    out = MemoryOutput()
    run_pull(ErpRestConnector(settings(url, tmp_path, retry_attempts=3), output=out))
    assert out.produced == [] and not (tmp_path / "c.json").exists()

    bad = settings(url, tmp_path, token=SecretStr("wrong"))
    with pytest.raises(ConfigError, match="401"):
        run_pull(ErpRestConnector(bad, output=MemoryOutput()))
    assert not ErpRestConnector(bad).check().ok
    assert ErpRestConnector(settings(url, tmp_path)).check().ok
