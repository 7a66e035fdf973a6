"""Weekly order amounts per sales rep from ERP orders: forecast, prequential accuracy, alerts.

Each rep (``sales_rep_id``) is one forecast key with ISO-week periods of order amounts
(``total_amount`` by ``created_at``; an order is re-sent whole on every change, so only its
latest amount counts and a cancelled or returned order counts zero). When a week closes the
rep's model (``models`` core) learns it, the forecast made a week earlier is scored into
``rep_forecast_accuracy`` (MAE/WAPE/bias so far), and :class:`RepDeviationTracker` raises one
``forecast`` alert (``alerts.forecast.v1``) when that forecast missed the actual by more than
``threshold`` for ``weeks`` weeks in a row. The alert names the model and version, the rep, the
weeks and the event ids of the orders in them (audit trail, DESIGN §1).

Weeks close by a watermark: the newest ``updated_at`` seen minus ``grace_ms``, applied to every
rep, so a rep without orders still gets (empty) weeks closed and scored.

Placement: ``erp.orders.v1`` is keyed by customer, so one rep's orders are spread over all its
partitions. Rep state is small (one entry per rep) and lives in the one-partition compacted
``state.rep-forecast.v1``; the worker owning ``erp.orders.v1`` partition 0 keeps it and learns
from the partitions it owns. With several workers the orders of partitions owned elsewhere are
counted (``not_home``), not learned: a repartition by rep would be needed there.

Replay safety as in :mod:`dealstream.streams.forecast`: each rep's entry carries the last
applied offset per input partition, plus the rows and alerts emitted since its last snapshot,
re-emitted if a skipped replay shows a crash may have lost them (rows collapse in
ReplacingMergeTree, alerts have deterministic ids).
"""

from __future__ import annotations

import hashlib
import logging
import math
import pickle
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from confluent_kafka import Message
from prometheus_client import Counter
from pydantic_settings import BaseSettings, SettingsConfigDict

from dealstream.broker.standard_topics import REP_FORECAST_STATE_TOPIC
from dealstream.models.accuracy import AccuracyStats, RepDeviationFlag, RepDeviationTracker
from dealstream.models.forecaster import ForecasterConfig
from dealstream.models.periods import period_index, period_label, period_start_ms
from dealstream.models.registry import (
    ModelConfigError,
    ModelRegistry,
    ModelRouting,
    ModelSpec,
    default_specs,
)
from dealstream.models.state import KeyState, Step
from dealstream.schemas.codec import SchemaResolver
from dealstream.sinks.clickhouse import tables
from dealstream.streams.changelog import StateReader
from dealstream.streams.decoding import RecordReader
from dealstream.streams.forecast_settings import load_routing
from dealstream.streams.pipeline import BatchResult, Row, StateRecord, TableSpec
from dealstream.streams.state_signing import SignatureError, StateSettings, StateSigner

log = logging.getLogger(__name__)

TOPIC = "erp.orders.v1"
EVENT_TYPE = "erp.order"
CHANGELOG_TOPIC = REP_FORECAST_STATE_TOPIC  # compacted, one partition
HOME_PARTITION = 0
ALERT_KIND = "forecast"
ZERO_STATUSES = frozenset({"CANCELLED", "RETURNED"})
REP_ACCURACY = TableSpec(tables.REP_FORECAST_ACCURACY, tables.REP_FORECAST_ACCURACY_COLUMNS)
_STATE_VERSION = 1

SKIPPED = Counter(
    "dealstream_rep_forecast_skipped_total",
    "ERP order records the rep forecast pipeline did not learn from",
    ["reason"],
)


