"""Deterministic sample rows for every table the dashboards read.

Used by the dashboard tests and the browser test, and by ``dealstream dashboard --sample`` to show
the charts on an empty embedded database. Rows follow the column tuples of ``tables`` so a schema
change breaks here loudly instead of producing a silently empty chart.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from clickhouse_connect.driver.client import Client

from dealstream.sinks.clickhouse import tables

REGIONS = ("north", "south", "east", "west")
PRODUCT_LINES = ("skincare", "haircare", "fragrance", "makeup")
RULES = ("guaranteed_returns", "absolute_claims", "competitor_disparage", "missing_disclosure")
FACTORS = ("level", "trend", "seasonality", "promotion", "price")
STORES = tuple(f"store-{i}" for i in range(9))
SLOW_STORE = "store-3"  # its reps answer late: low health, alerting
TOPICS = {"wecom.message": "wecom.messages.v1", "miniprogram.event": "miniprogram.events.v1",
          "pos.transaction": "pos.transactions.v1"}  # fmt: skip

Row = list[Any]


@dataclass(frozen=True, slots=True)
class SampleCounts:
    """How many rows of each table were written."""

    pos_transactions: int
    forecasts: int
    forecast_accuracy: int
    compliance_violations: int
    dead_letters: int
    journey_steps: int = 0
    channel_health: int = 0


def _pos_rows(rng: random.Random, now: datetime, days: int) -> list[Row]:
    skus = [(f"SKU-{i:03d}", PRODUCT_LINES[i % len(PRODUCT_LINES)]) for i in range(12)]
    customers = [f"c_{i:04d}" for i in range(300)]
    members = {c: f"m_{i:04d}" for i, c in enumerate(customers) if i % 5 < 2}
    channels = ("pos-file", "pos-live-sim", "pos-http")
    rows: list[Row] = []
    for index in range(days * 40):
        when = now - timedelta(days=rng.uniform(0, days), hours=rng.uniform(0, 3))
        customer = rng.choice(customers) if rng.random() < 0.8 else None
        region = (
            REGIONS[index % len(REGIONS)] if customer is None else REGIONS[int(customer[2:]) % 4]
        )
        channel = channels[0] if rng.random() < 0.6 else rng.choice(channels[1:])
        for line in range(rng.randint(1, 3)):
            sku, product_line = rng.choice(skus)
            qty = rng.randint(1, 4)
            price = Decimal(rng.randint(20, 400))
            refund = rng.random() < 0.03
            rows.append(
                [
                    f"ev-{index}-{line}", channel, "pos.transaction", when, when,
                    customer, f"tx-{index}", line, f"store-{index % 9}", region, sku,
                    product_line, -qty if refund else qty, price, Decimal(0),
                    price * (-qty if refund else qty), "CNY", rng.choice(("card", "wechat")),
                    members.get(customer) if customer else None, f"cashier-{index % 7}",
                    refund, "pos.transactions.v1", index % 4, index,
                ]
            )  # fmt: skip
    return rows


def _forecast_rows(rng: random.Random, now: datetime, weeks: int) -> tuple[list[Row], list[Row]]:
    monday = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0)
    monday = monday.replace(microsecond=0)
    forecasts: list[Row] = []
    accuracy: list[Row] = []
    for sku_no in range(12):
        sku = f"SKU-{sku_no:03d}"
        for region in REGIONS:
            key = f"{sku}|{region}"
            base = rng.uniform(20, 120)
            for week in range(weeks):
                origin = monday - timedelta(weeks=weeks - week)
                for horizon in (1, 2, 3):
                    target = origin + timedelta(weeks=horizon)
                    point = base * (1 + 0.1 * rng.gauss(0, 1))
                    width = base * (0.15 + 0.05 * horizon)
                    weights = {f: round(rng.uniform(-1, 1), 3) for f in rng.sample(FACTORS, 3)}
                    forecasts.append(
                        [
                            key, sku, region, "week", origin, horizon, target, point,
                            max(0.0, point - width), point + width, 0.9, "ok", weights,
                            "holt_winters", "1", week + 8, origin, origin + timedelta(hours=1),
                            f"ev-{key}-{week}", sku_no % 4, week,
                        ]
                    )  # fmt: skip
                    if target < monday:
                        actual = max(0.0, point + rng.gauss(0, width / 1.6))
                        accuracy.append(
                            [
                                key, region, horizon, "week", target, point, actual,
                                abs(point - actual), "holt_winters", "1", target, f"ev-a-{key}",
                            ]
                        )  # fmt: skip
    return forecasts, accuracy


def _violation_rows(rng: random.Random, now: datetime, days: int) -> list[Row]:
    rows: list[Row] = []
    for index in range(days * 6):
        when = now - timedelta(days=rng.uniform(0, days))
        rule = RULES[min(int(rng.expovariate(1.0)), len(RULES) - 1)]
        rows.append(
            [
                f"al-{index}", rule, 1, "high" if rule == RULES[0] else "medium",
                f"conv-{index // 3}", f"msg-{index}", f"rep-{rng.randint(1, 10):02d}", "rep",
                rng.choice(("wecom", "wecom", "call")), rng.choice(PRODUCT_LINES), "保本",
                "保本保息", 0, 4, "use the approved disclosure wording", when, when,
                "wecom.messages.v1", index % 4, index,
            ]
        )  # fmt: skip
    return rows


def _dead_letter_rows(rng: random.Random, now: datetime, days: int) -> list[Row]:
    stages = (("decode", "avro_decode"), ("validate", "missing_field"), ("parse", "bad_number"))
    rows: list[Row] = []
    for index in range(days * 3):
        stage, code = rng.choice(stages)
        when = now - timedelta(days=rng.uniform(0, days))
        rows.append(
            [
                "pos.transactions.v1", index % 4, 10_000 + index, stage, "worker", code,
                f"{code} at offset {10_000 + index}", when, None, "\x02T",
            ]
        )  # fmt: skip
    return rows


def _journey_rows(rng: random.Random, now: datetime, days: int) -> tuple[list[Row], list[Row]]:
    """Customers who add a rep on WeCom through a store's QR code, some visiting and buying
    within 72 h (fewer at the slow store), with mini-program views between; two merges."""
    steps: list[Row] = []

    def step(event: str, name: str, customer: str, store: str, *, at: datetime, et: str) -> None:
        amount = float(rng.randint(99, 3599)) if name == "purchase" else None
        offset = len(steps)
        steps.append([event, name, customer, store, "store", at, et, amount, TOPICS[et], 0,
                      offset])  # fmt: skip

    for index in range(days * 4):
        customer, store = f"cust-{index:04d}", rng.choice(STORES)
        added = now - timedelta(days=rng.uniform(0, days), hours=rng.uniform(0, 12))
        step(f"add-{index}", "wecom_added", customer, store, at=added, et="wecom.message")
        for view in range(rng.randint(0, 3)):
            when = min(now, added + timedelta(hours=rng.uniform(1, 120)))
            step(
                f"mp-{index}-{view}",
                "miniprogram_view",
                customer,
                store,
                at=when,
                et="miniprogram.event",
            )
        keen = 0.25 if store == SLOW_STORE else 0.6
        if rng.random() < keen:
            late = rng.random() < 0.2  # after the 72 h
            visit = min(
                now, added + timedelta(hours=rng.uniform(80, 110) if late else rng.uniform(2, 60))
            )
            step(f"pos-{index}", "store_visit", customer, store, at=visit, et="pos.transaction")
            if rng.random() < 0.7:
                step(f"pos-{index}", "purchase", customer, store, at=visit, et="pos.transaction")
    merges: list[Row] = [
        ["cust-0001", "cust-0000", 1, now - timedelta(days=3), "add-1"],
        ["cust-0003", "cust-0002", 2, now - timedelta(days=2), "add-3"],
    ]
    return steps, merges


def _health_rows(now: datetime, days: int) -> list[Row]:
    rows: list[Row] = []
    for index, store in enumerate(STORES):
        region = REGIONS[index % len(REGIONS)]
        for day in range(0, days, 7):
            at = now - timedelta(days=days - day)
            slow = store == SLOW_STORE and day >= days // 2
            sla, intent = (0.2, 0.9) if slow else (0.95 - 0.01 * index, 1.0 - 0.02 * index)
            score = (sla * intent) ** 0.5
            rows.append(
                [
                    store, "store", region, score, None, sla, intent, 40 + day, 30 + day,
                    5 + day // 7, int(slow), at, at, f"health-{store}-{day}", "1",
                ]
            )  # fmt: skip
    return rows


def seed(
    client: Client, *, now: datetime | None = None, seed: int = 7, days: int = 56
) -> SampleCounts:
    """Insert sample rows into the client's (migrated) database; return the counts."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    rng = random.Random(seed)
    pos = _pos_rows(rng, now, days)
    forecasts, accuracy = _forecast_rows(rng, now, days // 7)
    violations = _violation_rows(rng, now, days)
    dead = _dead_letter_rows(rng, now, days)
    steps, merges = _journey_rows(rng, now, days)
    health = _health_rows(now, days)
    for table, columns, rows in (
        (tables.POS_TRANSACTIONS, tables.POS_TRANSACTIONS_COLUMNS, pos),
        (tables.FORECASTS, tables.FORECASTS_COLUMNS, forecasts),
        (tables.FORECAST_ACCURACY, tables.FORECAST_ACCURACY_COLUMNS, accuracy),
        (tables.COMPLIANCE_VIOLATIONS, tables.COMPLIANCE_VIOLATIONS_COLUMNS, violations),
        (tables.DEAD_LETTERS, tables.DEAD_LETTERS_COLUMNS, dead),
        (tables.JOURNEY_STEPS, tables.JOURNEY_STEPS_COLUMNS, steps),
        (tables.CUSTOMER_MERGES, tables.CUSTOMER_MERGES_COLUMNS, merges),
        (tables.CHANNEL_HEALTH, tables.CHANNEL_HEALTH_COLUMNS, health),
    ):
        client.insert(table, rows, column_names=list(columns))
    return SampleCounts(
        len(pos),
        len(forecasts),
        len(accuracy),
        len(violations),
        len(dead),
        len(steps),
        len(health),
    )
