"""Compliance checks on chats and call transcripts: phrase rules → alerts and a QA table.

Each message of ``wecom.messages.v1`` is matched against one automaton of all phrases; every
violation is published to ``alerts.compliance.v1`` in the batch that saw it (milliseconds after
the event) and written to ClickHouse ``compliance_violations`` for QA dashboards.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from confluent_kafka import Message
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from dealstream.schemas.codec import SchemaResolver
from dealstream.sinks.clickhouse import tables
from dealstream.streams.decoding import RecordReader
from dealstream.streams.pipeline import BatchResult, Row, TableSpec
from dealstream.streams.rules.compliance import ComplianceRules

TOPIC = "wecom.messages.v1"
EVENT_TYPE = "wecom.message"
DEFAULT_RULES = Path(__file__).with_name("compliance_rules.yaml")
VIOLATIONS = TableSpec(tables.COMPLIANCE_VIOLATIONS, tables.COMPLIANCE_VIOLATIONS_COLUMNS)


class ComplianceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DEALSTREAM_COMPLIANCE_", extra="forbid")

    rules_file: Path = Field(default=DEFAULT_RULES)

    def load(self) -> ComplianceRules:
        """Parse and validate the rule set; a bad file fails fast with line and column."""
        return ComplianceRules.from_yaml(self.rules_file.read_text(encoding="utf-8"))


class CompliancePipeline:
    """Stateless: every message is checked against the current rule set on its own."""

    name = "compliance"
    tables: tuple[TableSpec, ...] = (VIOLATIONS,)

    def __init__(
        self,
        rules: ComplianceRules,
        *,
        topic: str = TOPIC,
        resolver: SchemaResolver | None = None,
        reader: RecordReader | None = None,
    ) -> None:
        """``reader``: one shared with the topic's other pipelines, so chats are decoded once."""
        self.rules = rules
        self.topics: tuple[str, ...] = (topic,)
        self._reader = reader or RecordReader(EVENT_TYPE, resolver=resolver)

    def replace_rules(self, rules: ComplianceRules) -> None:
        """Swap in a new validated rule set; the next batch uses it (hot reload)."""
        self.rules = rules

    def process(self, messages: Sequence[Message]) -> BatchResult:
        result = BatchResult(rows={VIOLATIONS.name: []})
        rows: list[Row] = result.rows[VIOLATIONS.name]
        evaluate = self.rules.evaluate
        checked = self._reader.read(messages)
        result.dead_letters.extend(
            r.dead_letter(source=self.name, default_topic=self.topics[0]) for r in checked.rejected
        )
        for message, record in checked.records:
            result.processed += 1
            violations = evaluate(record)
            if not violations:
                continue
            raised_at = int(time.time() * 1000)
            payload = record["payload"]
            for violation in violations:
                alert = violation.to_alert(record, raised_at=raised_at)
                result.raised(alert, by=message)
                rows.append(
                    (
                        alert["alert_id"], violation.rule_id, violation.rule_version,
                        violation.severity, payload["conversation_id"], record["event_id"],
                        payload.get("rep_id"), payload["speaker_role"], payload["channel"],
                        payload.get("product_line"), violation.phrase, violation.text,
                        violation.start, violation.end, violation.suggestion,
                        record["occurred_at"], raised_at, message.topic(), message.partition(),
                        message.offset(),
                    )
                )  # fmt: skip
        return result
