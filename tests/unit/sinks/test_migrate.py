"""Migrations against a real embedded chDB, one database per test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from dealstream.sinks.clickhouse import ClickHouseSettings, MigrationError, connect, migrate
from dealstream.sinks.clickhouse.migrate import MIGRATIONS_DIR, load_migrations
from dealstream.sinks.clickhouse.tables import (
    COMPLIANCE_VIOLATIONS,
    COMPLIANCE_VIOLATIONS_COLUMNS,
    DEAD_LETTERS,
    DEAD_LETTERS_COLUMNS,
    POS_TRANSACTIONS,
    POS_TRANSACTIONS_COLUMNS,
)


@pytest.fixture
def fresh(settings: ClickHouseSettings) -> Iterator[Client]:
    c = connect(settings=settings)
    yield c
    c.command(f"DROP DATABASE IF EXISTS `{c.database}`")
    c.close()


def test_migrate_twice_applies_once(fresh: Client) -> None:
    first = migrate(fresh)
    expected = [(m.version, m.name) for m in load_migrations()]
    assert [(m.version, m.name) for m in first] == expected
    assert expected[0] == (1, "pos_transactions")
    assert migrate(fresh) == []
    assert fresh.command("SELECT count() FROM schema_migrations FINAL") == len(expected)
    tables = dict(
        fresh.query(
            "SELECT name, engine FROM system.tables WHERE database = currentDatabase()"
        ).result_rows
    )
    for table in (POS_TRANSACTIONS, DEAD_LETTERS, COMPLIANCE_VIOLATIONS, "schema_migrations"):
        assert tables[table] == "ReplacingMergeTree"
    assert tables["pos_transactions_dedup"] == tables["dead_letters_daily"] == "View"


def test_pos_transactions_is_keyed_by_event_id(fresh: Client) -> None:
    migrate(fresh)
    key, partition = fresh.query(
        "SELECT sorting_key, partition_key FROM system.tables "
        "WHERE database = currentDatabase() AND name = 'pos_transactions'"
    ).result_rows[0]
    assert (key, partition) == ("event_id", "toYYYYMM(occurred_at)")


@pytest.mark.parametrize(
    ("table", "columns"),
    [
        (POS_TRANSACTIONS, POS_TRANSACTIONS_COLUMNS),
        (DEAD_LETTERS, DEAD_LETTERS_COLUMNS),
        (COMPLIANCE_VIOLATIONS, COMPLIANCE_VIOLATIONS_COLUMNS),
    ],
)
def test_column_constants_match_the_migrated_tables(
    fresh: Client, table: str, columns: tuple[str, ...]
) -> None:
    migrate(fresh)
    described = fresh.query(
        "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = "
        "{t:String} ORDER BY position",
        parameters={"t": table},
    ).result_rows
    assert tuple(r[0] for r in described) == columns


def test_changed_applied_migration_is_refused(fresh: Client, tmp_path: Path) -> None:
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, directory)
    migrate(fresh, directory=directory)
    sql = directory / "0001_pos_transactions.sql"
    sql.write_text(sql.read_text() + "\n-- a harmless-looking edit\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(fresh, directory=directory)


def test_new_migration_is_applied_after_the_old_ones(fresh: Client, tmp_path: Path) -> None:
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, directory)
    migrate(fresh, directory=directory)
    (directory / "0002_add_note.sql").write_text(
        "ALTER TABLE pos_transactions ADD COLUMN IF NOT EXISTS note String DEFAULT '';\n"
    )
    assert [m.version for m in migrate(fresh, directory=directory)] == [2]
    assert (
        fresh.command(
            "SELECT count() FROM system.columns WHERE database = currentDatabase() "
            "AND table = 'pos_transactions' AND name = 'note'"
        )
        == 1
    )


def test_database_ahead_of_the_build_is_refused(fresh: Client, tmp_path: Path) -> None:
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, directory)
    (directory / "0002_later.sql").write_text("SELECT 1;\n")
    migrate(fresh, directory=directory)
    with pytest.raises(MigrationError, match=r"migrations \[2\] that this build does not ship"):
        migrate(fresh)


def test_badly_named_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "1_init.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_lower_snake_case"):
        load_migrations(tmp_path)
