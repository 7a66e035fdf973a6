"""Applying one record to one customer's entry: views raise tasks, purchases convert them."""

from __future__ import annotations

from collections import Counter as Tally
from dataclasses import dataclass
from typing import Any, Protocol

from dealstream.schemas.envelope import derive_event_id
from dealstream.streams.pipeline import BatchResult
from dealstream.streams.rules.language.evaluator import Scope
from dealstream.streams.rules.state import Point, SeriesStore
from dealstream.streams.tasks.outputs import SOURCE
from dealstream.streams.tasks.rules import IntentRule, render
from dealstream.streams.tasks.settings import StoreTasksSettings
from dealstream.streams.tasks.state import CustomerState, Purchase, Record

VIEW_ACTIONS = frozenset({"PAGE_VIEW", "ADD_TO_CART"})
_EMPTY = SeriesStore()


class Context(Protocol):
    """What a step needs from the pipeline: rules, settings, global facts and its output."""

    rules: tuple[IntentRule, ...]
    settings: StoreTasksSettings

    @property
    def watermark_ms(self) -> int | None: ...
    def series_of(self, sku: str | None) -> str | None: ...
    def stock(
        self, sku: str | None, store_id: str | None, region: str | None
    ) -> tuple[int | None, str | None]: ...
    def emit(self, c: CustomerState, task: Record, out: BatchResult) -> None: ...


@dataclass(slots=True)  # not frozen: one per record, and a frozen __init__ costs more
class Seen:
    """One input record with its event time and position (``topic|partition``, offset)."""

    record: dict[str, Any]
    at: int
    where: str
    offset: int


@dataclass(slots=True)
class Step:
    """Applying one record to one customer's entry."""

    pipeline: Context
    customer: str
    c: CustomerState
    seen: Seen
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
        seen = self.seen
        p = seen.record["payload"]
        if p.get("is_refund"):
            return
        store_id, at = p["store_id"], seen.at
        self.c.visit(store_id, at_ms=at, pos=True, region=p["region"])
        amount = str(p["amount"])
        line = p.get("product_line")
        self.purchase(Purchase(at, line, p["sku"], store_id, amount, self._id))

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
        c, signals = self.c, self.c.signals
        point = Point(bought.ts, 1, bought.event_id)  # immutable: shared by every rule's series
        for rule in self.pipeline.rules:
            subject = bought.series if rule.subject == "series" else bought.sku
            if subject:
                signals.append(f"{rule.id}|{subject}", "purchase", point)
        watermark = self.pipeline.watermark_ms
        if watermark is not None and signals.extremes_only:
            signals.evict(watermark)  # compacts this customer's purchases (the daily expiry
            # alone would let a frequent buyer's series grow all day); cheap until one is due
        if bought.series:
            c.tags[bought.series] = c.tags.get(bought.series, 0) + 1
        c.purchases.append(bought)
        if len(c.purchases) > self.pipeline.settings.max_purchases:
            del c.purchases[: -self.pipeline.settings.max_purchases]
        if c.tasks:
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


def customer_of(kind: str, record: dict[str, Any]) -> str | None:
    p = record["payload"]
    if kind == "miniprogram.event":
        found = p.get("phone_ref") or record.get("customer_ref")
    elif kind == "pos.transaction":
        found = record.get("customer_ref") or p.get("member_id")
    else:
        found = record.get("customer_ref")
    return str(found) if found else None
