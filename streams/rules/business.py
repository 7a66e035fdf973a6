"""Business rules as YAML data: what each rule records, when it fires, how it dedups.

A rule has an ``id``, ``version``, alert ``kind`` and ``severity``; ``key`` (fields that form
the state key, e.g. SKU + region); ``record`` (which event types update which signals, each a
value expression with an optional ``if``); then a ``when`` condition, an ``absence`` timer
(``after`` a signal, ``expect`` another ``within`` a duration) or a ``sequence`` check
(``requires`` one signal ``before`` another); and ``suppress_for``, one alert per key per window.
Every problem is reported with its YAML line and column.
"""

from __future__ import annotations

from dataclasses import dataclass

from dealstream.streams.rules.compliance import SEVERITIES
from dealstream.streams.rules.language.evaluator import Compiled, compile_node
from dealstream.streams.rules.source import Node, load_rule_list

_RULE_FIELDS = {
    "id", "version", "kind", "severity", "key", "record", "on", "when", "absence", "sequence",
    "suppress_for", "message", "description",
}  # fmt: skip
MAX_RULES = 5000


@dataclass(frozen=True, slots=True)
class Recorder:
    signal: str
    value: Compiled
    condition: Compiled | None


@dataclass(frozen=True, slots=True)
class Absence:
    after: str
    expect: str
    within_ms: int


@dataclass(frozen=True, slots=True)
class Sequence:
    requires: str
    before: str
    within_ms: int  # how far back ``requires`` may be
    grace_ms: int  # wait this long for a late ``requires`` before alerting


@dataclass(frozen=True, slots=True)
class BusinessRule:
    id: str
    version: int
    kind: str
    severity: str
    key: tuple[Compiled, ...]
    key_names: tuple[str, ...]
    record: dict[str, tuple[Recorder, ...]]  # event type → recorders
    on: frozenset[str]  # event types that evaluate ``when``
    when: Compiled | None
    absence: Absence | None
    sequence: Sequence | None
    suppress_for_ms: int
    message: str

    def _compiled(self) -> list[Compiled]:
        compiled = [self.when] if self.when else []
        for recs in self.record.values():
            for r in recs:
                compiled.extend(c for c in (r.value, r.condition) if c is not None)
        return compiled

    def retention(self) -> dict[str, int]:
        """How long each signal must be kept for this rule's windows and timers."""
        out: dict[str, int] = {}
        for c in self._compiled():
            for sig, ms in c.windows.items():
                out[sig] = max(out.get(sig, 0), ms)
        if self.sequence:
            s = self.sequence
            out[s.requires] = max(out.get(s.requires, 0), s.within_ms + s.grace_ms)
        return out

    def reads(self) -> dict[str, set[str]]:
        """How each recorded signal is read: the functions over it, and ``"window"`` for a
        sequence's lookup of every point (what decides how its series may be compacted)."""
        out: dict[str, set[str]] = {
            sig: set() for recs in self.record.values() for sig in (r.signal for r in recs)
        }
        for c in self._compiled():
            for sig, names in c.reads.items():
                out.setdefault(sig, set()).update(names)
        if self.sequence:
            out.setdefault(self.sequence.requires, set()).add("window")
        return out


def load_rules(text: str) -> tuple[BusinessRule, ...]:
    """Parse and validate a YAML rule file; raises :class:`RuleError` naming every problem."""
    return load_rule_list(text, _rule, max_rules=MAX_RULES)


def _expr(node: Node, signals: set[str], *, condition: bool = False) -> Compiled:
    return compile_node(node, signals, condition=condition)


def _rule(node: Node) -> BusinessRule:
    node.check_keys(_RULE_FIELDS)
    rule_id = node.req("id").text()
    version = node.req("version").integer()
    if version < 1:
        raise node.req("version").error("version must be a positive integer")
    severity = node.req("severity").text().upper()
    if severity not in SEVERITIES:
        raise node.req("severity").error(f"severity must be one of {', '.join(SEVERITIES)}")
    record_node = node.req("record")
    signals = {sig for _, sigs in record_node.entries() for sig, _ in sigs.entries()}
    record: dict[str, tuple[Recorder, ...]] = {}
    for event_type, sigs in record_node.entries():
        recs: list[Recorder] = []
        for signal, spec in sigs.entries():
            if spec.is_scalar:
                recs.append(Recorder(signal, _expr(spec, set()), None))
                continue
            spec.check_keys({"value", "if"})
            cond = spec.get("if")
            recs.append(
                Recorder(
                    signal,
                    _expr(spec.req("value"), set()),
                    _expr(cond, signals, condition=True) if cond is not None else None,
                )
            )
        record[event_type] = tuple(recs)
    key_node = node.req("key")
    key_names = tuple(key_node.strings())
    key = tuple(
        _expr(k, set()) for k in (key_node.items() if not key_node.is_scalar else [key_node])
    )
    when_node = node.get("when")
    when = _expr(when_node, signals, condition=True) if when_node is not None else None
    absence = _absence(node.get("absence"), signals)
    sequence = _sequence(node.get("sequence"), signals)
    if when is None and absence is None and sequence is None:
        raise node.error(f"rule {rule_id!r} needs 'when', 'absence' or 'sequence'")
    if absence is not None and sequence is not None:
        raise node.error("a rule has either 'absence' or 'sequence', not both")
    on_node = node.get("on")
    on = frozenset(on_node.strings()) if on_node is not None else frozenset(record)
    for event_type in on - set(record):
        raise on_node.error(f"'on' names {event_type!r}, which 'record' does not list")  # type: ignore[union-attr]
    suppress = node.get("suppress_for")
    return BusinessRule(
        id=rule_id,
        version=version,
        kind=node.req("kind").text(),
        severity=severity,
        key=key,
        key_names=key_names,
        record=record,
        on=on,
        when=when,
        absence=absence,
        sequence=sequence,
        suppress_for_ms=suppress.duration() if suppress is not None else 0,
        message=node.opt_text("message", node.opt_text("description", rule_id)),
    )


def _signal(node: Node, field: str, signals: set[str]) -> str:
    name = node.req(field).text()
    if name not in signals:
        known = ", ".join(sorted(signals)) or "none"
        raise node.req(field).error(f"unknown signal {name!r} (recorded: {known})")
    return name


def _absence(node: Node | None, signals: set[str]) -> Absence | None:
    if node is None:
        return None
    node.check_keys({"after", "expect", "within"})
    return Absence(
        _signal(node, "after", signals),
        _signal(node, "expect", signals),
        node.req("within").duration(),
    )


def _sequence(node: Node | None, signals: set[str]) -> Sequence | None:
    if node is None:
        return None
    node.check_keys({"requires", "before", "within", "grace"})
    within, grace = node.get("within"), node.get("grace")
    return Sequence(
        _signal(node, "requires", signals),
        _signal(node, "before", signals),
        within.duration() if within is not None else 30 * 86_400_000,
        grace.duration() if grace is not None else 0,
    )
