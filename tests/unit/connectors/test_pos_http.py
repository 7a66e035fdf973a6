"""POS HTTP ingestion served for real (aiohttp) and called with httpx; output in memory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from dealstream.connectors.pos_file.parse import event_id
from dealstream.connectors.pos_http.connector import PosHttpConnector, PosHttpSettings
from dealstream.connectors.sdk.testing import MemoryOutput, serving

ROW = {
    "transaction_id": "T1", "line_no": 1, "store_id": "S001", "region": "CN-EAST",
    "sku": "WP-100", "product_line": "净水器", "quantity": 2, "unit_price": "1299.00",
    "discount": 10, "amount": 2588.0, "payment_method": "ALIPAY",
    "member_phone": "+86 138 0013 8000", "occurred_at": "2026-09-01T09:00:00+08:00",
    "is_refund": False,
}  # fmt: skip
TOKEN = "tok-123"


def line(**overrides: Any) -> dict[str, Any]:
    return {**ROW, **overrides}


@pytest.fixture
def served() -> Iterator[tuple[PosHttpConnector, MemoryOutput, httpx.Client]]:
    output = MemoryOutput()
    settings = PosHttpSettings(port=0, auth_token=SecretStr(TOKEN), max_body_bytes=20_000)
    with (
        serving(PosHttpConnector(settings, output=output)) as connector,
        httpx.Client(
            base_url=connector.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
        ) as client,
    ):
        yield connector, output, client


def test_batch_is_produced_once_per_ticket_line(served: Any) -> None:
    _, output, client = served
    batch = {"transactions": [line(), line(line_no=2), line()]}
    first = client.post("/v1/transactions", json=batch)
    assert first.status_code == 200, first.text
    assert first.json() == {"accepted": 2, "duplicates": 1, "lines": 3}
    again = client.post("/v1/transactions", json=[line(line_no=2), line(line_no=3)])
    assert again.json() == {"accepted": 1, "duplicates": 1, "lines": 2}
    assert output.event_ids() == [event_id("T1", 1), event_id("T1", 2), event_id("T1", 3)]
    record = output.records()[0]
    assert "13800138000" not in json.dumps(record, default=str)
    assert record["payload"]["amount"] == record["payload"]["unit_price"] * 2 - 10


def test_bad_batch_names_every_bad_line_and_produces_nothing(served: Any) -> None:
    _, output, client = served
    batch = [line(), line(line_no=2, quantity="two"), "x", line(line_no=4, occurred_at="")]
    answer = client.post("/v1/transactions", json=batch)
    assert answer.status_code == 422
    body = answer.json()
    assert "3 of 4 line(s) rejected" in body["error"]
    assert [(p["index"], p["code"]) for p in body["problems"]] == [
        (1, "bad_integer"),
        (2, "not_an_object"),
        (3, "missing_field"),
    ]
    assert body["problems"][0]["transaction_id"] == "T1" and body["problems"][0]["line_no"] == 2
    assert output.produced == []


def test_limits_auth_and_malformed_bodies(served: Any) -> None:
    connector, output, client = served
    assert client.post("/v1/transactions", content=b"{nope").status_code == 400
    assert client.post("/v1/transactions", json={"rows": []}).status_code == 400
    big = client.post("/v1/transactions", json=[line(line_no=i) for i in range(200)])
    assert big.status_code == 413 and "20000 bytes" in big.json()["error"]
    anonymous = httpx.post(f"{connector.url}/v1/transactions", json=[line()])
    assert anonymous.status_code == 401 and "bearer" in anonymous.json()["error"]
    assert httpx.get(f"{connector.url}/healthz").json()["ok"] is True
    metrics = httpx.get(f"{connector.url}/metrics").text
    assert "dealstream_connector_records_produced_total" in metrics
    assert output.produced == []


def test_failed_delivery_is_a_503_and_the_resend_succeeds() -> None:
    output = MemoryOutput(fail_flushes=1)
    with serving(PosHttpConnector(PosHttpSettings(port=0), output=output)) as connector:
        url = f"{connector.url}/v1/transactions"
        assert httpx.post(url, json=[line()]).status_code == 503
        resent = httpx.post(url, json=[line()])
        assert resent.status_code == 200 and resent.json()["accepted"] == 1
    assert output.event_ids() == [event_id("T1", 1)]
