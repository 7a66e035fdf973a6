"""The aiohttp app: three dashboard pages, their JSON API and the bundled static assets.

ClickHouse calls block (clickhouse-connect is synchronous, chDB runs in-process), so they run in a
worker thread one at a time: one client is not safe for concurrent queries.
"""

from __future__ import annotations

import asyncio
import hmac
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from dealstream.sinks.dashboard import metrics, queries
from dealstream.sinks.dashboard.settings import DashboardSettings

STATIC = Path(__file__).with_name("static")
PAGES = ("forecast", "journey", "compliance")
_MAX_FILTER_LEN = 64
# ECharts tooltips carry inline style attributes, hence unsafe-inline for styles only.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CLIENT_KEY = web.AppKey("client", Client)
SETTINGS_KEY = web.AppKey("settings", DashboardSettings)
LOCK_KEY = web.AppKey("lock", threading.Lock)


class BadFilter(ValueError):
    """A query-string value the API refuses (answered with 400)."""


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date):  # datetime is handled by orjson itself
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def json_response(payload: Any, *, status: int = 200) -> web.Response:
    """JSON with naive ClickHouse datetimes marked as UTC and Decimals as numbers."""
    body = orjson.dumps(payload, default=_default, option=orjson.OPT_NAIVE_UTC)
    return web.Response(body=body, status=status, content_type="application/json")


def _parse_time(raw: str | None, name: str) -> datetime | None:
    if not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise BadFilter(f"{name} must be an ISO date or datetime, got {raw[:40]!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _text(raw: str | None, name: str) -> str:
    value = (raw or "").strip()
    if len(value) > _MAX_FILTER_LEN or any(ord(c) < 32 for c in value):
        raise BadFilter(f"{name} must be at most {_MAX_FILTER_LEN} printable characters")
    return value


def parse_filters(query: Any, *, default_days: int, now: datetime | None = None) -> queries.Filters:
    """Read ``from``, ``to``, ``region``, ``product_line`` and ``horizon`` from a query string."""
    end = _parse_time(query.get("to"), "to") or (now or datetime.now(UTC))
    start = _parse_time(query.get("from"), "from") or end - timedelta(days=default_days)
    if start > end:
        raise BadFilter("from must not be after to")
    try:
        horizon = int(query.get("horizon") or 1)
    except ValueError:
        raise BadFilter("horizon must be a whole number of periods") from None
    if not 1 <= horizon <= 366:
        raise BadFilter("horizon must be between 1 and 366")
    return queries.Filters(
        start=start,
        end=end,
        region=_text(query.get("region"), "region"),
        product_line=_text(query.get("product_line"), "product_line"),
        horizon=horizon,
    )


async def _run(app: web.Application, work: Callable[[Client], Any]) -> Any:
    client, lock = app[CLIENT_KEY], app[LOCK_KEY]

    def locked() -> Any:
        with lock:
            return work(client)

    return await asyncio.to_thread(locked)


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bearer token on the API, security headers everywhere, errors as JSON."""
    started = time.perf_counter()
    token = request.app[SETTINGS_KEY].token
    if request.path.startswith("/api/") and token is not None:
        sent = request.headers.get("Authorization", "")
        expected = f"Bearer {token.get_secret_value()}"
        if not hmac.compare_digest(sent.encode(), expected.encode()):
            metrics.observe(request, 401, time.perf_counter() - started)
            return json_response({"error": "missing or wrong bearer token"}, status=401)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        metrics.observe(request, exc.status, time.perf_counter() - started)
        raise
    except BadFilter as exc:
        response = json_response({"error": str(exc)}, status=400)
    except ClickHouseError as exc:
        first_line = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else "error"
        response = json_response({"error": f"ClickHouse: {first_line}"}, status=502)
    metrics.observe(request, response.status, time.perf_counter() - started)
    response.headers.setdefault("Content-Security-Policy", _CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


async def _page(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def _root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/forecast")


async def _health(request: web.Request) -> web.StreamResponse:
    await _run(request.app, lambda c: c.command("SELECT 1"))
    return json_response({"ok": True})


async def _options(request: web.Request) -> web.StreamResponse:
    found = await _run(request.app, queries.options)
    settings = request.app[SETTINGS_KEY]
    found["refresh_s"] = settings.refresh_s
    found["default_days"] = settings.default_days
    return json_response(found)


def _board(build: Callable[[Client, queries.Filters], dict[str, Any]]) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        settings = request.app[SETTINGS_KEY]
        filters = parse_filters(request.query, default_days=settings.default_days)
        result = await _run(request.app, lambda c: build(c, filters))
        result["filters"] = filters.parameters()
        return json_response(result)

    return handle


def create_app(*, client: Client, settings: DashboardSettings) -> web.Application:
    """Build the web app around one open ClickHouse client."""
    app = web.Application(middlewares=[_guard])
    app[CLIENT_KEY] = client
    app[SETTINGS_KEY] = settings
    app[LOCK_KEY] = threading.Lock()
    app.router.add_get("/", _root)
    for page in PAGES:
        app.router.add_get(f"/{page}", _page)
    app.router.add_get("/healthz", _health)
    app.router.add_get("/metrics", metrics.serve)
    app.router.add_get("/api/options", _options)
    app.router.add_get("/api/forecast", _board(queries.forecast))
    app.router.add_get("/api/journey", _board(queries.journey))
    app.router.add_get("/api/compliance", _board(queries.compliance))
    app.router.add_static("/static/", STATIC, follow_symlinks=False)
    return app
