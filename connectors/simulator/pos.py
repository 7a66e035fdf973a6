"""Seeded synthetic POS data: export files (with deliberate bad rows) and a live stream.

Stores, SKUs and regions are drawn from a small fixed world so that forecasts and dashboards
built on the demo have something coherent to show; the same seed gives the same rows. Each store
has a finite pool of members (:func:`member_phone`), a few regulars among them, so buyers come
back as they do in a real store and repurchase measures (channel health) see a believable rate.

``python -m dealstream.connectors.simulator.pos deploy/samples`` rewrites the bundled exports
(:data:`SAMPLES`).
"""

from __future__ import annotations

import csv
import io
import json
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from dealstream.connectors.pos_file.parse import COLUMNS

REGIONS = ("华东", "华南", "华北", "西南")
PRODUCT_LINES = {"净水器": ("WP-100", "WP-200", "WP-300"), "空气净化器": ("AP-10", "AP-20"),
                 "滤芯": ("FL-01", "FL-02", "FL-03")}  # fmt: skip
PRICES = {"WP-100": "1299.00", "WP-200": "2199.00", "WP-300": "3599.00", "AP-10": "899.00",
          "AP-20": "1599.00", "FL-01": "99.00", "FL-02": "149.00", "FL-03": "199.00"}  # fmt: skip
PAYMENTS = ("WECHAT_PAY", "ALIPAY", "CARD", "CASH")
MEMBER_SHARE = 0.6  # tickets paid with a member phone; the rest are anonymous
MEMBERS_PER_STORE = 500
REGULARS_SKEW = 3.0  # > 1: low member numbers (the regulars) buy more often
SAMPLES = (  # bundled exports: file name, lines, seed, transaction id prefix
    ("pos_export.csv", 6_000, 7, "T"),
    ("pos_export.jsonl", 1_500, 11, "J"),
)
BAD_KINDS = (
    "negative_quantity",
    "bad_number",
    "missing_store",
    "future_time",
    "bad_utf8",
    "columns",
)


@dataclass(frozen=True)
class Store:
    store_id: str
    region: str


def stores(count: int = 12) -> list[Store]:
    return [Store(f"S{index:03d}", REGIONS[index % len(REGIONS)]) for index in range(1, count + 1)]


def member_phone(rng: random.Random, store: Store) -> str:
    """The member phone a ticket is paid with ("" for none), from the store's own pool.

    The phone spells the store and member number, so every seed and the live stream share
    one pool per store: a member of the exports may come back in the live stream.

    >>> member_phone(random.Random(1), Store("S007", "西南"))
    '13807000304'
    """
    if rng.random() >= MEMBER_SHARE:
        return ""
    member = int(MEMBERS_PER_STORE * rng.random() ** REGULARS_SKEW)
    return f"138{int(store.store_id[1:]):02d}{member:06d}"


def _line(
    rng: random.Random, ticket: int, line_no: int, when: datetime, store: Store, *, member: str
) -> dict[str, Any]:
    product_line = rng.choice(list(PRODUCT_LINES))
    sku = rng.choice(PRODUCT_LINES[product_line])
    quantity = rng.choice((1, 1, 1, 2, 3))
    price = Decimal(PRICES[sku])
    discount = (price * quantity * Decimal(rng.choice(("0", "0", "0.05", "0.1")))).quantize(
        Decimal("0.01")
    )
    return {
        "transaction_id": f"T{ticket:08d}", "line_no": line_no, "store_id": store.store_id,
        "region": store.region, "sku": sku, "product_line": product_line, "quantity": quantity,
        "unit_price": str(price), "discount": str(discount),
        "amount": str(price * quantity - discount), "currency": "CNY",
        "payment_method": rng.choice(PAYMENTS), "member_phone": member,
        "cashier_id": f"C{rng.randrange(1, 40):02d}", "occurred_at": when.isoformat(),
        "is_refund": "false",
    }  # fmt: skip


def ticket_lines(seed: int, start: datetime, count: int) -> Iterator[dict[str, Any]]:
    """``count`` valid ticket lines, tickets of 1-3 lines, a few minutes apart."""
    rng = random.Random(seed)
    world = stores()
    produced, ticket, when = 0, 1, start
    while produced < count:
        store = rng.choice(world)
        member = member_phone(rng, store)
        for line_no in range(1, rng.choice((1, 1, 2, 3)) + 1):
            if produced == count:
                return
            yield _line(rng, ticket, line_no, when, store, member=member)
            produced += 1
        ticket += 1
        when += timedelta(seconds=rng.randrange(20, 400))


def _spoil(rng: random.Random, row: dict[str, Any]) -> tuple[dict[str, Any] | None, bytes | None]:
    kind = rng.choice(BAD_KINDS)
    spoiled = dict(row)
    if kind == "negative_quantity":
        spoiled["quantity"] = -abs(int(row["quantity"]))
    elif kind == "bad_number":
        spoiled["unit_price"] = "12,99"
    elif kind == "missing_store":
        spoiled["store_id"] = ""
    elif kind == "future_time":
        spoiled["occurred_at"] = "2099-01-01T00:00:00+00:00"
    elif kind == "bad_utf8":
        return None, b"T-broken,1,S001,\xff\xfe\xfa,WP-100"
    else:
        return None, b"only,three,columns"
    return spoiled, None


def write_export(
    path: Path, *, rows: int, seed: int = 7, bad_rate: float = 0.02, prefix: str = "T"
) -> int:
    """Write a CSV or JSONL export (by suffix); returns how many lines were spoiled on purpose."""
    rng = random.Random(seed + 1)
    start = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)
    spoiled = 0
    with path.open("wb") as out:
        if path.suffix == ".csv":
            out.write((",".join(COLUMNS) + "\n").encode())
        for line in ticket_lines(seed, start, rows):
            row = {**line, "transaction_id": prefix + line["transaction_id"][1:]}
            raw: bytes | None = None
            if rng.random() < bad_rate:
                spoilt, raw = _spoil(rng, row)
                spoiled += 1
                row = spoilt or row
            if raw is None:
                raw = _encode(row, csv_format=path.suffix == ".csv")
            out.write(raw + b"\n")
    return spoiled


def write_samples(folder: Path) -> dict[str, int]:
    """Rewrite the bundled exports in ``folder``; returns the spoiled lines per file."""
    return {
        name: write_export(folder / name, rows=rows, seed=seed, prefix=prefix)
        for name, rows, seed, prefix in SAMPLES
    }


def _encode(row: dict[str, Any], *, csv_format: bool) -> bytes:
    if not csv_format:
        return json.dumps(row, ensure_ascii=False).encode()
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow([row[name] for name in COLUMNS])
    return buffer.getvalue().encode()


def live_rows(
    seed: int, count: int, *, rate_per_s: float | None = None
) -> Iterator[dict[str, Any]]:
    """Ticket lines stamped with the current time, optionally paced to ``rate_per_s``."""
    started = time.monotonic()
    for index, row in enumerate(ticket_lines(seed, datetime.now(UTC), count)):
        row["transaction_id"] = f"L{seed}-{row['transaction_id']}"
        row["occurred_at"] = datetime.now(UTC).isoformat()
        if rate_per_s:
            delay = started + index / rate_per_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        yield row


if __name__ == "__main__":
    print(write_samples(Path(sys.argv[1])))
