"""SeriesStore skips evictions that have nothing due: it must leave exactly the state (and so
the tasks, rows and snapshots) that walking every series at every eviction leaves."""

from __future__ import annotations

import bisect
import json
import random
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from dealstream.connectors.pii import Desensitizer
from dealstream.connectors.simulator.world import World
from dealstream.sinks.clickhouse import tables
from dealstream.streams.pipeline import BatchResult
from dealstream.streams.rules import state as rules_state
from dealstream.streams.rules.state import NEVER, Point, SeriesStore
from dealstream.streams.rules.windows import without_dominated
from dealstream.streams.tasks.pipeline import StoreTasksPipeline
from dealstream.streams.tasks.rules import BUNDLED_RULES
from tests.unit.streams.test_store_tasks import DictChangelog, Feed, new


class FullScan(SeriesStore):
    """The reference: every eviction walks every series (what SeriesStore did before)."""

    def evict(self, watermark_ms: int) -> int:
        dropped = 0
        for key, signals in self._series.items():
            before = dropped
            for signal, series in signals.items():
                cutoff = watermark_ms - self.retention_ms.get(signal, 0)
                i = min(bisect.bisect_right(series, cutoff, key=lambda p: p.ts), len(series) - 1)
                if i > 0:
                    del series[:i]
                    dropped += i
                extremes = self.extremes_only.get(signal)
                settled = bisect.bisect_right(series, watermark_ms, key=lambda p: p.ts)
                if extremes is not None and settled >= 2:
                    kept = without_dominated(
                        series[:settled],
                        keep_max="max_over" in extremes,
                        keep_min="min_over" in extremes,
                    )
                    if len(kept) != settled:
                        series[:settled] = kept
                        dropped += settled - len(kept)
                        for width in self._widths.get(signal, ()):
                            self._windows.pop((key, signal, width), None)
            if dropped != before:
                self.touched.add(key)
        return dropped


RETENTION = {"view": 4, "sku": 4, "purchase": 6}  # small times: ties are likely
EXTREMES = {"purchase": frozenset[str]()}
MAX_ONLY = {"purchase": frozenset({"max_over"}), "sku": frozenset({"min_over"})}
RAISED = tables.STORE_TASKS_COLUMNS.index("raised_at")
CONVERTED_RAISED = tables.STORE_TASK_CONVERSIONS_COLUMNS.index("raised_at")

append = st.tuples(
    st.just("append"),
    st.sampled_from(["a", "b", "c"]),
    st.sampled_from(["view", "sku", "purchase"]),
    st.integers(0, 15),
    st.integers(0, 3),
)
evict = st.tuples(st.just("evict"), st.just(""), st.just(""), st.integers(0, 20), st.just(0))
query = st.tuples(
    st.just("window"), st.sampled_from(["a", "b"]), st.sampled_from(["view", "purchase"]),
    st.integers(0, 20), st.just(0),
)  # fmt: skip
forget = st.tuples(
    st.just("forget"), st.just(""), st.sampled_from(["view", "purchase"]), st.just(0), st.just(0)
)
drop = st.tuples(
    st.just("drop"), st.sampled_from(["a", "b", "c"]), st.just(""), st.just(0), st.just(0)
)


@pytest.mark.parametrize("extremes", [EXTREMES, MAX_ONLY])
@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(append, append, evict, query, drop, forget), max_size=60))
@example([  # points at the watermark: settled; the oldest exactly at its retention: dropped
    ("append", "a", "purchase", 1, 1), ("append", "a", "purchase", 2, 1),
    ("append", "a", "purchase", 5, 1), ("append", "a", "view", 1, 1),
    ("append", "a", "view", 3, 1), ("evict", "", "", 5, 0),
])  # fmt: skip
def test_evicting_only_what_is_due_leaves_what_series_store_leaves(
    extremes: dict[str, frozenset[str]], ops: list[tuple[str, str, str, int, int]]
) -> None:
    plain = FullScan(retention_ms=RETENTION, extremes_only=extremes)
    fast = SeriesStore(retention_ms=RETENTION, extremes_only=extremes)
    for n, (op, key, signal, t, value) in enumerate(ops):
        if op == "append":
            for s in (plain, fast):
                s.append(key, signal, Point(t, value, f"e{n}"))
        elif op == "evict":
            plain.touched.clear()  # as an owner that took them at its last checkpoint
            fast.touched.clear()
            assert fast.evict(t) == plain.evict(t)
            if extremes is EXTREMES:
                assert fast.next_due > t  # nothing left due at this watermark
        elif op == "window":  # also fills the window caches that compaction must drop
            a = plain.window_stats(key, signal, t - 3, t)
            b = fast.window_stats(key, signal, t - 3, t)
            assert a == b
        elif op == "drop":
            plain.drop_key(key)
            fast.drop_key(key)
        else:
            plain.forget(frozenset({signal}))
            fast.forget(frozenset({signal}))
        assert json.loads(fast.snapshot()) == json.loads(plain.snapshot())
        assert fast.touched == plain.touched  # what incremental checkpoints would write


