"""Compliance pipeline on in-memory chat records with the bundled rule set."""

from __future__ import annotations

import pytest
from confluent_kafka import Message

from dealstream.schemas import codec
from dealstream.schemas.samples import sample_event
from dealstream.sinks.clickhouse import tables
from dealstream.streams.compliance import CompliancePipeline, ComplianceSettings
from dealstream.streams.rules.compliance import ComplianceRules

TOPIC = "wecom.messages.v1"


def chat(text: str, *, role: str = "SALES_REP", offset: int = 0, event_id: str = "") -> Message:
    record = sample_event("wecom.message")
    record["payload"].update(text=text, speaker_role=role, conversation_id="conv-1")
    record["event_id"] = event_id or f"evt-{offset}"
    value, headers = codec.encode("wecom.message", record)
    return Message(topic=TOPIC, partition=0, offset=offset, value=value, headers=headers)


@pytest.fixture(scope="module")
def pipeline() -> CompliancePipeline:
    return CompliancePipeline(ComplianceSettings().load())


def test_violations_become_alerts_and_rows_with_the_original_span(
    pipeline: CompliancePipeline,
) -> None:
    result = pipeline.process([chat("这款产品稳 赚不赔，放心买", offset=7)])
    (alert,) = result.alerts
    assert (alert["kind"], alert["rule_id"], alert["rule_version"]) == (
        "compliance",
        "promise.return",
        1,
    )
    assert alert["attributes"]["text"] == "稳 赚不赔"
    assert alert["input_event_ids"] == ["evt-7"] and alert["entity_key"] == "conv-1"
    (row,) = result.rows[tables.COMPLIANCE_VIOLATIONS]
    named = dict(zip(tables.COMPLIANCE_VIOLATIONS_COLUMNS, row, strict=True))
    assert named["alert_id"] == alert["alert_id"]
    assert (named["span_start"], named["span_end"]) == (4, 9)
    assert named["kafka_offset"] == 7
    codec.encode("alert", alert)  # the alert fits the published schema


@pytest.mark.parametrize(
    ("text", "role"),
    [
        ("本产品不保本，投资需谨慎", "SALES_REP"),  # the required risk disclosure
        ("你们这个保本吗？", "CUSTOMER"),  # customers may ask
        ("This product is not guaranteed return.", "SALES_REP"),
        ("今天天气不错", "SALES_REP"),
    ],
)
def test_disclosures_customer_questions_and_plain_text_do_not_alert(
    pipeline: CompliancePipeline, text: str, role: str
) -> None:
    result = pipeline.process([chat(text, role=role)])
    assert result.alerts == [] and result.processed == 1


def test_a_redelivered_message_gives_the_same_alert_id(pipeline: CompliancePipeline) -> None:
    first = pipeline.process([chat("保证本金", event_id="same")]).alerts
    again = pipeline.process([chat("保证本金", event_id="same", offset=9)]).alerts
    assert [a["alert_id"] for a in first] == [a["alert_id"] for a in again] != []


def test_undecodable_chats_are_dead_lettered(pipeline: CompliancePipeline) -> None:
    result = pipeline.process([Message(topic=TOPIC, partition=0, offset=3, value=b"\x01")])
    (letter,) = result.dead_letters
    assert letter.stage == "DECODE" and letter.offset == 3


def test_rules_swap_without_rebuilding_the_pipeline(pipeline: CompliancePipeline) -> None:
    swapped = CompliancePipeline(pipeline.rules)
    swapped.replace_rules(
        ComplianceRules.from_yaml(
            "rules:\n  - id: x.new\n    version: 2\n    severity: INFO\n    phrases: [今天天气]\n"
        )
    )
    (alert,) = swapped.process([chat("今天天气不错")]).alerts
    assert (alert["rule_id"], alert["rule_version"]) == ("x.new", 2)
