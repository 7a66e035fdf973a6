"""Customer journeys across channels and channel health, as events arrive.

Reads mini-program events, WeCom messages, POS lines, ERP orders and ERP inventory; resolves
each event's identifiers to one customer (:mod:`dealstream.streams.identity`), writes one
``journey_steps`` row per step (:mod:`dealstream.streams.journey_events`), one
``customer_merges`` row per id merged away, and a ``channel_health`` row for each channel an
event moved, with an alert on ``alerts.channel.v1`` when a channel falls below the threshold
(:mod:`dealstream.streams.channel_health`).

Placement: the topics are keyed differently (session, conversation, SKU+region, ERP account),
so one customer's events land in unrelated partitions, and a link seen in one partition must
be visible to all. The identity state is therefore one state, not one per partition: it lives
in the one-partition compacted ``state.identity.v1`` and the worker that owns partition 0 of
the topics (the range assignor gives partition 0 of every topic to the same member) keeps it
and applies every partition it owns. With several workers the events of partitions owned
elsewhere are counted (``not_home``), not applied: scaling out needs a repartition topic keyed
by identifier first. The state is written as one entry per customer, channel, region and
conversation, only those changed since the last checkpoint
(see :mod:`dealstream.streams.journey_changelog`).

Replay safety as in :mod:`dealstream.streams.rep_forecast`: the state holds the last applied
offset per input partition and the merge rows and alerts emitted since its last snapshot,
re-emitted if a skipped replay shows that a crash may have lost them. Journey rows collapse
on (event_id, step) and health rows on (channel, event id) in ReplacingMergeTree.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections import Counter as Tally
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from confluent_kafka import Message
from prometheus_client import Counter
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from dealstream.broker.settings import KafkaSettings
from dealstream.broker.standard_topics import IDENTITY_STATE_TOPIC
from dealstream.schemas import catalog
from dealstream.schemas.codec import SchemaResolver
from dealstream.sinks.clickhouse import tables
from dealstream.streams import journey_events
from dealstream.streams.changelog import StateReader
from dealstream.streams.channel_health import ChannelHealthSettings
from dealstream.streams.decoding import RecordReader
from dealstream.streams.journey_changelog import Changelog, changed, meta, restore
from dealstream.streams.journey_state import Conversation, JourneyState
from dealstream.streams.pipeline import BatchResult, Row, StateRecord, TableSpec

log = logging.getLogger(__name__)

EVENT_TYPES = (
    "miniprogram.event",
    "wecom.message",
    "pos.transaction",
    "erp.order",
    "erp.inventory",
)
CHANGELOG_TOPIC = IDENTITY_STATE_TOPIC  # compacted, one partition
HOME_PARTITION = 0
JOURNEY_STEPS = TableSpec(tables.JOURNEY_STEPS, tables.JOURNEY_STEPS_COLUMNS)
CUSTOMER_MERGES = TableSpec(tables.CUSTOMER_MERGES, tables.CUSTOMER_MERGES_COLUMNS)
CHANNEL_HEALTH = TableSpec(tables.CHANNEL_HEALTH, tables.CHANNEL_HEALTH_COLUMNS)

EVICTED = Counter(
    "dealstream_journeys_conversations_evicted_total",
    "Conversations forgotten before their idle time because max_conversations was reached",
)
SKIPPED = Counter(
    "dealstream_journeys_skipped_total",
    "Records (or parts of them) the journeys pipeline did not apply",
    ["reason"],
)


class JourneySettings(BaseSettings):
    """Journey rules (``DEALSTREAM_JOURNEYS_*``); channel health has its own settings."""

    model_config = SettingsConfigDict(env_prefix="DEALSTREAM_JOURNEYS_", extra="forbid")

    checkin_page: str = "/pages/store/checkin"  # a mini-program view of it is a store visit
    max_identifiers: int = Field(default=32, ge=2)  # per customer; links beyond are refused
    sla_lateness_s: int = Field(
        default=3600, ge=0
    )  # unanswered messages are misses only after this
    conversation_idle_days: int = Field(default=30, ge=1)  # answered conversations forgotten after
    # Conversations kept at most (the oldest answered ones go first, counted in
    # dealstream_journeys_conversations_evicted_total): a bound for memory and restore time.
    max_conversations: int = Field(default=200_000, ge=1)


class JourneysPipeline:
    """Events of five types → identities, journey steps, merges, channel health and alerts."""

    name = "journeys"
    tables: tuple[TableSpec, ...] = (JOURNEY_STEPS, CUSTOMER_MERGES, CHANNEL_HEALTH)

    def __init__(
        self,
        *,
        state_reader: StateReader,
        readers: Mapping[str, RecordReader],
        changelog_topic: str = CHANGELOG_TOPIC,
        settings: JourneySettings | None = None,
        health: ChannelHealthSettings | None = None,
    ) -> None:
        """``readers`` maps each topic to the reader of its event type (shared with the topic's
        other pipelines, which dead-letter its bad records: here they are only counted)."""
        self.topics: tuple[str, ...] = tuple(readers)
        self.changelog_topic = changelog_topic
        self.settings = settings or JourneySettings()
        self.health_settings = health or ChannelHealthSettings()
        self._readers = dict(readers)
        self._reader = state_reader
        self._state: JourneyState | None = None
        self._log = Changelog()  # what the changelog holds, to write only what changed
        self._owned: set[tuple[str, int]] = set()
        self._dirty = False
        self._restored: list[dict[str, Any]] = []
        self._restored_alerts: list[dict[str, Any]] = []
        self._swept_at: int | None = None  # watermark of the last sweep (not state: a cache)
        self._skips: Tally[str] = Tally()  # per batch, added to SKIPPED once (not per event)

    @classmethod
    def from_settings(
        cls,
        kafka: KafkaSettings,
        *,
        state_reader: StateReader,
        readers: Mapping[str, RecordReader] | None = None,
        resolver: SchemaResolver | None = None,
    ) -> JourneysPipeline:
        """Read :data:`EVENT_TYPES` (``readers`` by topic are shared ones, to decode once)."""
        shared = readers or {}
        topics = {kafka.topic(catalog.event_type(et).topic): et for et in EVENT_TYPES}
        return cls(
            state_reader=state_reader,
            readers={
                t: shared.get(t) or RecordReader(et, resolver=resolver) for t, et in topics.items()
            },
            changelog_topic=kafka.topic(CHANGELOG_TOPIC),
        )

    @property
    def state(self) -> JourneyState:
        """The live state (created empty when nothing was restored)."""
        if self._state is None:
            self._state = JourneyState.empty(self.health_settings, self.settings.max_identifiers)
        return self._state

    # -- state hooks -------------------------------------------------------------------------
    def _home(self, owned: set[tuple[str, int]]) -> bool:
        return any(p == HOME_PARTITION for _, p in owned)

    def state_entries(self) -> int:
        return len(self._log)

    def snapshot(self) -> list[StateRecord]:
        if not self._dirty or self._state is None:
            return []
        st = self._state
        records = self._log.checkpoint(changed(st), lambda n: meta(st, n))
        st.unsaved, st.unsaved_alerts = [], []
        self._dirty = False
        return [StateRecord(self.changelog_topic, 0, k, v) for k, v in records]

    def assigned(self, partitions: Sequence[tuple[str, int]]) -> None:
        was_home = self._home(self._owned)
        self._owned.update(partitions)
        if was_home or not self._home(self._owned):
            return
        entries = self._reader.read(self.changelog_topic, [0]).get(0, {})
        self._state, self._log = None, Changelog()
        if entries:
            try:
                self._state, self._log = restore(
                    entries, self.health_settings, self.settings.max_identifiers
                )
            except (ValueError, KeyError, TypeError) as error:
                SKIPPED.labels("bad_state").inc()
                log.error("journey state in %s ignored: %s", self.changelog_topic, error)
        if self._state is not None:
            st = self._state
            self._restored, self._restored_alerts = st.unsaved, st.unsaved_alerts
            st.unsaved, st.unsaved_alerts = [], []
            self._dirty = self._log.pending()  # a rolled-back or old-format state is rewritten
            log.info("journey state restored: %d customers", len(st.resolver))

    def revoked(self, partitions: Sequence[tuple[str, int]]) -> None:
        self._owned.difference_update(partitions)
        if not self._home(self._owned):
            self._state, self._dirty = None, False  # all of it is in the changelog
            self._log = Changelog()

    # -- processing --------------------------------------------------------------------------
    def process(self, messages: Sequence[Message]) -> BatchResult:
        result = BatchResult(rows={t.name: [] for t in self.tables})
        if self._owned and not self._home(self._owned):
            SKIPPED.labels("not_home").inc(len(messages))
            return result
        st, skips, applied = self.state, self._skips, self.state.applied
        for topic, batch in _by_topic(messages):
            reader = self._readers.get(topic)
            if reader is None:
                continue
            checked = reader.read(batch)
            for rejected in checked.rejected:  # their topics' owners dead-letter them
                skips[f"{rejected.stage.lower()}:{rejected.code}"] += 1
            keys: dict[int, str] = {}  # partition -> "topic|partition"
            for message, record in checked.records:
                partition = cast(int, message.partition())
                key = keys.get(partition)
                if key is None:
                    key = keys[partition] = f"{topic}|{partition}"
                offset = cast(int, message.offset())
                if offset <= applied.get(key, -1):
                    skips["already_applied"] += 1
                    self._reemit(result)
                    continue
                applied[key] = offset
                self._dirty = True
                self._apply(st, reader.event_type, record, message, result)
                result.processed += 1
        for reason, n in skips.items():
            SKIPPED.labels(reason).inc(n)
        skips.clear()
        if self._sweep(st):
            self._dirty = True
        if len(st.conversations) > self.settings.max_conversations:
            self._evict(st)
            self._dirty = True
        now_ms = int(time.time() * 1000)
        scored, alerts = st.health.evaluate(now_ms)
        for s in scored:
            ch, parts = s.channel, s.parts
            result.rows[CHANNEL_HEALTH.name].append(
                (
                    s.channel_id, ch.kind, ch.region, parts.score, parts.turnover, parts.sla,
                    parts.intent, ch.sla_n, ch.buyers, ch.returning, int(ch.alerting),
                    _dt(s.at_ms), _dt(now_ms), s.event_id, self.health_settings.model_version,
                )
            )  # fmt: skip
        result.alerts.extend(alerts)
        st.unsaved_alerts.extend(alerts)
        return result

    def _reemit(self, result: BatchResult) -> None:
        for merge in self._restored:
            result.rows[CUSTOMER_MERGES.name].append(_merge_row(merge))
        result.alerts.extend(self._restored_alerts)
        self._restored, self._restored_alerts = [], []

    def _apply(
        self,
        st: JourneyState,
        event_type: str,
        record: dict[str, Any],
        message: Message,
        result: BatchResult,
    ) -> None:
        event_id, at_ms = record["event_id"], _ms(record["occurred_at"])
        if event_type == "erp.inventory":
            p = record["payload"]
            if p.get("turnover_days") is not None:
                item = f"{p['sku']}|{p['warehouse_id']}"
                st.health.inventory(p["region"], item, p["turnover_days"], event_id, at_ms)
            return
        obs = _observe(event_type, record, self.settings.checkin_page)
        resolution = st.resolver.resolve(obs.identifiers)
        if resolution.refused:
            self._skips["link_refused"] += resolution.refused
        for m in resolution.merges:
            st.merge_profiles(m.merged, m.into, event_id, at_ms)
            merge = {"merged": m.merged, "into": m.into, "seq": m.seq, "at_ms": at_ms,
                     "event_id": event_id}  # fmt: skip
            result.rows[CUSTOMER_MERGES.name].append(_merge_row(merge))
            st.unsaved.append(merge)
        customer = resolution.customer
        if obs.channel:
            st.health.channel(obs.channel, obs.channel_kind, obs.region)
        if event_type == "wecom.message":
            self._wecom(st, record, customer)
        if customer is None:
            self._skips["anonymous"] += 1
            return
        profile = st.profile(customer)
        if obs.channel:
            profile.home = obs.channel
        where = obs.channel or profile.home or ""
        steps = obs.steps
        if obs.intent and where:
            st.record_intent(customer, where, event_id, at_ms)
        bought = obs.purchase
        if bought and where and not st.record_purchase(customer, where, bought, event_id, at_ms):
            steps = tuple(s for s in steps if s != "purchase")  # a re-sent order
        if not steps:
            return
        known = st.health.channels.get(where)
        kind = known.kind if known else ""
        at, amount = _dt(at_ms), obs.amount
        source = (message.topic(), message.partition(), message.offset())
        rows = result.rows[JOURNEY_STEPS.name]
        for step in steps:
            rows.append((event_id, step, customer, where, kind, at, event_type, amount, *source))

    # -- service response SLA ----------------------------------------------------------------
    def _wecom(self, st: JourneyState, record: dict[str, Any], customer: str | None) -> None:
        p = record["payload"]
        at_ms = _ms(record["occurred_at"])
        conv_id = p["conversation_id"]
        conv = st.conversation(conv_id)
        conv.last_ms = max(conv.last_ms, at_ms)
        conv.channel = p.get("store_id") or conv.channel
        conv.customer = customer or conv.customer
        st.wecom_watermark_ms = max(st.wecom_watermark_ms, at_ms)
        if p.get("msg_type") != journey_events.ADDED:
            role = p["speaker_role"]
            if role == "CUSTOMER" and conv.pending_ms is None:
                conv.pending_ms, conv.pending_event = at_ms, record["event_id"]
            elif role == "SALES_REP" and conv.pending_ms is not None:
                on_time = at_ms - conv.pending_ms <= self.health_settings.sla_s * 1000
                self._outcome(st, conv, on_time, record["event_id"], at_ms)
        if _blank(conv):
            st.forget_conversation(conv_id)

    def _outcome(
        self, st: JourneyState, conv: Conversation, on_time: bool, event_id: str, at_ms: int
    ) -> None:
        conv.pending_ms = None
        channel = conv.channel
        if channel is None and conv.customer is not None:
            channel = st.profile(conv.customer).home
        if channel is None or channel not in st.health.channels:
            self._skips["sla_unattributed"] += 1
            return
        st.health.sla_outcome(channel, on_time, event_id, at_ms)

    def _sweep(self, st: JourneyState) -> bool:
        """Unanswered customer messages past the SLA (and lateness) are misses.

        Runs when the WeCom watermark moved (a scan of the open conversations per batch
        would cost more than the batch on a quiet topic)."""
        if st.wecom_watermark_ms == self._swept_at:
            return False
        self._swept_at = st.wecom_watermark_ms
        sla_ms = self.health_settings.sla_s * 1000
        due = st.wecom_watermark_ms - sla_ms - self.settings.sla_lateness_s * 1000
        idle = st.wecom_watermark_ms - self.settings.conversation_idle_days * 86_400_000
        changed = False
        for conv_id, conv in list(st.conversations.items()):
            if conv.pending_ms is not None and conv.pending_ms < due:
                self._outcome(st, conv, False, conv.pending_event, conv.pending_ms + sla_ms)
                st.dirty_conversations.add(conv_id)
                changed = True
            if conv.pending_ms is None and (conv.last_ms < idle or _blank(conv)):
                st.forget_conversation(conv_id)
                changed = True
        return changed

    def _evict(self, st: JourneyState) -> None:
        """Forget the conversations beyond ``max_conversations``: answered ones before those
        awaiting a reply (whose SLA outcome is then never counted), the least recent first."""
        excess = len(st.conversations) - self.settings.max_conversations
        items = st.conversations.items()
        for conv_id, _ in heapq.nsmallest(
            excess, items, key=lambda kv: (kv[1].pending_ms is not None, kv[1].last_ms)
        ):
            st.forget_conversation(conv_id)
        EVICTED.inc(excess)


def _blank(conv: Conversation) -> bool:
    """An answered conversation of unknown channel and customer holds nothing a new one would
    not: it is forgotten at once instead of after ``conversation_idle_days`` (with fresh
    conversation ids all the time, as from WeCom chats without a contact, they piled up)."""
    return conv.pending_ms is None and conv.channel is None and conv.customer is None


def _observe(event_type: str, record: dict[str, Any], checkin: str) -> journey_events.Observation:
    if event_type == "miniprogram.event":
        return journey_events.miniprogram(record, checkin_page=checkin)
    if event_type == "wecom.message":
        return journey_events.wecom(record)
    if event_type == "pos.transaction":
        return journey_events.pos(record)
    return journey_events.erp_order(record)


def _merge_row(merge: dict[str, Any]) -> Row:
    return (merge["merged"], merge["into"], merge["seq"], _dt(merge["at_ms"]), merge["event_id"])


def _by_topic(messages: Sequence[Message]) -> list[tuple[str, Sequence[Message]]]:
    """Messages grouped by topic; a one-topic batch stays the very list the engine handed
    over, so a :class:`RecordReader` shared with the topic's other pipelines finds it decoded."""
    if not messages:
        return []
    first = cast(str, messages[0].topic())
    if len(set(map(Message.topic, messages))) == 1:  # map: no Python frame per message
        return [(first, messages)]
    groups: dict[str, list[Message]] = {}
    for m in messages:
        groups.setdefault(cast(str, m.topic()), []).append(m)
    return list(groups.items())


def _ms(value: datetime | int) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return int(value)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
