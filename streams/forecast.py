"""Online demand forecasts per key (SKU|region by default) from POS sales and external signals.

Reads the same topic as the POS storage pipeline (the engine fans the batch out), so bad records
are dead-lettered there and only counted here. Each key keeps one ``models.state.KeyState``
built from the model spec of its key family (``ForecastSettings.routing``); a forecast is
emitted only when a period closes (one row per key, closed period and horizon, carrying model
name, version and family), and scored forecasts go to ``forecast_accuracy``.

Features: the POS line's discount (promotions, per key), the region's signals from the signal
topics (tender awards and budgets, procurement plans, IoT usage; read in full by every worker,
see ``streams/forecast_signals.py``) looked up when a period closes, and the calendar of the
target period (linear model). Freshness (newest input time per signal) travels with each row.

Exactly-once state on an at-least-once log: a key's changelog entry carries the offset of the
last input it applied, and replayed inputs at or below it are skipped. The rows emitted since
the key's previous snapshot travel in the same entry and are re-emitted when such a skip shows
that a crash may have lost them (the tables are ReplacingMergeTree, so a duplicate collapses).
The signal board and feed positions are saved at the same checkpoints (one reserved key per
changelog partition).
"""

from __future__ import annotations

import logging
import pickle
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from confluent_kafka import Message
from prometheus_client import Counter

from dealstream.broker.settings import KafkaSettings
from dealstream.broker.standard_topics import FORECAST_STATE_TOPIC
from dealstream.models import snapshot
from dealstream.models.periods import period_start_ms
from dealstream.models.signals import CALENDAR, PROMO_DISCOUNT, SignalBoard
from dealstream.models.state import KeyState, Step
from dealstream.schemas.codec import SchemaResolver
from dealstream.streams.changelog import StateReader
from dealstream.streams.decoding import RecordReader
from dealstream.streams.forecast_rows import (
    FORECAST_ACCURACY,
    FORECASTS,
    ErrorGauges,
    Source,
    TableRows,
    forecast_rows,
)
from dealstream.streams.forecast_settings import ForecastSettings
from dealstream.streams.forecast_signals import (
    STATE_KEY,
    KafkaSignalFeed,
    NoSignals,
    SignalFeed,
    SignalReader,
    SignalState,
    decode_state,
    encode_state,
)
from dealstream.streams.pipeline import BatchResult, Row, StateRecord, TableSpec
from dealstream.streams.state_signing import SignatureError, StateSettings, StateSigner

__all__ = [
    "CHANGELOG_TOPIC",
    "FORECASTS",
    "FORECAST_ACCURACY",
    "ForecastPipeline",
    "ForecastSettings",
    "decode_entry",
]

log = logging.getLogger(__name__)

TOPIC = "pos.transactions.v1"
CHANGELOG_TOPIC = FORECAST_STATE_TOPIC  # compacted, co-partitioned with TOPIC
EVENT_TYPE = "pos.transaction"
SKIPPED = Counter(
    "dealstream_forecast_skipped_total",
    "POS records the forecast pipeline did not learn from (dead-lettered by pos-transactions)",
    ["reason"],
)
PERIODS = Counter(
    "dealstream_forecast_periods_total", "Periods closed, revised or refused as too late", ["kind"]
)

# -- changelog entries: envelope version, last applied offset, KeyState blob, unsaved rows ------
_ENVELOPE = 1
_HEAD = struct.Struct(">BqI")


def encode_entry(offset: int, state_blob: bytes, rows: TableRows) -> bytes:
    """One changelog value (rows are ours and go back only to our own topic)."""
    tail = pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL) if rows else b""
    return _HEAD.pack(_ENVELOPE, offset, len(state_blob)) + state_blob + tail


def decode_entry(value: bytes) -> tuple[int, KeyState, TableRows]:
    """Inverse of :func:`encode_entry`; raises ``SnapshotError`` for a blob we cannot read."""
    if len(value) < _HEAD.size or value[0] != _ENVELOPE:
        raise snapshot.SnapshotError(f"not a forecast changelog entry (envelope {value[:1]!r})")
    _, offset, size = _HEAD.unpack_from(value)
    start = _HEAD.size
    state = snapshot.loads(value[start : start + size])
    tail = value[start + size :]
    rows = cast(TableRows, pickle.loads(tail)) if tail else []  # noqa: S301 - our own topic
    return offset, state, rows


@dataclass
class _Key:
    state: KeyState
    partition: int
    offset: int = -1  # last input offset applied to the state
    unsaved: TableRows = field(default_factory=list)  # emitted since the last snapshot
    restored: TableRows = field(default_factory=list)  # re-emitted if a replay is skipped


