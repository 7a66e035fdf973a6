"""Which model each key family gets: named, versioned model specs built from configuration.

A spec is data (family, name, version, constructor parameters), so the forecast carries the
model name and version that produced it (the audit trail of DESIGN §1), and a configuration
error names what to fix instead of failing deep inside River.

>>> reg = ModelRegistry.from_config({
...     "default": {"family": "seasonal_naive", "name": "naive", "params": {"season": 52}},
...     "hospital": {"family": "holt_winters", "name": "hw", "version": "2",
...                  "params": {"seasonality": 52}},
... })
>>> reg.spec_for("hospital").version, reg.spec_for("retail").name
('2', 'naive')
>>> reg.build("hospital").params()["seasonality"]
52

Which key family a key belongs to is configuration too: ordered rules of glob patterns over
the key's fields (first match wins, else ``default``), e.g. by product line or region.

>>> routing = ModelRouting.from_config({
...     "models": {"default": {"family": "seasonal_naive"},
...                "hospital": {"family": "holt_winters", "params": {"seasonality": 4}}},
...     "families": [{"family": "hospital", "match": {"product_line": "HOSP-*"}}],
... })
>>> routing.family_of({"product_line": "HOSP-BED", "region": "CN-EAST"})
'hospital'
>>> routing.spec_for({"product_line": "AC"}).family
'seasonal_naive'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from dealstream.models.families import (
    BaseModel,
    HoltWintersModel,
    SeasonalNaive,
    SnarimaxModel,
)
from dealstream.models.linear import LinearModel

FAMILIES: dict[str, type[BaseModel]] = {
    "seasonal_naive": SeasonalNaive,
    "holt_winters": HoltWintersModel,
    "snarimax": SnarimaxModel,
    "linear": LinearModel,
}


class ModelConfigError(ValueError):
    """A model configuration that cannot be built; the message says what to fix."""


@dataclass(frozen=True)
class ModelSpec:
    """A named, versioned model: family plus constructor parameters."""

    family: str
    name: str = ""
    version: str = "1"
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ModelConfigError(
                f"unknown model family {self.family!r}; choose one of {sorted(FAMILIES)}"
            )
        if not self.name:
            object.__setattr__(self, "name", self.family)

    def build(self) -> BaseModel:
        """A fresh, untrained model."""
        cls = FAMILIES[self.family]
        params = dict(self.params)
        if "horizons" in params:
            params["horizons"] = tuple(params["horizons"])
        try:
            return cls(**params)
        except (TypeError, ValueError) as exc:
            raise ModelConfigError(f"model {self.name!r} ({self.family}): {exc}") from exc


class ModelRegistry:
    """Specs per key family (e.g. product line or channel), with a default."""

    def __init__(self, specs: Mapping[str, ModelSpec], default: str = "default") -> None:
        if default not in specs:
            raise ModelConfigError(f"no spec for the default key family {default!r}")
        self._specs = dict(specs)
        self._default = default

    @classmethod
    def from_config(
        cls, config: Mapping[str, Mapping[str, Any]], default: str = "default"
    ) -> ModelRegistry:
        """Build from ``{key_family: {family, name, version, params}}`` (YAML/JSON shaped)."""
        specs = {}
        for key_family, entry in config.items():
            unknown = set(entry) - {"family", "name", "version", "params"}
            if unknown or "family" not in entry:
                raise ModelConfigError(
                    f"model config {key_family!r}: needs 'family' and allows only name, "
                    f"version, params (got {sorted(entry)})"
                )
            specs[key_family] = ModelSpec(
                family=str(entry["family"]),
                name=str(entry.get("name", "")),
                version=str(entry.get("version", "1")),
                params=dict(entry.get("params", {})),
            )
            specs[key_family].build()  # fail fast on bad parameters
        return cls(specs, default)

    @property
    def default(self) -> str:
        return self._default

    @property
    def families(self) -> tuple[str, ...]:
        """The key families with a spec of their own."""
        return tuple(self._specs)

    def spec_for(self, key_family: str) -> ModelSpec:
        """The spec configured for ``key_family``, else the default."""
        return self._specs.get(key_family, self._specs[self._default])

    def build(self, key_family: str) -> BaseModel:
        """A fresh model for a new key of ``key_family``."""
        return self.spec_for(key_family).build()


@dataclass(frozen=True)
class FamilyRule:
    """Keys whose fields match every glob pattern of ``match`` belong to ``family``."""

    family: str
    match: Mapping[str, str]

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(fnmatchcase(str(fields.get(k, "")), v) for k, v in self.match.items())


class ModelRouting:
    """Key fields → key family (first matching rule, else the default) → model spec."""

    def __init__(self, registry: ModelRegistry, rules: Sequence[FamilyRule] = ()) -> None:
        self.registry = registry
        self.rules = tuple(rules)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ModelRouting:
        """Build from ``{models: {family: spec}, families: [{family, match}]}``."""
        unknown = set(config) - {"models", "families"}
        if unknown or "models" not in config:
            raise ModelConfigError(
                f"model routing needs 'models' and allows 'families' (got {sorted(config)})"
            )
        registry = ModelRegistry.from_config(config["models"])
        rules = []
        for n, entry in enumerate(config.get("families") or []):
            family, match = entry.get("family"), entry.get("match")
            if set(entry) != {"family", "match"} or not isinstance(match, Mapping) or not match:
                raise ModelConfigError(
                    f"families[{n}]: needs exactly 'family' and a non-empty 'match' mapping"
                )
            if family not in registry.families:
                raise ModelConfigError(
                    f"families[{n}]: no model configured for key family {family!r}; "
                    f"add it under 'models' (have {sorted(registry.families)})"
                )
            rules.append(FamilyRule(str(family), {str(k): str(v) for k, v in match.items()}))
        return cls(registry, rules)

    def family_of(self, fields: Mapping[str, str]) -> str:
        """The key family of a key with these fields (product_line, region, ...)."""
        for rule in self.rules:
            if rule.matches(fields):
                return rule.family
        return self.registry.default

    def spec_for(self, fields: Mapping[str, str]) -> ModelSpec:
        return self.registry.spec_for(self.family_of(fields))


def default_specs(horizons: tuple[int, ...] = (1, 4, 13), season: int = 52) -> list[ModelSpec]:
    """One reasonable spec per family (weekly periods, yearly season by default)."""
    return [
        ModelSpec("seasonal_naive", params={"season": season}),
        ModelSpec("holt_winters", params={"seasonality": season}),
        ModelSpec("snarimax", params={"p": 2, "d": 1, "q": 1}),
        ModelSpec(
            "linear", params={"horizons": horizons, "seasonality": float(season), "n_lags": 4}
        ),
    ]
