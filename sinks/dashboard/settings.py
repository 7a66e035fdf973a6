"""Dashboard configuration, read from ``DEALSTREAM_DASHBOARD_*``."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class DashboardSettings(BaseSettings):
    """Where the dashboard listens, who may read it and how often pages refresh."""

    model_config = SettingsConfigDict(
        env_prefix="DEALSTREAM_DASHBOARD_", frozen=True, hide_input_in_errors=True
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8050, ge=0, le=65535)
    # When set, every /api/ request needs `Authorization: Bearer <token>`.
    token: SecretStr | None = None
    refresh_s: int = Field(default=30, ge=0, description="auto-refresh period; 0 turns it off")
    default_days: int = Field(default=30, gt=0, description="time range shown when none is given")

    @field_validator("token")
    @classmethod
    def _empty_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        """An empty variable (compose's `${VAR:-}`) means no token, not an empty one."""
        return value if value is not None and value.get_secret_value() else None
