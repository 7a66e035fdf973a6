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

Outputs go out through the engine's alert channel (the only per-batch Kafka output it has):
records with an ``event_type`` are task events, routed to their topic by
:class:`dealstream.sinks.kafka.events.EventRouter`, which also hands them to WeCom delivery.
"""

from __future__ import annotations

import logging
import time
from collections import Counter as Tally
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from confluent_kafka import Message
from prometheus_client import Counter
from pydantic_settings import BaseSettings, SettingsConfigDict

from dealstream.broker.standard_topics import STORE_TASKS_STATE_TOPIC
from dealstream.schemas import catalog
from dealstream.schemas.codec import SchemaResolver
from dealstream.schemas.envelope import derive_event_id
from dealstream.sinks.clickhouse import tables
from dealstream.streams.changelog import StateReader
from dealstream.streams.decoding import RecordReader
from dealstream.streams.pipeline import BatchResult, StateRecord, TableSpec
from dealstream.streams.rules.engine import event_time_ms
from dealstream.streams.rules.language.evaluator import Scope
from dealstream.streams.rules.state import Point, SeriesStore
from dealstream.streams.state_signing import SignatureError, StateSettings, StateSigner
from dealstream.streams.tasks.rules import BUNDLED_RULES, IntentRule, load_rules, render
from dealstream.streams.tasks.state import CustomerState, Meta, Purchase, Record, StockState

log = logging.getLogger(__name__)

EVENT_TYPE = "store.task"
SOURCE = "dealstream-tasks"
CHANGELOG_TOPIC = STORE_TASKS_STATE_TOPIC  # compacted, one partition
TASKS = TableSpec(tables.STORE_TASKS, tables.STORE_TASKS_COLUMNS)
CONVERSIONS = TableSpec(tables.STORE_TASK_CONVERSIONS, tables.STORE_TASK_CONVERSIONS_COLUMNS)
INPUTS = ("erp.inventory", "pos.transaction", "erp.order", "miniprogram.event")
"""Read in this order within a batch: stock and purchases before the views they qualify."""
VIEW_ACTIONS = frozenset({"PAGE_VIEW", "ADD_TO_CART"})
_META_KEY = b"m:meta"
HOUR_MS = 3_600_000
_EMPTY = SeriesStore()

SKIPPED = Counter(
    "dealstream_store_tasks_skipped_total",
    "Records the store task pipeline did not use",
    ["reason"],
)


class StoreTasksSettings(BaseSettings):
    """Intent rules and task details (``DEALSTREAM_TASKS_*``)."""

    model_config = SettingsConfigDict(env_prefix="DEALSTREAM_TASKS_", extra="forbid")

    rules_file: Path | None = None
    """None: the bundled ``streams/tasks/intent_rules.yaml``."""
    max_tags: int = 5
    max_purchases: int = 50  # per customer, kept for late conversions

    def load(self) -> tuple[IntentRule, ...]:
        """The intent rules; a bad file fails fast with its line and column."""
        return load_rules((self.rules_file or BUNDLED_RULES).read_text(encoding="utf-8"))


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
        changelog_topic: str = CHANGELOG_TOPIC,
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
        self.changelog_topic = changelog_topic
        self._reader = state_reader
        self._signer = signer or StateSigner(StateSettings().key)
        retention = max((r.retention() for r in self.rules), default=0)
        self._retention = {"view": retention, "purchase": retention, "sku": retention}
        self._customers: dict[str, CustomerState] = {}
        self._stock: dict[str, StockState] = {}
        self._meta = Meta()
        self._owned: set[tuple[str, int]] = set()
        self.counts: Tally[str] = Tally()  # tasks raised / converted (diagnostics)

    # -- state hooks -------------------------------------------------------------------------
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
                    c.signals.retention_ms = dict(self._retention)
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
        by_topic: dict[str, list[Message]] = {}
        for m in messages:
            by_topic.setdefault(cast(str, m.topic()), []).append(m)
        home = (self.home_topic, 0)
        newest = self._meta.watermark_ms
        for topic in self.topics:  # stock and purchases before views
            batch = by_topic.get(topic)
            if not batch:
                continue
            source = self._inputs[topic]
            checked = source.reader.read(batch)
            for rejected in checked.rejected:  # the business pipeline dead-letters them
                SKIPPED.labels(f"{rejected.stage.lower()}:{rejected.code}").inc()
            for message, record in checked.records:
                if self._owned and home not in self._owned:
                    SKIPPED.labels("not_home").inc()
                    continue
                at = event_time_ms(record) or 0
                newest = at if newest is None else max(newest, at)
                seen = _Seen(record, at, f"{topic}|{message.partition()}", message.offset() or 0)
                if self._apply(source.event_type, seen, result):
                    result.processed += 1
        before = self._meta.watermark_ms
        if newest is not None and newest != before:
            self._meta.watermark_ms, self._meta.dirty = newest, True
            if before is None or newest // HOUR_MS != before // HOUR_MS:
                self._expire(newest)  # hourly: a scan of every customer is not per batch
        return result

    def _apply(self, kind: str, seen: _Seen, out: BatchResult) -> bool:
        p = seen.record["payload"]
        if kind == "erp.inventory":
            stock = self._stock.setdefault(p["sku"], StockState())
            if seen.offset <= stock.offsets.get(seen.where, -1):
                return False
            stock.offsets[seen.where] = seen.offset
            stock.update(p["warehouse_id"], int(p["on_hand"]), p["region"], seen.at)
            stock.dirty = True
            return True
        if kind == "pos.transaction" and p.get("product_line"):
            self._learn_series(p["sku"], p["product_line"])
        customer = self._resolve(kind, seen.record)
        if customer is None:
            SKIPPED.labels(f"anonymous:{kind}").inc()
            return False
        c = self._customers.get(customer)
        if c is None:
            c = self._customers[customer] = CustomerState.new(self._retention)
        if c.applied(seen.where, seen.offset):
            SKIPPED.labels("already_applied").inc()
            self._reemit(c, out)
            return False
        c.restored, c.dirty = [], True
        step = _Step(self, customer, c, seen, out)
        if kind == "miniprogram.event":
            step.view()
        elif kind == "pos.transaction":
            step.pos()
        else:
            step.order()
        return True

    def _resolve(self, kind: str, record: dict[str, Any]) -> str | None:
        """The customer a record belongs to, by phone when any record of theirs showed it."""
        customer = _customer(kind, record)
        if kind != "miniprogram.event":
            return customer
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
        _outputs(task, out)

    def _reemit(self, c: CustomerState, out: BatchResult) -> None:
        """A replayed record the entry already holds: re-emit what its snapshot had not saved."""
        for task in c.restored:
            _outputs(task, out)
        c.unsaved.extend(c.restored)
        c.restored = []

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


@dataclass(frozen=True, slots=True)
class _Seen:
    """One input record with its event time and position (``topic|partition``, offset)."""

    record: dict[str, Any]
    at: int
    where: str
    offset: int


@dataclass(frozen=True, slots=True)
class _Step:
    """Applying one record to one customer's entry."""

    pipeline: StoreTasksPipeline
    customer: str
    c: CustomerState
    seen: _Seen
    out: BatchResult

    def view(self) -> None:
        record, at, c = self.seen.record, self.seen.at, self.c
        p = record["payload"]
        if p.get("action") not in VIEW_ACTIONS:
            return
        if p.get("store_id"):
            c.visit(p["store_id"], at_ms=at, pos=False)
        series = p.get("series") or self.pipeline.series_of(p.get("sku"))
        if series:
            c.tags[series] = c.tags.get(series, 0) + 1
        for rule in self.pipeline.rules:
            subject = series if rule.subject == "series" else p.get("sku")
            if not subject or rule.view.fn(Scope(record, {}, _EMPTY, "", at)) is not True:
                continue
            key = f"{rule.id}|{subject}"
            c.signals.append(key, "view", Point(at, 1, record["event_id"]))
            if p.get("sku"):  # text points: kept, but not counted by the rule's aggregates
                c.signals.append(key, "sku", Point(at, p["sku"], record["event_id"]))
            if c.fired.get(key, -1) >= at:
                continue  # a task for this subject is still open
            if _holds(rule, record, c.signals, key, at):
                self.raise_task(rule, subject, series, key)

    def pos(self) -> None:
        p = self.seen.record["payload"]
        if p.get("is_refund"):
            return
        self.c.visit(p["store_id"], at_ms=self.seen.at, pos=True, region=p["region"])
        amount = str(p["amount"])
        line = p.get("product_line")
        self.purchase(Purchase(self.seen.at, line, p["sku"], p["store_id"], amount, self._id))

    def order(self) -> None:
        """An ERP order: every line is a purchase of its SKU (cancelled and returned: none)."""
        p = self.seen.record["payload"]
        if p["status"] in ("CANCELLED", "RETURNED"):
            return
        for line in p["lines"]:
            amount = None if line.get("amount") is None else str(line["amount"])
            series = self.pipeline.series_of(line["sku"])
            self.purchase(Purchase(self.seen.at, series, line["sku"], None, amount, self._id))

    @property
    def _id(self) -> str:
        return str(self.seen.record["event_id"])

    def raise_task(self, rule: IntentRule, subject: str, series: str | None, key: str) -> None:
        c, at = self.c, self.seen.at
        views = c.signals.window(key, "view", at - rule.window_ms, at)
        skus = Tally(str(v.value) for v in c.signals.window(key, "sku", at - rule.window_ms, at))
        sku = subject if rule.subject == "sku" else (skus.most_common(1)[0][0] if skus else None)
        store_id = c.usual_store()
        visits = c.stores.get(store_id) if store_id else None
        region = visits.region if visits else None
        stock, scope = self.pipeline.stock(sku, store_id, region)
        tags = c.preference_tags(self.pipeline.settings.max_tags)
        values = {
            "series": series or "", "sku": sku or series or "", "store_id": store_id or "",
            "views": str(len(views)), "tags": "、".join(tags),
            "stock": "暂无库存信息" if stock is None else ("有现货" if stock > 0 else "暂时缺货"),
        }  # fmt: skip
        task_id = derive_event_id(SOURCE, rule.id, rule.version, self.customer, subject, self._id)
        task: Record = {
            "task_id": task_id, "status": "OPEN", "rule_id": rule.id,
            "rule_version": rule.version, "store_id": store_id, "region": region,
            "subject": rule.subject, "series": series, "sku": sku, "views": len(views),
            "first_view_at": views[0].ts, "expires_at": at + rule.attribution_ms,
            "stock_on_hand": stock, "stock_scope": scope, "preference_tags": tags,
            "script": render(rule.script, values), "converted_at": None,
            "conversion_store_id": None, "conversion_amount": None,
            "input_event_ids": [v.event_id for v in views][-20:],
            "_customer": self.customer, "_at": at, "_trigger": self._id,
        }  # fmt: skip
        c.fired[key] = task["expires_at"]
        c.tasks[task_id] = task
        self.pipeline.emit(c, task, self.out)
        for bought in c.purchases:  # a purchase read before the views that raised the task
            if _converts(task, bought):
                self.convert(task, bought)
                break

    def purchase(self, bought: Purchase) -> None:
        c = self.c
        subjects = {"series": bought.series, "sku": bought.sku}
        for rule in self.pipeline.rules:
            subject = subjects[rule.subject]
            if subject:
                point = Point(bought.ts, 1, bought.event_id)
                c.signals.append(f"{rule.id}|{subject}", "purchase", point)
        if bought.series:
            c.tags[bought.series] = c.tags.get(bought.series, 0) + 1
        c.purchases.append(bought)
        del c.purchases[: -self.pipeline.settings.max_purchases]
        for task in list(c.tasks.values()):
            if task["status"] == "OPEN" and _converts(task, bought):
                self.convert(task, bought)

    def convert(self, task: Record, bought: Purchase) -> None:
        task.update(
            status="CONVERTED",
            converted_at=bought.ts,
            conversion_store_id=bought.store_id,
            conversion_amount=bought.amount,
            input_event_ids=[*task["input_event_ids"], bought.event_id],
            _purchase=bought.event_id,
        )
        self.pipeline.emit(self.c, task, self.out)


