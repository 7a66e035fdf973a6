"""Store tasks in memory: intent windows, enrichment, conversion, snapshot and restore."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from confluent_kafka import Message
from pydantic import SecretStr

from dealstream.broker.headers import producer_headers
from dealstream.connectors.pii import Desensitizer
from dealstream.connectors.simulator.world import World
from dealstream.schemas import codec, validation
from dealstream.schemas.samples import sample_event
from dealstream.sinks.clickhouse import tables
from dealstream.streams.changelog import State
from dealstream.streams.decoding import Checked, RecordReader
from dealstream.streams.pipeline import BatchResult, StateRecord
from dealstream.streams.rules.errors import RuleError
from dealstream.streams.state_signing import StateSigner
from dealstream.streams.tasks.pipeline import CHANGELOG_TOPIC, StoreTasksPipeline
from dealstream.streams.tasks.rules import BUNDLED_RULES, load_rules

DAY = 86_400_000
T0 = 1_750_000_000_000
ALICE = "phone:aaaa"
RULES = """
rules:
  - id: series_views
    version: 2
    subject: series
    view: 'payload.action == "PAGE_VIEW"'
    threshold: 3
    window: 7d
    attribution: 14d
    script: "{views}次浏览{series}，{sku}在{store_id}{stock}；偏好{tags}"
