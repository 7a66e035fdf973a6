"""Intent without purchase → a task for the customer's usual store; a later purchase converts it.

Reads mini-program events (views), POS lines and ERP orders (purchases, store visits) and ERP
inventory (stock). For every view the intent rules (:mod:`.rules`, conditions in the business
rule language) are evaluated over the customer's signals of that rule's subject; when one fires,
the task is enriched (usual store, its stock of the SKU, preference tags, a script from the
rule's template) and emitted as a ``store.task`` event (``tasks.store.v1``, status OPEN) plus a
``store_tasks`` row. A purchase of the subject by the same customer within the attribution
window emits the task again as CONVERTED and a ``store_task_conversions`` row. Task ids are
derived from rule, customer, subject and the triggering view, so a replay raises the same ids.

Customers: a view's customer is the phone the user authorised in the mini program
(``payload.phone_ref``, which a tracker reports on a session's first event; the link from the
event's ``customer_ref`` to it is remembered, so later events of that user resolve to it too),
or else its ``customer_ref``; a POS line's is its ``customer_ref`` or ``member_id`` (both the
desensitised member phone); an ERP order's is its ``customer_ref``. Wider stitching (WeCom
contacts, ERP accounts) is the identity stage's job.

Placement: a customer's views (keyed by session), purchases (keyed SKU+region or ERP account)
and stock (SKU+region) arrive on different topics keyed differently, so no partition number holds
one customer. As in :mod:`dealstream.streams.rep_forecast`, the state lives in the one-partition
compacted ``state.store-tasks.v1`` and is kept by the worker that owns partition 0 of the
mini-program topic, which processes every partition of the four topics it owns; the others count
their records as ``not_home``. One worker (the default) sees everything; spreading tasks over
several would need a repartition by customer.

Task events go out in ``BatchResult.events``: the engine's event sink
(:class:`dealstream.sinks.kafka.events.EventPublisher`) produces them to ``tasks.store.v1`` and
hands them to WeCom delivery.
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from confluent_kafka import Message
from prometheus_client import Counter

from dealstream.broker.standard_topics import STORE_TASKS_STATE_TOPIC
from dealstream.schemas import catalog
from dealstream.schemas.codec import SchemaResolver
from dealstream.streams.changelog import StateReader
from dealstream.streams.decoding import RecordReader
from dealstream.streams.pipeline import BatchResult, StateRecord, TableSpec
from dealstream.streams.rules.engine import event_time_ms
from dealstream.streams.state_signing import SignatureError, StateSettings, StateSigner
from dealstream.streams.tasks.outputs import CONVERSIONS, EVENT_TYPE, TASKS, emit_outputs
from dealstream.streams.tasks.rules import IntentRule
from dealstream.streams.tasks.settings import StoreTasksSettings
from dealstream.streams.tasks.state import CustomerState, Meta, Record, StockState
from dealstream.streams.tasks.steps import Seen, Step, customer_of

__all__ = ["EVENT_TYPE", "StoreTasksPipeline", "StoreTasksSettings"]

log = logging.getLogger(__name__)

CHANGELOG_TOPIC = STORE_TASKS_STATE_TOPIC  # compacted, one partition
INPUTS = ("erp.inventory", "pos.transaction", "erp.order", "miniprogram.event")
"""Read in this order within a batch: stock and purchases before the views they qualify."""
_ANONYMOUS = {kind: f"anonymous:{kind}" for kind in INPUTS}  # skip reasons
_META_KEY = b"m:meta"
DAY_MS = 86_400_000

SKIPPED = Counter(
    "dealstream_store_tasks_skipped_total",
    "Records the store task pipeline did not use",
    ["reason"],
)


@dataclass(frozen=True, slots=True)
class _Input:
    event_type: str
    reader: RecordReader


class StoreTasksPipeline:
    """Views, purchases and stock → store tasks (OPEN, CONVERTED), task and conversion rows."""

    name = "store-tasks"
    tables: tuple[TableSpec, ...] = (TASKS, CONVERSIONS)

    def __init__(
        self,
        *,
        state_reader: StateReader,
        topic_prefix: str = "",
        changelog_topic: str | None = None,
        settings: StoreTasksSettings | None = None,
        rules: Sequence[IntentRule] | None = None,
        readers: dict[str, RecordReader] | None = None,
        resolver: SchemaResolver | None = None,
        signer: StateSigner | None = None,
    ) -> None:
        self.settings = settings or StoreTasksSettings()
        self.rules = tuple(rules if rules is not None else self.settings.load())
        shared = readers or {}
        self._inputs: dict[str, _Input] = {}
        for name in INPUTS:
            topic = topic_prefix + catalog.event_type(name).topic
            reader = shared.get(topic) or RecordReader(name, resolver=resolver)
            self._inputs[topic] = _Input(name, reader)
        self.topics: tuple[str, ...] = tuple(self._inputs)
        self.home_topic = self.topics[-1]  # the mini-program topic
        self.changelog_topic = changelog_topic or topic_prefix + CHANGELOG_TOPIC
        self._reader = state_reader
        self._signer = signer or StateSigner(StateSettings().key)
        retention = max((r.retention() for r in self.rules), default=0)
        self._retention = {"view": retention, "purchase": retention, "sku": retention}
        self._extremes = compactable(self.rules)
        self._customers: dict[str, CustomerState] = {}
        self._stock: dict[str, StockState] = {}
        self._meta = Meta()
        self._owned: set[tuple[str, int]] = set()
        self.counts: Tally[str] = Tally()  # tasks raised / converted (diagnostics)
        self._skips: defaultdict[str, int] = defaultdict(int)  # added to SKIPPED once a batch

    # -- state hooks -------------------------------------------------------------------------
    def state_entries(self) -> int:
        return len(self._customers) + len(self._stock)

    def snapshot(self) -> list[StateRecord]:
        out: list[StateRecord] = []
        sign, topic = self._signer.sign, self.changelog_topic
        for customer, c in self._customers.items():
            if c.dirty:
                out.append(StateRecord(topic, 0, b"c:" + customer.encode(), sign(c.to_json())))
                c.dirty, c.unsaved, c.restored = False, [], []
        for sku, s in self._stock.items():
            if s.dirty:
                out.append(StateRecord(topic, 0, b"i:" + sku.encode(), sign(s.to_json())))
                s.dirty = False
        if self._meta.dirty:
            out.append(StateRecord(topic, 0, _META_KEY, sign(self._meta.to_json())))
            self._meta.dirty = False
        return out

    def assigned(self, partitions: Sequence[tuple[str, int]]) -> None:
        home = (self.home_topic, 0)
        if home in partitions and home not in self._owned:
            self._restore()
        self._owned |= set(partitions)

    def revoked(self, partitions: Sequence[tuple[str, int]]) -> None:
        self._owned -= set(partitions)
        if (self.home_topic, 0) not in self._owned:
            self._customers, self._stock, self._meta = {}, {}, Meta()  # all in the changelog

    def _restore(self) -> None:
        for key, value in self._reader.read(self.changelog_topic, [0]).get(0, {}).items():
            try:
                data = self._signer.verify(value)
                if key == _META_KEY:
                    self._meta = Meta.from_json(data)
                elif key.startswith(b"c:"):
                    c = CustomerState.from_json(data)
                    c.signals.set_policy(self._retention, self._extremes)
                    self._customers[key[2:].decode()] = c
                elif key.startswith(b"i:"):
                    self._stock[key[2:].decode()] = StockState.from_json(data)
            except (SignatureError, ValueError, KeyError, TypeError) as exc:
                SKIPPED.labels("bad_state").inc()
                log.error("store task state %r ignored: %s", key[:40], exc)
        log.info(
            "store task state restored: %d customers, %d SKUs",
            len(self._customers), len(self._stock),
        )  # fmt: skip

    @property
    def customers(self) -> dict[str, CustomerState]:
        """Live state per customer (tests and diagnostics)."""
        return self._customers

    # -- processing --------------------------------------------------------------------------
    def process(self, messages: Sequence[Message]) -> BatchResult:
        result = BatchResult(rows={TASKS.name: [], CONVERSIONS.name: []})
        by_topic = _by_topic(messages)
        away = bool(self._owned) and (self.home_topic, 0) not in self._owned
        newest, skips = self._meta.watermark_ms, self._skips
        for topic in self.topics:  # stock and purchases before views
            batch = by_topic.get(topic)
            if not batch:
                continue
            source = self._inputs[topic]
            checked = source.reader.read(batch)
            for rejected in checked.rejected:  # the business pipeline dead-letters them
                skips[f"{rejected.stage.lower()}:{rejected.code}"] += 1
            if away:
                skips["not_home"] += len(checked.records)
                continue
            kind, apply, where = source.event_type, self._apply, _Where(topic)
            for message, record in checked.records:
                at = event_time_ms(record) or 0
                if newest is None or at > newest:
                    newest = at
                seen = Seen(record, at, where[message.partition()], message.offset() or 0)
                if apply(kind, seen, result):
                    result.processed += 1
        for reason, n in skips.items():
            SKIPPED.labels(reason).inc(n)
        skips.clear()
        before = self._meta.watermark_ms
        if newest is not None and newest != before:
            self._meta.watermark_ms, self._meta.dirty = newest, True
            if before is None or newest // DAY_MS != before // DAY_MS:
                self._expire(newest)  # daily: a scan of every customer is not per batch
        return result

    def _apply(self, kind: str, seen: Seen, out: BatchResult) -> bool:
        p = seen.record["payload"]
        if kind == "erp.inventory":
            stock = self._stock.setdefault(p["sku"], StockState())
            if seen.offset <= stock.offsets.get(seen.where, -1):
                return False
            stock.offsets[seen.where] = seen.offset
            stock.update(p["warehouse_id"], int(p["on_hand"]), p["region"], seen.at)
            stock.dirty = True
            return True
        if kind == "pos.transaction":
            line = p.get("product_line")
            if line and self._meta.series_of.get(p["sku"]) != line:
                self._learn_series(p["sku"], line)
        customer = (
            self._resolve(seen.record)
            if kind == "miniprogram.event"
            else customer_of(kind, seen.record)
        )
        if customer is None:
            self._skips[_ANONYMOUS[kind]] += 1
            return False
        c = self._customers.get(customer)
        if c is None:
            c = self._customers[customer] = CustomerState.new(self._retention, self._extremes)
        if c.applied(seen.where, seen.offset):
            self._skips["already_applied"] += 1
            self._reemit(c, out)
            return False
        if c.restored:
            c.restored = []
        c.dirty = True
        step = Step(self, customer, c, seen, out)
        if kind == "miniprogram.event":
            step.view()
        elif kind == "pos.transaction":
            step.pos()
        else:
            step.order()
        return True

    def _resolve(self, record: dict[str, Any]) -> str | None:
        """A view's customer, by phone when any record of theirs showed it."""
        customer = customer_of("miniprogram.event", record)
        ref, phone = record.get("customer_ref"), record["payload"].get("phone_ref")
        if ref and phone:
            if self._meta.phone_of.get(ref) != phone:
                self._meta.phone_of[ref] = phone
                self._meta.dirty = True
            return str(phone)
        return self._meta.phone_of.get(ref, customer) if ref else customer

    def _learn_series(self, sku: str, series: str) -> None:
        if self._meta.series_of.get(sku) != series:
            self._meta.series_of[sku] = series
            self._meta.dirty = True

    def series_of(self, sku: str | None) -> str | None:
        return self._meta.series_of.get(sku) if sku else None

    def stock(
        self, sku: str | None, store_id: str | None, region: str | None
    ) -> tuple[int | None, str | None]:
        found = self._stock.get(sku) if sku else None
        return found.on_hand(store_id, region) if found is not None else (None, None)

    def emit(self, c: CustomerState, task: Record, out: BatchResult) -> None:
        c.unsaved.append(dict(task))
        self.counts[task["status"]] += 1
        emit_outputs(task, out)

    def _reemit(self, c: CustomerState, out: BatchResult) -> None:
        """A replayed record the entry already holds: re-emit what its snapshot had not saved."""
        for task in c.restored:
            emit_outputs(task, out)
        c.unsaved.extend(c.restored)
        c.restored = []

    @property
    def watermark_ms(self) -> int | None:
        """Newest event time of the batches applied so far (None before the first)."""
        return self._meta.watermark_ms

    def _expire(self, watermark: int) -> None:
        for c in self._customers.values():
            gone = [k for k, t in c.tasks.items() if t["expires_at"] < watermark]
            for k in gone:
                del c.tasks[k]
            stale = [k for k, until in c.fired.items() if until < watermark]
            for k in stale:
                del c.fired[k]
            oldest = watermark - self._retention["purchase"]
            kept = [b for b in c.purchases if b.ts >= oldest]
            evicted = c.signals.evict(watermark)
            if gone or stale or evicted or len(kept) != len(c.purchases):
                c.purchases, c.dirty = kept, True


