"""Business rules over the event topics: keyed state from the rules core, alerts per rule kind.

One :class:`RuleEngine` per input partition number: every event topic has the same partition
count and rules are keyed like their topics (SKU+region, conversation), so inventory and POS
records of one SKU+region meet in the same partition number on the same worker (range
assignor). The state of partition ``p`` is snapshotted to partition ``p`` of the compacted
``state.rules.v1`` (one entry per rule+entity, see :mod:`dealstream.streams.business_state`)
and restored from there alone on assignment (DESIGN §3.3).

Event-time timers (absence rules) advance with the newest event time of each batch, minus an
allowed lateness. Rules are hot-reloaded: :meth:`BusinessRulesPipeline.replace_rules` only stores
a reference to an immutable :class:`RuleSet` (one attribute store, atomic under the GIL), and
the engine thread swaps it in at the start of its next batch, keeping all state.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from confluent_kafka import Message
from prometheus_client import Counter
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from dealstream.broker.settings import KafkaSettings
from dealstream.broker.standard_topics import ALERT_KINDS, RULES_STATE_TOPIC
from dealstream.schemas import catalog
from dealstream.schemas.codec import SchemaResolver
from dealstream.streams.business_state import META, PartitionState, StateError
from dealstream.streams.changelog import StateReader
from dealstream.streams.decoding import RecordReader, Rejected
from dealstream.streams.pipeline import BatchResult, StateRecord, TableSpec
from dealstream.streams.rules.business import BusinessRule, load_rules
from dealstream.streams.rules.engine import RuleEngine, event_time_ms
from dealstream.streams.rules.errors import RuleError, combine
from dealstream.streams.rules.source import Node

log = logging.getLogger(__name__)

RULE_SET = "business"
CHANGELOG_TOPIC = RULES_STATE_TOPIC  # compacted, co-partitioned with the event topics
BUNDLED_RULES = Path(__file__).with_name("business_rules.yaml")  # shipped in the package

SKIPPED = Counter(
    "dealstream_business_rules_skipped_total",
    "Records the business rules did not evaluate",
    ["reason"],
)
TIMERS_REFUSED = Counter(
    "dealstream_business_rules_timers_refused_total",
    "Timers an absence or sequence rule could not arm: the partition had "
    "DEALSTREAM_BUSINESS_MAX_PENDING_TIMERS pending (its alert will not be raised)",
    ["rule"],
)


def rule_event_types() -> tuple[str, ...]:
    """Every enveloped event type: what a business rule may ``record``."""
    return tuple(et.name for et in catalog.event_types() if et.enveloped)


class BusinessSettings(BaseSettings):
    """Which rules start the worker and which topics it reads (``DEALSTREAM_BUSINESS_*``)."""

    model_config = SettingsConfigDict(env_prefix="DEALSTREAM_BUSINESS_", extra="forbid")

    rules_file: Path | None = None
    """None: the bundled ``streams/business_rules.yaml`` when present, else no rules until a
    document arrives on ``config.rules.v1``."""
    event_types: tuple[str, ...] = Field(default_factory=rule_event_types)
    """Topics read; a reloaded rule set may only record these (the subscription is fixed)."""
    lateness_ms: int = 0
    """Timers fire when the newest event time of a batch minus this passes them."""
    max_pending_timers: int = Field(default=200_000, ge=1)
    """Pending timers per partition (about 1 KB of memory each): an absence rule keeps one per
    unanswered conversation for its whole ``within`` (72 h), so the rate of unanswered chats
    times that sets the memory. Beyond it new timers are refused and counted in
    dealstream_business_rules_timers_refused_total."""

    def load(self) -> RuleSet:
        """The starting rule set; a bad file fails fast with its line and column."""
        path = self.rules_file
        if path is None:
            if not BUNDLED_RULES.is_file():
                log.warning("no bundled business rules at %s: starting empty", BUNDLED_RULES)
                return compile_rule_set("rules: []\n", version="empty")
            path = BUNDLED_RULES
        text = path.read_text(encoding="utf-8")
        return compile_rule_set(
            text, version=f"file-{digest(text)}", author=str(path), event_types=self.event_types
        )


def digest(text: str) -> str:
    """Short content hash: the default version of a rule document."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A validated, immutable rule set with the version of the document it came from."""

    name: str
    version: str
    author: str
    rules: tuple[BusinessRule, ...]
    digest: str
    warnings: tuple[str, ...] = ()

    @property
    def event_types(self) -> frozenset[str]:
        return frozenset(t for r in self.rules for t in r.record)


