"""Connectors are found through the ``dealstream.connectors`` entry point group.

A third-party package registers ``name = "pkg.module:ConnectorClass"`` in its
``[project.entry-points."dealstream.connectors"]``; the class needs a ``settings_class``
(pydantic-settings) and a constructor ``cls(settings, *, kafka=...)``.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Protocol

from pydantic_settings import BaseSettings

from dealstream.broker.settings import KafkaSettings
from dealstream.connectors.base import Connector
from dealstream.connectors.sdk.errors import ConfigError
from dealstream.connectors.sdk.settings import load_settings

GROUP = "dealstream.connectors"


class ConnectorClass(Protocol):
    settings_class: type[BaseSettings]
    __name__: str
    __doc__: str | None

    def __call__(self, settings: Any, *, kafka: KafkaSettings) -> Connector: ...


def available() -> dict[str, EntryPoint]:
    """Installed connectors by name."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def load(name: str) -> ConnectorClass:
    found = available()
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise ConfigError(f"no connector named {name!r}; installed: {known}")
    cls: ConnectorClass = found[name].load()
    if not hasattr(cls, "settings_class"):
        raise ConfigError(f"entry point {name!r} ({found[name].value}) has no settings_class")
    return cls


def create(name: str, config: Path | None, *, kafka: KafkaSettings | None = None) -> Connector:
    """Connector ``name`` configured from ``config`` (YAML/JSON) and the environment."""
    cls = load(name)
    settings = load_settings(cls.settings_class, config)
    return cls(settings, kafka=kafka or KafkaSettings())
