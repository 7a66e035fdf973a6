"""Simulated intent without purchase: customers who look at one series again and again.

Every day a few customers start a streak: two to five mini-program sessions on the product page
of one SKU over the next days (each session's first event carries the phone the customer
authorised, when they share it, as in :mod:`.customers`). Some then buy it at their home store
within a week after the streak (store tasks should convert), a few buy before the third view
(no task should be raised), the rest never buy. Draws come from their own generator, so the
rest of the world is unchanged; the same seed gives the same streaks.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from dealstream.connectors.pos_file.parse import to_event as pos_event
from dealstream.connectors.simulator.customers import tracked
from dealstream.connectors.simulator.pos import PRICES, PRODUCT_LINES

if TYPE_CHECKING:
    from dealstream.connectors.simulator.world import Event, World

DAY_MS = 86_400_000
HOUR_MS = 3_600_000


class Browsing:
    """Streaks of one world; :meth:`day` gives the records of the streaks starting that day."""

    def __init__(self, world: World, *, share: float = 0.01) -> None:
        self.world = world
        self.share = share
        self.rng = random.Random(world.seed + 11)
        self.tally: Counter[str] = Counter()

    def day(self, day_start: datetime) -> list[tuple[int, Event]]:
        w, rng = self.world, self.rng
        end_ms = int(day_start.timestamp() * 1000) + (w.days - self._offset(day_start)) * DAY_MS
        out: list[tuple[int, Event]] = []
        for _ in range(max(1, int(len(w.customers) * self.share * w.scale))):
            c = rng.choice(w.customers)
            line = rng.choice(list(PRODUCT_LINES))
            sku = rng.choice(PRODUCT_LINES[line])
            views = rng.choice((2, 3, 3, 4, 5))
            outcome = rng.choices(("buys", "buys_early", "leaves"), (0.45, 0.1, 0.45))[0]
            t = int(day_start.timestamp() * 1000) + HOUR_MS + rng.randrange(10 * HOUR_MS)
            self.tally["streaks"] += 1
            last = t
            for n in range(views):
                at = t + n * rng.randrange(6 * HOUR_MS, 30 * HOUR_MS)
                if at >= end_ms:
                    break
                if outcome == "buys_early" and n == 2:
                    out.append(self._sale(c, sku, line, at - HOUR_MS, "E"))
                    self.tally["bought_before_threshold"] += 1
                session = f"browse-{w.seed}-{c.index}-{at}"
                page = f"/pages/product/{sku}"
                record = tracked(w.pii, c, w.home(c), session, 0, action="page_view",
                                 page=page, sku=sku, line=line, ts=at)  # fmt: skip
                out.append(_stamp(record))
                last = at
            if outcome == "buys":
                at = last + rng.randrange(HOUR_MS, 6 * DAY_MS)
                if at < end_ms:
                    out.append(self._sale(c, sku, line, at, "B"))
                    self.tally["bought_after_streak"] += 1
        return out

    def _offset(self, day_start: datetime) -> int:
        return (day_start - self.world.start).days

    def _sale(self, c: Any, sku: str, line: str, at: int, kind: str) -> tuple[int, Event]:
        price = Decimal(PRICES[sku])
        row = {
            "transaction_id": f"SIMB{self.world.seed}-{kind}-{c.index}-{at}",
            "line_no": 1, "store_id": self.world.home(c), "region": c.region, "sku": sku,
            "product_line": line, "quantity": 1, "unit_price": str(price), "discount": "0",
            "amount": str(price), "payment_method": "WECHAT_PAY", "member_phone": c.phone,
            "cashier_id": "C01", "occurred_at": datetime.fromtimestamp(at / 1000, UTC).isoformat(),
        }  # fmt: skip
        return _stamp(pos_event(row, pii=self.world.pii, source="pos-sim", ingested_at_ms=0))


def _stamp(record: dict[str, Any]) -> tuple[int, Event]:
    record["ingested_at"] = record["occurred_at"] + 2000
    return record["occurred_at"], (record["event_type"], record)
