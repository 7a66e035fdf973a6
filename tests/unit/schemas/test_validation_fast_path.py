"""The generated fast path of ``validate`` agrees with the checks run one by one, for any record."""

from __future__ import annotations

import copy
import math
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dealstream.schemas import catalog, validation, validation_source
from dealstream.schemas.samples import OCCURRED, sample_event
from dealstream.schemas.validation import MAX_FUTURE_MS, MAX_ID, MAX_TEXT, MIN_TIME_MS

NOW_MS = int(OCCURRED.timestamp() * 1000) + 60_000
NOWS = [NOW_MS, NOW_MS + 1, NOW_MS - 7, 1_765_000_000_123]
TYPES = catalog.all_types()  # the enveloped event types plus alert and dead letter
DELETE = object()
Path = tuple[str | int, ...]


class Text(str):
    """Equal to a str, but not exactly one: the checks look at exact types."""


def _utc(millis: int, micros: int = 0) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis, microseconds=micros)


def _times(now: int) -> st.SearchStrategy[Any]:
    """Times on both sides of both bounds, down to the microsecond, in every accepted form."""
    latest = now + MAX_FUTURE_MS
    near = st.sampled_from([MIN_TIME_MS, latest]).flatmap(
        lambda bound: st.integers(-3, 3).flatmap(
            lambda micros: st.sampled_from(
                [
                    _utc(bound, micros),
                    _utc(bound, micros).replace(tzinfo=None),
                    _utc(bound, micros).astimezone(timezone(timedelta(hours=8))),
                    bound + micros,
                ]
            )
        )
    )
    anywhere = st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.none()
    ).flatmap(lambda t: st.sampled_from([t, t.replace(tzinfo=UTC)]))
    far = st.sampled_from([0, -5, 10**15, datetime(1, 1, 1), datetime.max.replace(tzinfo=UTC)])
    return near | anywhere | far


def _values(now: int) -> st.SearchStrategy[Any]:
    numbers = st.sampled_from(
        [0, 1, -1, -0.0, 2.5, -0.5, math.nan, math.inf, -math.inf, 1e300, True, False, 10**30]
    )
    money = st.sampled_from(
        [
            Decimal("12.34"),
            Decimal("-3.50"),
            Decimal("1.005"),
            Decimal("0.10"),
            Decimal("-0.00"),
            Decimal("1E+16"),
            Decimal("9999999999999999.99"),
            Decimal("-9999999999999999.99"),
            Decimal("1E+17"),
            Decimal("NaN"),
            Decimal("Infinity"),
            Decimal("-Infinity"),
            Decimal("3"),
        ]
    ) | st.decimals(allow_nan=False, places=3, min_value=-1000, max_value=1000)
    texts = st.sampled_from(
        [
            "",
            " ",
            "\t\n",
            "x",
            "长",
            Text("id-1"),
            Text(""),
            "a" * MAX_ID,
            "a" * (MAX_ID + 1),
            "长" * (MAX_TEXT + 1),
            b"raw",
            b"\x00" * (MAX_TEXT + 1),
        ]
    )
    names = st.sampled_from([et.name for et in TYPES] + ["pos.txn", "RETURNED", "CONFIRMED"])
    shapes = st.sampled_from(
        [
            None,
            [],
            [1, "x"],
            [{"sku": ""}],
            {},
            {"k": "v"},
            {"k": "x" * (MAX_TEXT + 1)},
            {"k": 3},
            OrderedDict(k="v"),
        ]
    )
    return numbers | money | texts | names | shapes | _times(now)


def _paths(node: Any, prefix: Path = ()) -> list[Path]:
    found: list[Path] = []
    items = (
        node.items() if isinstance(node, dict) else enumerate(node) if type(node) is list else ()
    )
    for key, value in items:
        found.append((*prefix, key))
        found += _paths(value, (*prefix, key))
    return found


def _apply(record: dict[str, Any], path: Path, value: Any) -> None:
    parent: Any = record
    for key in path[:-1]:
        parent = parent[key]
    if value is DELETE:
        if isinstance(parent, dict):
            del parent[path[-1]]
    else:
        parent[path[-1]] = value


@st.composite
def _cases(draw: st.DrawFn, name: str) -> tuple[Mapping[str, Any], int]:
    """A sample record of ``name`` with a few fields replaced by awkward values."""
    now = draw(st.sampled_from(NOWS))
    record = sample_event(name)
    if name == "pos.transaction" and draw(st.booleans()):  # refunds may be negative
        signed = st.sampled_from([-1, 2, -2.5, Decimal("-3.00"), Decimal("4.00")])
        record["payload"]["is_refund"] = draw(st.sampled_from([True, False, 1, None]))
        record["payload"]["quantity"] = draw(signed)
        record["payload"]["amount"] = draw(signed)
    for _ in range(draw(st.integers(0, 3))):
        paths = _paths(record)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        _apply(record, path, draw(_values(now) | st.just(DELETE)))
    nested = [path for path in _paths(record) if type(_at(record, path)) is dict]
    if nested and draw(st.integers(0, 4)) == 0:  # a dict, but not exactly one
        path = draw(st.sampled_from(nested))
        _apply(record, path, OrderedDict(_at(record, path)))
    wrap = draw(st.sampled_from([dict, dict, dict, OrderedDict, MappingProxyType]))
    return wrap(record), now


