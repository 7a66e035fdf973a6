from __future__ import annotations

import pytest

from dealstream.models.periods import (
    DAY_MS,
    PeriodBuckets,
    period_index,
    period_label,
    period_start_ms,
)

MON_2024_01_01 = 1_704_067_200_000
WEEK_MS = 7 * DAY_MS


def test_iso_weeks_start_on_monday_utc() -> None:
    idx = period_index(MON_2024_01_01, "week")
    assert period_start_ms(idx, "week") == MON_2024_01_01
    assert period_index(MON_2024_01_01 - 1, "week") == idx - 1  # Sunday 23:59:59.999
    assert period_label(idx, "week") == "2024-W01"
    assert period_label(period_index(MON_2024_01_01 - 1, "week"), "week") == "2023-W52"
    assert period_label(period_index(MON_2024_01_01, "day"), "day") == "2024-01-01"


def test_periods_close_by_event_time_and_gaps_are_zero() -> None:
    b = PeriodBuckets("week")
    assert b.add(MON_2024_01_01 + 5, 2.0).closed == []
    assert b.add(MON_2024_01_01 + DAY_MS, 3.0).closed == []
    out = b.add(MON_2024_01_01 + 3 * WEEK_MS, 1.0)
    assert [(p.label, p.actual) for p in out.closed] == [
        ("2024-W01", 5.0),
        ("2024-W02", 0.0),
        ("2024-W03", 0.0),
    ]
    assert out.closed[0].newest_ms == {"sales": MON_2024_01_01 + DAY_MS}


def test_late_events_revise_within_lateness_and_are_returned_beyond() -> None:
    b = PeriodBuckets("week", allowed_lateness=2)
    b.add(MON_2024_01_01, 1.0)
    b.add(MON_2024_01_01 + 3 * WEEK_MS, 1.0)  # closes W01..W03
    late = b.add(MON_2024_01_01 + WEEK_MS + 10, 4.0)  # W02: 2 periods behind the open W04
    assert late.closed == [] and late.too_late == []
    assert (late.revised[0].label, late.revised[0].actual, late.revised[0].revised) == (
        "2024-W02",
        4.0,
        True,
    )
    too_late = b.add(MON_2024_01_01 + 10, 7.0)  # W01: 3 periods behind
    assert too_late.revised == []
    assert [(t.label, t.quantity) for t in too_late.too_late] == [("2024-W01", 7.0)]


def test_grace_delays_closing_and_signals_are_summed() -> None:
    b = PeriodBuckets("day", grace_ms=3_600_000)
    b.add(0, 1.0, {"tender": 2.0})
    b.add(10, 0.0, {"tender": 1.5, "promo": 1.0})
    assert b.add(DAY_MS + 1000, 1.0).closed == []  # within the hour of grace
    closed = b.advance_to(DAY_MS + 3_600_000).closed
    assert closed[0].signals == {"tender": 3.5, "promo": 1.0}
    assert closed[0].actual == 1.0


def test_first_events_slightly_out_of_order_extend_history() -> None:
    b = PeriodBuckets("day", allowed_lateness=2)
    b.add(5 * DAY_MS, 1.0)
    early = b.add(4 * DAY_MS, 2.0)  # before anything closed: no watermark has passed day 4
    assert early.too_late == [] and [p.actual for p in early.closed] == [2.0]
    assert [p.actual for p in b.add(6 * DAY_MS, 0.0).closed] == [1.0]


def test_bad_configuration_fails_fast() -> None:
    with pytest.raises(ValueError, match="granularity"):
        PeriodBuckets("month")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        PeriodBuckets("day", allowed_lateness=-1)
