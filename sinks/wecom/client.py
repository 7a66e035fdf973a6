"""A client for WeCom's public message API: ``gettoken`` and ``message/send``.

The access token (``GET /cgi-bin/gettoken?corpid=…&corpsecret=…``) is cached until shortly
before the ``expires_in`` WeCom gives it, and fetched again when a send answers errcode 42001
(expired) or 40014 (invalid). Sends (``POST /cgi-bin/message/send?access_token=…``) are retried
with exponential backoff (tenacity) on transport errors, HTTP 5xx and WeCom's "busy" and rate
codes; any other errcode is final. Every answer is checked: one that is not a JSON object with
an integer ``errcode`` (or a token answer without a token) is a :class:`WecomResponseError`, never
taken for success.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from dealstream.sinks.wecom.settings import WecomSendSettings

log = logging.getLogger(__name__)

TOKEN_ERRORS = frozenset({42001, 40014})  # access token expired / invalid: fetch a new one
BUSY_ERRORS = frozenset({-1, 45009, 45033})  # system busy, API rate, too many concurrent calls


class WecomError(RuntimeError):
    """WeCom refused the call; ``errcode`` says why (see WeCom's global error codes)."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeCom errcode {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class WecomResponseError(WecomError):
    """An answer that is not what the API returns (not JSON, no errcode, no token...)."""

    def __init__(self, message: str) -> None:
        super().__init__(-2, message)


class _Transient(Exception):
    """Worth another attempt (wraps the cause)."""


@dataclass(frozen=True, slots=True)
class Sent:
    msgid: str
    invalid_users: tuple[str, ...]  # recipients WeCom did not know
    attempts: int


class WecomClient:
    """Thread-safe; one per worker. ``sleep`` is injectable so tests need not wait."""

    def __init__(
        self,
        settings: WecomSendSettings,
        *,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not settings.enabled:
            raise ValueError(
                "WeCom delivery needs DEALSTREAM_WECOM_SEND_CORP_ID, _CORP_SECRET and _AGENT_ID"
            )
        self.settings = settings
        self._http = http or httpx.Client(
            base_url=settings.base_url.rstrip("/"), timeout=settings.timeout_s
        )
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._token: str | None = None
        self._token_until = 0.0
        self.token_fetches = 0

    def close(self) -> None:
        self._http.close()

    # -- token -------------------------------------------------------------------------------
    def _access_token(self) -> str:
        with self._lock:
            if self._token is not None and self._clock() < self._token_until:
                return self._token
            s = self.settings
            params = {"corpid": s.corp_id, "corpsecret": s.corp_secret.get_secret_value()}
            body = self._call("GET", "/cgi-bin/gettoken", params=params)
            token, expires = body.get("access_token"), body.get("expires_in")
            if not isinstance(token, str) or not token or not isinstance(expires, int):
                raise WecomResponseError("gettoken answered errcode 0 without a usable token")
            if expires <= 0:
                raise WecomResponseError(f"gettoken answered expires_in={expires}")
            self._token = token
            self._token_until = self._clock() + max(0.0, expires - s.token_margin_s)
            self.token_fetches += 1
            return token

    def _forget(self, token: str) -> None:
        with self._lock:
            if self._token == token:
                self._token = None

    # -- messages ----------------------------------------------------------------------------
    def send_text(self, touser: str, content: str) -> Sent:
        return self.send({"touser": touser, "msgtype": "text", "text": {"content": content}})

    def send_textcard(
        self, touser: str, *, title: str, description: str, url: str, btntxt: str = "详情"
    ) -> Sent:
        card = {"title": title, "description": description, "url": url, "btntxt": btntxt}
        return self.send({"touser": touser, "msgtype": "textcard", "textcard": card})

    def send(self, message: Mapping[str, Any]) -> Sent:
        """Send one app message (``agentid`` is added); retried, token refreshed as needed."""
        body = {**message, "agentid": self.settings.agent_id}
        s = self.settings
        retrying = Retrying(
            stop=stop_after_attempt(s.max_attempts),
            wait=wait_exponential(multiplier=s.backoff_s, max=30),
            retry=retry_if_exception_type(_Transient),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    answer = self._send_once(body)
                    invalid = str(answer.get("invaliduser") or "")
                    return Sent(
                        msgid=str(answer.get("msgid") or ""),
                        invalid_users=tuple(u for u in invalid.split("|") if u),
                        attempts=attempt.retry_state.attempt_number,
                    )
        except _Transient as error:
            cause = error.__cause__
            if isinstance(cause, WecomError):
                raise cause from None
            raise WecomError(-3, f"gave up after {s.max_attempts} attempts: {cause}") from cause
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _send_once(self, body: Mapping[str, Any]) -> dict[str, Any]:
        token = self._access_token()
        try:
            return self._call(
                "POST", "/cgi-bin/message/send", params={"access_token": token}, json=body
            )
        except WecomError as error:
            if error.errcode in TOKEN_ERRORS:
                self._forget(token)
                raise _Transient() from error
            if error.errcode in BUSY_ERRORS:
                raise _Transient() from error
            raise

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str],
        json: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, params=params, json=json)
        except httpx.TransportError as error:
            raise _Transient() from error
        if response.status_code >= 500:
            raise _Transient() from WecomError(-1, f"HTTP {response.status_code}")
        if response.status_code != 200:
            raise WecomResponseError(f"HTTP {response.status_code} from {path}")
        try:
            body = response.json()
        except ValueError:
            raise WecomResponseError(f"{path} answered something that is not JSON") from None
        if not isinstance(body, dict):
            raise WecomResponseError(f"{path} answered JSON that is not an object")
        errcode = body.get("errcode")
        if not isinstance(errcode, int) or isinstance(errcode, bool):
            raise WecomResponseError(f"{path} answered without an integer errcode")
        if errcode != 0:
            raise WecomError(errcode, str(body.get("errmsg", "")))
        return body
