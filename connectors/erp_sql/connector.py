"""ERP over SQL (PostgreSQL, psycopg 3): orders and inventory, incrementally, to Kafka.

Two streams with their own cursor ``{"updated_at": ISO-8601 µs, "key": [...]}``:
``orders`` (``erp_orders`` + ``erp_order_lines``, one ``erp.order`` event per order version)
and ``inventory`` (``erp_inventory``, one ``erp.inventory`` event per SKU per warehouse per
version). Table names are settings; the columns are the contract (map other ERPs with a view).
The ERP must bump ``erp_orders.updated_at`` when an order's lines change.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from dealstream.connectors.base import CheckResult
from dealstream.connectors.erp_sql import mapping
from dealstream.connectors.erp_sql.queries import (
    INVENTORY_COLUMNS,
    ORDER_COLUMNS,
    Incremental,
    lines_query,
)
from dealstream.connectors.sdk import Batch, Emit, PullConnector, PullSettings, RecordError, Reject
from dealstream.connectors.sdk.errors import TransientError

Stream = Literal["orders", "inventory"]
_START = datetime(1, 1, 1, tzinfo=UTC)


def _all_streams() -> list[Stream]:
    return ["orders", "inventory"]


class ErpSqlSettings(PullSettings):
    model_config = SettingsConfigDict(env_prefix="DEALSTREAM_ERP_SQL_", extra="forbid")

    source: str = "erp-sql"
    dsn: SecretStr = SecretStr("postgresql:///erp")
    """libpq connection string or URL; holds the password, so keep it in the environment."""
    cursor_file: Path = Path(".local/cursors/erp-sql.json")
    streams: list[Stream] = Field(default_factory=_all_streams)
    orders_table: str = "erp_orders"
    order_lines_table: str = "erp_order_lines"
    inventory_table: str = "erp_inventory"
    status_map: dict[str, str] = Field(default_factory=dict)
    """ERP status code → CREATED/CONFIRMED/...; unmapped codes pass through if valid."""
    settle_s: float = Field(2.0, ge=0)
    connect_timeout_s: int = Field(10, gt=0)


class ErpSqlConnector(PullConnector[ErpSqlSettings]):
    """ERP orders and inventory from PostgreSQL (psycopg 3), keyset-incremental."""

    name = "erp-sql"
    settings_class = ErpSqlSettings
    event_types = (mapping.ORDER, mapping.INVENTORY)

    def __init__(self, settings: ErpSqlSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self._conn: psycopg.AsyncConnection[dict[str, Any]] | None = None
        self._orders = Incremental(settings.orders_table, ORDER_COLUMNS, ("order_id",))
        self._inventory = Incremental(
            settings.inventory_table, INVENTORY_COLUMNS, ("sku", "warehouse_id")
        )

    def streams(self) -> Sequence[str]:
        return self.settings.streams

    async def _connect(self) -> psycopg.AsyncConnection[dict[str, Any]]:
        return await psycopg.AsyncConnection.connect(
            self.settings.dsn.get_secret_value(),
            autocommit=False,
            row_factory=dict_row,
            connect_timeout=self.settings.connect_timeout_s,
        )

    async def acheck(self) -> CheckResult:
        try:
            conn = await self._connect()
        except psycopg.Error as error:
            return CheckResult(False, f"cannot connect to PostgreSQL: {error}".strip())
        async with conn:
            missing = []
            for name in self._tables():
                found = await conn.execute("SELECT to_regclass(%s) AS t", (name,))
                row = await found.fetchone()
                if row is None or row["t"] is None:
                    missing.append(name)
        if missing:
            return CheckResult(False, f"table(s) not found: {', '.join(missing)}")
        return CheckResult(True, f"connected; {', '.join(self._tables())} readable")

    def _tables(self) -> list[str]:
        s = self.settings
        tables = []
        if "orders" in s.streams:
            tables += [s.orders_table, s.order_lines_table]
        if "inventory" in s.streams:
            tables.append(s.inventory_table)
        return tables

    async def open(self) -> None:
        self._conn = await self._connect()
        await self._conn.set_read_only(True)
        await self._conn.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def fetch(self, stream: str, cursor: Any, limit: int) -> Batch:
        if self._conn is None or self._conn.closed:
            try:
                await self.open()
            except psycopg.OperationalError as error:
                raise TransientError(f"reconnect failed: {error}") from error
        assert self._conn is not None
        try:
            async with self._conn.transaction():
                if stream == "orders":
                    return await self._fetch_orders(self._conn, cursor, limit)
                return await self._fetch_inventory(self._conn, cursor, limit)
        except psycopg.OperationalError as error:
            await self.close()  # reconnect on the next attempt
            raise TransientError(f"{stream}: {error}") from error

    @staticmethod
    def _after(cursor: Any, width: int) -> list[Any]:
        if not cursor:
            return [_START, *([""] * width)]
        return [datetime.fromisoformat(cursor["updated_at"]), *cursor["key"]]

    @staticmethod
    def _cursor(row: dict[str, Any], key: tuple[str, ...]) -> dict[str, Any]:
        moment = row["updated_at"]
        return {
            "updated_at": moment.astimezone(UTC).isoformat(),
            "key": [row[k] for k in key],
        }

    async def _rows(
        self, conn: psycopg.AsyncConnection[dict[str, Any]], inc: Incremental, cursor: Any, n: int
    ) -> list[dict[str, Any]]:
        params = [*self._after(cursor, len(inc.key)), self.settings.settle_s, n]
        result = await conn.execute(inc.query(), params)
        return await result.fetchall()

    async def _fetch_orders(
        self, conn: psycopg.AsyncConnection[dict[str, Any]], cursor: Any, limit: int
    ) -> Batch:
        rows = await self._rows(conn, self._orders, cursor, limit)
        if not rows:
            return Batch([], cursor)
        ids = [row["order_id"] for row in rows]
        found = await conn.execute(lines_query(self.settings.order_lines_table), [ids])
        lines: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for line in await found.fetchall():
            lines[line["order_id"]].append(line)
        now_ms = int(time.time() * 1000)
        items: list[Emit | Reject] = []
        for row in rows:
            position = f"{self.settings.orders_table}:{row['order_id']}@{row['updated_at']}"
            raw = mapping.raw_bytes({**row, "lines": lines.get(row["order_id"], [])})
            try:
                record = mapping.order_event(
                    row,
                    lines.get(row["order_id"], []),
                    source=self.settings.source,
                    ingested_at_ms=now_ms,
                    status_map=self.settings.status_map,
                )
            except RecordError as error:
                items.append(Reject(mapping.ORDER, raw, position, error.code, error.message))
            else:
                items.append(Emit(mapping.ORDER, record, raw, position))
        return Batch(items, self._cursor(rows[-1], self._orders.key), more=len(rows) == limit)

    async def _fetch_inventory(
        self, conn: psycopg.AsyncConnection[dict[str, Any]], cursor: Any, limit: int
    ) -> Batch:
        rows = await self._rows(conn, self._inventory, cursor, limit)
        if not rows:
            return Batch([], cursor)
        now_ms = int(time.time() * 1000)
        items: list[Emit | Reject] = []
        for row in rows:
            position = (
                f"{self.settings.inventory_table}:{row['sku']}/{row['warehouse_id']}"
                f"@{row['updated_at']}"
            )
            raw = mapping.raw_bytes(row)
            try:
                record = mapping.inventory_event(
                    row, source=self.settings.source, ingested_at_ms=now_ms
                )
            except RecordError as error:
                items.append(Reject(mapping.INVENTORY, raw, position, error.code, error.message))
            else:
                items.append(Emit(mapping.INVENTORY, record, raw, position))
        return Batch(items, self._cursor(rows[-1], self._inventory.key), more=len(rows) == limit)
