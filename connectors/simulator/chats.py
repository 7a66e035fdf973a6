"""Seeded WeCom chat messages with a known share of compliance violations (demos, tests, bench).

Each generated message says whether it was written to violate a rule, so a run can be scored:
violations planted vs alerts raised, and disclosures ("不保本") that must not alert.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dealstream.schemas.envelope import derive_event_id

PLAIN = (
    "您好，这款净水器本周有以旧换新补贴，安装免费。",
    "滤芯建议每六个月更换一次，我们可以上门服务。",
    "请问您方便什么时候到店体验？",
    "This model has a two-year warranty and free installation.",
)
VIOLATING = (
    "这款理财产品稳赚不赔，您放心买。",
    "我们保证本金，收益也很高。",
    "It is a guaranteed return, no risk at all.",
    "这是第一品牌，100%有效。",
)
DISCLOSURES = (
    "本产品不保本，投资需谨慎。",
    "过往业绩不代表未来表现，不能保证收益。",
)


@dataclass(frozen=True)
class Chat:
    record: dict[str, Any]
    violating: bool


def chats(seed: int, count: int, *, violation_rate: float = 0.05) -> Iterator[Chat]:
    """``count`` messages from reps and customers, now-stamped, about ``violation_rate`` bad."""
    rng = random.Random(seed)
    for index in range(count):
        rep_speaks = rng.random() < 0.7
        violating = rep_speaks and rng.random() < violation_rate
        if violating:
            text = rng.choice(VIOLATING)
        elif rep_speaks and rng.random() < 0.1:
            text = rng.choice(DISCLOSURES)
        else:
            text = rng.choice(PLAIN)
        now = int(time.time() * 1000)
        conversation = f"conv-{seed}-{index // 8}"
        yield Chat(
            {
                "event_id": derive_event_id("wecom", seed, index),
                "source": "wecom-sim",
                "event_type": "wecom.message",
                "occurred_at": now,
                "ingested_at": now,
                "customer_ref": None,
                "payload": {
                    "conversation_id": conversation,
                    "message_id": f"msg-{seed}-{index}",
                    "channel": "WECOM",
                    "speaker_role": "SALES_REP" if rep_speaks else "CUSTOMER",
                    "rep_id": f"EMP-{rng.randrange(1, 30):03d}",
                    "product_line": rng.choice(("净水器", "理财", "空气净化器")),
                    "text": text,
                    "msg_type": "text",
                },
            },
            violating,
        )
