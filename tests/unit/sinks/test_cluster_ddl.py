"""Every migration rewritten for a cluster is valid ClickHouse (its own parser says so) and keeps
each table's columns, engine family and sort order."""

from __future__ import annotations

import re

import chdb
import pytest

from dealstream.sinks.clickhouse.cluster import for_cluster, ledger_ddl
from dealstream.sinks.clickhouse.errors import MigrationError
from dealstream.sinks.clickhouse.migrate import load_migrations

STATEMENTS = [s for m in load_migrations() for s in m.statements]


def parses(sql: str) -> bool:
    """ClickHouse's parser accepts ``sql`` (EXPLAIN AST parses without executing)."""
    chdb.query(f"EXPLAIN AST {sql}", "CSV")  # raises on a syntax error
    return True


@pytest.mark.parametrize("statement", STATEMENTS, ids=lambda s: " ".join(s.split()[:6])[:60])
def test_each_migration_statement_has_a_valid_cluster_form(statement: str) -> None:
    rewritten = for_cluster(statement, "dealstream")
    assert all(parses(sql) for sql in rewritten)
    assert all(re.search(r" ON CLUSTER dealstream\s", sql) for sql in rewritten)
    if statement.startswith("CREATE TABLE"):
        local, distributed = rewritten
        name = statement.split()[5]
        assert local.startswith(f"CREATE TABLE IF NOT EXISTS {name}_local ON CLUSTER")
        assert "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/" in local
        assert "non_replicated" not in local
        body = statement.split("ENGINE", maxsplit=1)[0].split(name, 1)[1]
        assert body.strip() in local  # the columns, verbatim
        order = re.search(r"ORDER BY [^\n]+", statement)
        assert order is not None and order.group(0) in local
        assert re.search(
            rf"Distributed\(dealstream, currentDatabase\(\), {name}_local, ", distributed
        )


def test_every_table_and_view_of_the_migrations_is_covered() -> None:
    kinds = {" ".join(s.split()[:2]) for s in STATEMENTS}
    assert kinds <= {"CREATE TABLE", "CREATE VIEW", "CREATE OR", "ALTER TABLE"}
    assert parses(ledger_ddl("dealstream"))


def test_statements_it_cannot_rewrite_and_bad_cluster_names_fail_fast() -> None:
    with pytest.raises(MigrationError, match="cannot run on a cluster"):
        for_cluster("INSERT INTO t VALUES (1)", "dealstream")
    with pytest.raises(MigrationError, match="plain identifier"):
        for_cluster(STATEMENTS[0], "x; DROP TABLE t")
