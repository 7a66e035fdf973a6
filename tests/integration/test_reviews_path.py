"""Reviews end to end on the real broker: export → connector → worker → chDB and one alert;
chats scored by the same models."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer

from dealstream.broker.clients import make_producer
from dealstream.broker.settings import KafkaSettings
from dealstream.connectors.output import EventWriter
from dealstream.connectors.reviews.files import ReviewsFileConnector, ReviewsFileSettings
from dealstream.connectors.simulator.chats import chats
from dealstream.connectors.simulator.reviews import NEUTRAL_ZH, reviews, stores, write_jsonl
from dealstream.schemas.codec import Decoder
from tests.integration.observe import chdb_query


def read_topic(
    kafka: KafkaSettings, topic: str, event_type: str, *, at_least: int, timeout_s: float = 30
) -> list[dict[str, Any]]:
    """Every record on ``topic``: read until ``at_least`` arrived and 2 polls come back empty."""
    consumer = Consumer(
        {**kafka.client_config(), "group.id": f"it-{uuid.uuid4().hex}",
         "auto.offset.reset": "earliest"}
    )  # fmt: skip
    consumer.subscribe([kafka.topic(topic)])
    decode = Decoder(event_type).decode
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    quiet = 0
    try:
        while time.monotonic() < deadline and (len(found) < at_least or quiet < 2):
            batch = [m for m in consumer.consume(500, 1.0) if m.error() is None]
            quiet = 0 if batch else quiet + 1
            found.extend(decode(m.value() or b"", m.headers()) for m in batch)  # type: ignore[arg-type]
    finally:
        consumer.close()
    return found


def test_reviews_are_scored_into_chdb_and_a_bad_store_alerts_once(
    kafka: KafkaSettings, tmp_path: Path, worker_factory: Any
) -> None:
    # seed 21: ST001 gets 10 bad reviews within some 3 hours, no other store more than 3
    generated = list(
        reviews(21, 240, store_list=stores(4), negative_stores=("ST001",),
                spacing=timedelta(minutes=5))
    )  # fmt: skip
    export = write_jsonl(tmp_path / "reviews.jsonl", generated)
    with export.open("a", encoding="utf-8") as handle:
        handle.write('{"review_id": "broken"\n')  # a bad line: dead-lettered at the connector
    connector = ReviewsFileConnector(
        ReviewsFileSettings(paths=[export], cursor_file=tmp_path / "cursor.json"), kafka=kafka
    )
    stats = connector.execute()
    assert (stats.produced, stats.dead_letters) == (240, 1)

    writer = EventWriter(
        make_producer(kafka, client_id="it-chats"), event_type="wecom.message", source="it",
        topic_prefix=kafka.topic_prefix,
    )  # fmt: skip
    for chat in chats(seed=5, count=40):
        assert writer.write(chat.record, raw=b"", position="it")
    writer.flush()

    chdb = tmp_path / "chdb"
    worker = worker_factory(
        kafka, chdb, f"it-{uuid.uuid4().hex[:6]}", "--idle-stop", "4",
        DEALSTREAM_REVIEWS_NEGATIVE_RUN="7", DEALSTREAM_REVIEWS_WINDOW_S="10800",
        DEALSTREAM_REVIEWS_COOLDOWN_S=str(30 * 86400),
    )  # fmt: skip
    assert worker.start().wait(timeout=120) == 0

    rows = chdb_query(
        chdb,
        "SELECT store_id, label, rating, learned, text FROM review_sentiment FINAL",
    )
    assert len(rows) == 240
    assert sum(1 for r in rows if r[3]) == sum(
        1 for g in generated if g.item["rating"] in (1, 2, 4, 5)
    )
    written_negative = {g.item["text"] for g in generated if g.negative}
    # neutral-written reviews ("还行吧") have no right answer; the models of the 4 partitions
    # start from the seed lexicon and have seen ~60 reviews each by the end
    judged = [r for r in rows if r[1] != "neutral" and r[4] not in NEUTRAL_ZH]
    agree = sum((r[1] == "negative") == (r[4] in written_negative) for r in judged)
    assert agree / len(judged) > 0.9

    scored_chats = chdb_query(chdb, "SELECT label, model_examples FROM chat_sentiment FINAL")
    assert len(scored_chats) == 40 and {r[0] for r in scored_chats} <= {
        "negative", "neutral", "positive",
    }  # fmt: skip

    alerts = read_topic(kafka, "alerts.channel.v1", "alert", at_least=1)
    review_alerts = [a for a in alerts if a["rule_id"] == "reviews.negative_run"]
    assert [a["entity_key"] for a in review_alerts] == ["ST001"]
    (alert,) = review_alerts
    assert len(alert["input_event_ids"]) == 7 and alert["model_name"] == "review-sentiment"
    assert chdb_query(
        chdb, "SELECT count() FROM dead_letters WHERE original_topic LIKE '%reviews.posts.v1'"
    ) == [(1,)]
