"""Seeded delivery-platform and e-commerce reviews, Chinese and English, with star ratings.

Deterministic for a seed (ids, texts, ratings and times), so tests and benchmarks know what went
in: ``negative_stores`` get mostly bad reviews (to trip the negative-run alert), the others
mostly good ones, and ``unrated`` of the reviews come without stars (scored, not learned from).
Records are shaped like platform API items, ready for the reviews connectors.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PLATFORMS = ("meituan", "eleme", "jd", "tmall")
PRODUCTS = (
    ("WH-JSQ30-16", "燃气热水器"),
    ("AC-KFR-35GW", "变频空调"),
    ("PU-RO-600", "净水器"),
    ("FD-BOX-01", "招牌套餐"),
)

POSITIVE_ZH = (
    "味道很好，送餐也很快，非常满意",
    "安装师傅很专业，态度热情，好评",
    "质量不错，物美价廉，推荐购买",
    "包装干净，准时送达，下次还来",
    "性价比很高，家人都很喜欢",
    "客服回复及时，服务周到，五星好评",
    "用了一周效果很好，值得购买",
    "东西新鲜，分量足，非常划算",
)
NEGATIVE_ZH = (
    "送餐太慢了，饭菜都凉了，很失望",
    "安装师傅迟到两个小时，态度很差",
    "质量太差，用了三天就坏了，要求退款",
    "包装破损，漏水严重，差评",
    "客服不理人，投诉也没用，再也不买了",
    "味道难吃，分量还少，不推荐",
    "机器噪音很大，售后推来推去，太坑了",
    "东西不新鲜，吃完肚子疼，非常失望",
)
NEUTRAL_ZH = ("还行吧，一般般", "和描述差不多，没什么特别的")
POSITIVE_EN = (
    "Great taste and fast delivery, very happy",
    "Excellent service, the installer was friendly",
    "Good quality for the price, would recommend",
    "Fresh food, arrived on time, love it",
)
NEGATIVE_EN = (
    "Terrible, the food arrived cold and late",
    "Broken after two days, I want a refund",
    "Rude staff and slow delivery, never again",
    "Awful quality, very disappointed",
)


@dataclass(frozen=True)
class Review:
    item: dict[str, Any]
    negative: bool
    """Written as a bad review (what a good sentiment model should call negative)."""


def stores(count: int = 12) -> list[tuple[str, str]]:
    """``(store_id, region)`` pairs."""
    regions = ("CN-EAST", "CN-NORTH", "CN-SOUTH")
    return [(f"ST{index:03d}", regions[index % len(regions)]) for index in range(count)]


def reviews(
    seed: int,
    count: int,
    *,
    store_list: Sequence[tuple[str, str]] | None = None,
    negative_stores: Sequence[str] = ("ST001",),
    unrated: float = 0.25,
    english: float = 0.25,
    start: datetime = START,
    spacing: timedelta = timedelta(minutes=7),
) -> Iterator[Review]:
    """``count`` reviews in posting order, ``spacing`` apart on average."""
    rng = random.Random(seed)
    shops = list(store_list or stores())
    bad = set(negative_stores)
    moment = start
    for index in range(count):
        store_id, region = shops[index % len(shops)] if index < len(shops) else rng.choice(shops)
        negative = rng.random() < (0.85 if store_id in bad else 0.12)
        neutral = not negative and rng.random() < 0.08
        in_english = rng.random() < english
        if neutral:
            text, stars = rng.choice(NEUTRAL_ZH), 3
        elif negative:
            text = rng.choice(NEGATIVE_EN if in_english else NEGATIVE_ZH)
            stars = rng.choice((1, 1, 2))
        else:
            text = rng.choice(POSITIVE_EN if in_english else POSITIVE_ZH)
            stars = rng.choice((4, 5, 5))
        sku, product = rng.choice(PRODUCTS)
        platform = rng.choice(PLATFORMS)
        moment += timedelta(seconds=rng.uniform(0.2, 1.8) * spacing.total_seconds())
        yield Review(
            {
                "review_id": f"{platform[:2].upper()}-{seed}-{index:06d}",
                "platform": platform,
                "store_id": store_id,
                "region": region,
                "sku": sku,
                "product": product,
                "rating": None if rng.random() < unrated else stars,
                "text": text,
                "posted_at": moment.isoformat(),
                "user_id": f"u{rng.randrange(10**8, 10**9)}",
            },
            negative,
        )


def write_jsonl(path: Path, items: Sequence[Review]) -> Path:
    """A JSON Lines export of ``items`` (what the reviews file connector reads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for review in items:
            handle.write(json.dumps(review.item, ensure_ascii=False) + "\n")
    return path
