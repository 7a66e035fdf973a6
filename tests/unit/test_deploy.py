"""docker-compose.yml cannot run here (no Docker engine): check it against the CLI and settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer.main
import yaml
from pydantic_settings import BaseSettings

from dealstream.broker.local.config import LocalBrokerSettings
from dealstream.broker.settings import KafkaSettings
from dealstream.cli.main import app
from dealstream.connectors.pii import PiiSettings
from dealstream.connectors.pos_file.connector import PosFileSettings
from dealstream.schemas.registry import SchemaRegistrySettings
from dealstream.sinks.clickhouse.settings import ClickHouseSettings
from dealstream.streams.compliance import ComplianceSettings
from dealstream.streams.forecast import ForecastSettings
from dealstream.streams.settings import WorkerSettings
from dealstream.streams.state_signing import StateSettings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS: list[type[BaseSettings]] = [
    KafkaSettings, ClickHouseSettings, WorkerSettings, PiiSettings, PosFileSettings,
    LocalBrokerSettings, SchemaRegistrySettings, ComplianceSettings, ForecastSettings,
    StateSettings,
]  # fmt: skip


def known_variables() -> set[str]:
    names = set()
    for settings in SETTINGS:
        prefix = str(settings.model_config.get("env_prefix", ""))
        names |= {(prefix + field).upper() for field in settings.model_fields}
    return names


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_every_dealstream_variable_in_compose_is_a_real_setting() -> None:
    known = known_variables()
    for name, service in compose()["services"].items():
        for variable in service.get("environment", {}):
            if variable.startswith("DEALSTREAM_"):
                assert variable in known, f"{name}: {variable} is not read by any settings class"


def test_every_dealstream_service_command_exists_in_the_cli() -> None:
    command: Any = typer.main.get_command(app)  # typer's own click Group
    built = [s for s in compose()["services"].values() if s.get("build") == "."]
    assert built, "the stack runs dealstream itself"
    for service in built:
        words = service["command"]
        node = command
        for word in words:
            if not hasattr(node, "commands"):
                break
            assert word in node.commands, f"`dealstream {' '.join(words)}`: no command {word!r}"
            node = node.commands[word]


def test_the_dockerfile_copies_every_layer() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for layer in ("broker", "connectors", "models", "schemas", "sinks", "streams", "dealstream"):
        assert f"COPY {layer} ./{layer}" in dockerfile
