"""`dealstream rules`: validate with positions, replay recorded events, apply (publish mocked)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dealstream.broker.settings import KafkaSettings
from dealstream.cli import rules as rules_cli
from dealstream.cli.main import app
from dealstream.schemas.samples import sample_event
from dealstream.streams.business import BUNDLED_RULES
from dealstream.streams.compliance import DEFAULT_RULES as COMPLIANCE_RULES
from dealstream.streams.rules_config import RuleDocument

runner = CliRunner()
T0 = datetime(2025, 6, 1, tzinfo=UTC)
H = 3_600_000


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value))


def line(event_type: str, at_h: float, **fields: Any) -> str:
    record = sample_event(event_type, **fields)
    record["occurred_at"] = int(T0.timestamp() * 1000 + at_h * H)  # epoch ms works too
    record["event_id"] = f"{event_type}-{at_h}"
    return json.dumps(record, default=jsonable, ensure_ascii=False)


@pytest.fixture
def events(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    rows = [
        line("erp.inventory", 0, sku="AC-1", region="CN-EAST", turnover_days=52.0),
        line(
            "pos.transaction", 1, sku="AC-1", region="CN-EAST", unit_price=Decimal("100.00"),
            discount=Decimal("7.00"), amount=Decimal("93.00"), quantity=1,
        ),
        line("wecom.message", 2, conversation_id="conv-1", speaker_role="CUSTOMER"),
        "",
    ]  # fmt: skip
    path.write_text("\n".join(rows), encoding="utf-8")
    return path


def test_validate_accepts_the_bundled_rules() -> None:
    result = runner.invoke(app, ["rules", "validate", str(BUNDLED_RULES)])
    assert result.exit_code == 0, result.output
    assert "3 business rules OK" in result.output
    ok = runner.invoke(app, ["rules", "validate", str(COMPLIANCE_RULES), "--name", "compliance"])
    assert ok.exit_code == 0 and "compliance rules OK" in ok.output


def test_validate_reports_every_problem_with_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    text = BUNDLED_RULES.read_text(encoding="utf-8")
    bad.write_text(
        text.replace('max_over("discount_pct", "7d")', 'open("discount_pct")').replace(
            "within: 72h", "within: soon"
        ),
        encoding="utf-8",
    )
    result = runner.invoke(app, ["rules", "validate", str(bad)])
    assert result.exit_code == 1
    errors = [e for e in result.output.splitlines() if e.startswith(str(bad))]
    assert len(errors) == 2
    assert errors[0].startswith(f"{bad}:27:42: ") and "unknown function 'open'" in errors[0]
    assert errors[1].startswith(f"{bad}:43:") and "bad duration" in errors[1]


def test_replay_prints_what_would_fire(events: Path) -> None:
    result = runner.invoke(app, ["rules", "test", str(BUNDLED_RULES), "--events", str(events)])
    assert result.exit_code == 0, result.output
    assert "slow_stock_markdown v1 AC-1|CN-EAST" in result.output
    assert "customer_waiting_72h" not in result.output  # 72 h have not passed yet
    assert "3 events, 1 alerts" in result.output
    later = runner.invoke(
        app,
        [
            "rules",
            "test",
            str(BUNDLED_RULES),
            "--events",
            str(events),
            "--advance",
            "72h",
            "--json",
        ],
    )
    alerts = [json.loads(x) for x in later.output.splitlines() if x.startswith("{")]
    assert [a["rule_id"] for a in alerts] == ["slow_stock_markdown", "customer_waiting_72h"]
    assert alerts[1]["input_event_ids"] == ["wecom.message-2"]


def test_replay_rejects_a_line_that_is_not_an_event(events: Path) -> None:
    with events.open("a", encoding="utf-8") as f:
        f.write('\n{"event_type": "pos.transaction", "payload": {}}\n')
    result = runner.invoke(app, ["rules", "test", str(BUNDLED_RULES), "--events", str(events)])
    assert result.exit_code == 1 and f"{events}:5: not an event record" in result.output


def test_apply_validates_then_publishes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    sent: list[RuleDocument] = []

    def fake_publish(kafka: KafkaSettings, doc: RuleDocument) -> tuple[int, int]:
        sent.append(doc)
        return 0, 41

    monkeypatch.setattr(rules_cli, "publish", fake_publish)
    args = ["rules", "apply", str(BUNDLED_RULES), "--name", "business", "--version", "7"]
    result = runner.invoke(app, [*args, "--author", "alice"])
    assert result.exit_code == 0, result.output
    assert "applied business version 7 by alice" in result.output and "@41" in result.output
    assert sent[0].text == BUNDLED_RULES.read_text(encoding="utf-8") and sent[0].name == "business"
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - id: x\n", encoding="utf-8")
    refused = runner.invoke(app, ["rules", "apply", str(bad), "--name", "business"])
    assert refused.exit_code == 1 and "2:" in refused.output and len(sent) == 1
    wrong = runner.invoke(app, ["rules", "apply", str(BUNDLED_RULES), "--name", "compliance"])
    assert wrong.exit_code == 1 and len(sent) == 1
