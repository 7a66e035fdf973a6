"""SDK: poll loop, cursors after flush, retries, dead letters, metrics, registry, config files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dealstream.cli.main import app
from dealstream.connectors.base import CheckResult
from dealstream.connectors.output import DeliveryError
from dealstream.connectors.sdk import (
    Batch,
    ConfigError,
    Emit,
    PullConnector,
    PullSettings,
    Reject,
    TransientError,
    load_settings,
    registry,
)
from dealstream.connectors.sdk.metrics import CURSOR_AGE, RECORDS_DEAD_LETTERED, RECORDS_READ
from dealstream.connectors.sdk.testing import MemoryOutput, run_pull
from dealstream.schemas.samples import sample_event


class CountingSettings(PullSettings):
    source: str = "counting"
    total: int = 7
    flaky: int = 0


class Counting(PullConnector[CountingSettings]):
    """Emits inventory events 0..total-1; every third one is a reject; ``flaky`` failures."""

    name = "counting"
    settings_class = CountingSettings
    event_types = ("erp.inventory",)

    def streams(self) -> Sequence[str]:
        return ["numbers"]

    async def acheck(self) -> CheckResult:
        return CheckResult(True, "always")

    async def fetch(self, stream: str, cursor: Any, limit: int) -> Batch:
        if self.settings.flaky > 0:
            self.settings.flaky -= 1
            raise TransientError("flaky", retry_after=0)
        start = cursor or 0
        end = min(start + limit, self.settings.total)
        items: list[Emit | Reject] = []
        for n in range(start, end):
            if n % 3 == 2:
                items.append(Reject("erp.inventory", b"%d" % n, f"n{n}", "bad_n", "n%3==2"))
            else:
                record = sample_event("erp.inventory", event_id=f"id-{n}", payload={"on_hand": n})
                items.append(Emit("erp.inventory", record, b"%d" % n, f"n{n}"))
        return Batch(items, end, more=end < self.settings.total)


def make(tmp_path: Path, output: MemoryOutput, **values: Any) -> Counting:
    settings = CountingSettings(cursor_file=tmp_path / "c.json", max_batch=2, rate_per_s=1e6,
                                retry_initial_s=0.001, retry_max_wait_s=0.01, **values)  # fmt: skip
    return Counting(settings, output=output)


def test_batches_are_produced_then_the_cursor_saved(tmp_path: Path) -> None:
    read_before = RECORDS_READ.labels("counting")._value.get()
    dead_before = RECORDS_DEAD_LETTERED.labels("counting", "erp.inventory")._value.get()
    output = MemoryOutput()
    connector = make(tmp_path, output)
    stats = run_pull(connector)
    assert (stats.read, stats.produced, stats.dead_letters) == (7, 5, 2)
    assert output.event_ids() == ["id-0", "id-1", "id-3", "id-4", "id-6"]
    assert output.dead_letter_codes() == {"bad_n": 2}
    assert json.loads((tmp_path / "c.json").read_text()) == {"numbers": 7}
    assert connector.polls == 4 and output.flushes >= 4
    assert RECORDS_READ.labels("counting")._value.get() - read_before == 7
    assert RECORDS_DEAD_LETTERED.labels("counting", "erp.inventory")._value.get() - dead_before == 2
    assert 0 <= CURSOR_AGE.labels("counting")._value.get() < 60
    # A rerun starts from the cursor: nothing new.
    again = MemoryOutput()
    run_pull(make(tmp_path, again))
    assert again.produced == []


def test_transient_errors_are_retried(tmp_path: Path) -> None:
    output = MemoryOutput()
    run_pull(make(tmp_path, output, flaky=2, retry_attempts=3))
    assert len(output.produced) == 5


def test_failed_delivery_keeps_the_cursor_so_nothing_is_lost(tmp_path: Path) -> None:
    output = MemoryOutput(fail_flushes=1)
    with pytest.raises(DeliveryError):
        run_pull(make(tmp_path, output))
    assert not (tmp_path / "c.json").exists()
    output.fail_flushes = 0
    run_pull(make(tmp_path, output))
    assert output.event_ids() == ["id-0", "id-1", "id-3", "id-4", "id-6"]


def test_memory_output_validates_like_kafka(tmp_path: Path) -> None:
    output = MemoryOutput()
    bad = sample_event("erp.inventory", payload={"sku": ""})
    assert not output.write("erp.inventory", bad, raw=b"x", position="p")
    assert output.dead_letters[0].stage == "VALIDATE"


def test_settings_from_yaml_and_json_with_clear_errors(tmp_path: Path) -> None:
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("total: 3\nmax_batch: 10\n")
    assert load_settings(CountingSettings, yaml_file).total == 3
    json_file = tmp_path / "c.json"
    json_file.write_text('{"total": 4}')
    assert load_settings(CountingSettings, json_file).total == 4
    json_file.write_text('{"totl": 4, "max_batch": 0}')
    with pytest.raises(ConfigError, match=r"totl.*|max_batch"):
        load_settings(CountingSettings, json_file)
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(CountingSettings, tmp_path / "missing.yaml")


def test_registry_finds_the_built_in_connectors() -> None:
    names = set(registry.available())
    assert {"pos-file", "erp-sql", "erp-rest", "pos-http"} <= names
    assert registry.load("erp-sql").settings_class.__name__ == "ErpSqlSettings"
    with pytest.raises(ConfigError, match="installed: "):
        registry.load("nope")


def test_cli_lists_checks_and_reports_config_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["connectors", "list"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0 and "erp-rest" in listed.output and "pos-http" in listed.output
    config = tmp_path / "pos.yaml"
    config.write_text(f"paths: [{tmp_path / 'none.csv'}]\n")
    checked = runner.invoke(app, ["connectors", "check", "pos-file", "--config", str(config)])
    assert checked.exit_code == 1 and "not a readable file" in checked.output
    config.write_text("max_batch: -1\n")
    bad = runner.invoke(app, ["connectors", "check", "erp-sql", "--config", str(config)])
    assert bad.exit_code == 2 and "max_batch" in bad.output
