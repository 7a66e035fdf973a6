"""What a task becomes downstream: its ``store.task`` event and its ClickHouse row.

A task record is JSON-safe state (ms timestamps, amounts as strings, private ``_`` fields for
the customer and the triggering records); these functions turn it into the Avro event (one
event id per status) and the ``store_tasks`` or ``store_task_conversions`` row.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from dealstream.schemas.envelope import derive_event_id
from dealstream.sinks.clickhouse import tables
from dealstream.streams.pipeline import BatchResult, TableSpec
from dealstream.streams.tasks.state import Record

EVENT_TYPE = "store.task"
SOURCE = "dealstream-tasks"
TASKS = TableSpec(tables.STORE_TASKS, tables.STORE_TASKS_COLUMNS)
CONVERSIONS = TableSpec(tables.STORE_TASK_CONVERSIONS, tables.STORE_TASK_CONVERSIONS_COLUMNS)


def emit_outputs(task: Record, out: BatchResult) -> None:
    """The task event (Kafka) and its ClickHouse row."""
    out.events.append(task_event(task))
    raised = datetime.now(UTC)
    if task["status"] == "OPEN":
        out.rows[TASKS.name].append((
            task["task_id"], task["rule_id"], task["rule_version"], task["store_id"] or "",
            task["region"] or "", task["subject"], task["series"] or "", task["sku"] or "",
            task["_customer"], task["views"], task["stock_on_hand"], task["stock_scope"] or "",
            task["preference_tags"], task["script"], _dt(task["first_view_at"]),
            _dt(task["_at"]), _dt(task["expires_at"]), raised, task["_trigger"],
        ))  # fmt: skip
    else:
        amount = task["conversion_amount"]
        out.rows[CONVERSIONS.name].append((
            task["task_id"], task["rule_id"], task["rule_version"], task["store_id"] or "",
            task["conversion_store_id"] or "", task["_customer"], _dt(task["_at"]),
            _dt(task["converted_at"]), None if amount is None else Decimal(amount),
            task["_purchase"], raised,
        ))  # fmt: skip


def task_event(task: Record) -> dict[str, Any]:
    """The ``store.task`` event of a task record (its own event id per status)."""
    payload = {k: v for k, v in task.items() if not k.startswith("_")}
    amount = payload["conversion_amount"]
    payload["conversion_amount"] = None if amount is None else Decimal(amount)
    status = payload["status"]
    return {
        "event_id": derive_event_id(SOURCE, payload["task_id"], status),
        "source": SOURCE,
        "event_type": EVENT_TYPE,
        "occurred_at": task["_at"] if status == "OPEN" else task["converted_at"],
        "ingested_at": int(time.time() * 1000),
        "customer_ref": task["_customer"],
        "payload": payload,
    }


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
