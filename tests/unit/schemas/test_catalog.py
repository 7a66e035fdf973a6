from __future__ import annotations

import pytest

from dealstream.schemas import catalog
from dealstream.schemas.samples import sample_event

TOPICS = {
    "erp.order": "erp.orders.v1",
    "erp.inventory": "erp.inventory.v1",
    "tender.notice": "tenders.notices.v1",
    "pos.transaction": "pos.transactions.v1",
    "wecom.message": "wecom.messages.v1",
    "miniprogram.event": "miniprogram.events.v1",
    "iot.telemetry": "iot.telemetry.v1",
    "market.competitor_price": "market.competitor-prices.v1",
    "review": "reviews.posts.v1",
    "store.task": "tasks.store.v1",
    "procurement_plan": "procurement.plans.v1",
}
ENVELOPE = ["event_id", "source", "event_type", "occurred_at", "ingested_at", "customer_ref"]


def test_every_event_type_has_its_topic() -> None:
    assert {et.name: et.topic for et in catalog.event_types()} == TOPICS
    for name, topic in TOPICS.items():
        assert catalog.for_topic(topic) is catalog.event_type(name)


@pytest.mark.parametrize("name", sorted(TOPICS))
def test_envelope_is_composed_first_then_payload(name: str) -> None:
    et = catalog.event_type(name)
    fields = [f["name"] for f in et.raw["fields"]]
    assert fields == [*ENVELOPE, "payload"]
    assert et.subject == f"dealstream.{et.raw['name']}"
    assert et.enveloped


@pytest.mark.parametrize("et", catalog.all_types(), ids=lambda et: et.name)
def test_every_field_has_a_doc_and_money_is_decimal_18_2(et: catalog.EventType) -> None:
    def walk(node: object, path: str) -> None:
        if isinstance(node, list):
            for branch in node:
                walk(branch, path)
        elif isinstance(node, dict):
            if node.get("logicalType") == "decimal":
                assert (node["type"], node["precision"], node["scale"]) == ("bytes", 18, 2), path
            for f in node.get("fields", ()):
                assert f.get("doc"), f"{path}.{f['name']} has no doc"
                walk(f["type"], f"{path}.{f['name']}")
            for key in ("items", "values"):
                if key in node:
                    walk(node[key], path)

    walk(et.raw, et.name)


def test_fingerprint_is_8_byte_rabin_of_canonical_form() -> None:
    for et in catalog.all_types():
        assert len(et.fingerprint) == 8
        assert et.fingerprint == catalog.fingerprint_of(et.raw)
    # spec test vector: the Rabin fingerprint of "int" is 0x7275d51a3f395c8f (LE bytes)
    assert catalog.fingerprint_of("int") == bytes.fromhex("8f5c393f1ad57572")  # type: ignore[arg-type]
    assert len({et.fingerprint for et in catalog.all_types()}) == len(catalog.all_types())


def test_alert_and_dead_letter_topics() -> None:
    assert catalog.topic_for_alert("stockout") == "alerts.stockout.v1"
    assert catalog.for_topic("alerts.stockout.v1") is catalog.alert_schema()
    assert catalog.dlq_topic("pos.transactions.v1") == "dlq.pos.transactions.v1"
    assert catalog.for_topic("dlq.pos.transactions.v1") is catalog.dead_letter_schema()
    for bad in ("", "a.b", "含中文", "a b"):
        with pytest.raises(ValueError):
            catalog.topic_for_alert(bad)
    with pytest.raises(ValueError):
        catalog.dlq_topic("")
    with pytest.raises(KeyError):
        catalog.for_topic("nope.v1")
    with pytest.raises(KeyError):
        catalog.event_type("pos.transactions")


def test_keys_follow_the_state_entity() -> None:
    pos = catalog.event_type("pos.transaction")
    assert pos.key(sample_event("pos.transaction")) == b"WH-JSQ30-16|CN-EAST"
    wecom = catalog.event_type("wecom.message")
    assert wecom.key(sample_event("wecom.message")) == b"wrOgQhDgAAcwMTB7YmDkbeBsgT_KAAAA"
    assert catalog.dead_letter_schema().key(sample_event("dead_letter")) is None
    assert catalog.alert_schema().key(sample_event("alert")) == b"wrOgQhDgAAcwMTB7YmDkbeBsgT_KAAAA"


def test_current_schemas_are_released() -> None:
    for et in catalog.all_types():
        assert et.history, et.subject
        assert et.frozen, f"{et.subject} changed: run compatibility.freeze"
        assert et.version == et.history[-1].version