"""
TOPICS = {
    "miniprogram.event": "miniprogram.events.v1",
    "pos.transaction": "pos.transactions.v1",
    "erp.inventory": "erp.inventory.v1",
}
R = {name: i for i, name in enumerate(tables.STORE_TASKS_COLUMNS)}
C = {name: i for i, name in enumerate(tables.STORE_TASK_CONVERSIONS_COLUMNS)}


class DictChangelog:
    def __init__(self) -> None:
        self.partitions: State = {}

    def write(self, records: Iterable[StateRecord]) -> None:
        for r in records:
            assert r.topic == CHANGELOG_TOPIC and r.partition == 0
            self.partitions.setdefault(0, {})[r.key] = r.value or b""

    def read(self, topic: str, partitions: Sequence[int]) -> State:
        return {p: dict(self.partitions.get(p, {})) for p in partitions}


class Feed:
    """Encoded records with increasing offsets per topic (partition 0)."""

    TOPICS_ALL: ClassVar[dict[str, str]] = {**TOPICS, "erp.order": "erp.orders.v1"}

    def __init__(self) -> None:
        self.offsets: dict[str, int] = {}

    def any(self, event_type: str, record: dict[str, Any]) -> Message:
        return self._msg(event_type, record)

    def _msg(self, event_type: str, record: dict[str, Any]) -> Message:
        topic = self.TOPICS_ALL[event_type]
        offset = self.offsets.get(topic, 0)
        self.offsets[topic] = offset + 1
        value, headers = codec.encode(event_type, record)
        return Message(
            topic=topic, partition=0, offset=offset, value=value, headers=producer_headers(headers)
        )

    def view(self, at: int, *, who: str = ALICE, series: str = "净水器", sku: str = "WP-200",
             store: str | None = "SH002", action: str = "PAGE_VIEW",
             phone_ref: str | None = None) -> Message:  # fmt: skip
        record = sample_event(
            "miniprogram.event", customer_ref=who, occurred_at=_dt(at), ingested_at=_dt(at),
            session_id=f"s-{at}", page=f"/p/{sku}", action=action, sku=sku, series=series,
            store_id=store, amount=None, phone_ref=phone_ref,
        )  # fmt: skip
        return self._msg("miniprogram.event", record)

    def buy(self, at: int, *, who: str | None = ALICE, store: str = "SH001",
            sku: str = "WP-200", line: str = "净水器") -> Message:  # fmt: skip
        record = sample_event(
            "pos.transaction", customer_ref=who, member_id=who, occurred_at=_dt(at),
            ingested_at=_dt(at), transaction_id=f"T{at}", store_id=store, region="CN-EAST",
            sku=sku, product_line=line, quantity=1, unit_price=Decimal("2199.00"),
            discount=Decimal("0"), amount=Decimal("2199.00"),
        )  # fmt: skip
        return self._msg("pos.transaction", record)

    def stock(self, at: int, *, warehouse: str, on_hand: int, sku: str = "WP-200") -> Message:
        record = sample_event(
            "erp.inventory", occurred_at=_dt(at), ingested_at=_dt(at), sku=sku,
            warehouse_id=warehouse, region="CN-EAST", on_hand=on_hand, snapshot_at=_dt(at),
        )  # fmt: skip
        return self._msg("erp.inventory", record)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def new(changelog: DictChangelog | None = None, rules: str = RULES) -> StoreTasksPipeline:
    p = StoreTasksPipeline(
        state_reader=changelog or DictChangelog(),
        rules=load_rules(rules),
        signer=StateSigner(SecretStr("test")),
    )
    p.assigned([(t, 0) for t in p.topics])
    return p


def run(p: StoreTasksPipeline, messages: list[Message], size: int = 1) -> BatchResult:
    total = BatchResult(rows={tables.STORE_TASKS: [], tables.STORE_TASK_CONVERSIONS: []})
    for i in range(0, len(messages), size):
        total.extend(p.process(messages[i : i + size]))
    return total


def tasks(result: BatchResult) -> list[dict[str, Any]]:
    return [e for e in result.events if e.get("event_type") == "store.task"]


def test_third_view_within_the_window_raises_one_valid_task() -> None:
    f = Feed()
    result = run(new(), [f.view(T0), f.view(T0 + DAY), f.view(T0 + 2 * DAY), f.view(T0 + 3 * DAY)])
    events = tasks(result)
    assert len(events) == 1  # the fourth view does not raise a second task while one is open
    task = events[0]
    assert validation.validate("store.task", task) == []
    codec.encode("store.task", task)  # fits the Avro schema
    p = task["payload"]
    assert (p["status"], p["rule_id"], p["rule_version"], p["views"]) == (
        "OPEN",
        "series_views",
        2,
        3,
    )
    assert p["series"] == "净水器" and p["sku"] == "WP-200" and task["customer_ref"] == ALICE
    assert p["expires_at"] == T0 + 2 * DAY + 14 * DAY
    assert len(p["input_event_ids"]) == 3
    row = result.rows[tables.STORE_TASKS][0]
    assert row[R["task_id"]] == p["task_id"] and row[R["views"]] == 3


def test_views_spread_wider_than_the_window_raise_nothing() -> None:
    f = Feed()
    # 7d window, (now - 7d, now]: the first view is exactly 7 days before the third, so out.
    result = run(new(), [f.view(T0), f.view(T0 + 3 * DAY), f.view(T0 + 7 * DAY)])
    assert tasks(result) == []
    result = run(new(), [f.view(T0 + 1), f.view(T0 + 3 * DAY), f.view(T0 + 7 * DAY)])
    assert len(tasks(result)) == 1


def test_two_views_are_below_the_threshold_and_other_actions_do_not_count() -> None:
    f = Feed()
    result = run(new(), [f.view(T0), f.view(T0 + 1000, action="SHARE"), f.view(T0 + 2000)])
    assert tasks(result) == []


def test_no_task_when_the_customer_bought_before_reaching_the_threshold() -> None:
    f = Feed()
    msgs = [f.view(T0), f.view(T0 + DAY), f.buy(T0 + DAY + 5), f.view(T0 + 2 * DAY)]
    assert tasks(run(new(), msgs)) == []
    # ... but a purchase of another series does not count
    f = Feed()
    msgs = [f.view(T0), f.view(T0 + DAY), f.buy(T0 + DAY + 5, sku="AP-10", line="空气净化器"),
            f.view(T0 + 2 * DAY)]  # fmt: skip
    assert len(tasks(run(new(), msgs))) == 1


def test_a_frequent_buyer_keeps_a_bounded_purchase_series_and_still_blocks_tasks() -> None:
    f, p = Feed(), new()
    run(p, [f.buy(T0 + i * 60_000) for i in range(300)], size=10)  # 300 purchases in 5 hours
    (customer,) = p._customers.values()
    # the newest settled purchase (it answers "bought within the window?") + the last batch
    assert len(customer.signals) <= 11
    later = T0 + 300 * 60_000
    msgs = [f.view(later + 1), f.view(later + 2), f.view(later + 3)]
    assert tasks(run(p, msgs)) == []  # the purchases are still inside the 7-day window
    assert len(tasks(run(p, [f.view(later + 8 * DAY + i) for i in range(3)]))) == 1


def test_other_customers_views_do_not_add_up() -> None:
    f = Feed()
    msgs = [f.view(T0), f.view(T0 + DAY, who="phone:bbbb"), f.view(T0 + 2 * DAY)]
    assert tasks(run(new(), msgs)) == []


def test_enrichment_picks_the_usual_store_its_stock_and_preferences() -> None:
    f = Feed()
    history = [
        f.buy(T0 - 30 * DAY, store="SH001", sku="FL-01", line="滤芯"),
        f.buy(T0 - 20 * DAY, store="SH001", sku="FL-02", line="滤芯"),
        f.buy(T0 - 10 * DAY, store="SH003", sku="FL-01", line="滤芯"),
        f.stock(T0 - DAY, warehouse="SH001", on_hand=7),
        f.stock(T0 - DAY, warehouse="WH-SH-01", on_hand=40),
    ]
    # views select SH002 in the mini program, but POS purchases at SH001 outweigh them
    views = [f.view(T0 + i * DAY, store="SH002") for i in range(3)]
    result = run(new(), history + views)
    p = tasks(result)[0]["payload"]
    assert (p["store_id"], p["region"]) == ("SH001", "CN-EAST")
    assert (p["stock_on_hand"], p["stock_scope"]) == (7, "STORE")
    assert p["preference_tags"] == ["净水器", "滤芯"]
    assert p["script"] == "3次浏览净水器，WP-200在SH001有现货；偏好净水器、滤芯"


def test_without_pos_history_the_mini_program_store_and_region_stock_are_used() -> None:
    f = Feed()
    views = [f.view(T0 + i * DAY, store="SH002") for i in range(3)]
    p = tasks(run(new(), [f.stock(T0, warehouse="SH009", on_hand=5), *views]))[0]["payload"]
    assert p["store_id"] == "SH002" and p["region"] is None and p["stock_on_hand"] is None
    f = Feed()
    history = [
        f.buy(T0 - DAY, store="SH002", sku="FL-01", line="滤芯"),
        f.stock(T0, warehouse="WH-A", on_hand=5),
        f.stock(T0, warehouse="WH-B", on_hand=6),
    ]
    views = [f.view(T0 + i * DAY, store="SH002") for i in range(3)]
    p = tasks(run(new(), history + views))[0]["payload"]
    assert (p["stock_on_hand"], p["stock_scope"]) == (11, "REGION")


@pytest.mark.parametrize(
    ("bought_after", "converted"),
    [(DAY, True), (14 * DAY, True), (14 * DAY + 1, False), (-1, False)],
)
def test_conversion_inside_the_attribution_window_only(bought_after: int, converted: bool) -> None:
    f = Feed()
    trigger = T0 + 2 * DAY
    msgs = [
        f.view(T0),
        f.view(T0 + DAY),
        f.view(trigger),
        f.buy(trigger + bought_after, store="SH003"),
    ]
    result = run(new(), msgs)
    conversions = result.rows[tables.STORE_TASK_CONVERSIONS]
    assert len(conversions) == int(converted)
    statuses = [t["payload"]["status"] for t in tasks(result)]
    assert statuses == (["OPEN", "CONVERTED"] if converted else ["OPEN"])
    if converted:
        event = tasks(result)[1]
        assert validation.validate("store.task", event) == []
        row = conversions[0]
        assert row[C["conversion_store_id"]] == "SH003"
        assert row[C["amount"]] == Decimal("2199.00")
        assert row[C["task_id"]] == tasks(result)[0]["payload"]["task_id"]
        assert event["payload"]["task_id"] == row[C["task_id"]]
        assert event["event_id"] != tasks(result)[0]["event_id"]


def test_a_purchase_read_before_the_views_still_converts() -> None:
    f = Feed()
    views = [f.view(T0), f.view(T0 + DAY), f.view(T0 + 2 * DAY)]
    # the POS topic is read first within a batch, so the purchase arrives before the views
    result = run(new(), [*views, f.buy(T0 + 3 * DAY)], size=4)
    assert [t["payload"]["status"] for t in tasks(result)] == ["OPEN", "CONVERTED"]


def test_task_ids_are_deterministic_and_batching_does_not_matter() -> None:
    f = Feed()
    msgs = [f.view(T0), f.view(T0 + DAY), f.view(T0 + 2 * DAY), f.buy(T0 + 3 * DAY)]
    one, all_at_once = run(new(), msgs, size=1), run(new(), msgs, size=10)
    ids = [t["event_id"] for t in tasks(one)]
    assert ids == [t["event_id"] for t in tasks(all_at_once)]
    assert len(set(ids)) == 2


def test_snapshot_restore_gives_the_same_answer_and_replay_adds_nothing() -> None:
    f = Feed()
    first = [f.buy(T0 - DAY, store="SH001"), f.view(T0), f.view(T0 + DAY)]
    later = [f.view(T0 + 2 * DAY), f.buy(T0 + 4 * DAY, store="SH001")]
    straight = run(new(), first + later)

    log = DictChangelog()
    p = new(log)
    run(p, first)
    log.write(p.snapshot())
    assert p.snapshot() == []  # nothing changed since
    restored = new(log)
    # the records up to the snapshot are replayed (committed offsets lag the snapshot)
    replayed = run(restored, first)
    assert tasks(replayed) == [] and replayed.processed == 0
    resumed = run(restored, later)
    assert _stable(resumed) == _stable(straight)


def _stable(result: BatchResult) -> list[dict[str, Any]]:
    return [{**t, "ingested_at": 0} for t in tasks(result)]


def test_a_crash_after_the_snapshot_but_before_the_flush_re_emits_the_tasks() -> None:
    f = Feed()
    msgs = [f.view(T0), f.view(T0 + DAY), f.view(T0 + 2 * DAY)]
    log = DictChangelog()
    p = new(log)
    emitted = run(p, msgs)
    log.write(p.snapshot())  # ... and the worker dies before ClickHouse got the rows
    again = run(new(log), msgs)
    assert again.rows[tables.STORE_TASKS] and len(tasks(again)) == 1
    assert tasks(again)[0]["event_id"] == tasks(emitted)[0]["event_id"]


def test_a_forged_state_entry_is_ignored() -> None:
    log = DictChangelog()
    log.partitions[0] = {b"c:" + ALICE.encode(): b"x" * 32 + b"{}"}
    p = new(log)
    assert p.customers == {}


def test_records_are_skipped_on_a_worker_without_the_home_partition() -> None:
    f = Feed()
    p = StoreTasksPipeline(state_reader=DictChangelog(), rules=load_rules(RULES))
    p.assigned([("miniprogram.events.v1", 1)])
    result = run(p, [f.view(T0), f.view(T0 + DAY), f.view(T0 + 2 * DAY)])
    assert result.processed == 0 and tasks(result) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (RULES.replace("threshold: 3", "threshold: 0"), "threshold must be at least 1"),
        (RULES.replace("window: 7d", "window: 7 days"), "bad duration"),
        (RULES.replace('payload.action == "PAGE_VIEW"', 'open("x")'), "unknown function 'open'"),
        (RULES.replace("{views}", "{__class__}"), "unknown placeholder {__class__}"),
        (
            RULES.replace(
                "    attribution: 14d\n",
                '    when: count_over("clicks", "1d") > 1\n    attribution: 14d\n',
            ),
            "unknown signal 'clicks'",
        ),
    ],
)
def test_bad_rules_are_refused_with_their_position(text: str, problem: str) -> None:
    with pytest.raises(RuleError, match="line") as caught:
        load_rules(text)
    assert problem in str(caught.value)


def test_a_when_condition_in_the_rule_language_narrows_the_rule() -> None:
    text = RULES.replace(
        "    attribution:", '    when: count_over("view", "1d") >= 2\n    attribution:'
    )
    f = Feed()
    spread = [f.view(T0), f.view(T0 + DAY), f.view(T0 + 2 * DAY)]
    assert tasks(run(new(rules=text), spread)) == []
    f = Feed()
    close = [f.view(T0), f.view(T0 + 2 * DAY - 5), f.view(T0 + 2 * DAY)]
    assert len(tasks(run(new(rules=text), close))) == 1


def test_a_phone_shown_once_links_the_later_events_of_that_user() -> None:
    f = Feed()
    first = f.view(T0, who="unionid:u1", phone_ref=ALICE)  # the session's first event
    rest = [f.view(T0 + DAY, who="unionid:u1"), f.view(T0 + 2 * DAY, who="unionid:u1")]
    history = f.buy(T0 - DAY, store="SH001", sku="FL-01", line="滤芯")
    result = run(new(), [history, first, *rest, f.buy(T0 + 3 * DAY)])
    events = tasks(result)
    assert [t["payload"]["status"] for t in events] == ["OPEN", "CONVERTED"]
    assert events[0]["customer_ref"] == ALICE and events[0]["payload"]["store_id"] == "SH001"


def test_the_simulated_world_raises_tasks_and_some_convert() -> None:
    world = World(3, days=45, customers=300, scale=0.5, pii=Desensitizer(SecretStr("k")))
    f = Feed()
    msgs = [f.any(et, record) for et, record in world.events() if et in Feed.TOPICS_ALL]
    p = new(rules=BUNDLED_RULES.read_text(encoding="utf-8"))
    result = run(p, msgs, size=500)
    opened, converted = p.counts["OPEN"], p.counts["CONVERTED"]
    assert opened >= 10 and 0 < converted < opened
    assert len(result.rows[tables.STORE_TASKS]) == opened
    assert all(validation.validate("store.task", t) == [] for t in tasks(result))


def test_a_one_topic_batch_decoded_by_another_pipeline_is_not_decoded_again() -> None:
    reader = RecordReader("pos.transaction")
    decoded: list[int] = []
    check = reader._check

    def counting(batch: Sequence[Message]) -> Checked:
        decoded.append(len(batch))
        return check(batch)

    reader._check = counting  # type: ignore[method-assign]
    p = StoreTasksPipeline(
        state_reader=DictChangelog(),
        rules=load_rules(RULES),
        readers={"pos.transactions.v1": reader},
    )
    f = Feed()
    batch = [f.buy(T0), f.buy(T0 + 1)]
    reader.read(batch)  # the POS storage pipeline's turn
    assert p.process(batch).processed == 2
    assert decoded == [2]
