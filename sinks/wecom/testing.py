"""A local fake of WeCom's message API for tests: ``gettoken`` and ``message/send`` on a free port.

It checks the corp id and secret, hands out numbered tokens, refuses unknown or revoked tokens
with 40014, and records every message it accepts. Tests can make the next send answer 42001
(token expired: the client must fetch a new token and resend), make it busy (-1), or make it
answer something no real server would (``forge``).

>>> with FakeWecom(corp_id="ww1", secret="s3cr3t") as fake:
...     fake.base_url.startswith("http://127.0.0.1:")
True
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class _Behaviour:
    expire_next: int = 0  # sends answered 42001 (and the token revoked)
    busy_next: int = 0  # sends answered -1 (system busy)
    forge_next: list[bytes] = field(default_factory=list)  # raw bodies answered instead
    forge_token: list[bytes] = field(default_factory=list)  # same, for gettoken


class FakeWecom:
    """Start with ``with FakeWecom(...) as fake:``; ``fake.messages`` holds accepted sends."""

    def __init__(self, *, corp_id: str, secret: str, expires_in: int = 7200) -> None:
        self.corp_id, self.secret, self.expires_in = corp_id, secret, expires_in
        self.messages: list[dict[str, Any]] = []
        self.token_requests = 0
        self.send_requests = 0
        self.behaviour = _Behaviour()
        self._valid: set[str] = set()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeWecom:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def expire_next(self, n: int = 1) -> None:
        self.behaviour.expire_next += n

    def busy_next(self, n: int = 1) -> None:
        self.behaviour.busy_next += n

    def forge_next(self, body: bytes) -> None:
        self.behaviour.forge_next.append(body)

    def forge_token_next(self, body: bytes) -> None:
        self.behaviour.forge_token.append(body)

    # -- the API -----------------------------------------------------------------------------
    def _gettoken(self, query: dict[str, str]) -> dict[str, Any] | bytes:
        self.token_requests += 1
        if self.behaviour.forge_token:
            return self.behaviour.forge_token.pop(0)
        if query.get("corpid") != self.corp_id or query.get("corpsecret") != self.secret:
            return {"errcode": 40001, "errmsg": "invalid credential"}
        token = f"tok-{self.token_requests}"
        self._valid.add(token)
        return {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.expires_in}

    def _send(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any] | bytes:
        self.send_requests += 1
        token = query.get("access_token", "")
        b = self.behaviour
        if b.forge_next:
            return b.forge_next.pop(0)
        if token not in self._valid:
            return {"errcode": 40014, "errmsg": "invalid access_token"}
        if b.expire_next:
            b.expire_next -= 1
            self._valid.discard(token)
            return {"errcode": 42001, "errmsg": "access_token expired"}
        if b.busy_next:
            b.busy_next -= 1
            return {"errcode": -1, "errmsg": "system busy"}
        if not isinstance(body.get("agentid"), int) or body.get("msgtype") not in body:
            return {"errcode": 40008, "errmsg": "invalid message type"}
        self.messages.append(body)
        return {"errcode": 0, "errmsg": "ok", "invaliduser": "", "msgid": f"m{len(self.messages)}"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet

            def _answer(self, answer: dict[str, Any] | bytes) -> None:
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _query(self) -> tuple[str, dict[str, str]]:
                url = urlsplit(self.path)
                return url.path, {k: v[0] for k, v in parse_qs(url.query).items()}

            def do_GET(self) -> None:
                path, query = self._query()
                if path != "/cgi-bin/gettoken":
                    self.send_error(404)
                    return
                with fake._lock:
                    self._answer(fake._gettoken(query))

            def do_POST(self) -> None:
                path, query = self._query()
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if path != "/cgi-bin/message/send":
                    self.send_error(404)
                    return
                try:
                    body = json.loads(raw)
                except ValueError:
                    self._answer({"errcode": 47001, "errmsg": "data format error"})
                    return
                with fake._lock:
                    self._answer(fake._send(query, body if isinstance(body, dict) else {}))

        return Handler


@contextmanager
def running(*, corp_id: str = "ww-test", secret: str = "test-secret") -> Iterator[FakeWecom]:  # noqa: S107
    """A started fake, stopped on exit."""
    with FakeWecom(corp_id=corp_id, secret=secret) as fake:
        yield fake
