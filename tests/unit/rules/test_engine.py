from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from dealstream.streams.rules.business import load_rules
from dealstream.streams.rules.engine import RuleEngine
from dealstream.streams.rules.errors import RuleError

H = 3_600_000
D = 24 * H
T0 = 1_750_000_000_000

RULES = """
rules:
  - id: slow_stock_price_pressure
    version: 2
    kind: pricing
    severity: WARNING
    key: [payload.sku, payload.region]
    record:
      erp.inventory:
        turnover_days: payload.turnover_days
      competitor.price:
        competitor_price_change_pct: payload.change_pct
    when: last("turnover_days") > 45 and min_over("competitor_price_change_pct", "7d") < -5
    suppress_for: 1d
    message: 周转天数超过45天且竞品7天内降价超过5%
  - id: follow_up_missing
    version: 1
    kind: journey
    severity: INFO
    key: event.customer_ref
    record:
      crm.contact: {contact_added: 1}
      wecom.message:
        follow_up: {value: 1, if: 'payload.speaker_role == "SALES_REP"'}
    absence: {after: contact_added, expect: follow_up, within: 72h}
  - id: quote_without_diagnosis
    version: 1
    kind: journey
    severity: WARNING
    key: [event.customer_ref]
    record:
      crm.diagnosis: {needs_diagnosis: 1}
      erp.quotation: {quotation: payload.amount}
    sequence: {requires: needs_diagnosis, before: quotation, grace: 10m}
"""


def ev(event_type: str, ts: int, eid: str, customer: str = "c1", **payload: Any) -> dict[str, Any]:
    return {
        "event_id": eid,
        "event_type": event_type,
        "occurred_at": ts,
        "customer_ref": customer,
        "payload": payload,
    }


def inv(ts: int, eid: str, days: Any, sku: str = "SKU1") -> dict[str, Any]:
    return ev("erp.inventory", ts, eid, sku=sku, region="EAST", turnover_days=days)


def price(ts: int, eid: str, pct: float, sku: str = "SKU1") -> dict[str, Any]:
    return ev("competitor.price", ts, eid, sku=sku, region="EAST", change_pct=pct)


@pytest.fixture
def engine() -> RuleEngine:
    return RuleEngine(load_rules(RULES))


def test_turnover_and_competitor_drop_end_to_end(engine: RuleEngine) -> None:
    assert engine.process(price(T0, "p1", -7.5)) == []  # no turnover yet: null, no alert
    assert engine.process(inv(T0 + H, "i1", Decimal("30"))) == []  # turnover fine
    (alert,) = engine.process(inv(T0 + 2 * H, "i2", 52.0))
    assert alert["rule_id"] == "slow_stock_price_pressure" and alert["rule_version"] == 2
    assert alert["kind"] == "pricing" and alert["severity"] == "WARNING"
    assert alert["entity_key"] == "SKU1|EAST"
    assert alert["input_event_ids"] == ["i2", "p1"]
    assert alert["raised_at"] == T0 + 2 * H
    assert alert["model_name"] is None and alert["model_version"] is None
    assert alert["attributes"]["min_over(competitor_price_change_pct, 7d)"] == "-7.5"
    assert all(isinstance(v, str) for v in alert["attributes"].values())
    # suppressed for a day per key, other SKUs unaffected
    assert engine.process(inv(T0 + 3 * H, "i3", 60.0)) == []
    engine.process(price(T0 + 3 * H, "p9", -9.0, sku="SKU2"))
    assert len(engine.process(inv(T0 + 3 * H, "j1", 60.0, sku="SKU2"))) == 1
    # the drop leaves the 7-day window: no alert even after suppression ends
    assert engine.process(inv(T0 + 8 * D, "i4", 60.0)) == []


def test_alert_ids_are_deterministic_on_replay() -> None:
    events = [price(T0, "p1", -6.0), inv(T0 + H, "i1", 50.0)]
    runs = []
    for _ in range(2):
        e = RuleEngine(load_rules(RULES))
        runs.append([a for x in events for a in e.process(x, now_ms=123)])
    assert runs[0] == runs[1] and runs[0][0]["raised_at"] == 123


def test_decoded_datetime_event_time(engine: RuleEngine) -> None:
    t = datetime(2025, 6, 18, tzinfo=UTC)
    engine.process({**price(0, "p1", -6.0), "occurred_at": t})
    assert len(engine.process({**inv(0, "i1", 50.0), "occurred_at": t})) == 1


def test_absence_fires_without_follow_up_and_not_with_one(engine: RuleEngine) -> None:
    engine.process(ev("crm.contact", T0, "c-a", customer="A"))
    engine.process(ev("crm.contact", T0, "c-b", customer="B"))
    engine.process(ev("wecom.message", T0 + H, "m-b1", customer="B", speaker_role="CUSTOMER"))
    engine.process(ev("wecom.message", T0 + 2 * H, "m-b2", customer="B", speaker_role="SALES_REP"))
    assert engine.advance(T0 + 71 * H) == []
    (alert,) = engine.advance(T0 + 72 * H)
    assert alert["rule_id"] == "follow_up_missing" and alert["entity_key"] == "A"
    assert alert["input_event_ids"] == ["c-a"] and alert["attributes"]["missing"] == "follow_up"
    assert engine.advance(T0 + 100 * H) == []


