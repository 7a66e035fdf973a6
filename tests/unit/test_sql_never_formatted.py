"""User input reaches ClickHouse only as bound parameters, never inside SQL text.

Two checks: the dashboard's queries, run with hostile filters against a recording client, only
ever send SQL that is one of the module's constant strings (built at import, not per request)
and carry the input in ``parameters``; and no call site in the package passes a SQL text that
is formatted at the call (f-string, ``%`` or ``.format``), apart from the reviewed exceptions.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dealstream.sinks.dashboard import queries

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("broker", "connectors", "models", "schemas", "sinks", "streams", "dealstream/cli")
HOSTILE = "x' OR 1=1; DROP TABLE pos_transactions; --"
SQL_METHODS = {"query", "command", "raw_query", "query_df", "query_arrow", "execute"}
REVIEWED = {
    # The database name comes from DEALSTREAM_CLICKHOUSE_URL and is validated as an identifier
    # by the settings before it is quoted here; no request reaches it.
    ("sinks/clickhouse/client.py", "_use_database"),
}


@dataclass
class Recorded:
    sql: str
    parameters: dict[str, Any] | None


@dataclass
class RecordingClient:
    """Just enough of clickhouse-connect's Client for the dashboard's queries."""

    calls: list[Recorded] = field(default_factory=list)

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> RecordingClient:
        self.calls.append(Recorded(sql, parameters))
        return self

    def named_results(self) -> Iterator[dict[str, Any]]:
        return iter([])


def test_dashboard_queries_bind_every_filter_and_send_only_constant_sql() -> None:
    client = RecordingClient()
    filters = queries.Filters(
        start=datetime(2025, 1, 1, tzinfo=UTC),
        end=datetime(2025, 2, 1, tzinfo=UTC),
        region=HOSTILE,
        product_line=HOSTILE,
    )
    for board in (queries.forecast, queries.journey, queries.compliance):
        board(client, filters)  # type: ignore[arg-type]
    queries.options(client)  # type: ignore[arg-type]
    constants = {v for k, v in vars(queries).items() if k.isupper() and isinstance(v, str)}
    assert len(client.calls) >= 14
    for call in client.calls:
        assert call.sql in constants, call.sql[:80]
        assert HOSTILE not in call.sql
    bound = [c for c in client.calls if c.parameters is not None]
    assert bound and all(c.parameters["region"] == HOSTILE for c in bound if c.parameters)


def formatted_sql_calls(path: Path) -> Iterator[tuple[str, int]]:
    """(enclosing function, line) of SQL calls whose first argument is formatted in place."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]

    def enclosing(line: int) -> str:
        inside = [f for f in functions if f.lineno <= line <= (f.end_lineno or f.lineno)]
        return min(inside, key=lambda f: (f.end_lineno or 0) - f.lineno).name if inside else ""

    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in SQL_METHODS or not node.args:
            continue
        first = node.args[0]
        formatted = (
            isinstance(first, ast.JoinedStr)
            or (isinstance(first, ast.BinOp) and isinstance(first.op, ast.Mod | ast.Add))
            or (
                isinstance(first, ast.Call)
                and isinstance(first.func, ast.Attribute)
                and first.func.attr == "format"
            )
        )
        if formatted:
            yield enclosing(node.lineno), node.lineno


def test_no_sql_call_formats_its_text_in_place() -> None:
    found = []
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            for function, line in formatted_sql_calls(path):
                if (relative, function) not in REVIEWED:
                    found.append(f"{relative}:{line} in {function}()")
    assert not found, f"SQL formatted at the call; bind the values instead: {found}"


def test_the_scan_finds_a_formatted_call() -> None:
    """The scanner itself must be able to fail."""
    sample = ROOT / "sinks/clickhouse/client.py"
    assert "_use_database" in {f for f, _ in formatted_sql_calls(sample)}
