"""What a source hands to the SDK: events to produce, or rejects to dead-letter.

Connectors return these as plain values (errors are data, DESIGN §3.4) and never talk to Kafka
themselves, which is what lets :mod:`dealstream.connectors.sdk.testing` run them without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Emit:
    """A full event record (envelope + payload) of ``event_type``, with the bytes it came from."""

    event_type: str
    record: Mapping[str, Any]
    raw: bytes
    position: str


@dataclass(frozen=True, slots=True)
class Reject:
    """A source record that could not become an event: it goes to ``dlq.<topic>`` as is."""

    event_type: str
    raw: bytes
    position: str
    code: str
    message: str


Item = Emit | Reject
