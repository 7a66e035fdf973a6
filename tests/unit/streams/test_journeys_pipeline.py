"""The journeys pipeline in memory: cross-channel customers, merges, SLA health, restore."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from confluent_kafka import Message

from dealstream.schemas import codec
from dealstream.schemas.samples import sample_event
from dealstream.streams.changelog import State
from dealstream.streams.channel_health import ChannelHealthSettings
from dealstream.streams.decoding import RecordReader
from dealstream.streams.identity import customer_id
from dealstream.streams.journeys import (
    CHANNEL_HEALTH,
    CUSTOMER_MERGES,
    EVICTED,
    JOURNEY_STEPS,
    JourneySettings,
    JourneysPipeline,
)
from dealstream.streams.pipeline import BatchResult, StateRecord

MIN = 60_000
H = 60 * MIN
T0 = 1_750_000_000_000
MP, CHAT, POS, ERP, INV = (
    "miniprogram.events.v1",
    "wecom.messages.v1",
    "pos.transactions.v1",
    "erp.orders.v1",
    "erp.inventory.v1",
)
TYPES = {
    MP: "miniprogram.event",
    CHAT: "wecom.message",
    POS: "pos.transaction",
    ERP: "erp.order",
    INV: "erp.inventory",
}
CHANGELOG = "state.identity.v1"
HEALTH = ChannelHealthSettings(min_sla_samples=3, min_buyers=50, threshold=0.5)


class DictChangelog:
    def __init__(self) -> None:
        self.partitions: State = {}

    def write(self, records: Iterable[StateRecord]) -> None:
        for r in records:
            assert (r.topic, r.partition) == (CHANGELOG, 0)
            self.partitions.setdefault(0, {})[r.key] = r.value or b""

    def read(self, topic: str, partitions: Sequence[int]) -> State:
        assert topic == CHANGELOG
        return {p: dict(self.partitions.get(p, {})) for p in partitions}


def pipeline(log: DictChangelog) -> JourneysPipeline:
    return JourneysPipeline(
        state_reader=log,
        readers={t: RecordReader(et) for t, et in TYPES.items()},
        changelog_topic=CHANGELOG,
        health=HEALTH,
    )


class Feed:
    """Builds encoded records with increasing offsets per topic and partition."""

    def __init__(self) -> None:
        self.offsets: dict[tuple[str, int], int] = {}

    def __call__(
        self, topic: str, ts: int, partition: int = 0, *, ref: str | None = None, **fields: Any
    ) -> Message:
        offset = self.offsets.get((topic, partition), 0)
        self.offsets[topic, partition] = offset + 1
        record = sample_event(TYPES[topic], customer_ref=ref, **fields)
        record["occurred_at"] = record["ingested_at"] = datetime.fromtimestamp(ts / 1000, UTC)
        record["event_id"] = f"{topic}-{partition}-{offset}"
        value, headers = codec.encode(TYPES[topic], record)
        return Message(
            topic=topic, partition=partition, offset=offset, value=value, headers=headers
        )

    def view(self, ts: int, union: str, phone: str | None = None, store: str = "SH001") -> Message:
        return self(MP, ts, ref=union, phone_ref=phone, action="PAGE_VIEW", store_id=store,
                    page="/pages/product/WP-100", amount=None)  # fmt: skip

    def added(
        self, ts: int, conv: str, external: str, union: str, store: str, part: int = 1
    ) -> Message:
        return self(CHAT, ts, part, ref=external, conversation_id=conv, unionid_ref=union,
                    store_id=store, msg_type="add_external_contact", speaker_role="BOT",
                    text="[add_external_contact]")  # fmt: skip

    def say(self, ts: int, conv: str, external: str, role: str, part: int = 1) -> Message:
        return self(CHAT, ts, part, ref=external, conversation_id=conv, speaker_role=role)

    def sale(self, ts: int, phone: str, ticket: str, store: str = "SH001") -> Message:
        return self(POS, ts, 2, ref=phone, member_id=phone, store_id=store, region="CN-EAST",
                    transaction_id=ticket, line_no=1)  # fmt: skip

    def order(self, ts: int, account: str, phone: str, order: str) -> Message:
        return self(ERP, ts, 3, ref=phone, customer_id=account, order_id=order,
                    dealer_id="DLR-1", total_amount=Decimal("100.00"))  # fmt: skip


def steps(result: BatchResult) -> list[tuple[str, str, str]]:
    return [(r[0], r[1], r[2]) for r in result.rows[JOURNEY_STEPS.name]]


def current(merges: list[tuple[Any, ...]]) -> dict[str, str]:
    """What the customer_current_id view computes: latest (seq) target per merged id."""
    latest: dict[str, tuple[int, str]] = {}
    for merged, into, seq, *_ in merges:
        latest[merged] = max(latest.get(merged, (0, "")), (seq, into))
    return {m: into for m, (_, into) in latest.items()}


def test_four_channels_one_customer_and_the_steps_of_the_journey() -> None:
    f, p = Feed(), pipeline(DictChangelog())
    ids = ["unionid:u1", "phone:p1", "wecom_external:w1", "erp_customer:C-1"]
    batches = [
        [f.view(T0, "unionid:u1", "phone:p1")],
        [f.added(T0 + H, "c1", "wecom_external:w1", "unionid:u1", "SH001")],
        [f.sale(T0 + 5 * H, "phone:p1", "T-1")],
        [f.order(T0 + 9 * H, "C-1", "phone:p1", "SO-1")],
        [f.order(T0 + 10 * H, "C-1", "phone:p1", "SO-1")],  # re-sent order: no new purchase
    ]
    rows, merges = [], []
    for batch in batches:
        result = p.process(batch)
        rows += steps(result)
        merges += result.rows[CUSTOMER_MERGES.name]
    final = min(customer_id(i) for i in ids)
    resolved = current(merges)
    assert [(step, resolved.get(c, c)) for _, step, c in rows] == [
        ("miniprogram_view", final), ("wecom_added", final), ("store_visit", final),
        ("purchase", final), ("purchase", final),
    ]  # fmt: skip
    assert {p.state.resolver.customer_of(i) for i in ids} == {final}
    profile = p.state.profiles[final]
    assert profile.bought == {"SH001": 1, "DLR-1": 1} and profile.home == "DLR-1"


def test_two_known_customers_merge_and_their_purchases_count_once_per_channel() -> None:
    f, p = Feed(), pipeline(DictChangelog())
    p.process([f.sale(T0, "phone:p2", "T-1"), f.view(T0 + H, "unionid:u2")])
    a, b = customer_id("phone:p2"), customer_id("unionid:u2")
    assert p.state.health.channels["SH001"].buyers == 1
    p.process([f.sale(T0 + 2 * H, "phone:p3", "T-2")])  # someone else
    result = p.process([f.view(T0 + 3 * H, "unionid:u2", "phone:p2")])
    ((merged, into, _, _, event_id),) = result.rows[CUSTOMER_MERGES.name]
    assert (merged, into) == (max(a, b), min(a, b)) and event_id == f"{MP}-0-1"
    p.process([f.sale(T0 + 4 * H, "phone:p2", "T-3")])  # the merged customer buys again
    channel = p.state.health.channels["SH001"]
    assert (channel.buyers, channel.returning) == (2, 1)


def chat(
    f: Feed, reply_after: int, conv: str, store: str, start: int, part: int = 1
) -> list[Message]:
    """A contact added through ``store`` and five questions answered after ``reply_after``."""
    contact = f"wecom_external:{conv}"
    out = [f.added(start, conv, contact, f"unionid:{conv}", store, part)]
    for n in range(5):
        asked = start + (n + 1) * 10 * H
        out.append(f.say(asked, conv, contact, "CUSTOMER", part))
        out.append(f.say(asked + reply_after, conv, contact, "SALES_REP", part))
    return out


def test_slow_replies_alert_once_for_their_store_and_never_for_the_fast_one() -> None:
    f, p = Feed(), pipeline(DictChangelog())
    slow = chat(f, 3 * H, "slow", "GZ003", T0)
    fast = chat(f, 2 * MIN, "fast", "SH001", T0, part=4)
    alerts, health = [], []
    for n in range(0, len(slow)):
        result = p.process([slow[n], fast[n]])
        alerts += result.alerts
        health += result.rows[CHANNEL_HEALTH.name]
    assert [a["entity_key"] for a in alerts] == ["GZ003"]
    assert alerts[0]["attributes"]["sla"] == "0.0000"
    latest = {row[0]: row for row in health}
    assert latest["SH001"][3] == 1.0 and latest["GZ003"][3] == 0.0
    assert latest["GZ003"][7] == 5 and latest["GZ003"][10] == 1  # five outcomes, alerting
    unanswered = [f.say(T0 + 100 * H, "slow", "wecom_external:slow", "CUSTOMER")]
    later = f.say(T0 + 110 * H, "fast", "wecom_external:fast", "BOT", part=4)
    result = p.process([*unanswered, later])
    assert p.state.health.channels["GZ003"].sla_n == 6  # missed by the watermark
    assert result.alerts == []  # still alerting: suppressed


def scenario(f: Feed) -> list[list[Message]]:
    slow = chat(f, 3 * H, "slow", "GZ003", T0)
    return [
        [f.view(T0, "unionid:u1", "phone:p1"), f.sale(T0, "phone:p9", "T-0")],
        [f.view(T0 + H, "unionid:u2"), f.sale(T0 + H, "phone:p2", "T-1"), *slow[:5]],
        [f.view(T0 + 2 * H, "unionid:u2", "phone:p2"), *slow[5:]],  # merges u2 and p2
        [f.order(T0 + 3 * H, "C-1", "phone:p1", "SO-1"), f.sale(T0 + 4 * H, "phone:p1", "T-2")],
    ]


def comparable(result: BatchResult) -> tuple[Any, ...]:
    health = [r[:12] + r[13:] for r in result.rows[CHANNEL_HEALTH.name]]  # not computed_at
    alerts = [{k: v for k, v in a.items() if k != "raised_at"} for a in result.alerts]
    return (result.rows[JOURNEY_STEPS.name], result.rows[CUSTOMER_MERGES.name], health, alerts)


def core(p: JourneysPipeline) -> dict[str, Any]:
    """The state without what is kept only for re-emission after a crash."""
    doc: dict[str, Any] = json.loads(zlib.decompress(p.state.encode()))
    return {k: v for k, v in doc.items() if not k.startswith("unsaved")}


def test_snapshot_restore_continues_like_an_uninterrupted_run() -> None:
    batches = scenario(Feed())
    whole = pipeline(DictChangelog())
    expected = [comparable(whole.process(b)) for b in batches]
    log = DictChangelog()
    first = pipeline(log)
    first.assigned([(t, 0) for t in TYPES])
    got = [comparable(first.process(b)) for b in batches[:2]]
    log.write(first.snapshot())
    assert first.snapshot() == []  # nothing changed since
    second = pipeline(log)
    second.assigned([(t, 0) for t in TYPES])
    got += [comparable(second.process(b)) for b in batches[2:]]
    assert got == expected
    assert core(second) == core(whole)


def test_a_replay_after_a_crash_counts_nothing_twice_and_re_emits_lost_merges() -> None:
    batches = scenario(Feed())
    log = DictChangelog()
    first = pipeline(log)
    first.assigned([(t, 0) for t in TYPES])
    for batch in batches[:2]:
        first.process(batch)
    log.write(first.snapshot())
    merging = first.process(batches[2])
    assert merging.rows[CUSTOMER_MERGES.name]
    log.write(first.snapshot())  # ... and the worker dies before the rows are flushed
    second = pipeline(log)
    second.assigned([(t, 0) for t in TYPES])
    replay = second.process(batches[2])  # re-read from the committed offsets
    assert replay.processed == 0
    assert replay.rows[CUSTOMER_MERGES.name] == merging.rows[CUSTOMER_MERGES.name]
    assert [a["alert_id"] for a in replay.alerts] == [a["alert_id"] for a in merging.alerts]
    assert core(second) == core(first)
    assert second.process(batches[2]).rows[CUSTOMER_MERGES.name] == []  # re-emitted once


def test_bad_records_are_counted_not_applied_and_other_partitions_are_not_home() -> None:
    f, p = Feed(), pipeline(DictChangelog())
    bad = Message(topic=MP, partition=0, offset=7, value=b"\x00garbage")
    result = p.process([bad, f.view(T0, "unionid:u1")])
    assert result.processed == 1 and result.dead_letters == []
    away = pipeline(DictChangelog())
    away.assigned([(MP, 1)])  # partition 0 is another worker's
    assert away.process([f(MP, T0, 1, ref="unionid:u1")]).processed == 0


def settled(f: Feed, n: int, start: int) -> list[Message]:
    """``n`` fresh conversations of no known contact or store, each asked and answered."""
    out = []
    for i in range(n):
        asked = start + i * MIN
        out.append(f(CHAT, asked, conversation_id=f"c{i}", speaker_role="CUSTOMER", store_id=None))
        out.append(f(CHAT, asked + MIN, conversation_id=f"c{i}", speaker_role="SALES_REP",
                     store_id=None))  # fmt: skip
    return out


def test_answered_conversations_of_no_known_store_or_contact_are_not_kept() -> None:
    f, log = Feed(), DictChangelog()
    p = pipeline(log)
    p.assigned([(t, 0) for t in TYPES])
    p.process(chat(f, 2 * MIN, "known", "SH001", T0)[:1])
    for n in range(5):  # 1,000 conversations, far fewer than a 30-day idle time would keep
        p.process(settled(f, 200, T0 + n * 200 * MIN))
        log.write(p.snapshot())
    p.process([f(CHAT, T0 + 1000 * MIN, conversation_id="open", speaker_role="CUSTOMER",
                 store_id=None)])  # fmt: skip
    log.write(p.snapshot())
    assert sorted(p.state.conversations) == ["known", "open"]  # pending, or with a store
    restored = pipeline(log)
    restored.assigned([(t, 0) for t in TYPES])
    assert sorted(restored.state.conversations) == ["known", "open"]


def test_conversations_beyond_the_cap_are_evicted_the_least_recent_answered_first() -> None:
    f, log = Feed(), DictChangelog()
    p = JourneysPipeline(
        state_reader=log,
        readers={t: RecordReader(et) for t, et in TYPES.items()},
        changelog_topic=CHANGELOG,
        health=HEALTH,
        settings=JourneySettings(max_conversations=10),
    )
    p.assigned([(t, 0) for t in TYPES])
    waiting = f(CHAT, T0, conversation_id="waiting", speaker_role="CUSTOMER", store_id=None)
    p.process([waiting])
    before = EVICTED._value.get()
    for i in range(50):  # contacts added through a store: kept for their idle time, but capped
        p.process(chat(f, 2 * MIN, f"s{i}", "SH001", T0 + i * MIN)[:1])
        log.write(p.snapshot())
    assert len(p.state.conversations) == 10
    assert "waiting" in p.state.conversations and "s49" in p.state.conversations
    assert "s40" not in p.state.conversations  # the oldest answered ones went first
    assert EVICTED._value.get() - before == 41
    restored = pipeline(log)
    restored.assigned([(t, 0) for t in TYPES])
    assert restored.state.conversations.keys() == p.state.conversations.keys()
