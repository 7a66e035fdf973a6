"""Mini-program tracker endpoint served for real and called with httpx; output in memory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from dealstream.connectors.miniprogram.connector import MiniprogramConnector, MiniprogramSettings
from dealstream.connectors.sdk.testing import MemoryOutput, serving

OPENID, UNIONID = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M", "oXyZunion0001"
EVENT = {
    "event_id": "c-1", "openid": OPENID, "unionid": UNIONID, "session_id": "s-1",
    "action": "add_to_cart", "page": "/pages/product/detail", "sku": "WP-100",
    "series": "净享系列", "store_id": "S001", "amount": "1299.00", "ts": 1_767_225_600_000,
}  # fmt: skip


@pytest.fixture
def served() -> Iterator[tuple[MemoryOutput, httpx.Client]]:
    output = MemoryOutput()
    with (
        serving(MiniprogramConnector(MiniprogramSettings(port=0), output=output)) as connector,
        httpx.Client(base_url=connector.url, timeout=5) as client,
    ):
        yield output, client


def test_funnel_events_are_desensitised(served: Any) -> None:
    output, client = served
    batch = [
        {**EVENT, "event_id": "c-0", "action": "page_view", "amount": None, "ts": 1_767_225_590},
        EVENT,
        {**EVENT, "event_id": "c-2", "action": "ORDER", "amount": 2598, "unionid": None},
    ]
    answer = client.post("/v1/events", json={"events": batch})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"accepted": 3, "rejected": [], "events": 3}
    view, cart, order = output.records()
    assert [r["payload"]["action"] for r in (view, cart, order)] == [
        "PAGE_VIEW",
        "ADD_TO_CART",
        "ORDER",
    ]
    assert view["occurred_at"] == 1_767_225_590_000 and cart["payload"]["amount"] == Decimal(
        "1299.00"
    )
    assert cart["customer_ref"].startswith("unionid:") and order["customer_ref"].startswith(
        "openid:"
    )
    assert OPENID not in json.dumps(output.records(), default=str)


def test_bad_events_are_dead_lettered_without_pii(served: Any) -> None:
    output, client = served
    batch = [
        EVENT,
        {**EVENT, "event_id": "c-9", "action": "fly"},
        "x",
        {**EVENT, "event_id": "c-8", "amount": "12,99"},
        {**EVENT, "event_id": None},
    ]
    answer = client.post("/v1/events", json=batch).json()
    assert answer["accepted"] == 1
    assert [r["code"] for r in answer["rejected"]] == [
        "bad_action",
        "not_an_object",
        "bad_amount",
        "missing_event_id",
    ]
    assert all(
        OPENID.encode() not in d.raw and UNIONID.encode() not in d.raw for d in output.dead_letters
    )


def test_resend_has_same_event_id_and_bad_bodies(served: Any) -> None:
    output, client = served
    client.post("/v1/events", json=[EVENT])
    client.post("/v1/events", json=[EVENT])
    assert len(set(output.event_ids())) == 1
    assert client.post("/v1/events", content=b"{nope").status_code == 400
    assert client.post("/v1/events", json={"x": 1}).status_code == 400
