"""Pushed sources: an HTTP server that receives webhooks or batches and produces them.

aiohttp rather than starlette + uvicorn: it is already installed (faust depends on it), so
the SDK adds no server stack; it gives a request size limit (``client_max_size``),
middlewares for auth, and a runner that starts and stops inside our own event loop, which
the lifecycle needs (``main`` serves until ``stop``).

Each request's items are produced and flushed before the response: a 2xx means Kafka has
them. Publishing is serialised by a lock, so a delivery failure is reported to the request
that caused it rather than to whichever request flushed next.
"""

from __future__ import annotations

import asyncio
import hmac
import socket
import threading
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dealstream.connectors.base import CheckResult
from dealstream.connectors.sdk.items import Item
from dealstream.connectors.sdk.settings import PushSettings
from dealstream.connectors.sdk.source import SourceConnector

Q = TypeVar("Q", bound=PushSettings)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPEN_PATHS = frozenset({"/healthz", "/metrics"})


def error_response(status: int, message: str, **extra: Any) -> web.Response:
    """JSON error bodies everywhere, so clients always learn what was wrong."""
    return web.json_response({"error": message, **extra}, status=status)


class PushConnector(SourceConnector[Q]):
    """Subclasses implement ``routes``; ``publish`` produces a request's items durably."""

    def __init__(self, settings: Q, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.ready = threading.Event()
        self.url = ""
        self._publish_lock: asyncio.Lock | None = None

    @abstractmethod
    def routes(self) -> Sequence[web.RouteDef]:
        """The source's own endpoints; ``/healthz`` and ``/metrics`` are added by the SDK."""

    async def acheck(self) -> CheckResult:
        host, port = self.settings.host, self.settings.port
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError as error:
                return CheckResult(False, f"cannot listen on {host}:{port}: {error}")
        return CheckResult(True, f"can listen on {host}:{port}")

    async def publish(self, items: Sequence[Item]) -> None:
        """Produce and flush ``items``; raises ``DeliveryError`` if Kafka did not take them."""
        if self._publish_lock is None:
            self._publish_lock = asyncio.Lock()
        async with self._publish_lock:
            for item in items:
                self.emit(item)
            await self.flush()
            self.metrics.cursor_confirmed()

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        token = self.settings.auth_token
        if token is None or request.path in OPEN_PATHS:
            return await handler(request)
        expected = f"Bearer {token.get_secret_value()}".encode()
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return error_response(401, "missing or wrong bearer token (Authorization header)")
        return await handler(request)

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"ok": True, "connector": self.settings.source})

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    def application(self) -> web.Application:
        app = web.Application(
            client_max_size=self.settings.max_body_bytes, middlewares=[self._auth]
        )
        app.add_routes([web.get("/healthz", self._healthz), web.get("/metrics", self._metrics)])
        app.add_routes(self.routes())
        return app

    async def main(self) -> None:
        runner = web.AppRunner(self.application(), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.settings.host, self.settings.port)
            await site.start()
            host, port = runner.addresses[0][:2]
            self.url = f"http://{host}:{port}"
            self.ready.set()
            while self.running:
                await asyncio.sleep(0.1)
        finally:
            await runner.cleanup()
            self.ready.clear()
