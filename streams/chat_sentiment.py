"""Chat messages scored by the review model of the same partition number (no learning).

Chats carry no stars, so they only borrow what the reviews taught: ``wecom.messages.v1`` and
``reviews.posts.v1`` have the same partition count and the worker's range assignor gives one
worker the same partition numbers of both, so chat partition ``p`` is scored by the model that
review partition ``p`` keeps (the model is not per customer, only per partition). Bad chat
records are dead-lettered by the compliance pipeline, which owns the topic; here they are
counted. The chat text is not copied into the table: the score, label and ids are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import cast

from confluent_kafka import Message
from prometheus_client import Counter

from dealstream.models.sentiment import SentimentModel
from dealstream.sinks.clickhouse import tables
from dealstream.streams.decoding import RecordReader
from dealstream.streams.pipeline import Row, TableSpec

TOPIC = "wecom.messages.v1"
EVENT_TYPE = "wecom.message"
CHAT_SENTIMENT = TableSpec(tables.CHAT_SENTIMENT, tables.CHAT_SENTIMENT_COLUMNS)

CHATS_SKIPPED = Counter(
    "dealstream_chat_sentiment_skipped_total",
    "Chat records not scored (dead-lettered by the compliance pipeline)",
    ["reason"],
)


def chat_rows(
    messages: Sequence[Message],
    reader: RecordReader,
    model_of: Callable[[int], SentimentModel],
    *,
    model_name: str,
    model_version: str,
    scored_at: datetime,
) -> list[Row]:
    """One ``chat_sentiment`` row per text message that has any text."""
    checked = reader.read(messages)
    for rejected in checked.rejected:
        CHATS_SKIPPED.labels(f"{rejected.stage.lower()}:{rejected.code}").inc()
    rows: list[Row] = []
    for message, record in checked.records:
        p = record["payload"]
        text = str(p.get("text") or "")
        if not text.strip():
            CHATS_SKIPPED.labels("no_text").inc()
            continue
        partition = cast(int, message.partition())
        model = model_of(partition)
        found = model.scored(text)
        rows.append(
            (
                record["event_id"], p["conversation_id"], p["message_id"], p["channel"],
                p["speaker_role"], p.get("rep_id"), record["customer_ref"],
                record["occurred_at"], found.score, found.label, model_name, model_version,
                model.learned, scored_at, message.topic(), partition, message.offset(),
            )
        )  # fmt: skip
    return rows
