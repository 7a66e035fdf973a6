"""Review sentiment pipeline on in-memory records: rows, learning, run alerts, state restore."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import Message
from pydantic import SecretStr

from dealstream.connectors.pii import Desensitizer
from dealstream.connectors.reviews.mapping import review_event
from dealstream.connectors.simulator.reviews import Review, reviews
from dealstream.schemas import codec
from dealstream.schemas.samples import sample_event
from dealstream.sinks.clickhouse import ClickHouseSettings, connect, migrate, tables
from dealstream.sinks.clickhouse.batching import BatchingSink
from dealstream.streams.changelog import State
from dealstream.streams.pipeline import StateRecord
from dealstream.streams.reviews import (
    CHANGELOG_TOPIC,
    TOPIC,
    ReviewSentimentPipeline,
    ReviewSettings,
)
from dealstream.streams.state_signing import StateSigner

C = {name: i for i, name in enumerate(tables.REVIEW_SENTIMENT_COLUMNS)}
PII = Desensitizer(SecretStr("k"))


class DictChangelog:
    def __init__(self) -> None:
        self.partitions: State = {}

    def write(self, records: Iterable[StateRecord]) -> None:
        for r in records:
            assert r.topic == CHANGELOG_TOPIC and r.value is not None
            self.partitions.setdefault(r.partition, {})[r.key] = r.value

    def read(self, topic: str, partitions: Sequence[int]) -> State:
        return {p: dict(self.partitions.get(p, {})) for p in partitions}


def message(review: Review, partition: int, offset: int) -> Message:
    record = review_event(
        review.item, platform="x", source="reviews-sim", pii=PII, ingested_at_ms=1_780_000_000_000
    )
    value, headers = codec.encode("review", record)
    key = str(review.item["store_id"]).encode()
    return Message(
        topic=TOPIC, partition=partition, offset=offset, key=key, value=value, headers=headers
    )


def bad_store(count: int, start: datetime, *, minutes: int = 10, tag: str = "B") -> list[Review]:
    """``count`` one-star reviews of ST009, ``minutes`` apart."""
    return [
        Review(
            {
                "review_id": f"{tag}{i}",
                "platform": "jd",
                "store_id": "ST009",
                "region": "CN-EAST",
                "rating": 1,
                "text": "质量太差，坏了，要求退款，很失望",
                "posted_at": (start + timedelta(minutes=minutes * i)).isoformat(),
            },
            True,
        )
        for i in range(count)
    ]


def pipeline(log: DictChangelog, **settings: Any) -> ReviewSentimentPipeline:
    p = ReviewSentimentPipeline(
        state_reader=log, settings=ReviewSettings(**settings), signer=StateSigner(SecretStr("s"))
    )
    p.assigned([(TOPIC, 0), (TOPIC, 1)])
    return p


def test_every_review_gets_a_row_and_rated_ones_teach_the_model() -> None:
    data = list(reviews(5, 300))
    p = pipeline(DictChangelog())
    batch = [message(r, i % 2, i // 2) for i, r in enumerate(data)]
    result = p.process(batch)
    rows = result.rows[tables.REVIEW_SENTIMENT]
    assert len(rows) == result.processed == 300
    assert all(len(row) == len(C) for row in rows)
    rated = sum(1 for r in data if r.item["rating"] in (1, 2, 4, 5))
    assert sum(row[C["learned"]] for row in rows) == rated
    late = rows[150:]  # after some learning, labels follow what was written
    hits = sum(
        (row[C["label"]] == "negative") == review.negative
        for row, review in zip(late, data[150:], strict=True)
        if row[C["label"]] != "neutral"
    )
    assert hits / len(late) > 0.9
    assert result.dead_letters == []


def test_a_run_of_negative_reviews_alerts_once_then_cools_down() -> None:
    start = datetime(2026, 3, 2, tzinfo=UTC)
    p = pipeline(DictChangelog(), negative_run=3, window_s=3600, cooldown_s=6 * 3600)
    batch = [message(r, 0, i) for i, r in enumerate(bad_store(8, start))]
    alerts = p.process(batch).alerts
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert["kind"] == "channel" and alert["entity_key"] == "ST009"
    assert alert["rule_id"] == "reviews.negative_run" and alert["model_name"]
    assert len(alert["input_event_ids"]) == 3
    # after the cooldown the same store alerts again
    later = bad_store(3, start + timedelta(hours=7), tag="L")
    again = p.process([message(r, 0, 100 + i) for i, r in enumerate(later)]).alerts
    assert len(again) == 1 and again[0]["alert_id"] != alert["alert_id"]


def test_spread_out_negatives_do_not_alert() -> None:
    start = datetime(2026, 3, 2, tzinfo=UTC)
    p = pipeline(DictChangelog(), negative_run=3, window_s=3600)
    batch = [message(r, 0, i) for i, r in enumerate(bad_store(6, start, minutes=45))]
    assert p.process(batch).alerts == []


def test_restore_from_changelog_continues_identically_and_replays_are_not_relearned() -> None:
    data = list(reviews(8, 240))
    batch = [message(r, i % 2, i // 2) for i, r in enumerate(data)]
    first, second = batch[:160], batch[160:]
    log = DictChangelog()
    live = pipeline(log)
    live.process(first)
    log.write(live.snapshot())
    assert live.snapshot() == []  # nothing changed since
    restored = pipeline(log)
    # a replay of the last records of ``first`` (crash before commit) is scored, not learned
    replay = restored.process(first[-20:]).rows[tables.REVIEW_SENTIMENT]
    assert not any(row[C["learned"]] for row in replay)
    a = live.process(second).rows[tables.REVIEW_SENTIMENT]
    b = restored.process(second).rows[tables.REVIEW_SENTIMENT]
    assert [row[C["score"]] for row in a] == [row[C["score"]] for row in b]
    restored.revoked([(TOPIC, 0)])
    assert restored.model(0) is None and restored.model(1) is not None


def test_state_signed_with_another_key_is_ignored() -> None:
    log = DictChangelog()
    live = pipeline(log)
    live.process([message(r, 0, i) for i, r in enumerate(reviews(2, 50))])
    log.write(live.snapshot())
    other = ReviewSentimentPipeline(state_reader=log, signer=StateSigner(SecretStr("other")))
    other.assigned([(TOPIC, 0)])
    model = other.model(0)
    assert model is not None and model.learned == 0  # started over, nothing unpickled


def test_undecodable_records_are_dead_lettered() -> None:
    p = pipeline(DictChangelog())
    result = p.process([Message(topic=TOPIC, partition=0, offset=0, value=b"\x01")])
    assert result.processed == 0 and len(result.dead_letters) == 1
    assert result.dead_letters[0].stage == "DECODE"


def test_rows_land_in_the_migrated_table_and_replays_collapse(tmp_path: Path) -> None:
    ch = ClickHouseSettings(url=f"chdb://{tmp_path / 'chdb'}", flush_retry_s=0)
    client = connect(settings=ch)
    try:
        migrate(client)
        described = client.query(
            "SELECT name FROM system.columns WHERE database = currentDatabase() "
            "AND table = 'review_sentiment' ORDER BY position"
        ).result_rows
        assert tuple(r[0] for r in described) == tables.REVIEW_SENTIMENT_COLUMNS
        sink = BatchingSink(client, settings=ch)
        sink.register(tables.REVIEW_SENTIMENT, tables.REVIEW_SENTIMENT_COLUMNS)
        batch = [message(r, 0, i) for i, r in enumerate(reviews(9, 120))]
        for _ in range(2):
            sink.add(tables.REVIEW_SENTIMENT, pipeline(DictChangelog()).process(batch).rows[
                tables.REVIEW_SENTIMENT])  # fmt: skip
            sink.flush_all()
        assert client.command("SELECT count() FROM review_sentiment FINAL") == 120
        health = client.query(
            "SELECT sum(reviews), sum(negative) FROM store_review_health_daily"
        ).result_rows[0]
        assert health[0] == 120 and 0 < health[1] < 120
    finally:
        client.close()


def chat_message(text: str, partition: int, offset: int) -> Message:
    record = sample_event("wecom.message", text=text, message_id=f"m{offset}")
    record["event_id"] = f"chat-{partition}-{offset}"
    value, headers = codec.encode("wecom.message", record)
    return Message(
        topic="wecom.messages.v1", partition=partition, offset=offset, value=value, headers=headers
    )


def test_chats_are_scored_by_the_partition_model_and_never_learned_from() -> None:
    p = ReviewSentimentPipeline(
        state_reader=DictChangelog(), chat_topic="wecom.messages.v1",
        signer=StateSigner(SecretStr("s")),
    )  # fmt: skip
    p.assigned([(TOPIC, 0), ("wecom.messages.v1", 0)])
    reviews_batch = [message(r, 0, i) for i, r in enumerate(reviews(5, 60))]
    chats = [
        chat_message("太失望了，送来就坏了，我要投诉", 0, 0),
        chat_message("非常满意，谢谢你们", 0, 1),
        chat_message("   ", 0, 2),  # nothing to score
        Message(topic="wecom.messages.v1", partition=0, offset=3, value=b"\x01"),
    ]
    learned = p.process(reviews_batch).rows[tables.REVIEW_SENTIMENT][-1][C["model_examples"]]
    result = p.process([*chats[:2], reviews_batch[0], *chats[2:]])  # a mixed batch
    rows = result.rows[tables.CHAT_SENTIMENT]
    chat_columns = {name: i for i, name in enumerate(tables.CHAT_SENTIMENT_COLUMNS)}
    assert [row[chat_columns["label"]] for row in rows] == ["negative", "positive"]
    assert all(len(row) == len(chat_columns) for row in rows)
    assert rows[0][chat_columns["model_examples"]] == learned  # chats taught nothing
    assert len(result.rows[tables.REVIEW_SENTIMENT]) == 1  # the replayed review
    assert result.dead_letters == []  # the compliance pipeline dead-letters bad chats
