"""Configuration of the forecast pipeline (``DEALSTREAM_FORECAST_*``): grain, models, signals.

- grain: ``key_fields`` of the POS payload that make a forecast key, ``["sku", "region"]`` by
  default. POS is partitioned by SKU+region, so a grain must hold ``sku`` and ``region`` or
  ``store_id`` (a store is in one region) to keep each key on one partition; a coarser grain
  (product line x store) needs an input topic keyed by that grain (``topic`` plus
  ``input_keyed_by_grain=true``), otherwise the configuration is refused.
- models: without ``models_file`` every key gets ``family`` with default parameters; a YAML
  file maps key families (glob rules over product_line, region, sku, store_id) to named,
  versioned specs (``models.registry.ModelRouting``), for example::

      models:
        default: {family: holt_winters, name: hw-weekly, version: "1",
                  params: {seasonality: 52}}
        tenders: {family: linear, name: linear-signals, version: "2",
                  params: {horizons: [1, 4, 13], seasonality: 52, calendar: week}}
      families:
        - {family: tenders, match: {product_line: "MED-*"}}

  A key keeps the key family it was created with; when the spec of a family changes name or
  version, its keys start that model over on their next restore (rows keep the version, so
  both are in ClickHouse side by side).

- signals: region topics read in full by every worker (``streams/forecast_signals.py``);
  promotions are the POS line's own discount; ``holidays`` feed the linear model's calendar.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dealstream.models.forecaster import ForecasterConfig
from dealstream.models.periods import Granularity
from dealstream.models.registry import (
    ModelConfigError,
    ModelRegistry,
    ModelRouting,
    ModelSpec,
    default_specs,
)
from dealstream.models.signals import DEFAULT_USAGE_METRICS

KEY_FIELDS = ("sku", "region", "product_line", "store_id")
SIGNAL_TOPICS = ("tenders.notices.v1", "procurement.plans.v1", "iot.telemetry.v1")


class ForecastSettings(BaseSettings):
    """Which model every key gets and how periods are cut (module docstring)."""

    model_config = SettingsConfigDict(env_prefix="DEALSTREAM_FORECAST_", extra="forbid")

    granularity: Granularity = "week"
    horizons: tuple[int, ...] = (1, 4, 13)
    family: str = "holt_winters"
    season: int = 52
    model_name: str = ""
    model_version: str = "1"
    models_file: Path | None = None
    min_history: int = 8
    level: float = 0.8
    max_relative_width: float = 1.0
    residual_window: int = 52
    allowed_lateness: int = 2
    grace_ms: int = 0
    key_fields: tuple[str, ...] = ("sku", "region")
    topic: str = "pos.transactions.v1"
    input_keyed_by_grain: bool = False
    signal_topics: tuple[str, ...] = SIGNAL_TOPICS
    usage_metrics: tuple[str, ...] = DEFAULT_USAGE_METRICS
    region_aliases: dict[str, str] = {}  # region as signals write it -> sales region
    signal_keep_periods: int = 16
    promotions: bool = True
    holidays: tuple[str, ...] = ()

    @field_validator("horizons")
    @classmethod
    def _sorted(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(sorted(set(value)))

    @model_validator(mode="after")
    def _grain(self) -> ForecastSettings:
        fields = self.key_fields
        unknown = set(fields) - set(KEY_FIELDS)
        if not fields or unknown or len(set(fields)) != len(fields):
            raise ValueError(
                f"DEALSTREAM_FORECAST_KEY_FIELDS={list(fields)}: use distinct names from "
                f"{list(KEY_FIELDS)}"
            )
        aligned = "sku" in fields and ("region" in fields or "store_id" in fields)
        if not aligned and not self.input_keyed_by_grain:
            raise ValueError(
                f"grain {list(fields)} spans POS partitions (keyed by sku|region): include sku "
                "and region or store_id, or read a topic keyed by this grain "
                "(DEALSTREAM_FORECAST_TOPIC and DEALSTREAM_FORECAST_INPUT_KEYED_BY_GRAIN=true)"
            )
        return self

    @property
    def grain(self) -> str:
        return "|".join(self.key_fields)

    def spec(self) -> ModelSpec:
        """The configured family with the default parameters for these horizons and season."""
        for spec in default_specs(self.horizons, self.season):
            if spec.family == self.family:
                name = self.model_name or spec.name
                params: dict[str, Any] = dict(spec.params)
                if spec.family == "linear":  # calendar terms of the target period (known)
                    params |= {"calendar": self.granularity, "holidays": self.holidays}
                return ModelSpec(spec.family, name, self.model_version, params)
        raise ModelConfigError(
            f"DEALSTREAM_FORECAST_FAMILY={self.family!r} is not a known model family"
        )

    def routing(self) -> ModelRouting:
        """Key family rules and specs from ``models_file``, else every key gets :meth:`spec`."""
        if self.models_file is None:
            return ModelRouting(ModelRegistry({"default": self.spec()}))
        return load_routing(self.models_file)

    def forecaster_config(self) -> ForecasterConfig:
        return ForecasterConfig(
            horizons=self.horizons,
            level=self.level,
            min_history=self.min_history,
            max_relative_width=self.max_relative_width,
            residual_window=self.residual_window,
        )


def load_routing(path: Path) -> ModelRouting:
    """A models file (module docstring); errors name the file and what to fix."""
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ModelConfigError(f"models file {path}: {exc}") from exc
    if not isinstance(config, dict):
        raise ModelConfigError(f"models file {path}: expected a mapping with 'models'")
    try:
        return ModelRouting.from_config(config)
    except ModelConfigError as exc:
        raise ModelConfigError(f"models file {path}: {exc}") from exc
