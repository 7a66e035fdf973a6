"""The bench's event mix: real simulator POS ticket lines and WeCom chats, Avro-encoded once.

Shared by the full-path benchmark (``bench/run.py``) and the in-memory pipeline costs
(``bench/pipeline_costs.py``), so both measure the same events.
"""

from __future__ import annotations

import time

from dealstream.connectors.pii import Desensitizer, PiiSettings
from dealstream.connectors.pos_file.parse import RowError, to_event
from dealstream.connectors.simulator.chats import chats
from dealstream.connectors.simulator.pos import live_rows
from dealstream.schemas import codec
from dealstream.schemas.catalog import event_type
from dealstream.streams.pos import TOPIC as POS_TOPIC

# (topic base name, key, value, headers, event id of a chat that should raise an alert)
Encoded = tuple[str, bytes | None, bytes, list[tuple[str, bytes | None]], str | None]
CHAT_TOPIC = "wecom.messages.v1"
CHAT_EVERY = 7  # one event in 7 is a WeCom chat message, the rest POS ticket lines


def make_events(count: int, seed: int = 7) -> list[Encoded]:
    """Mixed realistic events, encoded once: POS ticket lines (simulator rows -> connector
    mapping -> Avro) and, one in ``CHAT_EVERY``, WeCom chats of which 10% break a rule."""
    pii = Desensitizer(PiiSettings().key)
    et = event_type("pos.transaction")
    chat_type = event_type("wecom.message")
    now_ms = int(time.time() * 1000)
    out: list[Encoded] = []
    talk = chats(seed, count // CHAT_EVERY + 1, violation_rate=0.1)
    for index, row in enumerate(live_rows(seed=seed, count=count)):
        if index % CHAT_EVERY == CHAT_EVERY - 1:
            chat = next(talk)
            value, headers = codec.encode(chat_type, chat.record)
            alerting = chat.record["event_id"] if chat.violating else None
            out.append((CHAT_TOPIC, chat_type.key(chat.record), value, list(headers), alerting))
            continue
        try:
            record = to_event(row, pii=pii, source="bench", ingested_at_ms=now_ms)
        except RowError:
            continue
        value, headers = codec.encode(et, record)
        out.append((POS_TOPIC, et.key(record), value, list(headers), None))
    return out
