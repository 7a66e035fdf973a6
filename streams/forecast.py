"""Online demand forecasts per SKU|region from POS sales, with state restored from a changelog.

Reads the same topic as the POS storage pipeline (the engine fans the batch out), so bad records
are dead-lettered there and only counted here. Each key keeps one ``models.state.KeyState``; a
forecast is emitted only when a period closes (one row per key, closed period and horizon), and
scored forecasts go to ``forecast_accuracy``.

Exactly-once state on an at-least-once log: a key's changelog entry carries the offset of the
last input it applied, and replayed inputs at or below it are skipped. The rows emitted since
the key's previous snapshot travel in the same entry and are re-emitted when such a skip shows
that a crash may have lost them (the tables are ReplacingMergeTree, so a duplicate collapses).
"""

from __future__ import annotations

import logging
import pickle
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from confluent_kafka import Message
from prometheus_client import Counter, Gauge
from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dealstream.broker.standard_topics import FORECAST_STATE_TOPIC
from dealstream.models import snapshot
from dealstream.models.accuracy import AccuracyStats
from dealstream.models.forecaster import Forecast, ForecasterConfig
from dealstream.models.periods import Granularity, period_start_ms
from dealstream.models.registry import ModelConfigError, ModelSpec, default_specs
from dealstream.models.state import KeyState, Step
from dealstream.schemas.codec import SchemaResolver
from dealstream.sinks.clickhouse import tables
from dealstream.streams.changelog import StateReader
from dealstream.streams.decoding import RecordReader
from dealstream.streams.pipeline import BatchResult, Row, StateRecord, TableSpec
from dealstream.streams.state_signing import SignatureError, StateSettings, StateSigner

log = logging.getLogger(__name__)

TOPIC = "pos.transactions.v1"
CHANGELOG_TOPIC = FORECAST_STATE_TOPIC  # compacted, co-partitioned with TOPIC
EVENT_TYPE = "pos.transaction"
FORECASTS = TableSpec(tables.FORECASTS, tables.FORECASTS_COLUMNS)
FORECAST_ACCURACY = TableSpec(tables.FORECAST_ACCURACY, tables.FORECAST_ACCURACY_COLUMNS)

SKIPPED = Counter(
    "dealstream_forecast_skipped_total",
    "POS records the forecast pipeline did not learn from (dead-lettered by pos-transactions)",
    ["reason"],
)
PERIODS = Counter(
    "dealstream_forecast_periods_total", "Periods closed, revised or refused as too late", ["kind"]
)

# Prequential error of the forecasts scored by this process since it started, per model family
# and horizon (the exact per-key figures are in ClickHouse forecast_accuracy).
WAPE = Gauge(
    "dealstream_forecast_wape",
    "Weighted absolute percentage error of scored forecasts (sum|e| / sum|actual|)",
    ["family", "horizon"],
)
MAPE = Gauge(
    "dealstream_forecast_mape",
    "Mean absolute percentage error of scored forecasts (non-zero actuals only)",
    ["family", "horizon"],
)


