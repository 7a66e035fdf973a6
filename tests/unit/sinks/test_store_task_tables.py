"""The store task tables take the pipeline's rows as they are, and the view gives the funnel."""

from __future__ import annotations

import importlib.util
import sys
from decimal import Decimal
from pathlib import Path
from types import ModuleType

from clickhouse_connect.driver.client import Client

from dealstream.sinks.clickhouse import tables
from dealstream.sinks.clickhouse.batching import BatchingSink
from dealstream.sinks.clickhouse.settings import ClickHouseSettings

DAY = 86_400_000


def _scenario() -> ModuleType:
    """The in-memory pipeline test's feed, reused to make real rows."""
    path = Path(__file__).parents[1] / "streams" / "test_store_tasks.py"
    spec = importlib.util.spec_from_file_location("store_task_scenario", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_columns_match_the_migrated_tables(client: Client) -> None:
    for table, columns in (
        (tables.STORE_TASKS, tables.STORE_TASKS_COLUMNS),
        (tables.STORE_TASK_CONVERSIONS, tables.STORE_TASK_CONVERSIONS_COLUMNS),
    ):
        described = client.query(
            "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = "
            "{t:String} ORDER BY position",
            parameters={"t": table},
        ).result_rows
        assert tuple(r[0] for r in described) == columns


def test_pipeline_rows_insert_and_the_view_gives_conversion_rates(
    client: Client, settings: ClickHouseSettings
) -> None:
    s = _scenario()
    f, t0 = s.Feed(), s.T0
    msgs = []
    for who, store, buys in (("phone:a", "SH001", True), ("phone:b", "SH001", False),
                             ("phone:c", "SH002", True)):  # fmt: skip
        msgs.append(f.buy(t0 - 9 * DAY, who=who, store=store, sku="FL-01", line="滤芯"))
        msgs += [f.view(t0 + i * DAY, who=who) for i in range(3)]
        if buys:
            msgs.append(f.buy(t0 + 4 * DAY, who=who, store=store))
    result = s.run(s.new(), msgs)
    sink = BatchingSink(client, settings=settings, name="t")
    for table, columns in (
        (tables.STORE_TASKS, tables.STORE_TASKS_COLUMNS),
        (tables.STORE_TASK_CONVERSIONS, tables.STORE_TASK_CONVERSIONS_COLUMNS),
    ):
        sink.register(table, columns)
        sink.add(table, result.rows[table])
        sink.add(table, result.rows[table])  # a replay collapses
    sink.flush_all()
    rates = client.query(
        "SELECT store_id, rule_id, tasks, converted, conversion_rate, converted_amount "
        "FROM store_task_conversion_rates ORDER BY store_id"
    ).result_rows
    assert [r[:5] for r in rates] == [
        ("SH001", "series_views", 2, 1, 0.5),
        ("SH002", "series_views", 1, 1, 1.0),
    ]
    assert rates[0][5] == Decimal("2199.00")
    tags = client.query("SELECT preference_tags FROM store_tasks FINAL LIMIT 1").result_rows
    assert tags[0][0] == ["净水器", "滤芯"]
