"""WeCom callback receiver: URL verification (GET) and encrypted message callbacks (POST).

Both requests carry ``msg_signature``, ``timestamp`` and ``nonce``. A request is refused
(401) when the signature is wrong, and (403) when its timestamp is outside
``replay_window_s`` of our clock or its nonce was already accepted within that window, so a
captured callback cannot be replayed. Nonces are remembered only once a request succeeded,
so WeCom's own retries of a request we failed (503) still get through; the message's
deterministic event id dedups a retry we had in fact delivered.

A POST answers ``success`` once Kafka acknowledged the message (WeCom retries otherwise).
Callbacks that are events rather than chat messages are acknowledged and counted, not produced,
except a customer adding a rep (``change_external_contact``), the start of a journey.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from dealstream.connectors.output import DeliveryError
from dealstream.connectors.sdk import Emit, PushConnector, PushSettings, RecordError, Reject
from dealstream.connectors.sdk import error_response as _error
from dealstream.connectors.wecom.crypto import CryptoError, WecomCrypto
from dealstream.connectors.wecom.messages import EVENT_TYPE, fields, parse_xml, to_record


class WecomSettings(PushSettings):
    model_config = SettingsConfigDict(env_prefix="DEALSTREAM_WECOM_", extra="forbid")

    source: str = "wecom"
    path: str = "/wecom/callback"
    token: SecretStr = SecretStr("")
    """The callback Token from the WeCom admin console."""
    encoding_aes_key: SecretStr = SecretStr("")
    """The 43-character EncodingAESKey from the admin console."""
    corp_id: str = ""
    """Receive id every plaintext must end with (the corp id, or the suite id for apps)."""
    state_prefix: str = ""
    """Prefix of the channel QR code ``state`` that names a store (``store:`` for
    ``store:GZ003``); empty: the whole state is the store id."""
    replay_window_s: int = Field(300, gt=0)
    max_nonces: int = Field(100_000, gt=0)

    @field_validator("encoding_aes_key")
    @classmethod
    def _aes_key_shape(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value() and len(value.get_secret_value()) != 43:
            raise ValueError("EncodingAESKey must be 43 characters")
        return value


class WecomConnector(PushConnector[WecomSettings]):
    """Receives WeCom callbacks, verifies and decrypts them, produces ``wecom.message``."""

    name = "wecom"
    settings_class = WecomSettings
    event_types = (EVENT_TYPE,)

    def __init__(self, settings: WecomSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self._crypto: WecomCrypto | None = None
        self._nonces: OrderedDict[str, float] = OrderedDict()
        self.ignored_events = 0

    @property
    def crypto(self) -> WecomCrypto:
        if self._crypto is None:
            s = self.settings
            if not (s.token.get_secret_value() and s.encoding_aes_key.get_secret_value()):
                raise ValueError("set DEALSTREAM_WECOM_TOKEN and DEALSTREAM_WECOM_ENCODING_AES_KEY")
            if not s.corp_id:
                raise ValueError("set corp_id (DEALSTREAM_WECOM_CORP_ID): the receive id")
            self._crypto = WecomCrypto(
                s.token.get_secret_value(), s.encoding_aes_key.get_secret_value(), s.corp_id
            )
        return self._crypto

    async def open(self) -> None:
        _ = self.crypto  # configuration errors fail at setup, not on the first callback

    def routes(self) -> Sequence[web.RouteDef]:
        return [
            web.get(self.settings.path, self.verify_url),
            web.post(self.settings.path, self.receive),
        ]

    # -- replay protection ------------------------------------------------------------------
    def _fresh(self, request: web.Request, encrypted: str) -> tuple[str, web.Response | None]:
        """The nonce, or the response refusing a forged, stale or replayed request."""
        query = request.query
        timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
        if not (timestamp and nonce and query.get("msg_signature")):
            return nonce, _error(400, "msg_signature, timestamp and nonce are required")
        try:
            self.crypto.verify(query["msg_signature"], timestamp, nonce, encrypted)
        except CryptoError as error:
            self.metrics.poll_error(error.code)
            return nonce, _error(401, "signature verification failed")
        now = time.time()
        window = self.settings.replay_window_s
        try:
            stale = abs(now - int(timestamp)) > window
        except ValueError:
            stale = True
        if stale:
            self.metrics.poll_error("stale_timestamp")
            return nonce, _error(403, f"timestamp outside the {window}s replay window")
        while self._nonces and next(iter(self._nonces.values())) < now - window:
            self._nonces.popitem(last=False)
        if nonce in self._nonces:
            self.metrics.poll_error("replayed_nonce")
            return nonce, _error(403, "nonce already used within the replay window")
        return nonce, None

    def _remember(self, nonce: str) -> None:
        self._nonces[nonce] = time.time()
        self._nonces.move_to_end(nonce)
        while len(self._nonces) > self.settings.max_nonces:
            self._nonces.popitem(last=False)

    # -- handlers ---------------------------------------------------------------------------
    async def verify_url(self, request: web.Request) -> web.Response:
        """URL verification: answer the decrypted ``echostr`` in plain text."""
        echostr = request.query.get("echostr", "")
        if not echostr:
            return _error(400, "echostr is required")
        nonce, refused = self._fresh(request, echostr)
        if refused is not None:
            return refused
        try:
            plain = self.crypto.decrypt(echostr)
        except CryptoError as error:
            return _error(400, f"echostr does not decrypt: {error.code}")
        self._remember(nonce)
        return web.Response(body=plain, content_type="text/plain")

    async def _open(self, request: web.Request) -> tuple[str, dict[str, str]] | web.Response:
        """Nonce and decrypted fields of a POSTed callback, or the response refusing it."""
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"body larger than {self.settings.max_body_bytes} bytes")
        try:
            encrypted = fields(parse_xml(body)).get("Encrypt", "")
            if not encrypted:
                raise RecordError("no_encrypt", "no <Encrypt> element")
        except RecordError as error:
            return _error(400, error.message)
        nonce, refused = self._fresh(request, encrypted)
        if refused is not None:
            return refused
        try:
            return nonce, fields(parse_xml(self.crypto.decrypt(encrypted)))
        except (CryptoError, RecordError) as error:
            return _error(400, f"encrypted payload refused: {error}")

    async def receive(self, request: web.Request) -> web.Response:
        opened = await self._open(request)
        if isinstance(opened, web.Response):
            return opened
        nonce, inner = opened
        item = self._item(inner, request)
        if item is None:
            self.ignored_events += 1
        else:
            try:
                await self.publish([item])
            except DeliveryError as error:
                return _error(503, f"Kafka did not acknowledge the message: {error}")
        self._remember(nonce)
        return web.Response(text="success")

    def _item(self, inner: dict[str, str], request: web.Request) -> Emit | Reject | None:
        now_ms = int(time.time() * 1000)
        position = f"{request.remote}:{inner.get('MsgId') or request.query.get('nonce')}"
        try:
            mapped = to_record(
                inner,
                pii=self.pii,
                source=self.settings.source,
                ingested_at_ms=now_ms,
                state_prefix=self.settings.state_prefix,
            )
        except RecordError as error:
            # the dead letter keeps the desensitised fields, never raw customer ids
            hidden = ("FromUserName", "ExternalUserID", "UnionId", "UnionID")
            safe = {k: v for k, v in inner.items() if k not in hidden}
            raw = json.dumps(safe, ensure_ascii=False).encode()
            return Reject(EVENT_TYPE, raw, position, error.code, error.message)
        if mapped.record is None:
            return None
        raw = json.dumps(mapped.summary, ensure_ascii=False).encode()
        return Emit(EVENT_TYPE, mapped.record, raw, position)