def _converts(task: Record, bought: Purchase) -> bool:
    """A purchase of the task's subject inside its attribution window."""
    if not task["_at"] <= bought.ts <= task["expires_at"]:
        return False
    if task["subject"] == "sku":
        return bool(bought.sku) and bought.sku == task["sku"]
    return bool(bought.series) and bought.series == task["series"]


def _holds(
    rule: IntentRule, record: dict[str, Any], signals: SeriesStore, key: str, at: int
) -> bool:
    """The rule's threshold-and-no-purchase condition, then its own ``when``, at event time."""
    if rule.condition.fn(Scope(record, {}, signals, key, at)) is not True:
        return False
    return rule.when is None or rule.when.fn(Scope(record, {}, signals, key, at)) is True


def _customer(kind: str, record: dict[str, Any]) -> str | None:
    p = record["payload"]
    if kind == "miniprogram.event":
        found = p.get("phone_ref") or record.get("customer_ref")
    elif kind == "pos.transaction":
        found = record.get("customer_ref") or p.get("member_id")
    else:
        found = record.get("customer_ref")
    return str(found) if found else None


def _outputs(task: Record, out: BatchResult) -> None:
    """The task event (Kafka) and its ClickHouse row."""
    out.alerts.append(task_event(task))
    raised = datetime.now(UTC)
    if task["status"] == "OPEN":
        out.rows[TASKS.name].append((
            task["task_id"], task["rule_id"], task["rule_version"], task["store_id"] or "",
            task["region"] or "", task["subject"], task["series"] or "", task["sku"] or "",
            task["_customer"], task["views"], task["stock_on_hand"], task["stock_scope"] or "",
            task["preference_tags"], task["script"], _dt(task["first_view_at"]),
            _dt(task["_at"]), _dt(task["expires_at"]), raised, task["_trigger"],
        ))  # fmt: skip
    else:
        amount = task["conversion_amount"]
        out.rows[CONVERSIONS.name].append((
            task["task_id"], task["rule_id"], task["rule_version"], task["store_id"] or "",
            task["conversion_store_id"] or "", task["_customer"], _dt(task["_at"]),
            _dt(task["converted_at"]), None if amount is None else Decimal(amount),
            task["_purchase"], raised,
        ))  # fmt: skip


def task_event(task: Record) -> dict[str, Any]:
    """The ``store.task`` event of a task record (its own event id per status)."""
    payload = {k: v for k, v in task.items() if not k.startswith("_")}
    amount = payload["conversion_amount"]
    payload["conversion_amount"] = None if amount is None else Decimal(amount)
    status = payload["status"]
    return {
        "event_id": derive_event_id(SOURCE, payload["task_id"], status),
        "source": SOURCE,
        "event_type": EVENT_TYPE,
        "occurred_at": task["_at"] if status == "OPEN" else task["converted_at"],
        "ingested_at": int(time.time() * 1000),
        "customer_ref": task["_customer"],
        "payload": payload,
    }


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