def compile_rule_set(
    text: str,
    *,
    version: str,
    author: str = "",
    name: str = RULE_SET,
    event_types: Collection[str] | None = None,
) -> RuleSet:
    """Parse and check a rule document for this pipeline; :class:`RuleError` names every problem.

    Beyond the language itself: alert kinds must have an alert topic and recorded event types
    must be read by the pipeline. A rule keyed unlike its topic is a warning (its state could be
    split over partitions when several workers share the topics).
    """
    rules = load_rules(text)
    readable = set(event_types if event_types is not None else rule_event_types())
    nodes = Node.parse(text).req("rules").items()
    errors: list[RuleError] = []
    warnings: list[str] = []
    for rule, node in zip(rules, nodes, strict=True):
        if rule.kind not in ALERT_KINDS:
            errors.append(
                node.req("kind").error(
                    f"kind {rule.kind!r} has no alert topic; use one of {', '.join(ALERT_KINDS)}"
                )
            )
        key = tuple(k.source.strip().removeprefix("event.") for k in rule.key)
        for event_type, spec in node.req("record").entries():
            if event_type not in readable:
                errors.append(
                    spec.error(
                        f"event type {event_type!r} is not read by the business pipeline; "
                        f"known: {', '.join(sorted(readable))}"
                    )
                )
                continue
            topic_key = catalog.event_type(event_type).key_fields
            if key != topic_key:
                warnings.append(
                    f"line {node.line}: rule {rule.id!r} is keyed by {', '.join(key)} but "
                    f"{event_type} records are keyed by {', '.join(topic_key)}: with several "
                    "workers its state may be split across partitions"
                )
    if errors:
        raise combine(errors)
    return RuleSet(name, version, author, rules, digest(text), tuple(warnings))


@dataclass
class _Partition:
    engine: RuleEngine
    state: PartitionState = field(default_factory=PartitionState)
    applied: dict[str, int] = field(default_factory=dict)  # topic -> last offset in the state
    dirty: bool = False
    warned_full: bool = False  # logged that its timers are at the limit


