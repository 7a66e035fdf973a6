"""The demo's ERP and competitor-price generators: valid, reproducible, with planted cases."""

from __future__ import annotations

from datetime import UTC, datetime

from dealstream.connectors.simulator.erp import inventory_snapshots, weekly_orders
from dealstream.connectors.simulator.market import competitor_prices
from dealstream.schemas import codec, validation

AT = datetime(2026, 11, 30, tzinfo=UTC)


def test_every_generated_record_is_valid_and_the_same_for_the_same_seed() -> None:
    for make in (
        lambda: list(inventory_snapshots(3, at=AT)),
        lambda: list(weekly_orders(3, end=AT)),
        lambda: list(competitor_prices(3, at=AT)),
    ):
        records = make()
        assert records == make()
        for record in records:
            assert validation.validate(record["event_type"], record) == []
            codec.encode(record["event_type"], record)


def test_planted_slow_stock_and_deep_price_cuts_are_there_but_not_everywhere() -> None:
    slow = [r for r in inventory_snapshots(3, at=AT) if r["payload"]["turnover_days"] > 45]
    cuts = [r for r in competitor_prices(3, at=AT) if r["payload"]["change_pct"] < -5]
    assert 0 < len(slow) < 32 and 0 < len(cuts) < 32
    keys = {(r["payload"]["sku"], r["payload"]["region"]) for r in slow}
    assert keys & {(r["payload"]["sku"], r["payload"]["region"]) for r in cuts}


def test_orders_give_every_rep_a_weekly_series() -> None:
    reps: dict[str, set[int]] = {}
    for order in weekly_orders(3, reps=6, weeks=16, end=AT):
        week = datetime.fromtimestamp(order["occurred_at"] / 1000, tz=UTC).isocalendar().week
        reps.setdefault(order["payload"]["sales_rep_id"], set()).add(week)
    assert len(reps) == 6 and all(len(weeks) >= 15 for weeks in reps.values())