def compactable(rules: Sequence[IntentRule]) -> dict[str, frozenset[str]]:
    """Signals whose settled points can be compacted to the newest (see SeriesStore.evict).

    The core condition only asks whether a purchase lies in the window (``count_over(...) ==
    0``), which the newest settled purchase answers exactly for windows reaching the watermark;
    a rule whose ``when`` reads purchases in any other way keeps every point. Views are counted,
    so they are never compacted.
    """
    if any(r.when is not None and "purchase" in r.when.reads for r in rules):
        return {}
    return {"purchase": frozenset()}


class _Where(dict[int | None, str]):
    """``topic|partition`` per partition of one topic, formatted once per batch."""

    def __init__(self, topic: str) -> None:
        super().__init__()
        self.topic = topic

    def __missing__(self, partition: int | None) -> str:
        self[partition] = where = f"{self.topic}|{partition}"
        return where


def _by_topic(messages: Sequence[Message]) -> dict[str, Sequence[Message]]:
    """Messages per topic; a one-topic batch stays the very list the engine handed over, so a
    :class:`RecordReader` shared with the topic's other pipelines finds it decoded."""
    if messages and len(set(map(Message.topic, messages))) == 1:  # no Python frame per message
        return {cast(str, messages[0].topic()): messages}
    groups: dict[str, list[Message]] = {}
    for m in messages:
        groups.setdefault(cast(str, m.topic()), []).append(m)
    return dict(groups)
