"""Configuration of the store task pipeline (``DEALSTREAM_TASKS_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from dealstream.streams.tasks.rules import BUNDLED_RULES, IntentRule, load_rules


class StoreTasksSettings(BaseSettings):
    """Intent rules and task details (``DEALSTREAM_TASKS_*``)."""

    model_config = SettingsConfigDict(env_prefix="DEALSTREAM_TASKS_", extra="forbid")

    rules_file: Path | None = None
    """None: the bundled ``streams/tasks/intent_rules.yaml``."""
    max_tags: int = 5
    max_purchases: int = 10
    """Newest purchases kept per customer, for a task raised after a purchase in its window
    (state per customer is bounded by it: a few hundred bytes each)."""

    def load(self) -> tuple[IntentRule, ...]:
        """The intent rules; a bad file fails fast with its line and column."""
        return load_rules((self.rules_file or BUNDLED_RULES).read_text(encoding="utf-8"))
