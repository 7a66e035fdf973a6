"""A coherent, seeded synthetic sales world for demos, tests and benchmarks.

Regions hold stores and dealers; customers move across channels (mini-program views and carts,
then a WeCom chat with a rep, then a store purchase paid with their member phone); daily
sales follow weekly seasonality, planted promotions and planted shocks: tender awards and
policy changes that lift one product line in one region after a lag. Every planted effect is
returned by :meth:`World.effects` (written to JSON by ``dealstream simulate``) so forecasts and
journey stitching can be scored against the truth.

Records go through the connectors' own mapping code (POS rows, tracker events, tender text,
MQTT payloads), so they look exactly like what the real connectors produce, PII included:
raw phones, openids and unionids are desensitised on the way. Same seed, same records.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from dealstream.connectors.mqtt_iot.mapping import to_records as telemetry
from dealstream.connectors.pii import Desensitizer
from dealstream.connectors.pos_file.parse import to_event as pos_event
from dealstream.connectors.simulator.browsing import Browsing
from dealstream.connectors.simulator.chats import chats
from dealstream.connectors.simulator.customers import (
    CHECKIN_PAGE,
    SLOW_STORES,
    Customer,
    contact_added,
    tracked,
)
from dealstream.connectors.simulator.pos import PRICES, PRODUCT_LINES
from dealstream.connectors.tenders.connector import to_record as tender_record
from dealstream.connectors.tenders.extract import stable_id
from dealstream.connectors.tenders.sources import Listing

REGIONS = {"CN-EAST": "上海", "CN-SOUTH": "广州", "CN-NORTH": "北京", "CN-SOUTHWEST": "成都"}
STORE_CODES = {"CN-EAST": "SH", "CN-SOUTH": "GZ", "CN-NORTH": "BJ", "CN-SOUTHWEST": "CD"}
BASE_DAILY = {
    "WP-100": 3.0,
    "WP-200": 2.0,
    "WP-300": 1.0,
    "AP-10": 2.5,
    "AP-20": 1.5,
    "FL-01": 4.0,
    "FL-02": 3.0,
    "FL-03": 2.0,
}
WEEKLY = (0.9, 0.85, 0.9, 0.95, 1.1, 1.4, 1.3)  # Monday .. Sunday
Event = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Effect:
    """A planted demand shift: ``multiplier`` on ``product_line`` in ``region`` over days."""

    kind: str  # promotion | tender_award | policy
    region: str
    product_line: str
    start: str
    end: str
    multiplier: float
    cause_day: str
    lag_days: int
    notice_id: str | None = None


@dataclass
class Tally:
    counts: Counter[str] = field(default_factory=Counter)
    chat_violations: int = 0
    iot_faults: int = 0
    journeys_completed: int = 0
    contacts_added: int = 0
    store_visits: int = 0


def _day(start: datetime, offset: int) -> str:
    return (start + timedelta(days=offset)).date().isoformat()


class World:
    """The world of one seed; :meth:`events` yields its records day by day in time order."""

    def __init__(
        self,
        seed: int,
        *,
        days: int = 90,
        end: datetime | None = None,
        customers: int = 400,
        scale: float = 1.0,
        violation_rate: float = 0.05,
        pii: Desensitizer,
    ) -> None:
        self.seed, self.days, self.scale, self.violation_rate = seed, days, scale, violation_rate
        midnight = (end or datetime.now(UTC)).replace(hour=0, minute=0, second=0, microsecond=0)
        self.start = midnight - timedelta(days=days)
        self.pii = pii
        rng = random.Random(seed)
        self.stores = {r: [f"{STORE_CODES[r]}{i:03d}" for i in range(1, 4)] for r in REGIONS}
        self.dealers = {r: [f"DLR-{r[3:]}-{i}" for i in range(1, 3)] for r in REGIONS}
        self.customers = [
            Customer(
                i,
                rng.choice(list(REGIONS)),
                f"139{rng.randrange(10**8):08d}",
                f"o6_{rng.getrandbits(64):016x}",
                f"oU_{rng.getrandbits(64):016x}",
            )
            for i in range(customers)
        ]
        self.effect_list = self._plant(rng)
        self.tally = Tally()
        self._added: set[int] = set()  # customers who added a rep on WeCom
        self._visits = random.Random(seed + 7)  # store visits draw apart: other records unchanged

    def _plant(self, rng: random.Random) -> list[Effect]:
        effects = []
        lines = list(PRODUCT_LINES)
        for kind, count, lag, length, low, high in (
            ("promotion", 4, 0, 5, 1.5, 2.5),
            ("tender_award", 3, 14, 21, 1.6, 2.4),
            ("policy", 2, 7, 30, 1.3, 1.6),
        ):
            for _ in range(count):
                cause = rng.randrange(5, max(6, self.days - lag - 5))
                effects.append(
                    Effect(
                        kind=kind,
                        region=rng.choice(list(REGIONS)),
                        product_line=rng.choice(lines),
                        start=_day(self.start, cause + lag),
                        end=_day(self.start, cause + lag + length),
                        multiplier=round(rng.uniform(low, high), 2),
                        cause_day=_day(self.start, cause),
                        lag_days=lag,
                        notice_id=stable_id("", "", self._project(cause))
                        if kind == "tender_award"
                        else None,
                    )
                )
        return effects

    def _project(self, offset: int) -> str:
        return f"SIM-{self.seed}-{offset:03d}"

    def multiplier(self, region: str, product_line: str, day: str) -> float:
        m = 1.0
        for e in self.effect_list:
            if e.region == region and e.product_line == product_line and e.start <= day < e.end:
                m *= e.multiplier
        return m

    # -- the day's events ---------------------------------------------------------------
    def events(self) -> Iterator[Event]:
        rng = random.Random(self.seed + 1)
        chat_stream = chats(self.seed, 10**9, violation_rate=self.violation_rate)
        browsing = Browsing(self)  # intent streaks for store tasks (own random draws)
        for offset in range(self.days):
            day_start = self.start + timedelta(days=offset)
            day: list[tuple[int, Event]] = []
            day += self._tenders(rng, offset, day_start)
            day += self._sales(rng, day_start)
            day += self._journeys(rng, day_start, chat_stream)
            day += self._iot(rng, day_start)
            day += browsing.day(day_start)
            day.sort(key=lambda pair: pair[0])
            for _, event in day:
                self.tally.counts[event[0]] += 1
                yield event

    def _ms(self, day_start: datetime, rng: random.Random) -> int:
        opening = day_start + timedelta(hours=1)  # 09:00 Beijing time
        return int((opening + timedelta(seconds=rng.randrange(12 * 3600))).timestamp() * 1000)

    def _stamp(self, record: dict[str, Any]) -> tuple[int, Event]:
        record["ingested_at"] = record["occurred_at"] + 2000
        return record["occurred_at"], (record["event_type"], record)

    def _sale(
        self,
        rng: random.Random,
        *,
        when_ms: int,
        region: str,
        sku: str,
        line: str,
        phone: str,
        ticket: str,
        store: str | None = None,
    ) -> tuple[int, Event]:
        price = Decimal(PRICES[sku])
        drawn = rng.choice(self.stores[region])
        row = {
            "transaction_id": ticket,
            "line_no": 1,
            "store_id": store or drawn,
            "region": region,
            "sku": sku,
            "product_line": line,
            "quantity": 1,
            "unit_price": str(price),
            "discount": "0",
            "amount": str(price),
            "payment_method": rng.choice(("WECHAT_PAY", "ALIPAY", "CARD")),
            "member_phone": phone,
            "cashier_id": f"C{rng.randrange(1, 40):02d}",
            "occurred_at": datetime.fromtimestamp(when_ms / 1000, UTC).isoformat(),
        }
        return self._stamp(pos_event(row, pii=self.pii, source="pos-sim", ingested_at_ms=0))

    def _sales(self, rng: random.Random, day_start: datetime) -> list[tuple[int, Event]]:
        out = []
        day = day_start.date().isoformat()
        weekly = WEEKLY[(day_start + timedelta(hours=8)).weekday()]
        yearly = 1 + 0.15 * math.sin(2 * math.pi * day_start.timetuple().tm_yday / 365)
        for region in REGIONS:
            for line, skus in PRODUCT_LINES.items():
                lift = self.multiplier(region, line, day)
                for sku in skus:
                    mean = BASE_DAILY[sku] * self.scale * weekly * yearly * lift
                    for n in range(_poisson(rng, mean)):
                        member = rng.choice(self.customers).phone if rng.random() < 0.4 else ""
                        ticket = f"SIM{self.seed}-{day}-{region[3:]}-{sku}-{n}"
                        out.append(
                            self._sale(
                                rng,
                                when_ms=self._ms(day_start, rng),
                                region=region,
                                sku=sku,
                                line=line,
                                phone=member,
                                ticket=ticket,
                            )
                        )
        return out

    def _journeys(
        self, rng: random.Random, day_start: datetime, chat_stream: Iterator[Any]
    ) -> list[tuple[int, Event]]:
        out = []
        for _ in range(max(1, int(len(self.customers) * 0.03 * self.scale))):
            c = rng.choice(self.customers)
            line = rng.choice(list(PRODUCT_LINES))
            sku = rng.choice(PRODUCT_LINES[line])
            t = self._ms(day_start, rng)
            session = f"sess-{self.seed}-{t}-{c.index}"
            steps = ["page_view", "add_to_cart"] if rng.random() < 0.5 else ["page_view"]
            home = self.home(c)
            for seq, action in enumerate(steps):
                page = f"/pages/product/{sku}"
                ts = t + seq * 45_000
                out.append(
                    self._tracked(
                        c, session, seq, action=action, page=page, sku=sku, line=line, ts=ts
                    )
                )
            if len(steps) < 2 or rng.random() < 0.4:
                continue
            conversation = f"conv-{session}"
            if c.index not in self._added:
                out.append(self._contact_added(c, conversation, t + 300_000))
            slow = home in SLOW_STORES
            count = rng.randrange(2, 5)
            for n in range(count):
                chat = next(chat_stream)
                record = chat.record
                record["occurred_at"] = t + 600_000 + n * (7_200_000 if slow else 30_000)
                record["customer_ref"] = self.pii.ref("wecom_external", c.external)
                record["payload"]["conversation_id"] = conversation
                record["payload"]["product_line"] = line
                if n == 0 and not chat.violating:  # the customer asks ...
                    record["payload"]["speaker_role"] = "CUSTOMER"
                elif n == count - 1:  # ... and a rep has the last word
                    record["payload"]["speaker_role"] = "SALES_REP"
                self.tally.chat_violations += int(chat.violating)
                out.append(self._stamp(record))
            end_ms = (self.start + timedelta(days=self.days)).timestamp() * 1000
            if rng.random() < 0.6:  # bought in store within days, paid with the member phone
                when = t + rng.randrange(1, 3 * 86_400) * 1000
                if when < end_ms:
                    self.tally.journeys_completed += 1
                    out.append(
                        self._sale(
                            rng,
                            when_ms=when,
                            region=c.region,
                            sku=sku,
                            line=line,
                            phone=c.phone,
                            ticket=f"SIMJ{self.seed}-{session}",
                            store=home,
                        )
                    )
            elif self._visits.random() < 0.5:  # came to look, did not buy
                when = t + self._visits.randrange(1, 2 * 86_400) * 1000
                if when < end_ms:
                    self.tally.store_visits += 1
                    visit = {"action": "page_view", "page": CHECKIN_PAGE, "sku": None, "line": line}
                    out.append(self._tracked(c, session, 9, **visit, ts=when))
        return out

    def home(self, c: Customer) -> str:
        """The store a customer deals with (mini-program store, WeCom channel code, purchases)."""
        stores = self.stores[c.region]
        return stores[c.index % len(stores)]

    def _tracked(self, c: Customer, session: str, seq: int, **what: Any) -> tuple[int, Event]:
        return self._stamp(tracked(self.pii, c, self.home(c), session, seq, **what))

    def _contact_added(self, c: Customer, conversation: str, ts: int) -> tuple[int, Event]:
        self._added.add(c.index)
        self.tally.contacts_added += 1
        return self._stamp(contact_added(self.pii, c, self.home(c), conversation, ts))

    def _tenders(
        self, rng: random.Random, offset: int, day_start: datetime
    ) -> list[tuple[int, Event]]:
        out = []
        day = day_start.date().isoformat()
        for e in self.effect_list:
            if e.kind != "tender_award" or e.cause_day != day:
                continue
            city = REGIONS[e.region]
            title = f"{city}市公共机构{e.product_line}集中采购项目中标公告"
            amount = Decimal(rng.randrange(50, 900)) / 10
            text = (
                f"项目编号：{self._project(offset)}\n采购人：{city}市机关事务管理局\n"
                f"中标供应商：{rng.choice(self.dealers[e.region])}\n中标金额：{amount}万元"
            )
            published = day_start + timedelta(hours=2)
            listing = Listing(
                f"sim-{offset}", title, f"https://tenders.example/{offset}", published, text
            )
            record = tender_record(listing, text, source="tenders-sim", region=e.region, now_ms=0)
            out.append(self._stamp(record))
        return out

    def _iot(self, rng: random.Random, day_start: datetime) -> list[tuple[int, Event]]:
        out = []
        for stores in self.stores.values():
            for store in stores:
                for unit in range(2):
                    device = f"DEV-{store}-{unit}"
                    ts = int((day_start + timedelta(hours=14)).timestamp() * 1000)
                    body: dict[str, Any] = {
                        "ts": ts,
                        "store_id": store,
                        "metrics": {
                            "usage_count": _poisson(rng, 30 * self.scale),
                            "power_w": round(rng.gauss(45, 5), 1),
                        },
                    }
                    if rng.random() < 0.02:
                        body["fault_code"] = rng.choice(("E1", "E3", "F7"))
                        self.tally.iot_faults += 1
                    for record in telemetry(
                        f"devices/{device}/telemetry",
                        json.dumps(body).encode(),
                        {"device_id": device},
                        source="iot-sim",
                        received_ms=ts,
                    ):
                        out.append(self._stamp(record))
        return out

    def effects(self) -> dict[str, Any]:
        """The planted truth: effects, violation and fault counts, journeys, event counts."""
        t = self.tally
        return {
            "seed": self.seed,
            "start": self.start.date().isoformat(),
            "days": self.days,
            "regions": list(REGIONS),
            "stores": self.stores,
            "product_lines": {k: list(v) for k, v in PRODUCT_LINES.items()},
            "base_daily_per_region": BASE_DAILY,
            "weekly_seasonality_mon_to_sun": WEEKLY,
            "effects": [asdict(e) for e in self.effect_list],
            "chats": {
                "violation_rate": self.violation_rate,
                "planted_violations": t.chat_violations,
            },
            "iot": {"faults": t.iot_faults},
            "journeys": {
                "customers": len(self.customers),
                "completed_in_store": t.journeys_completed,
                "contacts_added": t.contacts_added,
                "store_visits_without_purchase": t.store_visits,
                "slow_stores": sorted(SLOW_STORES),
            },
            "counts": dict(t.counts),
        }


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: small means only, no numpy needed for a handful per day."""
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
