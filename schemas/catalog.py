"""Event types: names, topics, Kafka keys and their composed Avro schemas.

The envelope (``avro/envelope.avsc``) is written once; each event type's full schema is
composed here as envelope fields + a ``payload`` field of its own record, so the envelope
cannot drift between types. Alerts and dead letters are full records of their own.

The subject of a schema is the full name of its top-level record (Confluent's
``RecordNameStrategy``), because alerts and dead letters share one schema over many topics.

>>> et = event_type("pos.transaction")
>>> et.topic, et.subject, et.key_fields
('pos.transactions.v1', 'dealstream.PosTransactionEvent', ('payload.sku', 'payload.region'))
>>> len(et.fingerprint)
8
>>> for_topic("alerts.compliance.v1").name, for_topic("dlq.pos.transactions.v1").name
('alert', 'dead_letter')
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from fastavro.schema import fingerprint as _fingerprint
from fastavro.schema import to_parsing_canonical_form

SCHEMA_DIR = Path(__file__).resolve().parent / "avro"
HISTORY_DIR = Path(__file__).resolve().parent / "history"

Schema = dict[str, Any]

_TOPIC_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")


@dataclass(frozen=True, slots=True)
class _Spec:
    name: str
    topic: str
    file: str
    key_fields: tuple[str, ...]
    enveloped: bool = True


# Keys are the entity whose state a consumer keeps (DESIGN 1):
# - pos / inventory: SKU + region, so the forecast and stock stages need no repartition
#   (both topics must have the same partition count to stay co-partitioned);
# - erp.order: the ERP customer account (journeys); all versions of an order share it, so
#   per-order ordering holds too. Orders span SKUs, so forecasts re-key their lines;
# - wecom: the conversation (compliance); tenders: the notice (latest state per notice);
# - miniprogram: the session (funnels); the identity stage re-keys by customer once stitched;
# - iot: the device; alerts: entity_key; dead letters keep the original record's key (none).
_SPECS: tuple[_Spec, ...] = (
    _Spec("erp.order", "erp.orders.v1", "events/erp_order.avsc", ("payload.customer_id",)),
    _Spec(
        "erp.inventory",
        "erp.inventory.v1",
        "events/erp_inventory.avsc",
        ("payload.sku", "payload.region"),
    ),
    _Spec(
        "tender.notice", "tenders.notices.v1", "events/tender_notice.avsc", ("payload.notice_id",)
    ),
    _Spec(
        "pos.transaction",
        "pos.transactions.v1",
        "events/pos_transaction.avsc",
        ("payload.sku", "payload.region"),
    ),
    _Spec(
        "wecom.message",
        "wecom.messages.v1",
        "events/wecom_message.avsc",
        ("payload.conversation_id",),
    ),
    _Spec(
        "miniprogram.event",
        "miniprogram.events.v1",
        "events/miniprogram_interaction.avsc",
        ("payload.session_id",),
    ),
    _Spec("iot.telemetry", "iot.telemetry.v1", "events/iot_telemetry.avsc", ("payload.device_id",)),
    # Keyed SKU+region like POS and inventory, and co-partitioned with them, so rules can join
    # stock, our sales and competitors' prices in one keyed state.
    _Spec(
        "market.competitor_price",
        "market.competitor-prices.v1",
        "events/market_competitor_price.avsc",
        ("payload.sku", "payload.region"),
    ),
    # Reviews are keyed by store: the negative-run state of the sentiment pipeline is per store.
    _Spec("review", "reviews.posts.v1", "events/review.avsc", ("payload.store_id",)),
    _Spec(
        "procurement_plan",
        "procurement.plans.v1",
        "events/procurement_plan.avsc",
        ("payload.plan_id",),
    ),
    # Store tasks are keyed by the store whose staff act on them (the routing key).
    _Spec("store.task", "tasks.store.v1", "events/store_task.avsc", ("payload.store_id",)),
    _Spec("alert", "alerts.{kind}.v1", "alert.avsc", ("entity_key",), enveloped=False),
    _Spec("dead_letter", "dlq.{topic}", "dead_letter.avsc", (), enveloped=False),
)


@dataclass(frozen=True, slots=True, eq=False)
class SchemaVersion:
    """One released version of a subject, as stored in ``history/<subject>/v<N>.avsc``."""

    version: int
    fingerprint: bytes
    raw: Schema
    schema: Schema  # parsed by fastavro


@dataclass(frozen=True, slots=True, eq=False)
class EventType:
    """Everything a producer or consumer needs to know about one kind of record."""

    name: str
    topic: str  # a pattern with ``{kind}``/``{topic}`` for alerts and dead letters
    schema: Schema  # parsed (fastavro) full schema
    key_fields: tuple[str, ...]  # dotted paths into the full record
    version: int  # the released version equal to the current schema, else the next one
    fingerprint: bytes  # CRC-64-AVRO of the Parsing Canonical Form, 8 bytes little-endian
    subject: str
    raw: Schema  # the composed JSON schema, docs included
    history: tuple[SchemaVersion, ...]
    enveloped: bool

    @property
    def frozen(self) -> bool:
        """True when the current schema is exactly the latest released version."""
        return bool(self.history) and normal_form(self.history[-1].raw) == normal_form(self.raw)

    def key(self, record: Mapping[str, Any]) -> bytes | None:
        """Kafka key: the key fields' values joined by ``|`` (None when there are none).

        >>> event_type("iot.telemetry").key({"payload": {"device_id": "D-1"}})
        b'D-1'
        """
        if not self.key_fields:
            return None
        parts: list[str] = []
        for path in self.key_fields:
            value: Any = record
            for step in path.split("."):
                value = value.get(step) if isinstance(value, Mapping) else None
            parts.append("" if value is None else str(value))
        return "|".join(parts).encode()


def parse(raw: Any) -> Schema:
    """fastavro's parsed form of a record schema (validates it, resolves names)."""
    parsed = parse_schema(raw)
    if not isinstance(parsed, dict):
        raise TypeError("a top-level schema must be a record")
    return parsed


