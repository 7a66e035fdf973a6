"""Seeded ERP records for the simulated world: inventory snapshots and orders by sales rep.

Inventory uses the world's SKUs and regions, so business rules that join stock with POS sales
(turnover and markdowns on the same SKU+region) have something to join; a known share of the
snapshots turns slowly. Orders give each sales rep a weekly series, and some reps a volatile
one, for the rep forecasts and their deviation alerts.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from dealstream.connectors.simulator.world import BASE_DAILY, REGIONS, STORE_CODES
from dealstream.schemas.envelope import derive_event_id

SLOW_SHARE = 0.3  # snapshots with turnover above 45 days


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def inventory_snapshots(seed: int, *, at: datetime | None = None) -> Iterator[dict[str, Any]]:
    """One ``erp.inventory`` event per SKU, region and warehouse at ``at`` (default now)."""
    rng = random.Random(seed)
    moment = at or datetime.now(UTC)
    for region in REGIONS:
        warehouse = f"WH-{STORE_CODES[region]}-01"
        for sku in BASE_DAILY:
            slow = rng.random() < SLOW_SHARE
            yield {
                "event_id": derive_event_id("erp-sim", "inventory", sku, warehouse, _ms(moment)),
                "source": "erp-sim",
                "event_type": "erp.inventory",
                "occurred_at": _ms(moment),
                "ingested_at": _ms(moment),
                "customer_ref": None,
                "payload": {
                    "sku": sku,
                    "warehouse_id": warehouse,
                    "region": region,
                    "on_hand": rng.randrange(20, 400),
                    "reserved": rng.randrange(0, 20),
                    "reorder_point": 40,
                    "unit_cost": Decimal(rng.randrange(80, 3000)).quantize(Decimal("0.01")),
                    "turnover_days": round(rng.uniform(46, 90) if slow else rng.uniform(5, 40), 1),
                    "snapshot_at": _ms(moment),
                },
            }


def weekly_orders(
    seed: int, *, reps: int = 6, weeks: int = 16, end: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """``erp.order`` events: a few orders per rep per week; every third rep is volatile."""
    rng = random.Random(seed)
    last = (end or datetime.now(UTC)) - timedelta(days=1)
    this_monday = (last - timedelta(days=last.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    skus = list(BASE_DAILY)
    for week in range(weeks, 0, -1):
        monday = this_monday - timedelta(weeks=week)  # ISO weeks: Monday to Friday orders
        for rep in range(reps):
            volatile = rep % 3 == 2
            for number in range(rng.randrange(2, 5)):
                when = monday + timedelta(days=rng.randrange(0, 5), hours=rng.randrange(9, 18))
                quantity = rng.randrange(1, 30 if volatile and week % 2 else 8)
                price = Decimal(rng.randrange(500, 4000)).quantize(Decimal("0.01"))
                amount = price * quantity
                region = list(REGIONS)[rep % len(REGIONS)]
                order_id = f"SO-SIM-{seed}-{week:02d}-{rep}-{number}"
                yield {
                    "event_id": derive_event_id("erp-sim", "order", order_id, _ms(when)),
                    "source": "erp-sim",
                    "event_type": "erp.order",
                    "occurred_at": _ms(when),
                    "ingested_at": _ms(when),
                    "customer_ref": None,
                    "payload": {
                        "order_id": order_id,
                        "customer_id": f"CUST-{rep}-{rng.randrange(50)}",
                        "dealer_id": f"DLR-{rep}",
                        "sales_rep_id": f"EMP-{rep:03d}",
                        "region": region,
                        "status": "CONFIRMED",
                        "currency": "CNY",
                        "lines": [
                            {
                                "line_no": 1,
                                "sku": rng.choice(skus),
                                "quantity": quantity,
                                "unit_price": price,
                                "amount": amount,
                            }
                        ],
                        "total_amount": amount,
                        "created_at": _ms(when),
                        "updated_at": _ms(when),
                    },
                }
