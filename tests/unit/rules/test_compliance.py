from __future__ import annotations

from typing import Any

import pytest

from dealstream.streams.rules.compliance import ComplianceRules
from dealstream.streams.rules.errors import RuleError

RULES = """
negation:
  max_gap: 3
rules:
  - id: promise.principal
    version: 3
    severity: CRITICAL
    phrases:
      - phrase: 保本
        variants: [保本保息, 保证本金]
      - 稳赚
      - guaranteed return
    speaker_roles: [SALES_REP]
    channels: [WECOM, CALL]
    suggestion: 请说明产品不保证本金
  - id: wealth.only
    version: 1
    severity: WARNING
    phrases: [高收益]
    product_lines: [WEALTH]
    suggestion: 请说明历史收益不代表未来
  - id: abuse
    version: 1
    severity: INFO
    negatable: false
    phrases: [笨蛋]
"""


def msg(text: str, **payload: Any) -> dict[str, Any]:
    base = {
        "conversation_id": "conv-1",
        "speaker_role": "SALES_REP",
        "channel": "WECOM",
        "rep_id": "EMP-1",
        "product_line": "WEALTH",
        "text": text,
    }
    base.update(payload)
    return {"event_id": "ev-1", "occurred_at": 1_700_000_000_000, "payload": base}


@pytest.fixture(scope="module")
def rules() -> ComplianceRules:
    return ComplianceRules.from_yaml(RULES)


def test_violation_fields(rules: ComplianceRules) -> None:
    (v,) = rules.evaluate(msg("这款产品保本保息哦"))
    assert (v.rule_id, v.rule_version, v.severity) == ("promise.principal", 3, "CRITICAL")
    assert (v.phrase, v.matched, v.text, v.span) == ("保本", "保本保息", "保本保息", (4, 8))
    assert v.suggestion == "请说明产品不保证本金"


def test_negated_is_not_a_violation_unless_rule_says_so(rules: ComplianceRules) -> None:
    assert rules.evaluate(msg("本产品不保本")) == []
    assert [v.rule_id for v in rules.evaluate(msg("你不是笨蛋"))] == ["abuse"]
    found = rules.evaluate(msg("我们不是说保本，而是稳赚"))
    assert [(v.phrase, v.text) for v in found] == [("稳赚", "稳赚")]


def test_filters(rules: ComplianceRules) -> None:
    assert rules.evaluate(msg("保本", speaker_role="CUSTOMER")) == []
    assert rules.evaluate(msg("保本", channel="MEETING")) == []
    assert [v.rule_id for v in rules.evaluate(msg("高收益"))] == ["wealth.only"]
    assert rules.evaluate(msg("高收益", product_line="INSURANCE")) == []
    assert rules.evaluate({"payload": {"text": None}}) == []
    assert rules.evaluate({}) == []


def test_english_and_to_alert(rules: ComplianceRules) -> None:
    m = msg("It is a GUARANTEED Return, trust me")
    (v,) = rules.evaluate(m)
    alert = v.to_alert(m, raised_at=5)
    assert alert["kind"] == "compliance"
    assert alert["entity_key"] == "conv-1"
    assert alert["input_event_ids"] == ["ev-1"]
    assert alert["attributes"]["text"] == "GUARANTEED Return"
    assert alert["model_name"] is None and alert["rule_version"] == 3
    assert alert == v.to_alert(m, raised_at=5)  # deterministic id
    assert all(isinstance(x, str) for x in alert["attributes"].values())


HEAD = "rules:\n  - id: a\n    "


@pytest.mark.parametrize(
    ("yaml_text", "where", "what"),
    [
        (HEAD + "version: 1\n    severity: LOUD\n    phrases: [x]\n", 4, "severity"),
        (HEAD + "version: x\n    severity: INFO\n    phrases: [x]\n", 3, "integer"),
        (HEAD + "version: 1\n    severity: INFO\n    phrase: [x]\n", 5, "unknown"),
        (HEAD + "version: 1\n    severity: INFO\n    phrases: ['，']\n", 5, "punct"),
        ("rules: [\n", 2, "YAML"),
    ],
)
def test_validation_errors_point_at_yaml(yaml_text: str, where: int, what: str) -> None:
    with pytest.raises(RuleError) as err:
        ComplianceRules.from_yaml(yaml_text)
    assert err.value.line == where
    assert what in str(err.value)


def test_all_problems_reported_at_once() -> None:
    text = "rules:\n  - id: a\n    version: 0\n    severity: INFO\n    phrases: [x]\n" * 1
    text += "  - id: a\n    version: 1\n    severity: NOPE\n    phrases: [x]\n"
    with pytest.raises(RuleError) as err:
        ComplianceRules.from_yaml(text)
    assert len(err.value.problems) == 2
