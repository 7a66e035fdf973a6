"""Shared checks over every registered model family (DESIGN §3.5)."""

from __future__ import annotations

import math
import pickle

import pytest

from dealstream.models.families import SeasonalNaive
from dealstream.models.registry import (
    FAMILIES,
    ModelConfigError,
    ModelRegistry,
    ModelSpec,
    default_specs,
)
from dealstream.models.synthetic import seasonal_series

HORIZONS = (1, 4, 13)
SPECS = default_specs(HORIZONS, season=52)


def test_every_family_has_a_default_spec() -> None:
    assert {s.family for s in SPECS} == set(FAMILIES)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.family)
def test_shared_model_checks(spec: ModelSpec) -> None:
    model = spec.build()
    assert model.forecast(HORIZONS) == {1: 0.0, 4: 0.0, 13: 0.0}  # before any data
    ys = seasonal_series(120, seed=7)
    for y in ys[:100]:
        model.learn_one(y, {"tender": 0.0})
    assert model.n_seen == 100
    points = model.forecast(HORIZONS)
    assert set(points) == set(HORIZONS)
    assert all(math.isfinite(v) and v >= 0 for v in points.values())
    # parameters are the constructor arguments, stored under the same names
    assert type(model)(**model.params()).params() == model.params()
    for key, value in spec.params.items():
        assert model.params()[key] == (tuple(value) if key == "horizons" else value)
    # snapshot/restore gives identical forecasts, now and after more learning
    twin = pickle.loads(pickle.dumps(model))
    assert twin.forecast(HORIZONS) == points
    for y in ys[100:]:
        model.learn_one(y, {"tender": 1.0})
        twin.learn_one(y, {"tender": 1.0})
        assert twin.forecast(HORIZONS) == model.forecast(HORIZONS)
    weights = model.contributions(1)
    assert not weights or math.isclose(sum(abs(w) for w in weights.values()), 1.0)


def test_sales_are_never_forecast_negative() -> None:
    for spec in SPECS:
        model = spec.build()
        for t in range(80):
            model.learn_one(max(0.0, 60.0 - 2.0 * t))  # falling to zero and staying there
        assert min(model.forecast(HORIZONS).values()) >= 0.0


def test_registry_from_config_picks_per_key_family() -> None:
    reg = ModelRegistry.from_config(
        {
            "default": {"family": "seasonal_naive"},
            "medical": {"family": "linear", "name": "lin-med", "version": "3", "params": {}},
        }
    )
    assert reg.spec_for("medical").name == "lin-med"
    assert reg.spec_for("other").family == "seasonal_naive"
    assert type(reg.build("medical")).__name__ == "LinearModel"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"default": {"family": "prophet"}}, "unknown model family"),
        ({"default": {"family": "holt_winters", "params": {"alpah": 1}}}, "alpah"),
        ({"default": {"family": "linear", "params": {"horizons": []}}}, "horizons"),
        ({"default": {"family": "linear", "parms": {}}}, "allows only"),
        ({"x": {"family": "linear"}}, "default key family"),
    ],
)
def test_config_errors_say_what_to_fix(config: dict, message: str) -> None:
    with pytest.raises(ModelConfigError, match=message):
        ModelRegistry.from_config(config)


def test_a_diverged_forecast_falls_back_to_seasonal_naive() -> None:
    class Diverged(SeasonalNaive):
        def _forecast(self, horizons):  # type: ignore[no-untyped-def]
            return {h: 4.8e9 for h in horizons}

    model = Diverged(season=4)
    for y in (10.0, 12.0, 11.0, 13.0):
        model.learn_one(y)
    assert model.forecast([1, 2]) == {1: 10.0, 2: 12.0}
