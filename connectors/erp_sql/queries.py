"""The incremental SQL the ERP connector runs, built with ``psycopg.sql`` (no string pasting).

Keyset pagination on ``(updated_at, key...)``: rows sharing one ``updated_at`` are never
skipped at a page boundary, and a row updated after it was read moves past the cursor and
is read again. ``settle_s`` keeps the newest rows back briefly, so a transaction that commits
a little after it stamped ``updated_at`` is not overtaken by the cursor.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

ORDER_COLUMNS = (
    "order_id", "customer_id", "dealer_id", "sales_rep_id", "region", "status", "currency",
    "total_amount", "created_at", "updated_at",
)  # fmt: skip
LINE_COLUMNS = ("order_id", "line_no", "sku", "quantity", "unit_price", "amount")
INVENTORY_COLUMNS = (
    "sku", "warehouse_id", "region", "on_hand", "reserved", "reorder_point", "unit_cost",
    "turnover_days", "updated_at",
)  # fmt: skip


def table(name: str) -> sql.Identifier:
    """``schema.table`` or ``table`` as a quoted identifier."""
    return sql.Identifier(*name.split("."))


def _columns(names: tuple[str, ...]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


@dataclass(frozen=True)
class Incremental:
    """Rows of ``table`` after a cursor ``(updated_at, *key)``, oldest first."""

    table: str
    columns: tuple[str, ...]
    key: tuple[str, ...]

    def query(self) -> sql.Composed:
        order = ("updated_at", *self.key)
        ordered = sql.SQL(", ").join(sql.Identifier(n) for n in order)
        placeholders = sql.SQL(", ").join(sql.Placeholder() for _ in order)
        return sql.SQL(
            "SELECT {columns} FROM {table} WHERE ({ordered}) > ({placeholders})"
            " AND updated_at <= clock_timestamp() - make_interval(secs => {settle})"
            " ORDER BY {ordered} LIMIT {limit}"
        ).format(
            columns=_columns(self.columns),
            table=table(self.table),
            ordered=ordered,
            placeholders=placeholders,
            settle=sql.Placeholder(),
            limit=sql.Placeholder(),
        )


def lines_query(lines_table: str) -> sql.Composed:
    return sql.SQL(
        "SELECT {columns} FROM {table} WHERE order_id = ANY({ids}) ORDER BY order_id, line_no"
    ).format(columns=_columns(LINE_COLUMNS), table=table(lines_table), ids=sql.Placeholder())
