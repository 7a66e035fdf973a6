"""The `dealstream` command's offline subcommands (no broker needed)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from dealstream.cli.main import app

runner = CliRunner()


def test_help_lists_every_command_group() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("broker", "topics", "schemas", "connectors", "worker", "demo"):
        assert command in result.output


def test_schemas_check_passes_on_the_repository_schemas() -> None:
    result = runner.invoke(app, ["schemas", "check"])
    assert result.exit_code == 0, result.output
    assert "backward compatible" in result.output


def test_schemas_show_prints_the_composed_schema() -> None:
    result = runner.invoke(app, ["schemas", "show", "pos.transaction"])
    schema = json.loads(result.output)
    assert [f["name"] for f in schema["fields"]][:2] == ["event_id", "source"]
    assert schema["fields"][-1]["name"] == "payload"


def test_topics_list_names_dead_letter_and_compacted_topics() -> None:
    result = runner.invoke(app, ["topics", "list"])
    assert "dlq.pos.transactions.v1" in result.output
    assert "cleanup.policy=compact" in result.output


def test_pos_file_check_reports_missing_files(tmp_path: object) -> None:
    result = runner.invoke(app, ["connectors", "check-pos-file", "/nonexistent/export.csv"])
    assert result.exit_code == 1
    assert "not a readable file" in result.output
