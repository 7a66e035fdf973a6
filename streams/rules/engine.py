"""Runs business rules over events in event time and returns alert records.

``process(event)`` records signals, arms or cancels timers and evaluates ``when`` conditions;
``advance(watermark_ms)`` fires the absence/sequence timers the watermark has passed and evicts
old state. All state (series, timers, suppression windows) snapshots to bytes and is rebuilt
from them alone (DESIGN §3.3). Alerts are dicts shaped like ``dealstream.Alert``; the id is
derived from rule id, state key and window start, so a replay produces the same ids.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from dealstream.streams.rules.business import BusinessRule, load_rules
from dealstream.streams.rules.language.evaluator import Scope
from dealstream.streams.rules.state import Point, SeriesStore, Value
from dealstream.streams.rules.timers import Timer, TimerQueue

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def event_time_ms(event: Mapping[str, Any]) -> int | None:
    """``occurred_at`` as epoch ms, whether decoded (aware datetime) or raw (int ms)."""
    value = event.get("occurred_at")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return int((value - _EPOCH).total_seconds() * 1000)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    return None


class RuleEngine:
    """Stateful evaluation of one rule set; swap rule sets with :meth:`with_rules` (hot reload)."""

    SNAPSHOT_VERSION = 1

    def __init__(
        self,
        rules: tuple[BusinessRule, ...],
        *,
        state: bytes | None = None,
        max_timers: int | None = None,
    ) -> None:
        """``max_timers`` bounds the pending timers (absence and sequence rules); beyond it new
        ones are refused and counted (:meth:`take_refused`)."""
        self.rules = rules
        self._by_type: dict[str, list[BusinessRule]] = {}
        for rule in rules:
            for event_type in rule.record:
                self._by_type.setdefault(event_type, []).append(rule)
        self._by_id = {r.id: r for r in rules}
        retention: dict[str, int] = {}
        for rule in rules:
            for sig, ms in rule.retention().items():
                retention[sig] = max(retention.get(sig, 0), ms)
        extremes = extremes_only(rules)
        # Signals no rule reads (an absence rule's "customer_message") only say that an event
        # was seen: they arm and cancel timers but are never stored, so a conversation that got
        # its reply leaves nothing behind.
        self._unread = frozenset(sig for sig, names in signal_reads(rules).items() if not names)
        # State keys changed since the last take_changes() (incremental checkpoints).
        self._dirty: set[str] = set()
        if state is None:
            self.store = SeriesStore(retention_ms=retention, extremes_only=extremes)
            self.timers = TimerQueue(limit=max_timers)
            self._suppressed: dict[str, int] = {}
            self.watermark_ms = 0
        else:
            doc = json.loads(state)
            if doc.get("v") != self.SNAPSHOT_VERSION:
                raise ValueError(f"unsupported engine snapshot version {doc.get('v')!r}")
            self.store = SeriesStore.restore(doc["store"].encode())
            self.store.set_policy(retention, extremes)
            self.timers = TimerQueue.from_data(doc["timers"], limit=max_timers)
            self._suppressed = {str(k): int(v) for k, v in doc["suppressed"].items()}
            self.watermark_ms = int(doc["watermark_ms"])
            self.store.forget(self._unread)  # stored by older versions or other rules

    @classmethod
    def from_yaml(cls, text: str) -> RuleEngine:
        return cls(load_rules(text))

    def with_rules(self, rules: tuple[BusinessRule, ...]) -> RuleEngine:
        """A new engine on new rules that keeps this one's state (state is keyed by rule id)."""
        return RuleEngine(rules, state=self.snapshot(), max_timers=self.timers.limit)

    def snapshot(self) -> bytes:
        doc = {
            "v": self.SNAPSHOT_VERSION,
            "store": self.store.snapshot().decode(),
            "timers": self.timers.to_data(),
            "suppressed": self._suppressed,
            "watermark_ms": self.watermark_ms,
        }
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()

    # -- events --------------------------------------------------------------------------------
    def process(
        self, event: Mapping[str, Any], *, now_ms: int | None = None, ts: int | None = None
    ) -> list[dict[str, Any]]:
        """Alerts raised by one event; ``now_ms`` is processing time (defaults to event time),
        ``ts`` the event's time when the caller has it already (see :func:`event_time_ms`)."""
        event_type = event.get("event_type")
        if ts is None:
            ts = event_time_ms(event)
        if not isinstance(event_type, str) or ts is None:
            return []
        rules = self._by_type.get(event_type)
        if not rules:
            return []
        event_id = str(event.get("event_id", ""))
        alerts: list[dict[str, Any]] = []
        key_scope = Scope(event, {}, _NO_STATE, "", 0)  # key expressions read the event only
        for rule in rules:
            entity = _entity_key(rule, key_scope)
            if entity is None:
                continue
            state_key = f"{rule.id}\x1f{entity}"
            self._dirty.add(state_key)
            keyed = dict(zip(rule.key_names, entity.split("|"), strict=False))
            scope = Scope(event, keyed, self.store, state_key, ts, [event_id])
            recorded = self._record(rule, event_type, scope, event_id)
            if rule.absence is not None:
                self._absence(rule, state_key, scope, recorded)
            elif rule.sequence is not None and rule.sequence.before in recorded:
                self.timers.schedule(
                    Timer(ts + rule.sequence.grace_ms, rule.id, state_key, ts, (event_id,))
                )
            elif rule.when is not None and event_type in rule.on and rule.when.fn(scope) is True:
                alert = self._raise(
                    rule,
                    state_key,
                    entity,
                    ts,
                    ids=scope.event_ids,
                    now_ms=now_ms,
                    notes=scope.notes,
                )
                if alert is not None:
                    alerts.append(alert)
        return alerts

    def _record(self, rule: BusinessRule, event_type: str, scope: Scope, event_id: str) -> set[str]:
        recorded: set[str] = set()
        for rec in rule.record[event_type]:
            if rec.condition is not None and rec.condition.fn(scope) is not True:
                continue
            value = rec.value.fn(scope)
            if isinstance(value, str | int | float | bool):
                if rec.signal not in self._unread:
                    self.store.append(
                        scope.state_key, rec.signal, Point(scope.now_ms, _plain(value), event_id)
                    )
                recorded.add(rec.signal)
        return recorded

    def _absence(
        self, rule: BusinessRule, state_key: str, scope: Scope, recorded: set[str]
    ) -> None:
        assert rule.absence is not None
        spec, ts = rule.absence, scope.now_ms
        pending = self.timers.pending(rule.id, state_key)
        if spec.expect in recorded and pending is not None and pending.started_ms <= ts:
            self.timers.cancel(rule.id, state_key)
        elif spec.after in recorded and (rule.when is None or rule.when.fn(scope) is True):
            ids = tuple(scope.event_ids)
            self.timers.schedule(Timer(ts + spec.within_ms, rule.id, state_key, ts, ids))

    # -- time ----------------------------------------------------------------------------------
    def advance(self, watermark_ms: int, *, now_ms: int | None = None) -> list[dict[str, Any]]:
        """Fire timers due by ``watermark_ms`` (event time) and evict state older than needed."""
        self.watermark_ms = max(self.watermark_ms, watermark_ms)
        alerts: list[dict[str, Any]] = []
        for timer in self.timers.pop_due(self.watermark_ms):
            self._dirty.add(timer.key)
            rule = self._by_id.get(timer.rule_id)
            if rule is None:
                continue  # rule removed by a reload: its timers lapse
            entity = timer.key.split("\x1f", 1)[1]
            notes: dict[str, str] = {}
            if rule.sequence is not None:
                seq = rule.sequence
                since = timer.started_ms - seq.within_ms
                if self.store.window(timer.key, seq.requires, since - 1, timer.started_ms):
                    continue
                notes = {"missing": seq.requires, "before": seq.before}
            elif rule.absence is not None:
                notes = {"missing": rule.absence.expect, "after": rule.absence.after}
            else:
                continue
            alert = self._raise(
                rule,
                timer.key,
                entity,
                timer.due_ms,
                ids=list(timer.event_ids),
                now_ms=now_ms,
                notes=notes,
            )
            if alert is not None:
                alerts.append(alert)
        self.store.evict(self.watermark_ms)
        lapsed = [k for k, v in self._suppressed.items() if v <= self.watermark_ms]
        for key in lapsed:
            del self._suppressed[key]
        self._dirty.update(lapsed)
        return alerts

    def take_changes(self) -> dict[str, dict[str, Any] | None]:
        """Each state key changed since the last call, as its changelog document (series,
        pending timer, suppression; None when the key holds nothing any more).

        Costs what changed, not what is kept: a checkpoint of a week of windows serialises
        only the keys the last second touched.
        """
        keys = self._dirty | self.store.touched
        self._dirty = set()
        self.store.touched = set()
        out: dict[str, dict[str, Any] | None] = {}
        for key in keys:
            doc: dict[str, Any] = {}
            series = self.store.entry(key)
            if series is not None:
                doc["series"] = series
            timer = self.timers.entry(key.split("\x1f", 1)[0], key)
            if timer is not None:
                doc["timer"] = timer
            if key in self._suppressed:
                doc["suppressed"] = self._suppressed[key]
            out[key] = doc or None
        return out

    def take_refused(self) -> dict[str, int]:
        """Timers refused by a full queue since the last call, by rule id."""
        refused, self.timers.refused = self.timers.refused, {}
        return refused

    def meta(self) -> dict[str, Any]:
        """What a snapshot holds besides the keys: versions, watermark, retention."""
        return {
            "engine_v": self.SNAPSHOT_VERSION,
            "store_v": self.store.SNAPSHOT_VERSION,
            "watermark_ms": self.watermark_ms,
            "retention_ms": self.store.retention_ms,
        }

    def _raise(
        self,
        rule: BusinessRule,
        state_key: str,
        entity: str,
        ts: int,
        *,
        ids: list[str],
        now_ms: int | None,
        notes: Mapping[str, str],
    ) -> dict[str, Any] | None:
        if rule.suppress_for_ms:
            if self._suppressed.get(state_key, -1) > ts:
                return None
            self._suppressed[state_key] = ts + rule.suppress_for_ms
        ident = "\x1f".join([rule.id, str(rule.version), entity, str(ts)])
        attributes = {"window_start": str(ts), **{k: str(v) for k, v in notes.items()}}
        if rule.when is not None:
            attributes["when"] = rule.when.source
        return {
            "alert_id": hashlib.sha256(ident.encode()).hexdigest()[:32],
            "kind": rule.kind,
            "severity": rule.severity,
            "rule_id": rule.id,
            "rule_version": rule.version,
            "model_name": None,
            "model_version": None,
            "entity_key": entity,
            "message": rule.message,
            "input_event_ids": [e for e in ids if e],
            "raised_at": now_ms if now_ms is not None else ts,
            "attributes": attributes,
        }


