"""The forecast evidence script on tiny inputs, and the per-family error gauges it drives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from bench import forecast_eval as fe
from dealstream.models.registry import ModelSpec


def test_simulated_signals_shift_demand_after_the_recorded_lag() -> None:
    world = fe.simulate(80, skus=1, regions=1, seed=3)
    ys, xs = world.sales["SKU0|R0"], world.signals["SKU0|R0"]
    lag = world.effects["tender_award"]["lag_weeks"]
    announced = world.effects["policy_change"]["announced_week"]["R0"]
    assert [x["policy"] for x in xs[announced - 1 : announced + 1]] == [0.0, 1.0]
    awarded = [t for t, x in enumerate(xs) if x["tender_award"] and t + lag < len(ys)]
    assert awarded
    # demand lag weeks after an award is above the week before the award, on average
    lift = sum(ys[t + lag] - ys[t - 1] for t in awarded if t > 0) / len(awarded)
    assert lift > 0
    assert fe.simulate(80, skus=1, regions=1, seed=3).sales == world.sales  # seeded


def test_replay_scores_every_horizon_and_coverage_is_a_share() -> None:
    score = fe.Score()
    world = fe.simulate(70, skus=1, regions=1, seed=1)
    spec = ModelSpec("holt_winters", params={"seasonality": 4})
    fe.replay(spec, world.sales["SKU0|R0"], None, (1, 4), 10, score)
    row = score.row()
    assert set(row) == {"1", "4"}
    for cell in row.values():
        assert cell["n"] > 40 and 0 < cell["mape"] < 1
        assert 0.0 <= cell["coverage"] <= 1.0


def test_real_series_ship_in_packages() -> None:
    pytest.importorskip("pmdarima")
    series = fe.real_series()
    assert len(series["wineind"]) == 176 and len(series["airline_passengers"]) == 144


def gauge(name: str, family: str, horizon: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"family": family, "horizon": horizon})


def test_pipeline_throughput_and_error_gauges_per_family() -> None:
    out = fe.throughput(3000, 10, 12, 500, seed=2)
    for family in ("holt_winters", "linear", "snarimax"):
        assert out[family]["events_per_s"] > 0 and out[family]["rows"] > 0
        wape = gauge("dealstream_forecast_wape", family, "1")
        assert wape is not None and wape >= 0
        assert gauge("dealstream_forecast_mape", family, "4") is not None


def test_memory_per_key_and_main_writes_json(tmp_path: Path) -> None:
    mem = fe.memory(4, 10, seed=1)
    assert mem["linear"]["snapshot_bytes_mean"] > mem["seasonal_naive"]["snapshot_bytes_mean"]
    output = tmp_path / "eval.json"
    args = ["--weeks", "70", "--skus", "1", "--regions", "1", "--events", "500",
            "--memory-keys", "4", "--skip-real", "--output", str(output)]  # fmt: skip
    assert fe.main(args) == 0
    result = json.loads(output.read_text())
    by_model = result["accuracy"]["by_model"]
    assert {"linear_with_signals", "linear_without_signals", "seasonal_naive"} <= set(by_model)
    assert set(by_model["seasonal_naive"]) == {"1", "4", "13"}


def test_stream_pipeline_with_and_without_its_signal_feed() -> None:
    out = fe.stream(90, skus=2, regions=2, seed=3)
    assert out["signal_records"] > 0 and out["events"] == 4 * 90
    fed, unfed = out["by_model"]["linear_with_signals"], out["by_model"]["linear_without_signals"]
    assert set(fed) == set(unfed) == {"1", "4", "13"}
    assert fed["1"]["mape"] != unfed["1"]["mape"]  # the awards reached the model
    assert all(0.0 <= cell["coverage"] <= 1.0 for cell in fed.values())
    cost = out["linear_with_signals_cost"]
    assert cost["events_per_s"] > 0 and cost["signal_state_bytes"] > 0
    assert out["seasonal_naive_cost"]["snapshot_bytes_per_key"] > 0
    assert gauge("dealstream_forecast_mae", "linear", "1") is not None