class RepForecastSettings(BaseSettings):
    """Model and alert thresholds of the rep forecasts (``DEALSTREAM_REP_FORECAST_*``)."""

    model_config = SettingsConfigDict(env_prefix="DEALSTREAM_REP_FORECAST_", extra="forbid")

    family: str = "holt_winters"
    season: int = 52
    model_name: str = "rep-weekly-orders"
    model_version: str = "1"
    min_history: int = 8  # weeks learned before a forecast may count towards an alert
    level: float = 0.8
    threshold: float = 0.15  # |forecast - actual| / actual above which a week deviates
    weeks: int = 3  # consecutive deviating weeks that raise an alert
    allowed_lateness: int = 2  # weeks a closed week still takes order changes
    grace_ms: int = 6 * 3600 * 1000
    max_event_ids: int = 200  # per rep and week, kept for the alert's audit trail
    # Optional models file (streams/forecast_settings.py format); rules match the field "rep".
    models_file: Path | None = None

    def routing(self) -> ModelRouting:
        """Specs per rep family from ``models_file``, else every rep gets :meth:`spec`."""
        if self.models_file is None:
            return ModelRouting(ModelRegistry({"default": self.spec()}))
        return load_routing(self.models_file)

    def spec(self) -> ModelSpec:
        for spec in default_specs((1,), self.season):
            if spec.family == self.family:
                return ModelSpec(spec.family, self.model_name, self.model_version, spec.params)
        raise ModelConfigError(
            f"DEALSTREAM_REP_FORECAST_FAMILY={self.family!r} is not a known model family"
        )

    def forecaster_config(self) -> ForecasterConfig:
        return ForecasterConfig(horizons=(1,), level=self.level, min_history=self.min_history)


TableRows = list[tuple[str, Row]]


@dataclass
class RepState:
    """Everything kept for one rep; pickled (signed) as its changelog entry."""

    key: KeyState
    tracker: RepDeviationTracker
    offsets: dict[int, int] = field(default_factory=dict)  # last applied offset per partition
    orders: dict[str, tuple[int, float]] = field(default_factory=dict)  # order -> week, amount
    event_ids: dict[int, list[str]] = field(default_factory=dict)  # week -> order event ids
    stats: AccuracyStats = field(default_factory=AccuracyStats)
    unsaved: TableRows = field(default_factory=list)
    unsaved_alerts: list[dict[str, Any]] = field(default_factory=list)
    restored: TableRows = field(default_factory=list)
    restored_alerts: list[dict[str, Any]] = field(default_factory=list)


def encode_state(state: RepState) -> bytes:
    """One changelog value (our own topic only; signed by the caller)."""
    state.restored, state.restored_alerts = [], []
    return bytes([_STATE_VERSION]) + pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


def decode_state(value: bytes) -> RepState:
    if not value or value[0] != _STATE_VERSION:
        raise ValueError(f"not a rep forecast state entry (version {value[:1]!r})")
    state = pickle.loads(value[1:])  # noqa: S301 - our own signed topic only
    if not isinstance(state, RepState):
        raise ValueError(f"entry holds {type(state).__name__}, not RepState")
    state.restored, state.restored_alerts = state.unsaved, state.unsaved_alerts
    state.unsaved, state.unsaved_alerts = [], []
    state.key.dirty = False
    return state


