"""MQTT topics and JSON payloads -> ``iot.telemetry`` records (one per metric).

Topic patterns name their wildcards: ``devices/{device_id}/telemetry`` subscribes to
``devices/+/telemetry`` and reads the device id from the second level; ``store_id``, ``sku``
and ``metric`` may be named the same way. A payload is either one reading or several::

    {"ts": 1767225600123, "seq": 7, "store_id": "S001", "sku": "WP-100",
     "metrics": {"power_w": 41.5, "filter_life_pct": {"value": 62, "unit": "%"}},
     "fault_code": "E3"}

A reported fault becomes its own ``fault`` reading (value 1) carrying the code, so fault
alerts key on one metric. Event ids derive from device, time, sequence and metric: QoS 1
redeliveries dedup in the sinks.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from dealstream.connectors.sdk.errors import RecordError
from dealstream.schemas.envelope import derive_event_id

EVENT_TYPE = "iot.telemetry"
UNITS = {"temperature": "C", "power_w": "W", "energy_kwh": "kWh", "uptime_s": "s",
         "runtime_h": "h", "flow_l": "L", "usage_count": "count", "humidity": "%",
         "filter_life_pct": "%", "tds_ppm": "ppm", "fault": "flag"}  # fmt: skip
_NAME = re.compile(r"^\{(\w+)\}$")


@dataclass(frozen=True)
class TopicPattern:
    """``devices/{device_id}/telemetry`` -> subscription and the named levels.

    >>> p = TopicPattern.parse("stores/{store_id}/devices/{device_id}/#")
    >>> p.subscription, p.match("stores/S1/devices/D9/power")
    ('stores/+/devices/+/#', {'store_id': 'S1', 'device_id': 'D9'})
    """

    levels: tuple[str, ...]
    names: dict[int, str]

    @classmethod
    def parse(cls, pattern: str) -> TopicPattern:
        levels = tuple(pattern.split("/"))
        names = {i: m.group(1) for i, level in enumerate(levels) if (m := _NAME.match(level))}
        if "device_id" not in names.values():
            raise ValueError(f"topic pattern {pattern!r} must name a {{device_id}} level")
        if "#" in levels[:-1]:
            raise ValueError(f"topic pattern {pattern!r}: '#' only as the last level")
        return cls(levels, names)

    @property
    def subscription(self) -> str:
        return "/".join("+" if i in self.names else level for i, level in enumerate(self.levels))

    def match(self, topic: str) -> dict[str, str] | None:
        parts = topic.split("/")
        multi = self.levels[-1] == "#"
        fixed = self.levels[:-1] if multi else self.levels
        if len(parts) < len(fixed) or (not multi and len(parts) != len(fixed)):
            return None
        found: dict[str, str] = {}
        for i, level in enumerate(fixed):
            if i in self.names:
                found[self.names[i]] = parts[i]
            elif level not in ("+", parts[i]):
                return None
        return found


def _reading(name: str, value: Any) -> tuple[float, str]:
    unit = UNITS.get(name, "")
    if isinstance(value, dict):
        unit = str(value.get("unit") or unit)
        value = value.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError("bad_value", f"metric {name!r}: {value!r} is not a number")
    if not math.isfinite(value):
        raise RecordError("bad_value", f"metric {name!r} is not finite")
    return float(value), unit


def to_records(
    topic: str, payload: bytes, levels: dict[str, str], *, source: str, received_ms: int
) -> list[dict[str, Any]]:
    """Records of one MQTT message; raises :class:`RecordError` when it is unusable."""
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RecordError("bad_json", f"payload is not JSON: {error}") from None
    if not isinstance(body, dict):
        raise RecordError("bad_json", "payload is not a JSON object")
    device = levels.get("device_id") or str(body.get("device_id") or "")
    if not device:
        raise RecordError("missing_device", f"no device id in topic {topic!r} or payload")
    ts = body.get("ts", received_ms)
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        raise RecordError("bad_time", f"ts {ts!r} is not epoch time")
    occurred = int(ts * 1000) if ts < 10**11 else int(ts)
    metrics: dict[str, Any] = dict(body.get("metrics") or {})
    if "metric" in body or levels.get("metric"):
        name = str(body.get("metric") or levels["metric"])
        metrics[name] = {"value": body.get("value"), "unit": body.get("unit")}
    fault = body.get("fault_code")
    if fault:
        metrics["fault"] = 1.0
    if not metrics:
        raise RecordError("no_metrics", "payload has neither metrics nor a fault code")
    seq = body.get("seq", "")
    records = []
    for name, raw in metrics.items():
        value, unit = _reading(str(name), raw)
        records.append(
            {
                "event_id": derive_event_id(source, device, occurred, seq, name),
                "source": source,
                "event_type": EVENT_TYPE,
                "occurred_at": occurred,
                "ingested_at": received_ms,
                "customer_ref": None,
                "payload": {
                    "device_id": device,
                    "sku": levels.get("sku") or body.get("sku") or None,
                    "store_id": levels.get("store_id") or body.get("store_id") or None,
                    "metric": str(name),
                    "value": value,
                    "unit": unit,
                    "fault_code": str(fault) if name == "fault" else None,
                },
            }
        )
    return records
