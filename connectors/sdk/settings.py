"""Settings shared by every connector, and loading them from a YAML or JSON file.

Each connector subclasses :class:`PullSettings` or :class:`PushSettings` with its own env prefix
(``DEALSTREAM_<NAME>_``). Values in a config file win over the environment, so a file can hold
the shape of a deployment while secrets (``SecretStr`` fields) come from the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dealstream.connectors.sdk.errors import ConfigError


class SourceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="forbid")

    source: str = "connector"
    """Instance name: the envelope's ``source``, the metrics label, the dead-letter origin."""
    metrics_port: int | None = None
    """Serve Prometheus ``/metrics`` on this port while running (push sources serve their own)."""


class PullSettings(SourceSettings):
    cursor_file: Path = Path(".local/cursors/connector.json")
    poll_interval_s: float = Field(5.0, ge=0)
    """Wait between polls once the source is caught up."""
    max_batch: int = Field(500, gt=0)
    """Records per poll: bounds memory and the records re-sent after a crash."""
    rate_per_s: float = Field(10.0, gt=0)
    """Requests per second to the source, retries included (aiolimiter leaky bucket)."""
    retry_attempts: int = Field(5, ge=1)
    retry_initial_s: float = Field(0.5, gt=0)
    retry_max_wait_s: float = Field(30.0, gt=0)
    stop_when_idle: bool = False
    """Return from ``run`` once every stream is caught up (cron-style runs, tests)."""


class PushSettings(SourceSettings):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    """0 picks a free port (tests); the bound one is ``connector.url``."""
    max_body_bytes: int = Field(1_048_576, gt=0)
    auth_token: SecretStr | None = None
    """When set, requests need ``Authorization: Bearer <token>``."""

    @field_validator("auth_token")
    @classmethod
    def _empty_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        """An empty variable (compose's ``${VAR:-}``) means no token, not an empty one."""
        return value if value is not None and value.get_secret_value() else None


S = TypeVar("S", bound=BaseSettings)


def load_settings(settings_class: type[S], path: Path | None = None) -> S:
    """``settings_class`` from a YAML/JSON mapping (JSON is YAML) plus the environment."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as error:
            raise ConfigError(f"cannot read config file {path}: {error}") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"{path} is not valid YAML/JSON: {error}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path} must hold a mapping of setting names to values")
        data = loaded
    try:
        return settings_class(**data)
    except ValidationError as error:
        where = f" in {path}" if path else ""
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise ConfigError(f"invalid {settings_class.__name__}{where}: {problems}") from None
