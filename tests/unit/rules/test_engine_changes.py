"""Incremental checkpoints of business rule state equal full snapshots, and stay bounded."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dealstream.streams.business_state import META, PartitionState, split
from dealstream.streams.rules.business import load_rules
from dealstream.streams.rules.engine import RuleEngine

H = 3_600_000
T0 = 1_750_000_000_000

RULES = load_rules("""
rules:
  - id: markdown
    version: 1
    kind: business
    severity: WARNING
    key: [payload.sku]
    record:
      erp.inventory: {turnover_days: payload.turnover_days}
      pos.transaction: {discount: payload.discount, n: 1}
    when: >-
      last("turnover_days") > 45 and max_over("discount", "2h") > 5
      and count_over("n", "1h") > 1
    suppress_for: 1h
    message: m
  - id: waiting
    version: 1
    kind: business
    severity: INFO
    key: payload.conversation_id
    record:
      wecom.message:
        asked: {value: 1, if: 'payload.speaker_role == "CUSTOMER"'}
        replied: {value: 1, if: 'payload.speaker_role == "SALES_REP"'}
    absence: {after: asked, expect: replied, within: 3h}
    message: m
  - id: ordered
    version: 1
    kind: business
    severity: INFO
    key: [payload.sku]
    record:
      erp.diagnosis: {diagnosed: 1}
      erp.quotation: {quoted: 1}
    sequence: {requires: diagnosed, before: quoted, grace: 10m}
    message: m
""")


def event(kind: int, ts: int, n: int, key: int, value: int) -> dict[str, Any]:
    payload: dict[str, Any]
    event_type, payload = [
        ("erp.inventory", {"sku": f"s{key}", "turnover_days": 30 + value}),
        ("pos.transaction", {"sku": f"s{key}", "discount": value % 9}),
        ("wecom.message", {"conversation_id": f"c{key}", "speaker_role": "CUSTOMER"}),
        ("wecom.message", {"conversation_id": f"c{key}", "speaker_role": "SALES_REP"}),
        ("erp.diagnosis", {"sku": f"s{key}"}),
        ("erp.quotation", {"sku": f"s{key}"}),
    ][kind]
    return {"event_id": f"e{n}", "event_type": event_type, "occurred_at": ts, "payload": payload}


def apply(log: dict[bytes, bytes], records: list[tuple[bytes, bytes | None]]) -> None:
    """What a compacted changelog keeps: the latest value per key, tombstones delete."""
    for key, value in records:
        if value is None:
            log.pop(key, None)
        else:
            log[key] = value


steps = st.lists(
    st.lists(
        st.tuples(
            st.integers(0, 5),  # kind
            st.integers(0, 2 * H),  # step forward in event time
            st.integers(0, 6),  # entity
            st.integers(0, 40),  # value
        ),
        max_size=8,
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(steps)
def test_changed_entries_rebuild_exactly_the_full_snapshot(batches: list[Any]) -> None:
    engine, state, log = RuleEngine(RULES), PartitionState(), {}
    ts, n = T0, 0
    for batch in batches:
        for kind, step, key, value in batch:
            ts += step
            n += 1
            engine.process(event(kind, ts, n, key, value))
        engine.advance(ts)
        applied = {"t": n}
        apply(log, state.changes(engine.take_changes(), engine.meta(), applied))
        assert log == split(engine.snapshot(), applied)
    # and the log alone restores an engine holding the same state (key order aside)
    _, engine_bytes, applied = PartitionState.restore(log)
    restored = RuleEngine(RULES, state=engine_bytes)
    assert split(restored.snapshot(), applied) == split(engine.snapshot(), applied)


def test_answered_conversations_leave_no_state_behind() -> None:
    engine, state, log = RuleEngine(RULES), PartitionState(), {}
    ts = T0
    for conversation in range(5_000):
        ts += 1_000
        engine.process(event(2, ts, 2 * conversation, conversation, 0))  # customer asks
        engine.process(event(3, ts + 500, 2 * conversation + 1, conversation, 0))  # rep replies
        engine.advance(ts)
        apply(log, state.changes(engine.take_changes(), engine.meta(), {}))
    assert len(engine.store) == 0 and len(engine.timers) == 0
    assert engine.timers.heap_size <= 1_024 + 1  # cancelled timers do not pile up either
    assert list(log) == [META]


def test_a_checkpoint_costs_the_keys_it_changed_not_the_keys_kept() -> None:
    engine, state = RuleEngine(RULES), PartitionState()
    for sku in range(1_000):
        engine.process(event(0, T0, sku, sku, 20))
    engine.advance(T0)
    assert len(state.changes(engine.take_changes(), engine.meta(), {})) == 1_000 + 1
    engine.process(event(1, T0 + 1, 1_000, 7, 3))
    engine.advance(T0 + 1)
    written = state.changes(engine.take_changes(), engine.meta(), {})
    assert [k for k, _ in written] == [b"markdown\x1fs7", META]