class ForecastSettings(BaseSettings):
    """Which model every key gets and how periods are cut (``DEALSTREAM_FORECAST_*``)."""

    model_config = SettingsConfigDict(env_prefix="DEALSTREAM_FORECAST_", extra="forbid")

    granularity: Granularity = "week"
    horizons: tuple[int, ...] = (1, 4, 13)
    family: str = "holt_winters"
    season: int = 52
    model_name: str = ""
    model_version: str = "1"
    min_history: int = 8
    level: float = 0.8
    max_relative_width: float = 1.0
    residual_window: int = 52
    allowed_lateness: int = 2
    grace_ms: int = 0

    @field_validator("horizons")
    @classmethod
    def _sorted(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(sorted(set(value)))

    def spec(self) -> ModelSpec:
        """The configured family with the default parameters for these horizons and season."""
        for spec in default_specs(self.horizons, self.season):
            if spec.family == self.family:
                name = self.model_name or spec.name
                return ModelSpec(spec.family, name, self.model_version, spec.params)
        raise ModelConfigError(
            f"DEALSTREAM_FORECAST_FAMILY={self.family!r} is not a known model family"
        )

    def forecaster_config(self) -> ForecasterConfig:
        return ForecasterConfig(
            horizons=self.horizons,
            level=self.level,
            min_history=self.min_history,
            max_relative_width=self.max_relative_width,
            residual_window=self.residual_window,
        )


# -- changelog entries: envelope version, last applied offset, KeyState blob, unsaved rows ------
_ENVELOPE = 1
_HEAD = struct.Struct(">BqI")
TableRows = list[tuple[str, Row]]


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
    """POS sales → per-key periods → forecasts and accuracy rows (see the module docstring)."""

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
    ) -> None:
        self.topics: tuple[str, ...] = (topic,)
        self.changelog_topic = changelog_topic
        self.settings = settings or ForecastSettings()
        self._spec = self.settings.spec()
        self._config = self.settings.forecaster_config()
        self._reader = state_reader
        # Shared with the POS storage pipeline in the worker: each batch is decoded once.
        self._records = records or RecordReader(EVENT_TYPE, resolver=resolver)
        self._keys: dict[str, _Key] = {}
        self._signer = signer or StateSigner(StateSettings().key)
        self._errors: dict[int, AccuracyStats] = {}  # per horizon, for the gauges

    # -- state hooks -------------------------------------------------------------------------
    def snapshot(self) -> list[StateRecord]:
        """Changelog records for the keys changed since the last snapshot."""
        entries = self._keys
        blobs = snapshot.checkpoint({k: entry.state for k, entry in entries.items()})
        out = []
        for key, blob in blobs.items():
            entry = entries[key]
            value = self._signer.sign(encode_entry(entry.offset, blob, entry.unsaved))
            entry.unsaved = []
            out.append(StateRecord(self.changelog_topic, entry.partition, key.encode(), value))
        return out

    def assigned(self, partitions: Sequence[tuple[str, int]]) -> None:
        """Restore the keys of newly assigned partitions from their changelog partitions."""
        numbers = sorted({p for _, p in partitions})
        restored = self._reader.read(self.changelog_topic, numbers)
        for partition, values in restored.items():
            for raw_key, value in values.items():
                key = raw_key.decode()
                try:
                    offset, state, rows = decode_entry(self._signer.verify(value))
                except SignatureError:
                    # Never unpickle what we did not write; the key starts over instead.
                    SKIPPED.labels("bad_state_signature").inc()
                    log.error("forecast state of %s has a bad signature: ignored", key)
                    continue
                self._keys[key] = _Key(state, partition, offset, restored=rows)
        log.info(
            "forecast state restored for partitions %s: %d keys",
            numbers,
            sum(len(v) for v in restored.values()),
        )

    def revoked(self, partitions: Sequence[tuple[str, int]]) -> None:
        """Drop the keys of partitions that are no longer ours (their state is in the log)."""
        gone = {p for _, p in partitions}
        self._keys = {k: e for k, e in self._keys.items() if e.partition not in gone}

    @property
    def keys(self) -> dict[str, KeyState]:
        """The live state per key (read-only use: tests and diagnostics)."""
        return {k: e.state for k, e in self._keys.items()}

    # -- processing --------------------------------------------------------------------------
    def process(self, messages: Sequence[Message]) -> BatchResult:
        out: dict[str, list[Row]] = {FORECASTS.name: [], FORECAST_ACCURACY.name: []}
        processed = 0
        checked = self._records.read(messages)
        for rejected in checked.rejected:  # pos-transactions dead-letters them
            SKIPPED.labels(f"{rejected.stage.lower()}:{rejected.code}").inc()
        for message, record in checked.records:
            p = record["payload"]
            key = f"{p['sku']}|{p['region']}"
            partition = cast(int, message.partition())
            offset = cast(int, message.offset())
            entry = self._keys.get(key)
            if entry is None:
                entry = self._keys[key] = _Key(self._new_state(key), partition)
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
            step = entry.state.add(occurred_ms, float(p["quantity"]))
            processed += 1
            if step.closed or step.too_late or step.revised:
                rows = self._rows(entry.state, step, record, partition, offset)
                entry.unsaved.extend(rows)
                for table, row in rows:
                    out[table].append(row)
        return BatchResult(rows=out, processed=processed)

    def _new_state(self, key: str) -> KeyState:
        s = self.settings
        return KeyState.new(
            key,
            self._spec,
            self._config,
            granularity=s.granularity,
            allowed_lateness=s.allowed_lateness,
            grace_ms=s.grace_ms,
        )

    def _rows(
        self, state: KeyState, step: Step, record: dict[str, Any], partition: int, offset: int
    ) -> TableRows:
        PERIODS.labels("too_late").inc(len(step.too_late))
        PERIODS.labels("revised").inc(len(step.revised))
        if not step.closed:
            return []
        PERIODS.labels("closed").inc(len(step.closed))
        g = self.settings.granularity
        produced_at = datetime.now(UTC)
        event_id = record["event_id"]
        p = record["payload"]
        key = state.key
        fc = step.forecast
        assert fc is not None  # a closed period always forecasts again
        origin = step.closed[-1]
        fresh = _dt(max(fc.freshness.values(), default=_ms(record["occurred_at"])))
        rows: TableRows = []
        for h in self.settings.horizons:
            lower, upper = fc.intervals[h]
            rows.append(
                (
                    FORECASTS.name,
                    (
                        key, p["sku"], p["region"], origin.label,
                        _dt(period_start_ms(origin.index, g)), h,
                        _dt(period_start_ms(origin.index + h, g)), fc.points[h], lower, upper,
                        fc.level, fc.status, _factors(fc), fc.model_name, fc.model_version,
                        fc.periods_seen, fresh, produced_at, event_id, partition, offset,
                    ),
                )
            )  # fmt: skip
        first_step = state.forecaster.steps - len(step.closed)
        for s in step.scored:
            self._observe_error(s.horizon, s.forecast, s.actual)
            period = step.closed[s.step - first_step]
            rows.append(
                (
                    FORECAST_ACCURACY.name,
                    (
                        key, p["region"], s.horizon, period.label,
                        _dt(period_start_ms(period.index, g)), s.forecast, s.actual,
                        abs(s.forecast - s.actual), fc.model_name, fc.model_version,
                        produced_at, event_id,
                    ),
                )
            )  # fmt: skip
        return rows

    def _observe_error(self, horizon: int, forecast: float, actual: float) -> None:
        stats = self._errors.setdefault(horizon, AccuracyStats())
        stats.update(forecast, actual)
        labels = (self._spec.family, str(horizon))
        if stats.abs_actual:
            WAPE.labels(*labels).set(stats.wape)
        if stats.n_ape:
            MAPE.labels(*labels).set(stats.mape)


def _factors(fc: Forecast) -> dict[str, float]:
    return {f.name: float(f.weight) for f in fc.factors}


def _ms(value: datetime | int) -> int:
    if isinstance(value, datetime):
        return (value - _EPOCH) // timedelta(milliseconds=1)
    return int(value)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
