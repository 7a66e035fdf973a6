"""Configuration of WeCom message delivery (``DEALSTREAM_WECOM_SEND_*``).

Delivery is on only when the corp id, the app's secret and its agent id are all set. The
``DEALSTREAM_WECOM_`` prefix belongs to the chat-archive connector, hence ``_SEND_``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class WecomSendSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DEALSTREAM_WECOM_SEND_", extra="forbid", hide_input_in_errors=True
    )

    base_url: str = "https://qyapi.weixin.qq.com"
    """Root of the WeCom server API (``/cgi-bin/gettoken``, ``/cgi-bin/message/send``)."""
    corp_id: str = ""
    corp_secret: SecretStr = SecretStr("")
    """Secret of the self-built app that sends the messages."""
    agent_id: int | None = None
    store_users: dict[str, str] = Field(default_factory=dict)
    """Store id → WeCom user ids of its staff, ``|``-separated (JSON in the environment)."""
    default_users: str = ""
    """Recipients of tasks whose store has no entry (empty: such tasks are not sent)."""
    msgtype: Literal["text", "textcard"] = "textcard"
    task_url: str = "https://work.weixin.qq.com/"
    """Link of a textcard; ``{task_id}`` is replaced by the task's id."""
    timeout_s: float = Field(default=5.0, gt=0)
    max_attempts: int = Field(default=4, ge=1)
    backoff_s: float = Field(default=0.5, ge=0)
    """First retry delay, doubled per attempt (capped at 30 s)."""
    token_margin_s: float = Field(default=300.0, ge=0)
    """Refresh the access token this long before WeCom says it expires."""
    queue_size: int = Field(default=10_000, gt=0)

    @property
    def enabled(self) -> bool:
        return bool(self.corp_id and self.corp_secret.get_secret_value() and self.agent_id)
