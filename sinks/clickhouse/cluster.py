"""The migrations rewritten for a replicated, sharded ClickHouse cluster.

With ``DEALSTREAM_CLICKHOUSE_CLUSTER=<name>`` every table of a migration becomes two: a
``Replicated*MergeTree`` table ``<name>_local`` on every node (ZooKeeper/Keeper path per shard,
macros ``{shard}`` and ``{replica}`` from the server config) and a ``Distributed`` table under the
name the code reads and writes, sharded by the table's first sorting column, so the rows that
``ReplacingMergeTree`` must collapse (same sorting key) always meet on one shard. Views and
``ALTER``s run ``ON CLUSTER``. The same migration files serve one chDB directory and a cluster.

>>> local, distributed = for_cluster(
...     "CREATE TABLE IF NOT EXISTS t (id String, v UInt64) "
...     "ENGINE = ReplacingMergeTree(v) ORDER BY (id, v)", "dealstream")
>>> local.splitlines()[0]
'CREATE TABLE IF NOT EXISTS t_local ON CLUSTER dealstream'
>>> "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/t_local'" in local
True
>>> distributed.split(" ENGINE = ")[1]
'Distributed(dealstream, currentDatabase(), t_local, cityHash64(id))'
"""

from __future__ import annotations

import re

from dealstream.sinks.clickhouse.errors import MigrationError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TABLE = re.compile(
    r"^CREATE TABLE IF NOT EXISTS (?P<name>\w+)\s*(?P<columns>\(.*\))\s*"
    r"ENGINE\s*=\s*(?P<engine>\w*MergeTree)(?:\((?P<args>[^()]*)\))?(?P<rest>.*)$",
    re.DOTALL,
)
_VIEW = re.compile(
    r"^(?P<head>CREATE (?:OR REPLACE )?(?:MATERIALIZED )?VIEW(?: IF NOT EXISTS)? \w+)\s"
)
_ALTER = re.compile(r"^ALTER TABLE (?P<name>\w+)\s(?P<ops>.*)$", re.DOTALL)
_ORDER_BY = re.compile(
    r"\bORDER BY\s+(?P<key>.+?)\s*(?:\n\s*(?:PARTITION|PRIMARY|SAMPLE|TTL|SETTINGS)\b|$)", re.DOTALL
)
# Replicated tables deduplicate inserts by default; this setting is for the plain ones only.
_NON_REPLICATED = re.compile(r"\n?SETTINGS non_replicated_deduplication_window = \d+\s*$")


def ledger_ddl(cluster: str) -> str:
    """``schema_migrations`` replicated to every node of the cluster (one Keeper path)."""
    _check(cluster)
    return (
        f"CREATE TABLE IF NOT EXISTS schema_migrations ON CLUSTER {cluster}\n"
        "(\n    version    UInt32,\n    name       String,\n    checksum   String,\n"
        "    applied_at DateTime64(3, 'UTC')\n)\n"
        "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{database}/schema_migrations',"
        " '{replica}', applied_at)\nORDER BY version"
    )


def for_cluster(statement: str, cluster: str) -> list[str]:
    """The statements that do on ``cluster`` what ``statement`` does on one server."""
    _check(cluster)
    text = statement.strip()
    table = _TABLE.match(text)
    if table is not None:
        return _table(table, cluster)
    view = _VIEW.match(text)
    if view is not None:
        return [f"{view['head']} ON CLUSTER {cluster} {text[view.end() :]}"]
    alter = _ALTER.match(text)
    if alter is not None:
        name, ops = alter["name"], alter["ops"]
        return [
            f"ALTER TABLE {name}_local ON CLUSTER {cluster} {ops}",
            f"ALTER TABLE {name} ON CLUSTER {cluster} {ops}",
        ]
    raise MigrationError(
        f"cannot run on a cluster (only CREATE TABLE ... MergeTree, CREATE VIEW and ALTER "
        f"TABLE are rewritten): {text[:80]!r}"
    )


def _table(match: re.Match[str], cluster: str) -> list[str]:
    name, engine, args = match["name"], match["engine"], (match["args"] or "").strip()
    rest = _NON_REPLICATED.sub("", match["rest"].rstrip())
    order = _ORDER_BY.search(rest)
    if order is None:
        raise MigrationError(f"table {name} has no ORDER BY to shard by")
    first = order["key"].strip().removeprefix("(").split(",")[0]
    shard_key = first.replace(")", "").replace(" DESC", "").strip()
    path = f"'/clickhouse/tables/{{shard}}/{{database}}/{name}_local', '{{replica}}'"
    replicated = f"Replicated{engine}({path}{', ' + args if args else ''})"
    local = (
        f"CREATE TABLE IF NOT EXISTS {name}_local ON CLUSTER {cluster}\n"
        f"{match['columns']}\nENGINE = {replicated}{rest}"
    )
    distributed = (
        f"CREATE TABLE IF NOT EXISTS {name} ON CLUSTER {cluster} AS {name}_local ENGINE = "
        f"Distributed({cluster}, currentDatabase(), {name}_local, cityHash64({shard_key}))"
    )
    return [local, distributed]


def _check(cluster: str) -> None:
    if not _NAME.match(cluster):
        raise MigrationError(f"cluster name {cluster!r} must be a plain identifier")
