from __future__ import annotations

import math

from dealstream.models.accuracy import AccuracyStats, KeyAccuracy, RepDeviationTracker, aggregate


def test_metrics_and_zero_actuals() -> None:
    s = AccuracyStats()
    assert math.isnan(s.mae) and math.isnan(s.wape) and math.isnan(s.mape)
    s.update(0.0, 0.0)
    s.update(3.0, 0.0)  # no MAPE term for a zero actual
    s.update(8.0, 10.0)
    assert s.n == 3 and s.n_ape == 1
    assert s.mae == 5 / 3
    assert s.wape == 0.5
    assert s.mape == 0.2
    assert s.bias == 1 / 3


def test_aggregation_per_region_and_rep_is_exact() -> None:
    keys = {"sku1|north": KeyAccuracy(), "sku2|north": KeyAccuracy(), "sku1|south": KeyAccuracy()}
    for i, acc in enumerate(keys.values()):
        acc.update(1, 10.0 + i, 10.0)
    north = aggregate((k.split("|")[1], a.by_horizon[1]) for k, a in keys.items())["north"]
    assert (north.n, north.abs_error, north.wape) == (2, 1.0, 0.05)
    # aggregation does not alias its inputs
    assert keys["sku1|north"].by_horizon[1].n == 1


def test_rep_flagged_once_after_consecutive_deviations() -> None:
    t = RepDeviationTracker(threshold=0.15, periods=3)
    seq = [(1, 120.0), (2, 80.0), (3, 130.0), (4, 125.0), (5, 100.0), (6, 90.0)]
    flags = [t.update("ana", p, rep_forecast=f, reference=100.0) for p, f in seq]
    assert [f is not None for f in flags] == [False, False, True, False, False, False]
    flag = flags[2]
    assert flag is not None
    assert (flag.rep, flag.periods, flag.threshold) == ("ana", (1, 2, 3), 0.15)
    assert flag.deviations == (0.2, -0.2, 0.3)


def test_rep_streak_breaks_on_gap_and_revisions_replace() -> None:
    t = RepDeviationTracker(threshold=0.1, periods=2)
    assert t.update("bo", 1, rep_forecast=150.0, reference=100.0) is None
    assert t.update("bo", 3, rep_forecast=150.0, reference=100.0) is None  # gap: restart
    assert t.update("bo", 3, rep_forecast=100.0, reference=100.0) is None  # revised: on target
    assert t.update("bo", 4, rep_forecast=150.0, reference=100.0) is None
    assert t.update("bo", 2, rep_forecast=150.0, reference=100.0) is None  # older: ignored
    assert t.update("bo", 5, rep_forecast=50.0, reference=100.0) is not None
    assert t.update("cy", 1, rep_forecast=5.0, reference=0.0) is None  # inf deviation, 1 period
