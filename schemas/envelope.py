"""Helpers for envelope fields every connector fills the same way.

>>> derive_event_id("pos-file", "T-1", 2) == derive_event_id("pos-file", "T-1", 2)
True
>>> to_millis(datetime(2000, 1, 1, tzinfo=UTC))
946684800000
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def derive_event_id(source: str, *natural_key: object) -> str:
    """Deterministic event id: the same source record always gets the same id, so a re-sent
    record deduplicates in the sinks. 32 hex chars of SHA-256 over source and key parts."""
    text = "\x1f".join([source, *(str(part) for part in natural_key)])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def to_millis(value: datetime | int) -> int:
    """Epoch milliseconds from a datetime (naive means UTC, as fastavro reads it) or int."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return (value - _EPOCH) // timedelta(milliseconds=1)
    return int(value)


def from_millis(millis: int) -> datetime:
    """Aware UTC datetime from epoch milliseconds (what the decoder returns).

    >>> from_millis(946684800000).isoformat()
    '2000-01-01T00:00:00+00:00'
    """
    return _EPOCH + timedelta(milliseconds=millis)