def _at(record: dict[str, Any], path: Path) -> Any:
    node: Any = record
    for key in path:
        node = node[key]
    return node


def _copy(record: Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(record, MappingProxyType):
        return MappingProxyType(copy.deepcopy(dict(record)))
    return copy.deepcopy(record)


def _outcome(validate: Any, name: str, record: Mapping[str, Any], now: int) -> Any:
    try:
        return [(p.code, p.message, p.field) for p in validate(name, record, now_ms=now)]
    except Exception as error:  # the same records must raise the same way
        return ("raised", type(error))


@pytest.mark.parametrize("name", [et.name for et in TYPES])
@settings(max_examples=250, deadline=None)
@given(data=st.data())
def test_fast_path_agrees_with_the_checks_one_by_one(name: str, data: st.DataObject) -> None:
    record, now = data.draw(_cases(name))
    expected = _outcome(validation._validate_slow, name, _copy(record), now)
    assert _outcome(validation.validate, name, record, now) == expected
    if isinstance(expected, list):
        fast = validation._compile(catalog.event_type(name)).fast
        assert fast(record, now) is (expected == [])


@pytest.mark.parametrize("name", [et.name for et in TYPES])
def test_every_sample_takes_the_fast_path(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = validation._compile(catalog.event_type(name))

    def boom(record: Mapping[str, Any], now_ms: int, out: list[validation.ValidationError]) -> None:
        raise AssertionError("the slow path ran for a valid record")

    monkeypatch.setitem(validation._compiled, name, compiled._replace(checks=(boom,)))
    assert validation.validate(name, sample_event(name), now_ms=NOW_MS) == []


@pytest.mark.parametrize("bound", [MIN_TIME_MS, NOW_MS + MAX_FUTURE_MS])
def test_times_at_the_microsecond_around_each_bound(bound: int) -> None:
    fast = validation._compile(catalog.event_type("pos.transaction")).fast
    verdicts = set()
    for micros in range(-2000, 2001):
        moment = _utc(bound, micros)
        for value in (moment, moment.replace(tzinfo=None)):
            record = sample_event("pos.transaction", occurred_at=value)
            expected = _outcome(validation._validate_slow, "pos.transaction", record, NOW_MS)
            assert _outcome(validation.validate, "pos.transaction", record, NOW_MS) == expected
            assert fast(record, NOW_MS) is (expected == []), (micros, value)
            verdicts.add(expected == [])
    assert verdicts == {True, False}  # both sides of the bound were tried


def test_a_plain_registered_check_runs_in_the_fast_path() -> None:
    def no_gifts(
        record: Mapping[str, Any], now_ms: int, out: list[validation.ValidationError]
    ) -> None:
        if record["payload"].get("unit_price") == 0:
            out.append(validation.ValidationError("gift", "free", "payload.unit_price"))

    validation.register("pos.transaction", no_gifts)
    try:
        gift = sample_event("pos.transaction", unit_price=Decimal("0.00"))
        assert [p.code for p in validation.validate("pos.transaction", gift, now_ms=NOW_MS)] == [
            "gift"
        ]
        plain = sample_event("pos.transaction")
        assert validation.validate("pos.transaction", plain, now_ms=NOW_MS) == []
    finally:
        validation._RULES["pos.transaction"].remove(no_gifts)
        validation._compiled.pop("pos.transaction", None)


def test_generated_source_names_fields_only_through_repr() -> None:
    source = validation._compile(catalog.event_type("pos.transaction")).source
    assert "get('transaction_id')" in source
    assert "record.get('event_id')" in source
    compile(source, "<check>", "exec")


@settings(max_examples=300, deadline=None)
@given(limit=st.integers(-(10**13), 10**14), below=st.booleans())
def test_time_bound_is_where_the_float_crosses_the_limit(limit: int, below: bool) -> None:
    bound = validation_source.time_bound(limit, below=below)
    if bound is None:  # the exact slow computation is used then
        assert abs(limit) > 2**33 * 1000  # after 2242 a float step is over a microsecond
        return
    after = bound + timedelta(microseconds=1)
    if below:
        assert bound.timestamp() * 1000 < limit <= after.timestamp() * 1000
    else:
        assert bound.timestamp() * 1000 <= limit < after.timestamp() * 1000
