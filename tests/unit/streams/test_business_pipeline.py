"""The business rules pipeline in memory: alerts, suppression, timers, restore, hot reload."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Message
from prometheus_client import REGISTRY

from dealstream.schemas import codec
from dealstream.schemas.samples import sample_event
from dealstream.streams.business import (
    BUNDLED_RULES,
    BusinessRulesPipeline,
    RuleSet,
    compile_rule_set,
)
from dealstream.streams.business_state import META, split
from dealstream.streams.changelog import State
from dealstream.streams.compliance import DEFAULT_RULES as COMPLIANCE_RULES
from dealstream.streams.compliance import CompliancePipeline
from dealstream.streams.decoding import RecordReader
from dealstream.streams.pipeline import StateRecord
from dealstream.streams.rules.compliance import ComplianceRules
from dealstream.streams.rules.errors import RuleError
from dealstream.streams.rules_config import RuleDocument, RulesReloader, rule_targets

H = 3_600_000
T0 = 1_750_000_000_000
INV, POS, CHAT, IOT, PRICE = (
    "erp.inventory.v1",
    "pos.transactions.v1",
    "wecom.messages.v1",
    "iot.telemetry.v1",
    "market.competitor-prices.v1",
)
CHANGELOG = "state.rules.v1"
TEXT = BUNDLED_RULES.read_text(encoding="utf-8")


class DictChangelog:
    """A compacted changelog in a dict: latest value per key per partition."""

    def __init__(self) -> None:
        self.partitions: State = {}

    def write(self, records: Iterable[StateRecord]) -> int:
        n = 0
        for r in records:
            assert r.topic == CHANGELOG
            values = self.partitions.setdefault(r.partition, {})
            if r.value is None:
                values.pop(r.key, None)
            else:
                values[r.key] = r.value
            n += 1
        return n

    def read(self, topic: str, partitions: Sequence[int]) -> State:
        assert topic == CHANGELOG
        return {p: dict(self.partitions.get(p, {})) for p in partitions}


def msg(
    event_type: str, topic: str, partition: int, offset: int, ts: int, **fields: Any
) -> Message:
    record = sample_event(event_type, **fields)
    record["occurred_at"] = record["ingested_at"] = datetime.fromtimestamp(ts / 1000, tz=UTC)
    record["event_id"] = f"{topic}-{partition}-{offset}"
    value, headers = codec.encode(event_type, record)
    return Message(topic=topic, partition=partition, offset=offset, value=value, headers=headers)


def inv(p: int, o: int, ts: int, days: float, sku: str = "AC-1") -> Message:
    return msg("erp.inventory", INV, p, o, ts, sku=sku, region="CN-EAST", turnover_days=days)


def sale(p: int, o: int, ts: int, discount: str, sku: str = "AC-1") -> Message:
    return msg(
        "pos.transaction", POS, p, o, ts, sku=sku, region="CN-EAST", quantity=1,
        unit_price=Decimal("100.00"), discount=Decimal(discount),
        amount=Decimal("100.00") - Decimal(discount),
    )  # fmt: skip


def price_cut(p: int, o: int, ts: int, change_pct: float, sku: str = "AC-1") -> Message:
    return msg(
        "market.competitor_price", PRICE, p, o, ts, sku=sku, region="CN-EAST",
        change_pct=change_pct,
    )  # fmt: skip


def chat(p: int, o: int, ts: int, conv: str, role: str) -> Message:
    return msg("wecom.message", CHAT, p, o, ts, conversation_id=conv, speaker_role=role)


def rules(text: str = TEXT, version: str = "v1") -> RuleSet:
    return compile_rule_set(text, version=version, author="test")


def pipeline(
    log: DictChangelog, ruleset: RuleSet | None = None, *, max_pending_timers: int | None = None
) -> BusinessRulesPipeline:
    topics = {
        t: RecordReader(et)
        for t, et in (
            (INV, "erp.inventory"),
            (POS, "pos.transaction"),
            (CHAT, "wecom.message"),
            (IOT, "iot.telemetry"),
            (PRICE, "market.competitor_price"),
        )
    }
    return BusinessRulesPipeline(
        ruleset or rules(),
        state_reader=log,
        topics=topics,
        changelog_topic=CHANGELOG,
        dead_letter_topics={INV, IOT},
        max_pending_timers=max_pending_timers,
    )


def test_slow_stock_with_markdown_alerts_once_per_day_naming_the_version() -> None:
    p = pipeline(DictChangelog())
    assert p.process([inv(0, 0, T0, 30.0), sale(0, 0, T0 + H, "8.00")]).alerts == []
    result = p.process([inv(0, 1, T0 + 2 * H, 52.0)])
    (alert,) = result.alerts
    assert alert["rule_id"] == "slow_stock_markdown" and alert["rule_version"] == 1
    assert alert["kind"] == "business" and alert["entity_key"] == "AC-1|CN-EAST"
    assert alert["attributes"]["rule_set"] == "business"
    assert alert["attributes"]["rule_set_version"] == "v1"
    assert alert["input_event_ids"] == [f"{INV}-0-1", f"{POS}-0-0"]
    codec.encode("alert", alert)  # publishable as is
    # suppressed for a day on this key; another SKU still alerts; small discounts never do
    assert p.process([sale(0, 1, T0 + 3 * H, "9.00")]).alerts == []
    other = p.process([inv(1, 0, T0 + 3 * H, 60.0, sku="B"), sale(1, 0, T0 + 4 * H, "6.00", "B")])
    assert [a["entity_key"] for a in other.alerts] == ["B|CN-EAST"]
    assert p.process([inv(2, 0, T0, 90.0, "C"), sale(2, 0, T0, "2.00", "C")]).alerts == []
    assert p.process([sale(0, 2, T0 + 30 * H, "9.00")]).alerts[0]["entity_key"] == "AC-1|CN-EAST"


def test_slow_stock_and_a_competitor_price_cut_within_7_days_alerts() -> None:
    p = pipeline(DictChangelog())
    assert p.process([inv(0, 0, T0, 50.0), price_cut(0, 0, T0 + H, -3.0)]).alerts == []
    (alert,) = p.process([price_cut(0, 1, T0 + 2 * H, -8.0)]).alerts
    assert alert["rule_id"] == "slow_stock_competitor_drop"
    assert alert["severity"] == "CRITICAL" and alert["entity_key"] == "AC-1|CN-EAST"
    assert f"{PRICE}-0-1" in alert["input_event_ids"]
    # a cut older than 7 days no longer counts; fast-turning stock never alerts
    assert p.process([inv(1, 0, T0, 70.0, "B"), price_cut(1, 1, T0, -9.0, "B")]).alerts != []
    assert p.process([inv(2, 0, T0, 20.0, "C"), price_cut(2, 1, T0, -20.0, "C")]).alerts == []
    late = p.process([price_cut(3, 0, T0, -9.0, "D"), inv(3, 1, T0 + 8 * 24 * H, 80.0, "D")])
    assert late.alerts == []


def test_absence_timer_fires_on_the_batch_event_time_and_a_reply_cancels_it() -> None:
    p = pipeline(DictChangelog())
    p.process([chat(0, 0, T0, "conv-a", "CUSTOMER"), chat(1, 0, T0, "conv-b", "CUSTOMER")])
    p.process([chat(1, 1, T0 + 5 * H, "conv-b", "SALES_REP")])
    assert p.process([chat(2, 0, T0 + 71 * H, "conv-c", "BOT")]).alerts == []
    # partition 2's event time moves every partition's timers (the batch watermark)
    (alert,) = p.process([chat(2, 1, T0 + 73 * H, "conv-c", "BOT")]).alerts
    assert alert["rule_id"] == "customer_waiting_72h" and alert["entity_key"] == "conv-a"
    assert alert["attributes"]["missing"] == "rep_reply"


def refused(rule_id: str) -> float:
    value = REGISTRY.get_sample_value(
        "dealstream_business_rules_timers_refused_total", {"rule": rule_id}
    )
    return value or 0.0


def test_a_partition_at_its_timer_limit_refuses_new_timers_counts_them_and_keeps_restored_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = DictChangelog()
    p = pipeline(log, max_pending_timers=2)
    p.assigned([(t, n) for t in p.topics for n in (0, 1)])
    before = refused("customer_waiting_72h")
    waiting = [chat(0, o, T0, f"conv-{o}", "CUSTOMER") for o in range(3)]
    p.process([*waiting, chat(1, 0, T0, "conv-other-partition", "CUSTOMER")])
    assert refused("customer_waiting_72h") - before == 1  # conv-2: partition 0 was full
    assert "limit" in caplog.text and "DEALSTREAM_BUSINESS_MAX_PENDING_TIMERS" in caplog.text
    log.write(p.snapshot())

    # A restart with a lower limit keeps every restored timer: state is never dropped.
    restored = pipeline(log, max_pending_timers=1)
    restored.assigned([(t, n) for t in restored.topics for n in (0, 1)])
    later = [chat(1, 1, T0 + 73 * H, "conv-late", "BOT")]
    fired = {a["entity_key"] for a in restored.process(later).alerts}
    assert fired == {"conv-0", "conv-1", "conv-other-partition"}
    # Fired timers make room again, under the new limit.
    restored.process([chat(0, 3, T0 + 74 * H, "conv-3", "CUSTOMER")])
    restored.process([chat(0, 4, T0 + 74 * H, "conv-4", "CUSTOMER")])
    assert refused("customer_waiting_72h") - before == 2
    alerts = restored.process([chat(1, 2, T0 + 150 * H, "conv-late", "BOT")]).alerts
    assert [a["entity_key"] for a in alerts] == ["conv-3"]


def test_snapshot_restore_continues_the_same_and_skips_replayed_records() -> None:
    events = [
        inv(0, 0, T0, 50.0), chat(1, 0, T0, "conv-a", "CUSTOMER"), inv(1, 0, T0, 49.0, "B"),
        sale(0, 0, T0 + H, "7.00", "X"), sale(1, 1, T0 + H, "6.00", "B"),
        sale(0, 1, T0 + 2 * H, "6.00"), chat(0, 2, T0 + 80 * H, "conv-z", "BOT"),
    ]  # fmt: skip
    log = DictChangelog()
    first = pipeline(log)
    first.assigned([(t, n) for t in first.topics for n in (0, 1)])
    before = [a for m in events[:3] for a in first.process([m]).alerts]
    assert log.write(first.snapshot()) > 0 and log.write(first.snapshot()) == 0  # only changes
    # a crash after the snapshot: a new owner restores and the records after it are re-read
    second = pipeline(log)
    second.assigned([(t, n) for t in second.topics for n in (0, 1)])
    after_first = [a for m in events for a in first.process([m]).alerts]
    after_second = [a for m in events for a in second.process([m]).alerts]  # 3 replayed
    assert before == []
    assert [a["alert_id"] for a in after_first] == [a["alert_id"] for a in after_second]
    assert {a["rule_id"] for a in after_second} == {"slow_stock_markdown", "customer_waiting_72h"}
    log.write(first.snapshot())
    one = split(first.engine_for(1).snapshot(), {})  # type: ignore[union-attr]
    two = split(second.engine_for(1).snapshot(), {})  # type: ignore[union-attr]
    one.pop(META)
    assert one == {k: v for k, v in two.items() if k != META}
    # revoke drops the partition; the changelog alone brings it back
    first.revoked([(t, 1) for t in first.topics])
    assert first.engine_for(1) is None and first.engine_for(0) is not None
    first.assigned([(t, 1) for t in first.topics])
    back = split(first.engine_for(1).snapshot(), {})  # type: ignore[union-attr]
    back.pop(META)
    assert back == one


def test_a_checkpoint_writes_only_the_entries_that_changed() -> None:
    log = DictChangelog()
    p = pipeline(log)
    p.process([sale(0, 0, T0, "7.00", "A"), sale(0, 1, T0, "7.00", "B"), sale(1, 0, T0, "7.00")])
    assert len(log.partitions) == 0 and log.write(p.snapshot()) == 3 + 2  # keys + meta each
    p.process([sale(0, 2, T0 + H, "8.00", "B")])
    written = p.snapshot()
    assert [(r.partition, r.key.split(b"\x1f")[-1]) for r in written] == [
        (0, b"B|CN-EAST"),
        (0, META),
    ]


def test_hot_reload_swaps_rules_at_the_next_batch_and_keeps_state() -> None:
    p = pipeline(DictChangelog())
    p.process([inv(0, 0, T0, 40.0), sale(0, 0, T0, "6.00")])  # 40 days: not slow enough
    stricter = TEXT.replace("> 45", "> 30").replace(
        "version: 1\n    kind: business\n    severity: WARNING\n    key: [payload.sku",
        "version: 2\n    kind: business\n    severity: WARNING\n    key: [payload.sku",
    )
    p.replace_rules(rules(stricter, "v2"))
    (alert,) = p.process([sale(0, 1, T0 + H, "6.00")]).alerts  # state from before the reload
    assert alert["rule_version"] == 2 and alert["attributes"]["rule_set_version"] == "v2"


def test_bad_records_are_dead_lettered_only_on_topics_nobody_else_owns() -> None:
    p = pipeline(DictChangelog())
    bad = [Message(topic=t, partition=0, offset=0, value=b"\x01") for t in (INV, POS)]
    result = p.process(bad)
    assert [d.topic for d in result.dead_letters] == [INV] and result.processed == 0
    # no rule records IoT telemetry, but its bad records are still this pipeline's to dead-letter
    letters = p.process([Message(topic=IOT, partition=0, offset=0, value=b"x")]).dead_letters
    assert [d.topic for d in letters] == [IOT]


def test_validation_names_line_and_column() -> None:
    bad = TEXT.replace("kind: business", "kind: pricing", 1).replace(
        "wecom.message:", "crm.contact:"
    )
    with pytest.raises(RuleError) as caught:
        rules(bad)
    lines = [(e.line, e.message.split(" ")[0]) for e in caught.value.problems]
    assert lines == [(17, "kind"), (41, "event")]
    warned = rules(TEXT.replace("key: payload.conversation_id", "key: event.customer_ref"))
    assert "keyed by customer_ref" in warned.warnings[0]


def test_reloader_validates_swaps_and_keeps_old_rules_on_error(tmp_path: Path) -> None:
    business = pipeline(DictChangelog())
    compliance = CompliancePipeline(
        ComplianceRules.from_yaml(COMPLIANCE_RULES.read_text(encoding="utf-8"))
    )
    reloader = RulesReloader(rule_targets([business, compliance, object()]))
    assert reloader.names == {"business", "compliance"}
    doc = RuleDocument("business", TEXT, "v7", "alice")
    assert reloader.apply(doc) == "applied" and business.rules.version == "v7"
    assert reloader.apply(doc) == "unchanged"
    broken = RuleDocument("business", TEXT.replace("72h", "72 hours"), "v8", "bob")
    assert reloader.apply(broken) == "invalid" and business.rules.version == "v7"
    assert reloader.apply(RuleDocument("channel", "x", "1")) == "ignored"
    old = compliance.rules
    ctext = COMPLIANCE_RULES.read_text(encoding="utf-8")
    assert reloader.apply(RuleDocument("compliance", ctext, "c2")) == "applied"
    assert compliance.rules is not old
    # headers round trip (what the agent and `rules apply` exchange)
    again = RuleDocument.from_record(b"business", TEXT.encode(), doc.headers())
    assert again is not None and (again.version, again.author) == ("v7", "alice")
    assert RuleDocument.from_record(b"business", None, []) is None


def test_entries_of_an_unfinished_first_checkpoint_are_ignored_not_fatal() -> None:
    log = DictChangelog()
    first = pipeline(log)
    first.assigned([(t, 0) for t in first.topics])
    first.process([inv(0, 0, T0, 50.0), sale(0, 0, T0 + H, "8.00")])
    log.write(r for r in first.snapshot() if r.key != META)  # killed before the metadata entry
    assert log.partitions[0] and META not in log.partitions[0]
    second = pipeline(log)
    second.assigned([(t, 0) for t in second.topics])  # must not raise
    # nothing was committed: the records are read again and the rule fires exactly as before
    replay = second.process([inv(0, 0, T0, 50.0), sale(0, 0, T0 + H, "8.00")])
    assert [a["rule_id"] for a in replay.alerts] == ["slow_stock_markdown"]
