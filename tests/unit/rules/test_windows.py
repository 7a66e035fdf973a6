"""Incremental window aggregates agree with a plain scan, whatever the order of events."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from dealstream.streams.rules.state import Point, SeriesStore
from dealstream.streams.rules.windows import numeric

WINDOW = 50

values = st.one_of(
    st.integers(-100, 100), st.floats(-100, 100, allow_nan=False), st.text(max_size=2)
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(0, 400), values),
        st.tuples(st.just("query"), st.integers(0, 450), st.none()),
        st.tuples(st.just("evict"), st.integers(0, 450), st.none()),
    ),
    max_size=120,
)


def scan(
    store: SeriesStore, since: int, until: int
) -> tuple[int, float, float | None, float | None]:
    points = store.window("k", "s", since, until)
    nums = [v for v in (numeric(p.value) for p in points) if v is not None]
    return (
        len(nums),
        math.fsum(nums),
        min(nums) if nums else None,
        max(nums) if nums else None,
    )


@settings(max_examples=300, deadline=None)
@given(steps)
def test_window_stats_equal_a_scan(ops: list[tuple[str, int, object]]) -> None:
    store = SeriesStore(retention_ms={"s": WINDOW * 2})
    for n, (op, ts, value) in enumerate(ops):
        if op == "append":
            store.append("k", "s", Point(ts, value, f"e{n}"))  # type: ignore[arg-type]
        elif op == "evict":
            store.evict(ts)
        else:
            stats = store.window_stats("k", "s", ts - WINDOW, ts)
            count, total, low, high = scan(store, ts - WINDOW, ts)
            assert stats.count == count
            assert math.isclose(stats.total, total, rel_tol=1e-9, abs_tol=1e-6)
            assert (numeric(stats.min_point.value) if stats.min_point else None) == low
            assert (numeric(stats.max_point.value) if stats.max_point else None) == high
            window = store.window("k", "s", ts - WINDOW, ts)
            if stats.max_point is not None:  # the newest point holding the maximum
                newest = [p for p in window if numeric(p.value) == high][-1]
                assert stats.max_point is newest
            if stats.min_point is not None:
                assert stats.min_point is [p for p in window if numeric(p.value) == low][-1]


def test_a_long_forward_stream_is_not_rescanned() -> None:
    store = SeriesStore(retention_ms={"s": 10_000})
    for ts in range(20_000):
        store.append("k", "s", Point(ts, ts % 97, f"e{ts}"))
        stats = store.window_stats("k", "s", ts - 1_000, ts)
    assert stats.count == 1_000 and stats.max_point is not None
    assert numeric(stats.max_point.value) == 96


dense_steps = st.lists(  # few distinct times and values: ties and domination are common
    st.one_of(
        st.tuples(st.just("append"), st.integers(0, 40), st.integers(-3, 3)),
        st.tuples(st.just("query"), st.integers(0, 45), st.none()),
        st.tuples(st.just("evict"), st.integers(0, 45), st.none()),
    ),
    max_size=80,
)


@settings(max_examples=500, deadline=None)
@given(st.one_of(steps, dense_steps))
def test_compacted_extremes_answer_like_the_full_series_from_the_watermark_on(
    ops: list[tuple[str, int, object]],
) -> None:
    full = SeriesStore(retention_ms={"s": 20})
    compact = SeriesStore(
        retention_ms={"s": 20}, extremes_only={"s": frozenset({"max_over", "min_over"})}
    )
    watermark = 0
    for n, (op, ts, value) in enumerate(ops):
        if op == "append":
            for store in (full, compact):
                store.append("k", "s", Point(ts, value, f"e{n}"))  # type: ignore[arg-type]
        elif op == "evict":
            watermark = max(watermark, ts)
            full.evict(watermark)
            compact.evict(watermark)
        else:
            until = max(ts, watermark)  # queries the compaction promises to answer exactly
            want = full.window_stats("k", "s", until - 10, until)
            got = compact.window_stats("k", "s", until - 10, until)
            assert got.max_point == want.max_point and got.min_point == want.min_point
            assert compact.last("k", "s", until) == full.last("k", "s", until)


def test_a_busy_max_signal_stays_small() -> None:
    store = SeriesStore(
        retention_ms={"s": 7 * 86_400_000}, extremes_only={"s": frozenset({"max_over"})}
    )
    for ts in range(0, 50_000):
        store.append("k", "s", Point(ts * 1000, (ts * 7919) % 101, f"e{ts}"))
        if ts % 500 == 0:
            store.evict(ts * 1000)
    store.evict(50_000 * 1000)
    assert len(store) < 30  # a full 7-day series would hold all 50,000 points
    stats = store.window_stats("k", "s", 0, 50_000 * 1000)
    assert stats.max_point is not None and numeric(stats.max_point.value) == 100
