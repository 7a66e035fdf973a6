"""Compliance phrase rules: YAML rule sets compiled into one matcher, evaluated per message.

A rule says which phrases (and variants) a speaker must not use, for which speaker roles,
channels and product lines, how severe it is and what to say instead. Rules are data: a new
version is loaded, validated and swapped in without a deploy (DESIGN §3.7).

>>> rules = ComplianceRules.from_yaml('''
... rules:
...   - id: promise.principal
...     version: 2
...     severity: CRITICAL
...     phrases: [{phrase: 保本, variants: [保本保息, 保证本金]}, 稳赚]
...     speaker_roles: [SALES_REP]
...     suggestion: 理财产品不保证本金，过往业绩不代表未来表现
... ''')
>>> msg = {"event_id": "e1", "occurred_at": 0,
...        "payload": {"speaker_role": "SALES_REP", "channel": "WECOM", "text": "本产品保．本保息"}}
>>> [(v.rule_id, v.phrase, v.text, v.span) for v in rules.evaluate(msg)]
[('promise.principal', '保本', '保．本保息', (3, 8))]
>>> rules.evaluate({"payload": {"speaker_role": "SALES_REP", "text": "本产品不保本"}})
[]
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dealstream.streams.rules.errors import RuleError, combine
from dealstream.streams.rules.normalize import Normalizer
from dealstream.streams.rules.phrases import (
    DEFAULT_CUES,
    DEFAULT_PSEUDO_CUES,
    Negation,
    PhraseMatch,
    PhraseMatcher,
)
from dealstream.streams.rules.source import Node, parse_rule_list

SEVERITIES = ("INFO", "WARNING", "CRITICAL")
_RULE_FIELDS = {
    "id", "version", "severity", "kind", "phrases", "speaker_roles", "channels",
    "product_lines", "suggestion", "negatable", "description",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ComplianceRule:
    id: str
    version: int
    severity: str
    kind: str
    phrases: tuple[tuple[str, tuple[str, ...]], ...]  # (canonical phrase, its variants)
    speaker_roles: frozenset[str]  # empty means any
    channels: frozenset[str]
    product_lines: frozenset[str]
    suggestion: str
    negatable: bool  # False: even "不..." is a violation (e.g. insults)

    def applies_to(self, payload: Mapping[str, Any]) -> bool:
        for allowed, field in (
            (self.speaker_roles, "speaker_role"),
            (self.channels, "channel"),
            (self.product_lines, "product_line"),
        ):
            if allowed and str(payload.get(field)) not in allowed:
                return False
        return True


@dataclass(frozen=True, slots=True)
class Violation:
    """One phrase a rule forbids, where it is in the original text, and what to say instead."""

    rule_id: str
    rule_version: int
    kind: str
    severity: str
    phrase: str  # the canonical phrase of the rule
    matched: str  # the phrase or variant that matched
    start: int  # original character offsets, end exclusive
    end: int
    text: str  # the original text at [start, end)
    suggestion: str

    @property
    def span(self) -> tuple[int, int]:
        return self.start, self.end

    def to_alert(self, message: Mapping[str, Any], *, raised_at: int) -> dict[str, Any]:
        """The alert record (``alerts.<kind>.v1``) for this violation in ``message``."""
        payload = message.get("payload") or {}
        event_id = str(message.get("event_id", ""))
        entity = str(payload.get("conversation_id", ""))
        ident = "\x1f".join(
            [self.rule_id, str(self.rule_version), event_id, str(self.start), str(self.end)]
        )
        return {
            "alert_id": hashlib.sha256(ident.encode()).hexdigest()[:32],
            "kind": self.kind,
            "severity": self.severity,
            "rule_id": self.rule_id,
            "rule_version": self.rule_version,
            "model_name": None,
            "model_version": None,
            "entity_key": entity,
            "message": f"「{self.text}」 违反 {self.rule_id}: {self.suggestion}".strip(),
            "input_event_ids": [event_id] if event_id else [],
            "raised_at": raised_at,
            "attributes": {
                "phrase": self.phrase,
                "matched": self.matched,
                "text": self.text,
                "start": str(self.start),
                "end": str(self.end),
                "suggestion": self.suggestion,
                "speaker_role": str(payload.get("speaker_role", "")),
                "rep_id": str(payload.get("rep_id") or ""),
            },
        }


class ComplianceRules:
    """A compiled rule set: every phrase of every rule in one automaton."""

    def __init__(
        self,
        rules: list[ComplianceRule],
        *,
        negation: Negation | None = None,
        normalizer: Normalizer | None = None,
    ) -> None:
        self.rules = tuple(rules)
        entries = [
            (text, (rule, phrase))
            for rule in rules
            for phrase, variants in rule.phrases
            for text in (phrase, *variants)
        ]
        self.matcher: PhraseMatcher[tuple[ComplianceRule, str]] = PhraseMatcher(
            entries, normalizer=normalizer, negation=negation
        )

    @classmethod
    def from_yaml(cls, text: str, *, normalizer: Normalizer | None = None) -> ComplianceRules:
        """Parse and validate a rule set; raises :class:`RuleError` listing every problem."""
        doc = Node.parse(text)
        doc.check_keys({"rules", "negation"})
        rules, errors = parse_rule_list(doc.req("rules").items(), _rule)
        negation = None
        try:
            neg = doc.get("negation")
            negation = _negation(neg) if neg is not None else None
        except RuleError as exc:
            errors.append(exc)
        if errors:
            raise combine(errors)
        return cls(rules, negation=negation, normalizer=normalizer)

    def evaluate(self, message: Mapping[str, Any]) -> list[Violation]:
        """Violations in a ``wecom.message`` event, leftmost-longest per rule, in text order."""
        payload = message.get("payload")
        if not isinstance(payload, Mapping):
            return []
        text = payload.get("text")
        if not isinstance(text, str) or not text:
            return []
        by_rule: dict[str, list[PhraseMatch[tuple[ComplianceRule, str]]]] = {}
        applies: dict[str, bool] = {}
        for m in self.matcher.find(text):
            rule = m.payload[0]
            ok = applies.get(rule.id)
            if ok is None:
                ok = applies[rule.id] = rule.applies_to(payload)
            if ok and (not m.negated or not rule.negatable):
                by_rule.setdefault(rule.id, []).append(m)
        out: list[Violation] = []
        for matches in by_rule.values():
            out.extend(_violation(m) for m in _leftmost_longest(matches))
        out.sort(key=lambda v: (v.start, -v.end, v.rule_id))
        return out


def _leftmost_longest(
    matches: list[PhraseMatch[tuple[ComplianceRule, str]]],
) -> list[PhraseMatch[tuple[ComplianceRule, str]]]:
    chosen: list[PhraseMatch[tuple[ComplianceRule, str]]] = []
    end = -1
    for m in sorted(matches, key=lambda m: (m.start, -m.end)):
        if m.start >= end:
            chosen.append(m)
            end = m.end
    return chosen


def _violation(m: PhraseMatch[tuple[ComplianceRule, str]]) -> Violation:
    rule, canonical = m.payload
    return Violation(
        rule.id, rule.version, rule.kind, rule.severity, canonical, m.phrase,
        m.start, m.end, m.text, rule.suggestion,
    )  # fmt: skip


def _rule(node: Node) -> ComplianceRule:
    node.check_keys(_RULE_FIELDS)
    severity = node.req("severity").text().upper()
    if severity not in SEVERITIES:
        raise node.req("severity").error(f"severity must be one of {', '.join(SEVERITIES)}")
    version = node.req("version").integer()
    if version < 1:
        raise node.req("version").error("version must be a positive integer")
    phrases: list[tuple[str, tuple[str, ...]]] = []
    for item in node.req("phrases").items():
        if item.is_scalar:
            phrases.append((item.text(), ()))
        else:
            item.check_keys({"phrase", "variants"})
            var_node = item.get("variants")
            variants = tuple(var_node.strings()) if var_node is not None else ()
            phrases.append((item.req("phrase").text(), variants))
    if not phrases:
        raise node.req("phrases").error("a rule needs at least one phrase")
    normalizer_check = Normalizer(traditional_to_simplified=False)
    for phrase, alternatives in phrases:
        for p in (phrase, *alternatives):
            if not normalizer_check.normalize_phrase(p):
                raise node.req("phrases").error(f"phrase {p!r} is only spaces/punctuation")

    def roles(field: str) -> frozenset[str]:
        found = node.get(field)
        return frozenset(found.strings()) if found is not None else frozenset()

    negatable = node.get("negatable")
    return ComplianceRule(
        id=node.req("id").text(),
        version=version,
        severity=severity,
        kind=node.opt_text("kind", "compliance"),
        phrases=tuple(phrases),
        speaker_roles=roles("speaker_roles"),
        channels=roles("channels"),
        product_lines=roles("product_lines"),
        suggestion=node.opt_text("suggestion", ""),
        negatable=bool(negatable.value()) if negatable is not None else True,
    )


def _negation(node: Node) -> Negation:
    node.check_keys({"cues", "pseudo_cues", "max_gap", "extra_cues"})
    cues = tuple(node.req("cues").strings()) if node.get("cues") else DEFAULT_CUES
    if node.get("extra_cues"):
        cues = cues + tuple(node.req("extra_cues").strings())
    pseudo = node.get("pseudo_cues")
    gap = node.get("max_gap")
    max_gap = gap.integer() if gap is not None else 3
    if not 0 <= max_gap <= 20:
        raise node.req("max_gap").error("max_gap must be between 0 and 20")
    return Negation(
        cues=cues,
        pseudo_cues=tuple(pseudo.strings()) if pseudo is not None else DEFAULT_PSEUDO_CUES,
        max_gap=max_gap,
    )
