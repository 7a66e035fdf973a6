"""Desensitisation at the edge: customer identifiers become keyed HMACs before Kafka sees them.

The same identifier always maps to the same reference (so journeys can be stitched), the key
never leaves the connector, and the kind is part of the MAC so a phone number and a member id
that happen to share digits never collide.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

_NOT_DIGIT = re.compile(r"\D")


class PiiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DEALSTREAM_PII_", extra="forbid")

    key: SecretStr = SecretStr("dealstream-development-key-change-me")
    """HMAC key; set DEALSTREAM_PII_KEY in production (the default is for demos only)."""


class Desensitizer:
    """Keyed HMAC-SHA256 references for customer identifiers.

    >>> d = Desensitizer(SecretStr("k"))
    >>> d.phone("+86 138-0013-8000") == d.phone("13800138000")
    True
    >>> d.phone("13800138000").startswith("phone:") and "13800138000" not in d.phone("13800138000")
    True
    """

    def __init__(self, key: SecretStr) -> None:
        self._key = key.get_secret_value().encode()

    def ref(self, kind: str, value: str) -> str:
        mac = hmac.new(self._key, f"{kind}\x00{value}".encode(), hashlib.sha256).hexdigest()
        return f"{kind}:{mac[:32]}"

    def phone(self, raw: str) -> str:
        digits = _NOT_DIGIT.sub("", raw)
        if digits.startswith("86") and len(digits) == 13:
            digits = digits[2:]
        return self.ref("phone", digits)

    def member(self, raw: str) -> str:
        return self.ref("member", raw.strip())
