"""A WeCom server stand-in: builds signed, encrypted callbacks the way WeCom sends them.

Written separately from :mod:`.crypto` (``cryptography``'s PKCS7 padder, its own framing) so
that tests check the receiver against the published algorithm, not against itself. Also used
by ``dealstream simulate`` to drive a running receiver.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from dataclasses import dataclass
from xml.sax.saxutils import escape

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


@dataclass(frozen=True)
class Callback:
    params: dict[str, str]
    """Query string: msg_signature, timestamp, nonce (and echostr for URL verification)."""
    body: bytes


def message_xml(fields: dict[str, str | int]) -> bytes:
    """A plaintext callback: ``<xml><Name><![CDATA[value]]></Name>...</xml>``."""
    parts = []
    for name, value in fields.items():
        text = str(value) if isinstance(value, int) else f"<![CDATA[{value}]]>"
        parts.append(f"<{name}>{text}</{name}>")
    return f"<xml>{''.join(parts)}</xml>".encode()


class WecomServer:
    """Encrypts and signs as WeCom does for one app (token, EncodingAESKey, corp id)."""

    def __init__(self, token: str, encoding_aes_key: str, corp_id: str) -> None:
        self.token = token
        self.key = base64.b64decode(encoding_aes_key + "=")
        self.corp_id = corp_id.encode()

    def encrypt(self, plain: bytes) -> str:
        framed = os.urandom(16) + len(plain).to_bytes(4, "big") + plain + self.corp_id
        padder = padding.PKCS7(256).padder()  # WeCom pads to 32-byte blocks
        padded = padder.update(framed) + padder.finalize()
        encryptor = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16])).encryptor()
        return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()

    def sign(self, timestamp: str, nonce: str, encrypted: str) -> str:
        parts = sorted([self.token, timestamp, nonce, encrypted])
        return hashlib.sha1("".join(parts).encode(), usedforsecurity=False).hexdigest()

    def _params(self, encrypted: str, timestamp: int | None, nonce: str | None) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        once = nonce or os.urandom(6).hex()
        return {"msg_signature": self.sign(ts, once, encrypted), "timestamp": ts, "nonce": once}

    def verification(
        self, echo: str, *, timestamp: int | None = None, nonce: str | None = None
    ) -> Callback:
        encrypted = self.encrypt(echo.encode())
        return Callback({**self._params(encrypted, timestamp, nonce), "echostr": encrypted}, b"")

    def message(
        self,
        fields: dict[str, str | int],
        *,
        timestamp: int | None = None,
        nonce: str | None = None,
        agent_id: str = "1000002",
    ) -> Callback:
        encrypted = self.encrypt(message_xml(fields))
        body = (
            f"<xml><ToUserName><![CDATA[{escape(self.corp_id.decode())}]]></ToUserName>"
            f"<AgentID><![CDATA[{agent_id}]]></AgentID>"
            f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
        ).encode()
        return Callback(self._params(encrypted, timestamp, nonce), body)
