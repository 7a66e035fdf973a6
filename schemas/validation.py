"""Semantic checks that Avro cannot express, run after decode and before encode at the edge.

Checks are data: a table of small check functions per event type, built once from rule
constructors (:func:`required`, :func:`non_negative`, ... in
:mod:`dealstream.schemas.validation_rules`, re-exported here) plus a size limit on every string
field derived from the schema. Pure Python, no pydantic, so it is cheap per event. Extend
with :func:`register`.

Most records are valid, so :func:`validate` first runs one function generated per event
type from its rules (each :class:`Rule` writes its test as Python source, compiled by
:mod:`dealstream.schemas.validation_source`); only when that finds a problem are the checks
run one by one for their messages.

>>> from dealstream.schemas.samples import sample_event
>>> validate("pos.transaction", sample_event("pos.transaction"))
[]
>>> [e.code for e in validate("pos.transaction", sample_event("pos.transaction", quantity=-2))]
['negative']
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from dealstream.schemas.catalog import EventType
from dealstream.schemas.catalog import event_type as _event_type
from dealstream.schemas.validation_rules import (
    MAX_FUTURE_MS,
    MAX_ID,
    MAX_MONEY,
    MAX_TEXT,
    MIN_TIME_MS,
    Check,
    Condition,
    FieldRule,
    Rule,
    SizeRule,
    ValidationError,
    finite,
    max_length,
    non_negative,
    one_of,
    required,
    timestamp,
)
from dealstream.schemas.validation_source import Fast, calls, generate

__all__ = [
    "MAX_FUTURE_MS",
    "MAX_ID",
    "MAX_MONEY",
    "MAX_TEXT",
    "MIN_TIME_MS",
    "Check",
    "Condition",
    "FieldRule",
    "Rule",
    "ValidationError",
    "check",
    "finite",
    "max_length",
    "non_negative",
    "one_of",
    "register",
    "required",
    "timestamp",
    "validate",
]


def _is_return_order(record: Mapping[str, Any]) -> bool:
    payload = record.get("payload")
    return isinstance(payload, dict) and payload.get("status") == "RETURNED"


_ENVELOPE: list[Check] = [
    required("event_id"),
    required("source"),
    timestamp("occurred_at"),
    timestamp("ingested_at"),
]

_RULES: dict[str, list[Check]] = {
    "erp.order": [
        required("payload.order_id"),
        required("payload.customer_id"),
        required("payload.region"),
        required("payload.lines[].sku"),
        non_negative("payload.total_amount", unless=_is_return_order),
        non_negative("payload.lines[].quantity", unless=_is_return_order),
        non_negative("payload.lines[].unit_price"),
        finite("payload.lines[].amount"),
        timestamp("payload.created_at"),
        timestamp("payload.updated_at"),
    ],
    "erp.inventory": [
        required("payload.sku"),
        required("payload.warehouse_id"),
        required("payload.region"),
        finite("payload.on_hand"),  # negative stock is real in ERPs that allow overselling
        non_negative("payload.reserved"),
        non_negative("payload.reorder_point"),
        non_negative("payload.unit_cost"),
        non_negative("payload.turnover_days"),
        timestamp("payload.snapshot_at"),
    ],
    "tender.notice": [
        required("payload.notice_id"),
        required("payload.title"),
        required("payload.url"),
        non_negative("payload.budget"),
        non_negative("payload.award_amount"),
        timestamp("payload.published_at"),
    ],
    "pos.transaction": [
        required("payload.transaction_id"),
        required("payload.store_id"),
        required("payload.region"),
        required("payload.sku"),
        # ClickHouse stores line_no as UInt32: a negative one would fail every insert of its batch.
        non_negative("payload.line_no"),
        non_negative("payload.quantity", unless="payload.is_refund"),
        non_negative("payload.unit_price"),
        non_negative("payload.discount"),
        non_negative("payload.amount", unless="payload.is_refund"),
    ],
    "wecom.message": [
        required("payload.conversation_id"),
        required("payload.message_id"),
    ],
    "miniprogram.event": [
        required("payload.session_id"),
        non_negative("payload.amount"),
    ],
    "iot.telemetry": [
        required("payload.device_id"),
        required("payload.metric"),
        finite("payload.value"),
    ],
    "market.competitor_price": [
        required("payload.sku"),
        required("payload.region"),
        required("payload.competitor"),
        non_negative("payload.price"),
        finite("payload.change_pct"),
    ],
    "review": [
        required("payload.platform"),
        required("payload.review_id"),
        required("payload.store_id"),
        timestamp("payload.posted_at"),
    ],
    "procurement_plan": [
        required("payload.plan_id"),
        required("payload.document_id"),
        required("payload.item"),
        non_negative("payload.quantity"),
        non_negative("payload.budget"),
    ],
    "store.task": [
        required("payload.task_id"),
        required("payload.rule_id"),
        non_negative("payload.views"),
        non_negative("payload.conversion_amount"),
    ],
    "alert": [
        required("alert_id"),
        required("kind"),
        required("entity_key"),
        required("input_event_ids[]"),
        timestamp("raised_at"),
    ],
    "dead_letter": [
        required("original_topic"),
        required("error_code"),
        required("source"),
        timestamp("failed_at"),
    ],
}


class _Compiled(NamedTuple):
    checks: tuple[Check, ...]  # one by one, with messages: the slow path
    fast: Fast  # True when the record has no problem
    source: str  # of ``fast``, to read when debugging


_compiled: dict[str, _Compiled] = {}


def register(event_type_name: str, *checks: Check) -> None:
    """Add checks for an event type (e.g. from a connector that knows its source better).
    The rule constructors below join the generated fast path; a plain function is called
    from it, so it must not change the record."""
    _event_type(event_type_name)  # fail fast on a typo
    _RULES.setdefault(event_type_name, []).extend(checks)
    _compiled.pop(event_type_name, None)


def _compile(et: EventType) -> _Compiled:
    found = _compiled.get(et.name)
    if found is None:
        own = list(_RULES.get(et.name, ()))
        if et.enveloped:
            name = et.name
            own = [*_ENVELOPE, one_of("event_type", frozenset({name})), *own]
        rules: tuple[Check, ...] = (*own, SizeRule(et))
        checks = tuple(one.check if isinstance(one, Rule) else one for one in rules)
        writers = [one.write if isinstance(one, Rule) else calls(one) for one in rules]
        found = _compiled[et.name] = _Compiled(checks, *generate(et.name, writers))
    return found


def validate(
    event_type: EventType | str, record: Mapping[str, Any], *, now_ms: int | None = None
) -> list[ValidationError]:
    """Every problem found in ``record`` (empty list when valid)."""
    compiled = _compiled.get(event_type) if type(event_type) is str else None
    if compiled is None:
        et = event_type if isinstance(event_type, EventType) else _event_type(event_type)
        compiled = _compile(et)
    now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    checks, fast, _ = compiled
    if fast(record, now):
        return []
    out: list[ValidationError] = []
    for one in checks:
        one(record, now, out)
    return out


def _validate_slow(
    event_type: EventType | str, record: Mapping[str, Any], *, now_ms: int | None = None
) -> list[ValidationError]:
    """:func:`validate` without the generated function: the reference its tests compare to."""
    et = event_type if isinstance(event_type, EventType) else _event_type(event_type)
    now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    out: list[ValidationError] = []
    for one in _compile(et).checks:
        one(record, now, out)
    return out


def check(
    event_type: EventType | str, record: Mapping[str, Any], *, now_ms: int | None = None
) -> None:
    """Raise the first :class:`ValidationError` of ``record``, if any."""
    problems = validate(event_type, record, now_ms=now_ms)
    if problems:
        raise problems[0]