def test_sequence_requires_diagnosis_before_quote(engine: RuleEngine) -> None:
    engine.process(ev("crm.diagnosis", T0, "d1", customer="A"))
    engine.process(ev("erp.quotation", T0 + H, "q1", customer="A", amount=100))
    engine.process(ev("erp.quotation", T0 + H, "q2", customer="B", amount=100))
    # B's diagnosis arrives late but within grace: still fine
    engine.process(ev("erp.quotation", T0 + H, "q3", customer="C", amount=100))
    engine.process(ev("crm.diagnosis", T0 + H - 1000, "d3", customer="C"))
    alerts = engine.advance(T0 + 2 * H)
    assert [(a["entity_key"], a["input_event_ids"]) for a in alerts] == [("B", ["q2"])]


def test_snapshot_restore_gives_the_same_answers() -> None:
    first = RuleEngine(load_rules(RULES))
    first.process(price(T0, "p1", -6.0))
    first.process(ev("crm.contact", T0, "c-a", customer="A"))
    restored = RuleEngine(load_rules(RULES), state=first.snapshot())
    for e in (first, restored):
        assert len(e.process(inv(T0 + H, "i1", 50.0))) == 1
        assert [a["entity_key"] for a in e.advance(T0 + 80 * H)] == ["A"]
    assert first.snapshot() == restored.snapshot()


def test_eviction_keeps_state_bounded(engine: RuleEngine) -> None:
    for i in range(200):
        engine.process(price(T0 + i * H, f"p{i}", 1.0))
    engine.advance(T0 + 200 * H)
    assert len(engine.store) <= 7 * 24 + 2


def test_hot_reload_keeps_state(engine: RuleEngine) -> None:
    engine.process(price(T0, "p1", -6.0))
    newer = RULES.replace("version: 2", "version: 3").replace("> 45", "> 10")
    reloaded = engine.with_rules(load_rules(newer))
    (alert,) = reloaded.process(inv(T0 + H, "i1", 20.0))
    assert alert["rule_version"] == 3


def test_null_and_type_mismatch_never_raise(engine: RuleEngine) -> None:
    engine.process(price(T0, "p1", -6.0))
    assert engine.process(inv(T0, "i1", "lots")) == []
    assert engine.process(inv(T0, "i2", None)) == []
    assert engine.process({"event_type": "erp.inventory"}) == []
    assert engine.process(ev("erp.inventory", T0, "x", region="EAST")) == []  # no key


BAD_RULE = """rules:
  - id: r
    version: 1
    kind: k
    severity: INFO
    key: [payload.sku]
    record:
      erp.inventory: {days: payload.turnover_days}
    when: {when}
"""


@pytest.mark.parametrize(
    ("when", "at", "what"),
    [
        ('last("dayz") > 1', '"dayz"', "unknown signal 'dayz'"),
        ('last("days") > 1 and foo.bar', "foo", "unknown name 'foo'"),
        ('min_over("days", "7 parsecs") < 1', '"7 p', "bad duration"),
        ('last("days") >', None, "unexpected end of expression"),
        ('last("days") > 1 and payload.__class__', "__class__", "'_' are not allowed"),
    ],
)
def test_errors_point_at_line_and_column(when: str, at: str | None, what: str) -> None:
    with pytest.raises(RuleError) as err:
        load_rules(BAD_RULE.replace("{when}", when))
    assert err.value.line == 9, str(err.value)
    offset = when.index(at) if at else len(when)
    assert err.value.column == len("    when: ") + 1 + offset, str(err.value)
    assert what in str(err.value)


def test_block_scalar_error_position() -> None:
    text = BAD_RULE.replace("{when}", '|\n      last("days") > 1\n        and nope()')
    with pytest.raises(RuleError) as err:
        load_rules(text)
    assert (err.value.line, err.value.column) == (11, 13)
    assert "unknown function 'nope'" in str(err.value)


def test_structural_errors() -> None:
    with pytest.raises(RuleError, match="needs 'when', 'absence' or 'sequence'"):
        load_rules(BAD_RULE.replace("    when: {when}\n", ""))
    with pytest.raises(RuleError, match="unknown signal 'nope'"):
        absence = "absence: {after: days, expect: nope, within: 1h}"
        load_rules(
            BAD_RULE.replace("when: {when}", absence),
        )


def test_hot_reload_keeps_the_timer_limit() -> None:
    limited = RuleEngine(load_rules(RULES), max_timers=1)
    limited.process(ev("crm.contact", T0, "a1", customer="c1"))
    reloaded = limited.with_rules(load_rules(RULES.replace("version: 2", "version: 3")))
    reloaded.process(ev("crm.contact", T0, "a2", customer="c2"))
    assert len(reloaded.timers) == 1 and reloaded.take_refused() == {"follow_up_missing": 1}
    assert reloaded.take_refused() == {}