class RepForecastPipeline:
    """ERP orders → weekly amounts per rep → forecasts, accuracy rows, deviation alerts."""

    name = "rep-forecast"
    tables: tuple[TableSpec, ...] = (REP_ACCURACY,)

    def __init__(
        self,
        *,
        state_reader: StateReader,
        topic: str = TOPIC,
        changelog_topic: str = CHANGELOG_TOPIC,
        settings: RepForecastSettings | None = None,
        resolver: SchemaResolver | None = None,
        records: RecordReader | None = None,
        signer: StateSigner | None = None,
    ) -> None:
        self.topics: tuple[str, ...] = (topic,)
        self.changelog_topic = changelog_topic
        self.settings = settings or RepForecastSettings()
        self._routing = self.settings.routing()
        self._config = self.settings.forecaster_config()
        self._reader = state_reader
        self._records = records or RecordReader(EVENT_TYPE, resolver=resolver)
        self._signer = signer or StateSigner(StateSettings().key)
        self._reps: dict[str, RepState] = {}
        self._owned: set[int] = set()
        self._watermark_ms: int | None = None  # newest updated_at seen

    # -- state hooks -------------------------------------------------------------------------
    def state_entries(self) -> int:
        return len(self._reps)

    def snapshot(self) -> list[StateRecord]:
        out = []
        for rep, state in self._reps.items():
            if not state.key.dirty:
                continue
            value = self._signer.sign(encode_state(state))
            state.key.dirty = False
            state.unsaved, state.unsaved_alerts = [], []
            out.append(StateRecord(self.changelog_topic, 0, rep.encode(), value))
        return out

    def assigned(self, partitions: Sequence[tuple[str, int]]) -> None:
        numbers = {p for _, p in partitions}
        if HOME_PARTITION in numbers and HOME_PARTITION not in self._owned:
            for raw_key, value in self._reader.read(self.changelog_topic, [0]).get(0, {}).items():
                rep = raw_key.decode()
                try:
                    self._reps[rep] = decode_state(self._signer.verify(value))
                except (SignatureError, ValueError) as exc:
                    SKIPPED.labels("bad_state").inc()
                    log.error("rep forecast state of %s ignored: %s", rep, exc)
            log.info("rep forecast state restored: %d reps", len(self._reps))
        self._owned |= numbers

    def revoked(self, partitions: Sequence[tuple[str, int]]) -> None:
        self._owned -= {p for _, p in partitions}
        if HOME_PARTITION not in self._owned:
            self._reps = {}  # all of it is in the changelog

    @property
    def reps(self) -> dict[str, RepState]:
        """Live state per rep (tests and diagnostics)."""
        return self._reps

    # -- processing --------------------------------------------------------------------------
    def process(self, messages: Sequence[Message]) -> BatchResult:
        result = BatchResult(rows={REP_ACCURACY.name: []})
        checked = self._records.read(messages)
        for rejected in checked.rejected:  # the business pipeline dead-letters them
            SKIPPED.labels(f"{rejected.stage.lower()}:{rejected.code}").inc()
        for message, record in checked.records:
            partition, offset = cast(int, message.partition()), cast(int, message.offset())
            p = record["payload"]
            self._advance_watermark(_ms(p["updated_at"]), record["event_id"], result)
            if self._owned and HOME_PARTITION not in self._owned:
                SKIPPED.labels("not_home").inc()
                continue
            rep = p.get("sales_rep_id")
            if not rep:
                SKIPPED.labels("unassigned").inc()
                continue
            state = self._reps.get(rep)
            if state is None:
                state = self._reps[rep] = self._new_state(rep)
            if offset <= state.offsets.get(partition, -1):
                SKIPPED.labels("already_applied").inc()
                self._reemit(state, result)
                continue
            state.restored, state.restored_alerts = [], []
            state.offsets[partition] = offset
            self._apply(rep, state, record, result)
            result.processed += 1
        return result

    def _new_state(self, rep: str) -> RepState:
        s = self.settings
        family = self._routing.family_of({"rep": rep})
        spec = self._routing.registry.spec_for(family)
        key = KeyState.new(rep, spec, self._config, allowed_lateness=s.allowed_lateness,
                           grace_ms=s.grace_ms, family=family)  # fmt: skip
        return RepState(key, RepDeviationTracker(s.threshold, s.weeks))

    def _reemit(self, state: RepState, result: BatchResult) -> None:
        for table, row in state.restored:
            result.rows[table].append(row)
        result.alerts.extend(state.restored_alerts)
        state.restored, state.restored_alerts = [], []

    def _apply(
        self, rep: str, state: RepState, record: dict[str, Any], result: BatchResult
    ) -> None:
        p = record["payload"]
        created = p.get("created_at")
        at_ms = _ms(created) if created is not None else _ms(p["updated_at"])
        week = period_index(at_ms, "week")
        amount = 0.0 if p["status"] in ZERO_STATUSES else float(p["total_amount"])
        old_week, old_amount = state.orders.get(p["order_id"], (week, 0.0))
        state.orders[p["order_id"]] = (week, amount)
        ids = state.event_ids.setdefault(week, [])
        if len(ids) < self.settings.max_event_ids:
            ids.append(record["event_id"])
        if old_week != week and old_amount:  # created_at changed: move the amount
            self._emit(rep, state, state.key.add(period_start_ms(old_week, "week"), -old_amount),
                       record["event_id"], result)  # fmt: skip
            old_amount = 0.0
        step = state.key.add(at_ms, amount - old_amount)
        self._emit(rep, state, step, record["event_id"], result)

    def _advance_watermark(self, updated_ms: int, event_id: str, result: BatchResult) -> None:
        """Close due weeks of every rep when the watermark enters a new week.

        Done per record, not per batch, so the rows (and the event id that closed each week)
        do not depend on how records were batched.
        """
        before = self._watermark_ms
        if before is not None and updated_ms <= before:
            return
        self._watermark_ms = updated_ms
        grace = self.settings.grace_ms
        due = period_index(updated_ms - grace, "week")
        if before is not None and period_index(before - grace, "week") == due:
            return
        for rep, state in self._reps.items():
            newest = state.key.buckets.watermark_ms
            if newest is None or period_index(newest, "week") >= due:
                continue  # nothing to close for this rep
            self._emit(rep, state, state.key.advance_to(updated_ms), event_id, result)

    def _emit(
        self, rep: str, state: RepState, step: Step, event_id: str, result: BatchResult
    ) -> None:
        SKIPPED.labels("too_late").inc(len(step.too_late))
        if not step.closed:
            return
        s = self.settings
        fc = step.forecast
        assert fc is not None
        produced_at = datetime.now(UTC)
        first_step = state.key.forecaster.steps - len(step.closed)
        for scored in step.scored:
            period = step.closed[scored.step - first_step]
            state.stats.update(scored.forecast, scored.actual)
            deviation = _deviation(scored.forecast, scored.actual)
            st = state.stats
            row: Row = (
                rep, period.label, _dt(period_start_ms(period.index, "week")), scored.horizon,
                scored.forecast, scored.actual, abs(scored.forecast - scored.actual),
                deviation, st.n, st.mae, st.wape, st.bias,
                fc.model_name, fc.model_version, produced_at, event_id,
            )  # fmt: skip
            result.rows[REP_ACCURACY.name].append(row)
            state.unsaved.append((REP_ACCURACY.name, row))
            if scored.step < s.min_history:
                continue  # too little history for the forecast to be judged
            flag = state.tracker.update(
                rep, period.index, rep_forecast=scored.forecast, reference=scored.actual
            )
            if flag is not None:
                alert = self._alert(state, flag, fc.model_name, fc.model_version)
                result.alerts.append(alert)
                state.unsaved_alerts.append(alert)
        oldest = step.closed[-1].index - s.allowed_lateness - s.weeks
        state.orders = {k: v for k, v in state.orders.items() if v[0] >= oldest}
        state.event_ids = {w: ids for w, ids in state.event_ids.items() if w >= oldest}

    def _alert(
        self, state: RepState, flag: RepDeviationFlag, model_name: str, model_version: str
    ) -> dict[str, Any]:
        weeks = [period_label(w, "week") for w in flag.periods]
        event_ids = [e for w in flag.periods for e in state.event_ids.get(w, [])]
        ident = "\x1f".join([model_name, model_version, flag.rep, *map(str, flag.periods)])
        pct = ", ".join(_pct(d) for d in flag.deviations)
        return {
            "alert_id": hashlib.sha256(ident.encode()).hexdigest()[:32],
            "kind": ALERT_KIND,
            "severity": "WARNING",
            "rule_id": None,
            "rule_version": None,
            "model_name": model_name,
            "model_version": model_version,
            "entity_key": flag.rep,
            "message": (
                f"sales rep {flag.rep}: weekly order forecast off by more than "
                f"{flag.threshold:.0%} for {len(weeks)} weeks in a row ({', '.join(weeks)}: {pct})"
            ),
            "input_event_ids": event_ids,
            "raised_at": int(time.time() * 1000),
            "attributes": {
                "rep": flag.rep,
                "weeks": ",".join(weeks),
                "deviations": ",".join(f"{d:.4f}" for d in flag.deviations),
                "threshold": str(flag.threshold),
                "consecutive_weeks": str(len(weeks)),
            },
        }


def _deviation(forecast: float, actual: float) -> float:
    """Signed (forecast − actual) / actual, as the tracker computes it."""
    if forecast == actual:
        return 0.0
    return (forecast - actual) / abs(actual) if actual else math.inf


def _pct(d: float) -> str:
    return f"{d:+.0%}" if math.isfinite(d) else "no orders"


def _ms(value: datetime | int) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return int(value)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
