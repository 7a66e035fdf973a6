"""HMAC-signed state snapshots: a changelog entry is unpickled only if this deployment wrote it.

Model state (River objects) can only be snapshotted with pickle, and unpickling runs code. The
changelog topic is internal, but anyone who can write to it could otherwise make every worker
that restores from it run their code; a keyed MAC over each entry closes that door.
"""

from __future__ import annotations

import hashlib
import hmac

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

MAC_BYTES = 32


class StateSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DEALSTREAM_STATE_", extra="forbid")

    key: SecretStr = SecretStr("dealstream-development-state-key-change-me")
    """HMAC key for state snapshots; set DEALSTREAM_STATE_KEY in production."""


class SignatureError(ValueError):
    """A snapshot whose MAC does not match: written by someone else, or corrupted."""


class StateSigner:
    """Prefixes values with an HMAC-SHA256 and checks it before they are trusted.

    >>> signer = StateSigner(SecretStr("k"))
    >>> signer.verify(signer.sign(b"state"))
    b'state'
    >>> signer.verify(b"x" * 32 + b"state")
    Traceback (most recent call last):
    ...
    dealstream.streams.state_signing.SignatureError: state snapshot signature does not match
    """

    def __init__(self, key: SecretStr) -> None:
        self._key = key.get_secret_value().encode()

    def _mac(self, value: bytes) -> bytes:
        return hmac.new(self._key, value, hashlib.sha256).digest()

    def sign(self, value: bytes) -> bytes:
        return self._mac(value) + value

    def verify(self, signed: bytes) -> bytes:
        mac, value = signed[:MAC_BYTES], signed[MAC_BYTES:]
        if len(mac) != MAC_BYTES or not hmac.compare_digest(mac, self._mac(value)):
            raise SignatureError("state snapshot signature does not match")
        return value
