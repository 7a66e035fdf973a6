"""The dashboards in a real headless Chromium: charts drawn, no console errors, screenshots.

Runs `dealstream dashboard --sample-data` on a fresh chDB directory, drives Debian's chromium over
the DevTools protocol (aiohttp's websocket client, no browser download) and saves one screenshot
per page under .local/screenshots/ (or DEALSTREAM_SCREENSHOT_DIR; the copies committed in
bench/results/screenshots/ come from such a run). Skipped only when chromium is not installed.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("DEALSTREAM_SCREENSHOT_DIR", ROOT / ".local" / "screenshots"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHARTS = {
    "forecast": ["fc-series", "fc-segments", "fc-factors", "fc-accuracy"],
    "journey": ["jr-funnel", "jr-channels", "jr-heatmap", "jr-weekday", "jr-daily"],
    "compliance": ["cp-rule-day", "cp-rep", "cp-dead-codes", "cp-health", "cp-dead-daily"],
}
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (.ci/peers.sh)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout}s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture(scope="module")
def dashboard_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("dashboard")
    port = _free_port()
    env = {
        **os.environ,
        "DEALSTREAM_CLICKHOUSE_URL": f"chdb://{home / 'chdb'}",
        "DEALSTREAM_DASHBOARD_PORT": str(port),
        "DEALSTREAM_DASHBOARD_REFRESH_S": "0",
    }
    env.pop("DEALSTREAM_DASHBOARD_TOKEN", None)
    command = [sys.executable, "-m", "dealstream.cli.main", "dashboard", "--sample-data"]
    proc = subprocess.Popen(command, env=env, cwd=home)
    try:
        _wait_http(f"http://127.0.0.1:{port}/healthz", proc, timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)


class Page:
    """One DevTools page session: commands by id, events collected as they arrive."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.console_errors: list[str] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            if "id" in data and data["id"] in self.pending:
                self.pending.pop(data["id"]).set_result(data)
                continue
            method, params = data.get("method"), data.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                self.console_errors.append(json.dumps(params.get("args"))[:300])
            elif method == "Runtime.exceptionThrown":
                self.console_errors.append(json.dumps(params["exceptionDetails"])[:300])
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                self.console_errors.append(params["entry"]["text"][:300])

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[ident] = future
        await self.ws.send_json({"id": ident, "method": method, "params": params})
        reply = await asyncio.wait_for(future, 30)
        assert "error" not in reply, f"{method}: {reply['error']}"
        return dict(reply.get("result", {}))

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")


async def _browse(base: str, profile: Path) -> dict[str, dict[str, Any]]:
    port = _free_port()
    browser = subprocess.Popen(
        [
            str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}", f"--remote-debugging-port={port}",
            "--window-size=1400,1200", "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    results: dict[str, dict[str, Any]] = {}
    try:
        _wait_http(f"http://127.0.0.1:{port}/json/version", browser, timeout=30)
        async with aiohttp.ClientSession() as http:
            async with http.put(f"http://127.0.0.1:{port}/json/new?about:blank") as response:
                target = await response.json()
            async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                page = Page(ws)
                for domain in ("Runtime", "Log", "Page"):
                    await page.send(f"{domain}.enable")
                await page.send(
                    "Emulation.setDeviceMetricsOverride",
                    width=1400, height=1200, deviceScaleFactor=1, mobile=False,
                )  # fmt: skip
                for name in CHARTS:
                    results[name] = await _visit(page, f"{base}/{name}?range=all", name)
                results["filtered"] = await _filter(page)
                results["console_errors"] = {"errors": page.console_errors}
                page.reader.cancel()
    finally:
        _stop(browser)
    return results


async def _wait_for(page: Page, expression: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await page.evaluate(expression)
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {expression}: {await page.evaluate('1')}")


async def _visit(page: Page, url: str, name: str) -> dict[str, Any]:
    await page.send("Page.navigate", url=url)
    ready = f"window.__dashboard?.page === {name!r} && window.__dashboard.renders > 0"
    await _wait_for(page, ready)
    await asyncio.sleep(0.3)  # let ECharts finish its first frame
    report = await page.evaluate("JSON.stringify(window.__dashboard)")
    canvases = await page.evaluate(
        "JSON.stringify(Object.fromEntries([...document.querySelectorAll("
        "'section:not([hidden]) .chart')]"
        ".map(el => [el.id, el.querySelectorAll('canvas').length])))"
    )
    notes = await page.evaluate(
        "JSON.stringify(Object.fromEntries([...document.querySelectorAll("
        "'section:not([hidden]) .note[id]')].map(el => [el.id, el.textContent])))"
    )
    shot = await page.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / f"dashboard_{name}.png").write_bytes(base64.b64decode(shot["data"]))
    return {
        "report": json.loads(report),
        "canvases": json.loads(canvases),
        "notes": json.loads(notes),
    }


async def _filter(page: Page) -> dict[str, Any]:
    """Pick a product line on the compliance page: the board redraws from a filtered API call."""
    await page.evaluate(
        "(() => { const s = document.querySelector('select[name=product_line]');"
        " s.value = s.options[1].value; s.dispatchEvent(new Event('change', {bubbles: true})); })()"
    )
    await _wait_for(page, "window.__dashboard.renders > 1")
    return {
        "report": json.loads(await page.evaluate("JSON.stringify(window.__dashboard)")),
        "search": await page.evaluate("location.search"),
    }


def test_every_dashboard_renders_its_charts(dashboard_url: str, tmp_path: Path) -> None:
    started = time.monotonic()
    results = asyncio.run(_browse(dashboard_url, tmp_path / "profile"))
    for name, charts in CHARTS.items():
        result = results[name]
        assert result["report"]["errors"] == [], f"{name}: {result['report']['errors']}"
        for chart in charts:
            assert result["canvases"].get(chart, 0) >= 1, f"{name}: no canvas in #{chart}"
            assert result["report"]["points"].get(chart, 0) > 0, f"{name}: #{chart} drew no data"
        assert (SHOTS / f"dashboard_{name}.png").stat().st_size > 20_000
    assert results["forecast"]["report"]["points"]["fc-freshness"] > 0
    kpis = results["journey"]["notes"]["jr-kpis"]  # the funnel of the sample's WeCom adds
    assert re.match(r"[1-9]\d* WeCom contacts added; \d+\.\d % of the [1-9]\d* ", kpis), kpis
    filtered = results["filtered"]
    assert "product_line=" in filtered["search"]
    assert filtered["report"]["points"]["cp-rule-day"] > 0
    assert results["console_errors"]["errors"] == []
    assert time.monotonic() - started < 120