def test_the_due_time_survives_a_restore_and_new_settings() -> None:
    s = SeriesStore(retention_ms={"purchase": 80})
    s.append("a", "purchase", Point(10, 1, "e1"))
    s.append("a", "purchase", Point(20, 1, "e2"))
    assert s.next_due == 90  # retention only: the first point leaves at 10 + 80
    restored = SeriesStore.restore(s.snapshot())
    assert restored.next_due == 90
    restored.set_policy(restored.retention_ms, EXTREMES)  # as the pipeline does after a restore
    assert restored.next_due == 20  # compacted: the second point settles at 20
    assert restored.evict(20) == 1 and restored.next_due == NEVER


def _world(late_share: float) -> list[Any]:
    """A simulated month of views, purchases and stock, with some records read late (a
    straggling partition): late views meet compacted purchase series, which must be the same."""
    world = World(5, days=30, customers=200, scale=0.5, pii=Desensitizer(SecretStr("k")))
    events = [(et, r) for et, r in world.events() if et in Feed.TOPICS_ALL]
    rng = random.Random(3)
    order = sorted(
        range(len(events)),
        key=lambda i: i + (rng.randrange(400) if rng.random() < late_share else 0),
    )
    f = Feed()
    return [f.any(*events[i]) for i in order]


def _stable(result: BatchResult) -> dict[str, Any]:
    return {
        "events": [{**e, "ingested_at": 0} for e in result.events],
        "tasks": [r[:RAISED] + r[RAISED + 1 :] for r in result.rows[tables.STORE_TASKS]],
        "conversions": [
            r[:CONVERTED_RAISED] + r[CONVERTED_RAISED + 1 :]
            for r in result.rows[tables.STORE_TASK_CONVERSIONS]
        ],
    }


def _run(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[bytes, Any]], int]:
    """Batches of 100 with a snapshot every 5 and a restart from the changelog half way."""
    log = DictChangelog()
    rules = BUNDLED_RULES.read_text(encoding="utf-8")
    p: StoreTasksPipeline = new(log, rules)
    outputs, snapshots = [], []
    batches = [messages[i : i + 100] for i in range(0, len(messages), 100)]
    for n, batch in enumerate(batches):
        outputs.append(_stable(p.process(batch)))
        if n % 5 == 4:
            written = p.snapshot()
            log.write(written)
            snapshots.append({r.key: json.loads((r.value or b"")[32:]) for r in written})
        if n == len(batches) // 2:
            p = new(log, rules)  # a restart: state from the changelog only
    points = sum(len(c.signals) for c in p.customers.values())
    return outputs, snapshots, points


@pytest.mark.parametrize("late_share", [0.0, 0.2])
def test_store_tasks_give_the_same_tasks_rows_and_snapshots_as_with_series_store(
    late_share: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = _world(late_share)
    outputs, snapshots, points = _run(messages)
    with monkeypatch.context() as m:
        m.setattr(rules_state.SeriesStore, "evict", FullScan.evict)  # walks everything, always
        old_outputs, old_snapshots, old_points = _run(messages)
    assert sum(len(o["tasks"]) for o in outputs) >= 10  # the comparison has tasks to compare
    assert sum(len(o["conversions"]) for o in outputs) > 0
    assert outputs == old_outputs
    assert snapshots == old_snapshots
    assert points == old_points
