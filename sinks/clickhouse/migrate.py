"""Versioned schema migrations, applied at start and recorded in ``schema_migrations``.

Files are ``migrations/NNNN_description.sql``; each holds statements separated by a ``;`` at the
end of a line (``--`` comment lines are dropped). ClickHouse has no transactional DDL, so every
statement must be idempotent (``IF NOT EXISTS``): a migration interrupted half-way is simply run
again. An applied migration is immutable: if its file's checksum changes, start is refused,
because the database would no longer match what the code believes it is.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from clickhouse_connect.driver.client import Client

from dealstream.sinks.clickhouse.cluster import for_cluster, ledger_ddl
from dealstream.sinks.clickhouse.errors import MigrationError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One SQL file: its version, name, checksum and statements."""

    version: int
    name: str
    checksum: str
    statements: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AppliedMigration:
    """A row of ``schema_migrations``."""

    version: int
    name: str
    checksum: str
    applied_at: datetime


def split_statements(sql: str) -> tuple[str, ...]:
    """Split a migration into statements.

    >>> split_statements("-- note\\nCREATE TABLE a (x UInt8)\\nENGINE = Log;\\nSELECT 1;\\n")
    ('CREATE TABLE a (x UInt8)\\nENGINE = Log', 'SELECT 1')
    """
    statements: list[str] = []
    current: list[str] = []
    for line in sql.splitlines():
        if line.lstrip().startswith("--"):
            continue
        current.append(line)
        if line.rstrip().endswith(";"):
            statements.append("\n".join(current).strip().removesuffix(";").strip())
            current = []
    tail = "\n".join(current).strip()
    if tail:
        statements.append(tail)
    return tuple(s for s in statements if s)


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Read and check the migration files of ``directory``, ordered by version."""
    migrations: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"migration file {path} must be named NNNN_lower_snake_case.sql")
        raw = path.read_bytes()
        migrations.append(
            Migration(
                version=int(match.group(1)),
                name=match.group(2),
                checksum=hashlib.sha256(raw).hexdigest(),
                statements=split_statements(raw.decode("utf-8")),
            )
        )
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {directory}: {versions}")
    return migrations


def applied_migrations(
    client: Client, *, cluster: str | None = None
) -> dict[int, AppliedMigration]:
    """The ledger, by version (created empty when missing)."""
    client.command(ledger_ddl(cluster) if cluster else _CREATE_LEDGER)
    result = client.query(
        "SELECT version, name, checksum, applied_at FROM schema_migrations FINAL ORDER BY version"
    )
    return {
        int(row[0]): AppliedMigration(int(row[0]), str(row[1]), str(row[2]), row[3])
        for row in result.result_rows
    }


def migrate(
    client: Client, *, directory: Path = MIGRATIONS_DIR, cluster: str | None = None
) -> list[AppliedMigration]:
    """Apply pending migrations in order to the client's database; return those applied now.

    With ``cluster``, each statement is rewritten for a replicated, sharded cluster (see
    :mod:`dealstream.sinks.clickhouse.cluster`). Raises ``MigrationError`` if an applied
    migration changed or is unknown to this build.
    """
    migrations = load_migrations(directory)
    done = applied_migrations(client, cluster=cluster)
    known = {m.version: m for m in migrations}
    unknown = sorted(set(done) - set(known))
    if unknown:
        raise MigrationError(
            f"database {client.database!r} has migrations {unknown} that this build does not "
            "ship: deploy the newer build, or restore those files"
        )
    for version, record in done.items():
        if known[version].checksum != record.checksum:
            raise MigrationError(
                f"migration {version:04d}_{record.name}.sql changed after it was applied to "
                f"{client.database!r} (checksum {record.checksum[:12]} -> "
                f"{known[version].checksum[:12]}): restore the file and add a new migration instead"
            )
    applied: list[AppliedMigration] = []
    for migration in migrations:
        if migration.version in done:
            continue
        for statement in migration.statements:
            for command in for_cluster(statement, cluster) if cluster else [statement]:
                client.command(command)
        record = AppliedMigration(
            migration.version, migration.name, migration.checksum, datetime.now(UTC)
        )
        client.insert(
            "schema_migrations",
            [[record.version, record.name, record.checksum, record.applied_at]],
            column_names=["version", "name", "checksum", "applied_at"],
        )
        applied.append(record)
    return applied