def fingerprint_of(raw: Schema) -> bytes:
    """8-byte CRC-64-AVRO ("Rabin") fingerprint of the schema's Parsing Canonical Form."""
    return bytes.fromhex(_fingerprint(to_parsing_canonical_form(raw), "CRC-64-AVRO"))


def normal_form(raw: Any) -> str:
    """JSON of a schema without ``doc``s: unlike the fingerprint it keeps defaults and
    logical types, which matter for compatibility."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != "doc"}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return json.dumps(strip(raw), sort_keys=True, ensure_ascii=False)


def _read_json(path: Path) -> Schema:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a schema file must hold a JSON object")
    return data


def compose(envelope: Schema, payload: Schema) -> Schema:
    """Full event schema: envelope fields followed by ``payload`` of the given record."""
    return {
        "type": "record",
        "name": payload["name"] + "Event",
        "namespace": payload.get("namespace", envelope.get("namespace")),
        "doc": payload.get("doc", ""),
        "fields": [
            *copy.deepcopy(envelope["fields"]),
            {"name": "payload", "type": copy.deepcopy(payload), "doc": "Event-specific data."},
        ],
    }


def load_history(subject: str) -> tuple[SchemaVersion, ...]:
    """Released versions of a subject, oldest first."""
    folder = HISTORY_DIR / subject
    if not folder.is_dir():
        return ()
    found: list[SchemaVersion] = []
    for path in folder.glob("v*.avsc"):
        if not path.stem[1:].isdigit():
            continue
        raw = _read_json(path)
        found.append(SchemaVersion(int(path.stem[1:]), fingerprint_of(raw), raw, parse(raw)))
    return tuple(sorted(found, key=lambda v: v.version))


def _build(spec: _Spec, envelope: Schema) -> EventType:
    own = _read_json(SCHEMA_DIR / spec.file)
    raw = compose(envelope, own) if spec.enveloped else own
    subject = f"{raw.get('namespace', 'dealstream')}.{raw['name']}"
    history = load_history(subject)
    current = normal_form(raw)
    version = next(
        (v.version for v in reversed(history) if normal_form(v.raw) == current),
        (history[-1].version + 1) if history else 1,
    )
    return EventType(
        name=spec.name,
        topic=spec.topic,
        schema=parse(copy.deepcopy(raw)),
        key_fields=spec.key_fields,
        version=version,
        fingerprint=fingerprint_of(raw),
        subject=subject,
        raw=raw,
        history=history,
        enveloped=spec.enveloped,
    )


@cache
def _registry() -> dict[str, EventType]:
    envelope = _read_json(SCHEMA_DIR / "envelope.avsc")
    return {spec.name: _build(spec, envelope) for spec in _SPECS}


@cache
def _by_topic() -> dict[str, EventType]:
    return {et.topic: et for et in _registry().values() if et.enveloped}


def reload() -> None:
    """Forget loaded schemas (after ``freeze`` or editing ``.avsc`` files)."""
    _registry.cache_clear()
    _by_topic.cache_clear()


def event_type(name: str) -> EventType:
    """The event type called ``name`` (``pos.transaction``, ``alert``, ``dead_letter``...)."""
    try:
        return _registry()[name]
    except KeyError:
        raise KeyError(f"unknown event type {name!r}; known: {sorted(_registry())}") from None


def event_types() -> tuple[EventType, ...]:
    """The enveloped event types, one per source topic."""
    return tuple(et for et in _registry().values() if et.enveloped)


def all_types() -> tuple[EventType, ...]:
    """Every subject: the event types plus alert and dead letter."""
    return tuple(_registry().values())


def alert_schema() -> EventType:
    """The alert record type (topics ``alerts.<kind>.v1``)."""
    return _registry()["alert"]


def dead_letter_schema() -> EventType:
    """The dead-letter record type (topics ``dlq.<topic>``)."""
    return _registry()["dead_letter"]


def for_topic(topic: str) -> EventType:
    """The type of the records on ``topic``; KeyError for topics we do not own."""
    found = _by_topic().get(topic)
    if found is not None:
        return found
    if topic.startswith("dlq.") and len(topic) > 4:
        return dead_letter_schema()
    parts = topic.split(".")
    if len(parts) == 3 and parts[0] == "alerts" and parts[2] == "v1" and parts[1]:
        return alert_schema()
    raise KeyError(f"no schema for topic {topic!r}")


def topic_for_alert(kind: str) -> str:
    """Topic for alerts of ``kind``.

    >>> topic_for_alert("stockout")
    'alerts.stockout.v1'
    """
    if not _TOPIC_SEGMENT.fullmatch(kind):
        raise ValueError(f"alert kind {kind!r} must match [A-Za-z0-9_-]+")
    return f"alerts.{kind}.v1"


def dlq_topic(topic: str) -> str:
    """Dead-letter topic for ``topic``.

    >>> dlq_topic("pos.transactions.v1")
    'dlq.pos.transactions.v1'
    """
    result = f"dlq.{topic}"
    if not topic or not _TOPIC.fullmatch(result):
        raise ValueError(f"{topic!r} does not give a legal Kafka topic name")
    return result
