"""What the store task pipeline remembers, per customer and per SKU, as JSON changelog entries.

A customer's entry holds everything a task needs about them: the view and purchase signals per
rule and subject (a rules-language :class:`SeriesStore`), store visits, preference counts, recent
purchases (a purchase read before the views it converts still converts) and open tasks. Each
entry also carries the last applied offset per input partition (a replay after a crash skips
what the entry already holds) and the task records emitted since its last snapshot, re-emitted
when such a skip shows a crash may have lost them. JSON, never pickle: restoring a snapshot
cannot run code.

>>> c = CustomerState.new({"view": 1000})
>>> c.visit("S1", at_ms=5, pos=True, region="CN-EAST"); c.visit("S2", at_ms=9, pos=False)
>>> c.visit("S2", at_ms=10, pos=False); c.usual_store()
'S1'
>>> CustomerState.from_json(c.to_json()).usual_store()
'S1'
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import orjson

from dealstream.streams.rules.state import SeriesStore

STATE_VERSION = 1
Record = dict[str, Any]  # a task payload, JSON-safe (ms ints, amounts as strings)


@dataclass(slots=True)
class Purchase:
    ts: int
    series: str | None
    sku: str | None
    store_id: str | None
    amount: str | None
    event_id: str


@dataclass(slots=True)
class Visits:
    pos: int = 0  # purchases at the store
    mini: int = 0  # mini-program views with the store selected
    last_ms: int = 0
    region: str | None = None


@dataclass
class CustomerState:
    signals: SeriesStore
    stores: dict[str, Visits] = field(default_factory=dict)
    tags: dict[str, int] = field(default_factory=dict)  # series -> views + purchases
    purchases: list[Purchase] = field(default_factory=list)
    tasks: dict[str, Record] = field(default_factory=dict)  # open (or converted) tasks by id
    fired: dict[str, int] = field(default_factory=dict)  # rule|subject -> suppressed until (ms)
    offsets: dict[str, int] = field(default_factory=dict)  # "topic|partition" -> last applied
    unsaved: list[Record] = field(default_factory=list)  # task records since the last snapshot
    restored: list[Record] = field(default_factory=list)  # unsaved of the restored snapshot
    dirty: bool = False

    @classmethod
    def new(
        cls, retention_ms: dict[str, int], extremes_only: dict[str, frozenset[str]] | None = None
    ) -> CustomerState:
        return cls(SeriesStore(retention_ms=retention_ms, extremes_only=extremes_only))

    def visit(self, store_id: str, *, at_ms: int, pos: bool, region: str | None = None) -> None:
        v = self.stores.get(store_id)
        if v is None:
            v = self.stores[store_id] = Visits()
        if pos:
            v.pos += 1
        else:
            v.mini += 1
        v.last_ms = max(v.last_ms, at_ms)
        if region:
            v.region = region

    def usual_store(self) -> str | None:
        """Most purchases, then most mini-program visits, then the most recent."""
        if not self.stores:
            return None
        return max(self.stores.items(), key=lambda kv: (kv[1].pos, kv[1].mini, kv[1].last_ms))[0]

    def preference_tags(self, limit: int) -> list[str]:
        ranked = sorted(self.tags.items(), key=lambda kv: (-kv[1], kv[0]))
        return [name for name, _ in ranked[:limit]]

    def applied(self, key: str, offset: int) -> bool:
        """True if ``offset`` of partition ``key`` is already in this entry; else record it."""
        if offset <= self.offsets.get(key, -1):
            return True
        self.offsets[key] = offset
        return False

    def to_json(self) -> bytes:
        """The entry (orjson, with the signals' own JSON spliced in, not parsed and re-dumped)."""
        doc = {
            "v": STATE_VERSION,
            "stores": {k: [v.pos, v.mini, v.last_ms, v.region] for k, v in self.stores.items()},
            "tags": self.tags,
            "purchases": [
                [p.ts, p.series, p.sku, p.store_id, p.amount, p.event_id] for p in self.purchases
            ],
            "tasks": self.tasks,
            "fired": self.fired,
            "offsets": self.offsets,
            "unsaved": self.unsaved,
        }
        return b'{"signals":' + self.signals.snapshot() + b"," + orjson.dumps(doc)[1:]

    @classmethod
    def from_json(cls, data: bytes) -> CustomerState:
        doc = _doc(data)
        stores = doc["stores"].items()
        return cls(
            signals=SeriesStore.restore(json.dumps(doc["signals"]).encode()),
            stores={k: Visits(int(a), int(b), int(c), d) for k, (a, b, c, d) in stores},
            tags={str(k): int(v) for k, v in doc["tags"].items()},
            purchases=[Purchase(int(p[0]), *p[1:]) for p in doc["purchases"]],
            tasks=dict(doc["tasks"]),
            fired={str(k): int(v) for k, v in doc["fired"].items()},
            offsets={str(k): int(v) for k, v in doc["offsets"].items()},
            restored=list(doc["unsaved"]),
        )  # fmt: skip


@dataclass
class StockState:
    """Latest snapshot per warehouse of one SKU: on hand, region, snapshot time."""

    warehouses: dict[str, tuple[int, str, int]] = field(default_factory=dict)
    offsets: dict[str, int] = field(default_factory=dict)
    dirty: bool = False

    def update(self, warehouse: str, on_hand: int, region: str, at_ms: int) -> None:
        old = self.warehouses.get(warehouse)
        if old is None or old[2] <= at_ms:
            self.warehouses[warehouse] = (on_hand, region, at_ms)

    def on_hand(self, store_id: str | None, region: str | None) -> tuple[int | None, str | None]:
        """Stock at the store's own warehouse, else summed over its region's, else unknown."""
        if store_id is not None and store_id in self.warehouses:
            return self.warehouses[store_id][0], "STORE"
        if region is not None:
            found = [n for n, r, _ in self.warehouses.values() if r == region]
            if found:
                return sum(found), "REGION"
        return None, None

    def to_json(self) -> bytes:
        doc = {"v": STATE_VERSION, "warehouses": self.warehouses, "offsets": self.offsets}
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> StockState:
        doc = _doc(data)
        return cls(
            {str(w): (int(n), str(r), int(t)) for w, (n, r, t) in doc["warehouses"].items()},
            {str(k): int(v) for k, v in doc["offsets"].items()},
        )


@dataclass
class Meta:
    """Global facts: the event-time watermark, the series of each SKU seen in POS, and the
    phone reference each mini-program customer reference was seen with (identity links)."""

    watermark_ms: int | None = None
    series_of: dict[str, str] = field(default_factory=dict)
    phone_of: dict[str, str] = field(default_factory=dict)
    dirty: bool = False

    def to_json(self) -> bytes:
        doc = {
            "v": STATE_VERSION,
            "watermark_ms": self.watermark_ms,
            "series_of": self.series_of,
            "phone_of": self.phone_of,
        }
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Meta:
        doc = _doc(data)
        wm = doc["watermark_ms"]
        return cls(
            None if wm is None else int(wm),
            {str(k): str(v) for k, v in doc["series_of"].items()},
            {str(k): str(v) for k, v in doc["phone_of"].items()},
        )


def _doc(data: bytes) -> dict[str, Any]:
    doc = json.loads(data)
    if not isinstance(doc, dict) or doc.get("v") != STATE_VERSION:
        raise ValueError("not a store task state entry of this version")
    return doc
