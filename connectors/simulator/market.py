"""Seeded competitor price observations for the simulated world's SKUs and regions.

About a third of the observations are cuts deeper than 5 %, so together with the slow-turning
inventory snapshots of :mod:`.erp` the "slow stock and a competitor price cut" rule has cases
that fire and cases that must not.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from dealstream.connectors.simulator.world import BASE_DAILY, REGIONS
from dealstream.schemas.envelope import derive_event_id

COMPETITORS = ("格力", "美的", "海尔", "小米")


def competitor_prices(seed: int, *, at: datetime | None = None) -> Iterator[dict[str, Any]]:
    """One ``market.competitor_price`` event per SKU and region, observed a day before ``at``."""
    rng = random.Random(seed)
    moment = (at or datetime.now(UTC)) - timedelta(days=1)
    ms = int(moment.timestamp() * 1000)
    for region in REGIONS:
        for sku in BASE_DAILY:
            previous = Decimal(rng.randrange(500, 4000)).quantize(Decimal("0.01"))
            change = rng.uniform(-15, -5.5) if rng.random() < 0.35 else rng.uniform(-4, 3)
            price = (previous * Decimal(str(1 + change / 100))).quantize(Decimal("0.01"))
            competitor = rng.choice(COMPETITORS)
            yield {
                "event_id": derive_event_id("price-monitor", sku, region, competitor, ms),
                "source": "price-monitor-sim",
                "event_type": "market.competitor_price",
                "occurred_at": ms,
                "ingested_at": ms,
                "customer_ref": None,
                "payload": {
                    "sku": sku,
                    "region": region,
                    "competitor": competitor,
                    "competitor_product": None,
                    "price": price,
                    "previous_price": previous,
                    "change_pct": round(float((price - previous) / previous * 100), 2),
                    "currency": "CNY",
                    "channel": rng.choice(("STORE", "ONLINE")),
                    "source_url": None,
                },
            }
