"""Review sentiment in the stream: score every review, learn from its stars, alert on bad runs.

Each input partition has its own online :class:`~dealstream.models.sentiment.SentimentModel`:
a review is scored first (so the score of a rated review is an honest, prequential one) and
then, if it has 1-2 or 4-5 stars, learned from. Every review becomes a ``review_sentiment``
row; a store whose negative reviews reach ``negative_run`` within ``window_s`` raises one
alert on ``alerts.channel.v1``, then stays quiet for ``cooldown_s``. Chats, when a chat topic
is given, are scored by the same models (:mod:`.chat_sentiment`).

State comes only from the changelog (``state.reviews.v1``, co-partitioned with the input): one
entry per partition for the model, one per store for its run, each HMAC-signed and carrying
the offset of the last input it applied, so records replayed after a crash are scored again
(their rows collapse in ClickHouse) but neither learned from nor counted twice.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from confluent_kafka import Message
from prometheus_client import Counter
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from dealstream.broker.standard_topics import REVIEWS_STATE_TOPIC
from dealstream.models.sentiment import Family, SentimentModel
from dealstream.schemas.codec import SchemaResolver
from dealstream.sinks.clickhouse import tables
from dealstream.streams.changelog import StateReader
from dealstream.streams.chat_sentiment import CHAT_SENTIMENT, chat_rows
from dealstream.streams.chat_sentiment import EVENT_TYPE as CHAT_EVENT_TYPE
from dealstream.streams.decoding import RecordReader
from dealstream.streams.pipeline import BatchResult, Row, StateRecord, TableSpec
from dealstream.streams.review_runs import StoreRun
from dealstream.streams.state_signing import SignatureError, StateSettings, StateSigner

log = logging.getLogger(__name__)

TOPIC = "reviews.posts.v1"
EVENT_TYPE = "review"
CHANGELOG_TOPIC = REVIEWS_STATE_TOPIC
ALERT_KIND = "channel"
RULE_ID = "reviews.negative_run"
SENTIMENT = TableSpec(tables.REVIEW_SENTIMENT, tables.REVIEW_SENTIMENT_COLUMNS)

REVIEWS = Counter(
    "dealstream_reviews_scored_total", "Reviews scored, by sentiment label", ["label"]
)
LEARNED = Counter("dealstream_reviews_learned_total", "Rated reviews the sentiment model learned")
BAD_STATE = Counter(
    "dealstream_reviews_bad_state_total", "Review state entries ignored (bad signature or format)"
)


class ReviewSettings(BaseSettings):
    """Model and alert thresholds of the review pipeline (``DEALSTREAM_REVIEWS_*``)."""

    model_config = SettingsConfigDict(env_prefix="DEALSTREAM_REVIEWS_", extra="forbid")

    family: Family = "logreg"
    neutral_band: float = Field(default=0.2, ge=0, lt=1)
    seed_lexicon: bool = True
    model_name: str = "review-sentiment"
    model_version: str = "1"
    negative_run: int = Field(default=3, ge=1)
    """Negative reviews of one store within ``window_s`` that raise an alert."""
    window_s: float = Field(default=24 * 3600.0, gt=0)
    cooldown_s: float | None = None
    """Quiet time after an alert for the same store; None means ``window_s``."""
    chats: bool = True
    """Also score ``wecom.messages.v1`` chats with the review models."""


_ENTRY_VERSION = 1


def encode_entry(offset: int, state: Any) -> bytes:
    """One changelog value: format version, last applied offset and the state object."""
    return pickle.dumps((_ENTRY_VERSION, offset, state), protocol=pickle.HIGHEST_PROTOCOL)


def decode_entry(value: bytes) -> tuple[int, Any]:
    """Inverse of :func:`encode_entry`; only ever called on verified (signed) values."""
    loaded = pickle.loads(value)  # noqa: S301 - our own signed changelog entries only
    if not isinstance(loaded, tuple) or len(loaded) != 3 or loaded[0] != _ENTRY_VERSION:
        raise ValueError("not a review changelog entry of this version")
    return int(loaded[1]), loaded[2]


@dataclass
class _Model:
    model: SentimentModel
    offset: int = -1
    dirty: bool = False


@dataclass
class _Store:
    partition: int
    run: StoreRun = field(default_factory=StoreRun)
    offset: int = -1
    dirty: bool = False


class ReviewSentimentPipeline:
    """Reviews → sentiment rows and negative-run alerts (see the module docstring)."""

    name = "review-sentiment"
    tables: tuple[TableSpec, ...] = (SENTIMENT, CHAT_SENTIMENT)

    def __init__(
        self,
        *,
        state_reader: StateReader,
        topic: str = TOPIC,
        changelog_topic: str = CHANGELOG_TOPIC,
        chat_topic: str | None = None,
        settings: ReviewSettings | None = None,
        resolver: SchemaResolver | None = None,
        signer: StateSigner | None = None,
        records: RecordReader | None = None,
        chat_records: RecordReader | None = None,
    ) -> None:
        self.topics: tuple[str, ...] = (topic,) if chat_topic is None else (topic, chat_topic)
        self.changelog_topic = changelog_topic
        self._chat_topic = chat_topic
        self._chats = chat_records or RecordReader(CHAT_EVENT_TYPE, resolver=resolver)
        self.settings = settings or ReviewSettings()
        self._reader = state_reader
        # ``records``: shared with the topic's other pipelines (business rules), decoded once.
        self._records = records or RecordReader(EVENT_TYPE, resolver=resolver)
        self._signer = signer or StateSigner(StateSettings().key)
        self._models: dict[int, _Model] = {}
        self._stores: dict[str, _Store] = {}
        s = self.settings
        self._window_ms = int(s.window_s * 1000)
        self._cooldown_ms = int((s.cooldown_s if s.cooldown_s is not None else s.window_s) * 1000)

    # -- state hooks -------------------------------------------------------------------------
    def _new_model(self) -> _Model:
        s = self.settings
        return _Model(
            SentimentModel.new(family=s.family, neutral_band=s.neutral_band, seed=s.seed_lexicon)
        )

    def state_entries(self) -> int:
        return len(self._models) + len(self._stores)

    def snapshot(self) -> list[StateRecord]:
        out: list[StateRecord] = []
        for partition, entry in self._models.items():
            if entry.dirty:
                value = self._signer.sign(encode_entry(entry.offset, entry.model))
                out.append(StateRecord(self.changelog_topic, partition, b"model", value))
                entry.dirty = False
        for store_id, store in self._stores.items():
            if store.dirty:
                value = self._signer.sign(encode_entry(store.offset, store.run))
                key = f"store:{store_id}".encode()
                out.append(StateRecord(self.changelog_topic, store.partition, key, value))
                store.dirty = False
        return out

    def assigned(self, partitions: Sequence[tuple[str, int]]) -> None:
        numbers = sorted({p for _, p in partitions})
        restored = self._reader.read(self.changelog_topic, numbers)
        for partition in numbers:
            self._models[partition] = self._new_model()
            for raw_key, value in restored.get(partition, {}).items():
                self._restore(partition, raw_key.decode(), value)
        log.info("review state restored for partitions %s", numbers)

    def _restore(self, partition: int, key: str, value: bytes) -> None:
        try:
            offset, state = decode_entry(self._signer.verify(value))
        except (SignatureError, ValueError, pickle.UnpicklingError):
            BAD_STATE.inc()
            log.error("review state %s[%d] %s is unreadable: ignored", self.name, partition, key)
            return
        if key == "model" and isinstance(state, SentimentModel):
            self._models[partition] = _Model(state, offset)
        elif key.startswith("store:") and isinstance(state, StoreRun):
            self._stores[key.removeprefix("store:")] = _Store(partition, state, offset)
        else:
            BAD_STATE.inc()

    def revoked(self, partitions: Sequence[tuple[str, int]]) -> None:
        gone = {p for _, p in partitions}
        self._models = {p: m for p, m in self._models.items() if p not in gone}
        self._stores = {k: s for k, s in self._stores.items() if s.partition not in gone}

    def model(self, partition: int) -> SentimentModel | None:
        """The live model of a partition (diagnostics and tests)."""
        entry = self._models.get(partition)
        return entry.model if entry else None

    # -- processing --------------------------------------------------------------------------
    def _model_of(self, partition: int) -> SentimentModel:
        entry = self._models.get(partition)
        if entry is None:  # a record before ``assigned`` (in-memory runs): start fresh
            entry = self._models[partition] = self._new_model()
        return entry.model

    def process(self, messages: Sequence[Message]) -> BatchResult:
        result = BatchResult(rows={SENTIMENT.name: [], CHAT_SENTIMENT.name: []})
        rows = result.rows[SENTIMENT.name]
        scored_at = datetime.now(UTC)
        if self._chat_topic is not None:
            chats = [m for m in messages if m.topic() == self._chat_topic]
            if chats:
                messages = [m for m in messages if m.topic() != self._chat_topic]
                result.rows[CHAT_SENTIMENT.name] = chat_rows(
                    chats, self._chats, self._model_of, model_name=self.settings.model_name,
                    model_version=self.settings.model_version, scored_at=scored_at,
                )  # fmt: skip
                result.processed += len(result.rows[CHAT_SENTIMENT.name])
        checked = self._records.read(messages)
        result.dead_letters.extend(
            r.dead_letter(source=self.name, default_topic=self.topics[0]) for r in checked.rejected
        )
        for message, record in checked.records:
            rows.append(self._score(message, record, scored_at=scored_at, out=result))
            result.processed += 1
        return result

    def _score(
        self,
        message: Message,
        record: dict[str, Any],
        *,
        scored_at: datetime,
        out: BatchResult,
    ) -> Row:
        partition = cast(int, message.partition())
        offset = cast(int, message.offset())
        p = record["payload"]
        self._model_of(partition)
        entry = self._models[partition]
        text = str(p["text"])
        found = entry.model.scored(text)
        REVIEWS.labels(found.label).inc()
        learned = False
        if offset > entry.offset:  # replayed records are scored again, never learned twice
            learned = entry.model.learn(text, rating=p["rating"])
            entry.offset, entry.dirty = offset, True
            if learned:
                LEARNED.inc()
        if found.label == "negative":
            self._count_negative(record, partition, offset, found.score, out)
        s = self.settings
        return (
            record["event_id"], p["platform"], p["review_id"], p["store_id"], p["region"],
            p["sku"], p["product"], p["rating"], text, record["customer_ref"], p["posted_at"],
            found.score, found.label, learned, s.model_name, s.model_version,
            entry.model.learned, scored_at, message.topic(), partition, offset,
        )  # fmt: skip

    def _count_negative(
        self, record: dict[str, Any], partition: int, offset: int, score: float, out: BatchResult
    ) -> None:
        p = record["payload"]
        store = self._stores.get(p["store_id"])
        if store is None:
            store = self._stores[p["store_id"]] = _Store(partition)
        if offset <= store.offset and partition == store.partition:
            return  # counted before a crash
        store.partition, store.offset, store.dirty = partition, offset, True
        run = store.run.add(
            _ms(p["posted_at"]),
            record["event_id"],
            threshold=self.settings.negative_run,
            window_ms=self._window_ms,
            cooldown_ms=self._cooldown_ms,
        )
        if run is not None:
            out.alerts.append(self._alert(p, run, score))

    def _alert(self, payload: dict[str, Any], run: list[str], score: float) -> dict[str, Any]:
        s = self.settings
        store_id = str(payload["store_id"])
        ident = "\x1f".join([RULE_ID, store_id, *run])
        hours = s.window_s / 3600
        return {
            "alert_id": hashlib.sha256(ident.encode()).hexdigest()[:32],
            "kind": ALERT_KIND,
            "severity": "WARNING",
            "rule_id": RULE_ID,
            "rule_version": 1,
            "model_name": s.model_name,
            "model_version": s.model_version,
            "entity_key": store_id,
            "message": f"门店 {store_id} 在 {hours:g} 小时内收到 {len(run)} 条负面评价",
            "input_event_ids": run,
            "raised_at": int(datetime.now(UTC).timestamp() * 1000),
            "attributes": {
                "store_id": store_id,
                "region": str(payload["region"]),
                "negative_reviews": str(len(run)),
                "threshold": str(s.negative_run),
                "window_s": f"{s.window_s:g}",
                "last_score": f"{score:.3f}",
                "last_text": str(payload["text"])[:200],
            },
        }


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ms(value: datetime | int) -> int:
    if isinstance(value, datetime):
        return (value - _EPOCH) // timedelta(milliseconds=1)
    return int(value)
