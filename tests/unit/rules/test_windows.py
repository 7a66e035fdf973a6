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
            if stats.max_point is not None:  # the earliest point holding the maximum
                first = next(
                    p for p in store.window("k", "s", ts - WINDOW, ts) if numeric(p.value) == high
                )
                assert stats.max_point is first


def test_a_long_forward_stream_is_not_rescanned() -> None:
    store = SeriesStore(retention_ms={"s": 10_000})
    for ts in range(20_000):
        store.append("k", "s", Point(ts, ts % 97, f"e{ts}"))
        stats = store.window_stats("k", "s", ts - 1_000, ts)
    assert stats.count == 1_000 and stats.max_point is not None
    assert numeric(stats.max_point.value) == 96
