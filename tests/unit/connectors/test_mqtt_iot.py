"""MQTT telemetry mapping: topic patterns, payload shapes, faults, bad messages."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiomqtt import Message

from dealstream.connectors.mqtt_iot.connector import MqttIotConnector, MqttIotSettings
from dealstream.connectors.mqtt_iot.mapping import TopicPattern, to_records
from dealstream.connectors.sdk import Emit, Reject
from dealstream.schemas import validation


def test_topic_patterns() -> None:
    p = TopicPattern.parse("devices/{device_id}/telemetry")
    assert p.subscription == "devices/+/telemetry"
    assert p.match("devices/D-7/telemetry") == {"device_id": "D-7"}
    assert p.match("devices/D-7/status") is None and p.match("devices/D-7/telemetry/x") is None
    with pytest.raises(ValueError, match="device_id"):
        TopicPattern.parse("devices/+/telemetry")


def test_many_metrics_and_a_fault() -> None:
    body = {"ts": 1_767_225_600_123, "seq": 7, "sku": "WP-100", "store_id": "S001",
            "metrics": {"power_w": 41.5, "filter_life_pct": {"value": 62, "unit": "%"}},
            "fault_code": "E3"}  # fmt: skip
    records = to_records("devices/D-1/telemetry", json.dumps(body).encode(), {"device_id": "D-1"},
                         source="iot", received_ms=1_767_225_601_000)  # fmt: skip
    by_metric = {r["payload"]["metric"]: r for r in records}
    assert set(by_metric) == {"power_w", "filter_life_pct", "fault"}
    assert by_metric["power_w"]["payload"]["unit"] == "W"
    assert by_metric["filter_life_pct"]["payload"]["value"] == 62.0
    assert by_metric["fault"]["payload"]["fault_code"] == "E3"
    assert by_metric["power_w"]["payload"]["fault_code"] is None
    assert all(r["occurred_at"] == 1_767_225_600_123 for r in records)
    assert all(validation.validate("iot.telemetry", r) == [] for r in records)
    again = to_records("devices/D-1/telemetry", json.dumps(body).encode(), {"device_id": "D-1"},
                       source="iot", received_ms=0)  # fmt: skip
    assert [r["event_id"] for r in again] == [r["event_id"] for r in records]  # redelivery dedups


def message(topic: str, payload: Any) -> Message:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return Message(topic, raw, 1, False, 5, None)


@pytest.mark.parametrize(
    ("topic", "payload", "code"),
    [
        ("devices/D/telemetry", b"{oops", "bad_json"),
        ("devices/D/telemetry", {"metrics": {"t": "hot"}}, "bad_value"),
        ("devices/D/telemetry", {"metrics": {}}, "no_metrics"),
        ("other/D", {"metrics": {"t": 1}}, "unmatched_topic"),
        ("devices/D/telemetry", {"ts": "yesterday", "metrics": {"t": 1}}, "bad_time"),
    ],
)
def test_bad_messages_become_rejects(topic: str, payload: Any, code: str) -> None:
    connector = MqttIotConnector(MqttIotSettings())
    (item,) = connector.items(message(topic, payload), 1_767_225_600_000)
    assert isinstance(item, Reject) and item.code == code


def test_store_level_pattern_and_single_reading() -> None:
    settings = MqttIotSettings(topics=["stores/{store_id}/devices/{device_id}/{metric}"])
    connector = MqttIotConnector(settings)
    payload = {"ts": 1_767_225_600, "value": 1280, "unit": "count"}
    (item,) = connector.items(message("stores/S9/devices/D2/usage_count", payload), 0)
    assert isinstance(item, Emit)
    p = item.record["payload"]
    assert (p["store_id"], p["device_id"], p["metric"], p["value"]) == (
        "S9",
        "D2",
        "usage_count",
        1280.0,
    )
    assert item.record["occurred_at"] == 1_767_225_600_000