_EXTREMES = frozenset({"max_over", "min_over"})


def extremes_only(rules: tuple[BusinessRule, ...]) -> dict[str, frozenset[str]]:
    """Signals that every rule reads only through ``max_over``/``min_over``/``last`` (or not at
    all): their state can be compacted to the points that may still be an extreme.

    >>> rules = load_rules('''
    ... rules:
    ...   - {id: r, version: 1, kind: business, severity: INFO, key: payload.sku,
    ...      record: {pos.transaction: {pct: payload.discount, n: 1}},
    ...      when: 'max_over("pct", "7d") > 5 and count_over("n", "1d") > 3', message: m}
    ... ''')
    >>> extremes_only(rules)
    {'pct': frozenset({'max_over'})}
    """
    return {
        sig: frozenset(names & _EXTREMES)
        for sig, names in sorted(signal_reads(rules).items())
        if names <= _EXTREMES | {"last"}
    }


def signal_reads(rules: tuple[BusinessRule, ...]) -> dict[str, set[str]]:
    """How any of ``rules`` reads each recorded signal (see :meth:`BusinessRule.reads`)."""
    reads: dict[str, set[str]] = {}
    for rule in rules:
        for sig, names in rule.reads().items():
            reads.setdefault(sig, set()).update(names)
    return reads


def _plain(value: Value) -> Value:
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


_NO_STATE = SeriesStore()  # key expressions read the event only


def _entity_key(rule: BusinessRule, scope: Scope) -> str | None:
    parts = []
    for k in rule.key:
        v = k.fn(scope)
        if v is None or v == "":
            return None
        parts.append(str(v))
    return "|".join(parts)