class BusinessRulesPipeline:
    """Event topics → business rule state → alerts on ``alerts.<kind>.v1``."""

    name = "business-rules"
    rule_set_name = RULE_SET
    tables: tuple[TableSpec, ...] = ()

    def __init__(
        self,
        rules: RuleSet,
        *,
        state_reader: StateReader,
        topics: Mapping[str, RecordReader],
        changelog_topic: str = CHANGELOG_TOPIC,
        dead_letter_topics: Collection[str] = (),
        lateness_ms: int = 0,
        max_pending_timers: int | None = None,
    ) -> None:
        """``topics`` maps each topic read to the reader of its event type (share it with the
        topic's other pipelines to decode once); bad records of ``dead_letter_topics`` are
        dead-lettered here, those of other topics only counted (their owner dead-letters)."""
        self.topics: tuple[str, ...] = tuple(topics)
        self.changelog_topic = changelog_topic
        self._readers = dict(topics)
        self._types = {t: r.event_type for t, r in topics.items()}
        self._dead_letter = frozenset(dead_letter_topics)
        self._lateness_ms = lateness_ms
        self._max_timers = max_pending_timers
        self._reader = state_reader
        self._rules = rules
        self._next = rules  # written by the reload agent, read by the engine thread
        self._parts: dict[int, _Partition] = {}
        self._owned: set[tuple[str, int]] = set()

    @classmethod
    def from_settings(
        cls,
        kafka: KafkaSettings,
        settings: BusinessSettings,
        *,
        state_reader: StateReader,
        readers: Mapping[str, RecordReader] | None = None,
        owned_elsewhere: Collection[str] = (),
        resolver: SchemaResolver | None = None,
    ) -> BusinessRulesPipeline:
        """Read every configured event type; ``readers`` (by topic) are shared ones, and
        ``owned_elsewhere`` names topics whose bad records another pipeline dead-letters."""
        shared = readers or {}
        topics = {kafka.topic(catalog.event_type(et).topic): et for et in settings.event_types}
        return cls(
            settings.load(),
            state_reader=state_reader,
            topics={
                t: shared.get(t) or RecordReader(et, resolver=resolver) for t, et in topics.items()
            },
            changelog_topic=kafka.topic(CHANGELOG_TOPIC),
            dead_letter_topics=[t for t in topics if t not in owned_elsewhere],
            lateness_ms=settings.lateness_ms,
            max_pending_timers=settings.max_pending_timers,
        )

    # -- rules ---------------------------------------------------------------------------------
    @property
    def rules(self) -> RuleSet:
        """The rule set the next batch will use."""
        return self._next

    def compile(self, text: str, *, version: str, author: str = "") -> RuleSet:
        """Validate a document against what this pipeline reads (no side effects)."""
        return compile_rule_set(
            text,
            version=version,
            author=author,
            event_types=set(self._types.values()),
        )

    def replace_rules(self, rules: RuleSet) -> None:
        """Hand a validated rule set to the engine thread; safe from any thread.

        Only a reference is stored (atomic in CPython); the engine thread adopts it at the start
        of its next batch or restore, so a batch never sees two rule sets.
        """
        self._next = rules

    def _adopt(self) -> None:
        new = self._next
        if new is self._rules:
            return
        for part in self._parts.values():
            part.engine = part.engine.with_rules(new.rules)
            part.dirty = True
        old, self._rules = self._rules, new
        log.info(
            "business rules %s -> %s (%d rules, by %s)",
            old.version,
            new.version,
            len(new.rules),
            new.author or "?",
        )

    # -- state hooks ---------------------------------------------------------------------------
    def state_entries(self) -> int:
        return sum(len(part.state) for part in self._parts.values())

    def snapshot(self) -> list[StateRecord]:
        """Changelog records for the rule+entity states changed since the last snapshot."""
        out: list[StateRecord] = []
        for number, part in self._parts.items():
            if not part.dirty:
                continue
            engine = part.engine
            changes = part.state.changes(engine.take_changes(), engine.meta(), part.applied)
            for key, value in changes:
                out.append(StateRecord(self.changelog_topic, number, key, value))
            part.dirty = False
        return out

    def assigned(self, partitions: Sequence[tuple[str, int]]) -> None:
        """Restore partition numbers that became ours from their changelog partitions."""
        self._adopt()
        fresh = sorted({p for _, p in partitions} - {p for _, p in self._owned})
        self._owned.update(partitions)
        fresh = [p for p in fresh if p not in self._parts]
        if not fresh:
            return
        restored = self._reader.read(self.changelog_topic, fresh)
        keys = 0
        for number in fresh:
            values = restored.get(number, {})
            keys += len(values)
            self._parts[number] = self._restore(number, values)
        log.info("business rule state restored for partitions %s: %d entries", fresh, keys)

    def _restore(self, number: int, values: Mapping[bytes, bytes]) -> _Partition:
        if not values:
            return _Partition(self._engine())
        if META not in values:
            # The metadata entry is written last and acknowledged before any commit, so only a
            # crash inside the partition's first checkpoint leaves entries without it; nothing
            # after them was committed, and replaying from the committed offsets rebuilds the
            # state exactly.
            log.warning(
                "%s[%d]: %d entries of an unfinished first checkpoint ignored",
                self.changelog_topic, number, len(values),
            )  # fmt: skip
            return _Partition(self._engine())
        try:
            state, engine_bytes, applied = PartitionState.restore(values)
            engine = self._engine(engine_bytes)
        except (StateError, ValueError, KeyError) as error:
            raise StateError(
                f"{self.changelog_topic}[{number}] cannot be restored: {error}"
            ) from error
        return _Partition(engine, state, applied)

    def _engine(self, state: bytes | None = None) -> RuleEngine:
        """An engine on the adopted rules (the only ones a batch or restore uses)."""
        return RuleEngine(self._rules.rules, state=state, max_timers=self._max_timers)

    def revoked(self, partitions: Sequence[tuple[str, int]]) -> None:
        """Drop partition numbers none of whose topics are ours any more (state is in the log)."""
        self._owned.difference_update(partitions)
        still = {p for _, p in self._owned}
        for number in {p for _, p in partitions} - still:
            self._parts.pop(number, None)

    def engine_for(self, partition: int) -> RuleEngine | None:
        """The live engine of a partition (tests and diagnostics)."""
        part = self._parts.get(partition)
        return part.engine if part else None

    # -- processing ---------------------------------------------------------------------------
    def process(self, messages: Sequence[Message]) -> BatchResult:
        self._adopt()
        rules = self._rules
        wanted = rules.event_types
        result = BatchResult()
        now_ms = int(time.time() * 1000)
        newest: int | None = None
        for topic, batch in _by_topic(messages):
            reader = self._readers.get(topic)
            if reader is None:
                continue
            checked = reader.read(batch)  # shared with the topic's other pipelines
            for rejected in checked.rejected:
                self._reject(rejected, result)  # even when no rule reads this type
            if reader.event_type not in wanted:
                continue
            for message, record in checked.records:
                ts = self._apply(topic, message, record, rules=rules, now_ms=now_ms, result=result)
                if ts is not None and (newest is None or ts > newest):
                    newest = ts
        if newest is not None:
            watermark = newest - self._lateness_ms
            for part in self._parts.values():
                fired = part.engine.advance(watermark, now_ms=now_ms)
                if fired:
                    part.dirty = True
                    result.alerts.extend(_stamp(a, rules) for a in fired)
        for number, part in self._parts.items():
            self._count_refused(number, part)
        return result

    def _count_refused(self, number: int, part: _Partition) -> None:
        refused = part.engine.take_refused()
        for rule_id, n in refused.items():
            TIMERS_REFUSED.labels(rule_id).inc(n)
        if refused and not part.warned_full:
            part.warned_full = True
            log.warning(
                "%s[%d]: %d timers pending, the limit: new ones are refused (their alerts will "
                "not be raised) until some fire; raise DEALSTREAM_BUSINESS_MAX_PENDING_TIMERS "
                "if memory allows (~1 KB each)",
                self.changelog_topic, number, len(part.engine.timers),
            )  # fmt: skip

    def _apply(
        self,
        topic: str,
        message: Message,
        record: dict[str, Any],
        *,
        rules: RuleSet,
        now_ms: int,
        result: BatchResult,
    ) -> int | None:
        """Run one record through its partition's engine unless the state already has it;
        returns its event time (for the watermark)."""
        number, offset = cast(int, message.partition()), cast(int, message.offset())
        part = self._parts.get(number)
        if part is None:
            part = self._parts[number] = _Partition(self._engine())
        if offset <= part.applied.get(topic, -1):
            SKIPPED.labels("already_applied").inc()
            return None
        part.applied[topic] = offset
        part.dirty = True
        result.processed += 1
        ts = event_time_ms(record)
        for alert in part.engine.process(record, now_ms=now_ms, ts=ts):
            result.raised(_stamp(alert, rules), by=message)
        return ts

    def _reject(self, rejected: Rejected, result: BatchResult) -> None:
        """Dead-letter a bad record of a topic we own; count it where another pipeline does."""
        topic = cast(str, rejected.message.topic())
        if topic in self._dead_letter:
            result.dead_letters.append(rejected.dead_letter(source=self.name, default_topic=topic))
        else:
            SKIPPED.labels(f"{rejected.stage.lower()}:{rejected.code}").inc()


def _by_topic(messages: Sequence[Message]) -> list[tuple[str, Sequence[Message]]]:
    """Messages grouped by topic; a one-topic batch stays the very list the engine handed over,
    so a :class:`RecordReader` shared with the topic's other pipelines finds it decoded."""
    if not messages:
        return []
    first = cast(str, messages[0].topic())
    if all(m.topic() == first for m in messages):
        return [(first, messages)]
    groups: dict[str, list[Message]] = {}
    for m in messages:
        groups.setdefault(cast(str, m.topic()), []).append(m)
    return list(groups.items())


def _stamp(alert: dict[str, Any], rules: RuleSet) -> dict[str, Any]:
    """Name the rule-set document that fired (the rule's own version is ``rule_version``)."""
    alert["attributes"]["rule_set"] = rules.name
    alert["attributes"]["rule_set_version"] = rules.version
    return alert