class ForecastPipeline:
    """POS sales + signals → per-key periods → forecasts and accuracy rows (module docstring)."""

    name = "forecast"
    tables: tuple[TableSpec, ...] = (FORECASTS, FORECAST_ACCURACY)

    def __init__(
        self,
        *,
        state_reader: StateReader,
        topic: str = TOPIC,
        changelog_topic: str = CHANGELOG_TOPIC,
        settings: ForecastSettings | None = None,
        resolver: SchemaResolver | None = None,
        records: RecordReader | None = None,
        signer: StateSigner | None = None,
        signal_feed: SignalFeed | None = None,
        signal_topics: Sequence[str] = (),
        topic_prefix: str = "",
    ) -> None:
        self.topics: tuple[str, ...] = (topic,)
        self.changelog_topic = changelog_topic
        self.settings = settings or ForecastSettings()
        self._routing = self.settings.routing()
        self._config = self.settings.forecaster_config()
        self._reader = state_reader
        # Shared with the POS storage pipeline in the worker: each batch is decoded once.
        self._records = records or RecordReader(EVENT_TYPE, resolver=resolver)
        self._keys: dict[str, _Key] = {}
        self._signer = signer or StateSigner(StateSettings().key)
        self._errors = ErrorGauges()
        self._feed: SignalFeed = signal_feed or NoSignals()
        self._signal_reader = SignalReader(
            signal_topics,
            usage_metrics=self.settings.usage_metrics,
            resolver=resolver,
            topic_prefix=topic_prefix,
            region_aliases=self.settings.region_aliases,
        )
        board = SignalBoard(self.settings.granularity, self.settings.signal_keep_periods)
        self._signals = SignalState(board)
        self._owned: set[int] = set()

    @classmethod
    def from_settings(
        cls,
        kafka: KafkaSettings,
        settings: ForecastSettings,
        *,
        state_reader: StateReader,
        records: RecordReader | None = None,
        resolver: SchemaResolver | None = None,
    ) -> ForecastPipeline:
        """The worker's pipeline: prefixed topics and a Kafka feed of every signal topic."""
        signal_topics = [kafka.topic(t) for t in settings.signal_topics]
        return cls(
            state_reader=state_reader,
            topic=kafka.topic(settings.topic),
            changelog_topic=kafka.topic(CHANGELOG_TOPIC),
            settings=settings,
            records=records,
            resolver=resolver,
            signal_feed=KafkaSignalFeed(kafka, signal_topics) if signal_topics else None,
            signal_topics=signal_topics,
            topic_prefix=kafka.topic_prefix,
        )

    # -- state hooks -------------------------------------------------------------------------
    def state_entries(self) -> int:
        return len(self._keys)

    def snapshot(self) -> list[StateRecord]:
        """Changelog records for the keys (and signals) changed since the last snapshot."""
        entries = self._keys
        blobs = snapshot.checkpoint({k: entry.state for k, entry in entries.items()})
        out = []
        for key, blob in blobs.items():
            entry = entries[key]
            value = self._signer.sign(encode_entry(entry.offset, blob, entry.unsaved))
            entry.unsaved = []
            out.append(StateRecord(self.changelog_topic, entry.partition, key.encode(), value))
        if self._signals.dirty and self._owned:
            value = self._signer.sign(encode_state(self._signals))
            self._signals.dirty = False
            for partition in sorted(self._owned):
                out.append(StateRecord(self.changelog_topic, partition, STATE_KEY, value))
        return out

    def assigned(self, partitions: Sequence[tuple[str, int]]) -> None:
        """Restore the keys of newly assigned partitions from their changelog partitions."""
        numbers = sorted({p for _, p in partitions})
        self._owned.update(numbers)
        restored = self._reader.read(self.changelog_topic, numbers)
        copies: list[SignalState] = []
        for partition, values in restored.items():
            for raw_key, value in values.items():
                try:
                    verified = self._signer.verify(value)
                except SignatureError:
                    # Never unpickle what we did not write; the key starts over instead.
                    SKIPPED.labels("bad_state_signature").inc()
                    log.error("forecast state of %r has a bad signature: ignored", raw_key)
                    continue
                if raw_key == STATE_KEY:
                    try:
                        copies.append(decode_state(verified))
                    except ValueError as exc:  # a newer build's entry: read the topics again
                        SKIPPED.labels("bad_signal_state").inc()
                        log.error("forecast signal state ignored: %s", exc)
                    continue
                offset, state, rows = decode_entry(verified)
                self._check_model(state)
                self._keys[raw_key.decode()] = _Key(state, partition, offset, restored=rows)
        if copies and not self._signals.progress and not self._signals.dirty:
            self._signals = max(copies, key=lambda c: c.progress)
            self._feed.seek(self._signals.positions)
        caught_up = self._feed.catch_up()  # signals published so far, before the first sale
        if caught_up:
            self._signal_reader.apply(caught_up, self._signals)
        log.info(
            "forecast state restored for partitions %s: %d keys, signals %s",
            numbers,
            sum(len(v) for v in restored.values()) - len(copies),
            "restored" if copies else "none saved",
        )

    def revoked(self, partitions: Sequence[tuple[str, int]]) -> None:
        """Drop the keys of partitions that are no longer ours (their state is in the log)."""
        gone = {p for _, p in partitions}
        self._owned -= gone
        self._keys = {k: e for k, e in self._keys.items() if e.partition not in gone}

    @property
    def keys(self) -> dict[str, KeyState]:
        """The live state per key (read-only use: tests and diagnostics)."""
        return {k: e.state for k, e in self._keys.items()}

    @property
    def signals(self) -> SignalState:
        """The signal board and feed positions (read-only use: tests and diagnostics)."""
        return self._signals

    def _check_model(self, state: KeyState) -> None:
        """A key whose family's spec changed name or version starts that model over."""
        spec = self._routing.registry.spec_for(state.family or self._routing.registry.default)
        f = state.forecaster
        if (f.model_name, f.model_version) != (spec.name, spec.version):
            log.info("forecast key %s: model %s v%s replaces %s v%s", state.key, spec.name,
                     spec.version, f.model_name, f.model_version)  # fmt: skip
            state.rebuild(spec, self._config)

    # -- processing --------------------------------------------------------------------------
    def process(self, messages: Sequence[Message]) -> BatchResult:
        out: dict[str, list[Row]] = {FORECASTS.name: [], FORECAST_ACCURACY.name: []}
        processed = 0
        signals = self._feed.poll()
        if signals:
            self._signal_reader.apply(signals, self._signals)
        checked = self._records.read(messages)
        for rejected in checked.rejected:  # pos-transactions dead-letters them
            SKIPPED.labels(f"{rejected.stage.lower()}:{rejected.code}").inc()
        board = self._signals.board
        key_fields, promotions = self.settings.key_fields, self.settings.promotions
        for message, record in checked.records:
            p = record["payload"]
            key = "|".join(str(p[f]) for f in key_fields)
            partition = cast(int, message.partition())
            offset = cast(int, message.offset())
            self._owned.add(partition)
            entry = self._keys.get(key)
            if entry is None:
                entry = self._keys[key] = _Key(self._new_state(key, p), partition)
            if offset <= entry.offset and partition == entry.partition:
                SKIPPED.labels("already_applied").inc()
                if entry.restored:  # a crash may have lost these rows: write them again
                    for table, row in entry.restored:
                        out[table].append(row)
                    entry.restored = []
                continue
            entry.restored = []
            entry.partition, entry.offset = partition, offset
            occurred_ms = _ms(record["occurred_at"])
            region = p["region"]
            if board.stores.get(p["store_id"]) != region:
                board.learn_store(p["store_id"], region)
                self._signals.dirty = True
            board.advance(occurred_ms)
            discount = float(p["discount"]) if promotions else 0.0
            step = entry.state.add(
                occurred_ms,
                float(p["quantity"]),
                {PROMO_DISCOUNT: discount} if discount > 0 else None,
                external=_RegionLookup(board, region, self._uses_calendar(entry.state)),
            )
            processed += 1
            if step.closed or step.too_late or step.revised:
                rows = self._rows(entry.state, step, record, partition, offset)
                entry.unsaved.extend(rows)
                for table, row in rows:
                    out[table].append(row)
        return BatchResult(rows=out, processed=processed)

    def _new_state(self, key: str, payload: Mapping[str, Any]) -> KeyState:
        s = self.settings
        fields = {f: str(payload[f]) for f in ("sku", "region", "product_line", "store_id")}
        family = self._routing.family_of(fields)
        return KeyState.new(
            key,
            self._routing.registry.spec_for(family),
            self._config,
            granularity=s.granularity,
            allowed_lateness=s.allowed_lateness,
            grace_ms=s.grace_ms,
            family=family,
        )

    def _uses_calendar(self, state: KeyState) -> bool:
        return bool(self._routing.registry.spec_for(state.family).params.get("calendar"))

    def _rows(
        self, state: KeyState, step: Step, record: dict[str, Any], partition: int, offset: int
    ) -> TableRows:
        PERIODS.labels("too_late").inc(len(step.too_late))
        PERIODS.labels("revised").inc(len(step.revised))
        if not step.closed:
            return []
        PERIODS.labels("closed").inc(len(step.closed))
        family = state.family or self._routing.registry.default
        spec = self._routing.registry.spec_for(family)
        source = Source(record, partition, offset)
        rows = forecast_rows(
            state, step, source, settings=self.settings, family=family, model_family=spec.family
        )
        for s in step.scored:
            self._errors.observe(spec.family, s.horizon, s.forecast, s.actual)
        return rows


class _RegionLookup:
    """The region's signals of a closing period, plus calendar freshness when it is used."""

    __slots__ = ("board", "calendar", "region")

    def __init__(self, board: SignalBoard, region: str, calendar: bool) -> None:
        self.board, self.region, self.calendar = board, region, calendar

    def __call__(self, index: int) -> tuple[Mapping[str, float], Mapping[str, int]]:
        values, newest = self.board.lookup(self.region, index)
        if self.calendar:
            newest[CALENDAR] = period_start_ms(index, self.board.granularity)
        return values, newest


def _ms(value: datetime | int) -> int:
    if isinstance(value, datetime):
        return (value - _EPOCH) // timedelta(milliseconds=1)
    return int(value)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
