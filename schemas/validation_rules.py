"""The kinds of rule validation tables are built from (:mod:`dealstream.schemas.validation`).

Each rule checks its field one by one, with messages (the slow path, run only for a record with
a problem), and writes the same test as Python source into the function generated per event
type (:mod:`dealstream.schemas.validation_source`, the fast path every record takes).

>>> out = []
>>> non_negative("payload.quantity")({"payload": {"quantity": -1}}, 0, out); out
[ValidationError('negative', '-1 < 0', 'payload.quantity')]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from dealstream.schemas.catalog import EventType
from dealstream.schemas.validation_source import (
    Emit,
    Source,
    size_source,
    time_bound,
    write_field,
)

MIN_TIME_MS = 946_684_800_000  # 2000-01-01T00:00:00Z: older is a broken clock or a unit slip
MAX_FUTURE_MS = 86_400_000  # one day of clock skew is tolerated
MAX_TEXT = 64 * 1024  # characters in any free-text field
MAX_ID = 256  # characters in any identifier (``*_id``, ``*_ref``, ``sku``)
MAX_MONEY = Decimal("1e16")  # 18 digits of precision with scale 2
_CENT = Decimal("0.01")
_ZERO = Decimal(0)
_GOOD_MONEY: set[Decimal] = set()


class ValidationError(Exception):
    """One semantic problem; ``field`` is a dotted path (``payload.lines[1].quantity``)."""

    def __init__(self, code: str, message: str, field: str) -> None:
        super().__init__(code, message, field)
        self.code = code
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.code}: {self.field}: {self.message}"

    def __repr__(self) -> str:
        return f"ValidationError({self.code!r}, {self.message!r}, {self.field!r})"


# A check gets the record, "now" in epoch ms, and a list to append its problems to.
Check = Callable[[Mapping[str, Any], int, list[ValidationError]], None]
Condition = Callable[[Mapping[str, Any]], bool]
# A test looks at one value: (value, where, record, now_ms) -> problem or None.
_Test = Callable[[Any, str, Mapping[str, Any], int], "ValidationError | None"]


def _getter(path: str) -> Callable[[Mapping[str, Any]], Any]:
    """Compiled lookup of a dotted path; None where a step is missing."""
    if not path:
        return lambda node: node
    keys = path.split(".")
    if len(keys) == 1:
        (only,) = keys
        return lambda node: node.get(only) if isinstance(node, dict) else None
    if len(keys) == 2:  # the common ``payload.x``
        outer, inner = keys

        def get2(node: Mapping[str, Any]) -> Any:
            found = node.get(outer)
            return found.get(inner) if isinstance(found, dict) else None

        return get2

    def get(node: Mapping[str, Any]) -> Any:
        found: Any = node
        for key in keys:
            found = found.get(key) if isinstance(found, dict) else None
        return found

    return get


def field_check(path: str, test: _Test) -> Check:
    """Run ``test`` on the value at ``path``; one ``[]`` fans out over a list
    (``payload.lines[].sku``). The building block of the rules below."""
    if "[]" in path:
        head, _, tail = path.partition("[]")
        if "[]" in tail:
            raise ValueError(f"{path}: only one [] per path is supported")
        get_list = _getter(head)
        get_item = _getter(tail.removeprefix("."))

        def fan_out(record: Mapping[str, Any], now_ms: int, out: list[ValidationError]) -> None:
            items = get_list(record)
            if not isinstance(items, list):
                return
            for i, item in enumerate(items):
                problem = test(get_item(item), path, record, now_ms)
                if problem is not None:
                    problem.field = f"{head}[{i}]{tail}"
                    out.append(problem)

        return fan_out
    get = _getter(path)

    def single(record: Mapping[str, Any], now_ms: int, out: list[ValidationError]) -> None:
        problem = test(get(record), path, record, now_ms)
        if problem is not None:
            out.append(problem)

    return single


class Rule:
    """A :data:`Check` that can also write its test into the generated function of its
    event type. A plain function passed to :func:`register` works too: the generated
    function calls it (checks never change the record)."""

    __slots__ = ("check",)

    def __init__(self, check: Check) -> None:
        self.check = check

    def __call__(self, record: Mapping[str, Any], now_ms: int, out: list[ValidationError]) -> None:
        self.check(record, now_ms, out)

    def write(self, src: Source) -> None:
        """Append to ``src`` statements that return False where :attr:`check` finds a problem."""
        raise NotImplementedError


class FieldRule(Rule):
    """A test of the value at one path (see :func:`field_check`) with its source form."""

    __slots__ = ("emit", "path")

    def __init__(self, path: str, test: _Test, emit: Emit) -> None:
        super().__init__(field_check(path, test))
        self.path = path
        self.emit = emit

    def write(self, src: Source) -> None:
        write_field(src, self.path, self.emit, _getter)


def _flag_source(unless: str | Condition | None, src: Source) -> str | None:
    """Expression of :func:`_flag` (None when there is no exemption)."""
    if unless is None:
        return None
    if isinstance(unless, str):
        return f"{src.value(unless)} is True"
    return f"{src.const(unless)}(record)"


def _number_source(value: str, src: Source, *, signed: bool, flag: str | None) -> list[str]:
    """Lines failing where :func:`_number_problem` finds a problem or, unless ``signed``,
    the value is negative and the exemption ``flag`` (an expression) does not hold."""
    src.unsized.add(value)
    kind, isfinite = src.name("t"), src.const(math.isfinite)
    good = f"{value} in {src.const(_GOOD_MONEY)} or {src.const(_money_problem)}({value}, '')"

    def negative(zero: str) -> str:
        return f"{value} < {zero}" if flag is None else f"{value} < {zero} and not {flag}"

    if signed:
        money, real, whole = f"not ({good} is None)", f"not {isfinite}({value})", ["    pass"]
    else:  # a Decimal against a Decimal zero: no int to convert
        money = f"not ({good} is None) or ({negative(src.const(_ZERO))})"
        real = f"not {isfinite}({value}) or ({negative('0')})"
        whole = [f"    if {negative('0')}:", "        return False"]
    return [
        f"{kind} = type({value})",
        f"if {kind} is {src.const(Decimal)}:",
        f"    if {money}:",
        "        return False",
        f"elif {kind} is int:",
        *whole,
        f"elif {kind} is float:",
        f"    if {real}:",
        "        return False",
        f"elif {value} is not None:",
        "    return False",
    ]


def _flag(record: Mapping[str, Any], unless: str | Condition | None) -> bool:
    if unless is None:
        return False
    if isinstance(unless, str):
        return _getter(unless)(record) is True
    return unless(record)


def required(path: str) -> FieldRule:
    """Field must be a non-blank string (ids, names)."""

    def test(value: Any, where: str, record: Mapping[str, Any], now: int) -> ValidationError | None:
        if type(value) is str and value and not value.isspace():
            return None
        return ValidationError("empty", "required and must not be blank", where)

    def emit(value: str, src: Source) -> list[str]:
        src.text.add(value)
        return [
            f"if type({value}) is not str or not {value} or {value}.isspace():",
            "    return False",
        ]

    return FieldRule(path, test, emit)


def max_length(path: str, limit: int) -> FieldRule:
    """String (or bytes) field, when present, is at most ``limit`` long."""

    def test(value: Any, where: str, record: Mapping[str, Any], now: int) -> ValidationError | None:
        if isinstance(value, str | bytes) and len(value) > limit:
            return ValidationError("too_long", f"{len(value)} > {limit}", where)
        return None

    def emit(value: str, src: Source) -> list[str]:
        too_long = f"len({value}) > {src.const(limit)}"
        return [f"if isinstance({value}, (str, bytes)) and {too_long}:", "    return False"]

    return FieldRule(path, test, emit)


def non_negative(path: str, *, unless: str | Condition | None = None) -> FieldRule:
    """Number must be finite and >= 0 (money: a Decimal fitting decimal(18, 2)); negative
    values pass when the boolean field at path ``unless`` is true (refunds) or when the
    ``unless`` predicate holds for the record (returns)."""

    def test(value: Any, where: str, record: Mapping[str, Any], now: int) -> ValidationError | None:
        if value is None:
            return None
        problem = _number_problem(value, where)
        if problem is None and value < 0 and not _flag(record, unless):
            problem = ValidationError("negative", f"{value} < 0", where)
        return problem

    def emit(value: str, src: Source) -> list[str]:
        return _number_source(value, src, signed=False, flag=_flag_source(unless, src))

    return FieldRule(path, test, emit)


def finite(path: str) -> FieldRule:
    """Number, when present, is not NaN or infinite (sensor values may be negative)."""

    def test(value: Any, where: str, record: Mapping[str, Any], now: int) -> ValidationError | None:
        return None if value is None else _number_problem(value, where)

    def emit(value: str, src: Source) -> list[str]:
        return _number_source(value, src, signed=True, flag=None)

    return FieldRule(path, test, emit)


def _number_problem(value: Any, where: str) -> ValidationError | None:
    kind = type(value)
    if kind is int or (kind is float and math.isfinite(value)):
        return None
    if kind is float:
        return ValidationError("not_finite", f"{value} is not finite", where)
    if kind is Decimal:
        return _money_problem(value, where)
    return ValidationError("bad_type", f"{kind.__name__} is not a number", where)


def _money_problem(value: Decimal, where: str) -> ValidationError | None:
    if value in _GOOD_MONEY:  # prices repeat; the checks below cost ~0.4 us
        return None
    problem = None
    if not value.is_finite():
        problem = ValidationError("not_finite", f"{value} is not a finite amount", where)
    elif not -MAX_MONEY < value < MAX_MONEY:
        problem = ValidationError("out_of_range", f"{value} exceeds decimal(18, 2)", where)
    elif value != value.quantize(_CENT):
        problem = ValidationError("bad_scale", f"{value} has more than 2 decimals", where)
    else:
        if len(_GOOD_MONEY) >= 4096:
            _GOOD_MONEY.clear()
        _GOOD_MONEY.add(value)
    return problem


def timestamp(path: str) -> FieldRule:
    """Time, when present, is after 2000-01-01 and at most one day in the future."""

    def test(value: Any, where: str, record: Mapping[str, Any], now: int) -> ValidationError | None:
        if value is None:
            return None
        if type(value) is not int and not isinstance(value, datetime):
            return ValidationError("bad_type", f"{type(value).__name__} is no time", where)
        if isinstance(value, datetime):
            aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
            millis: float = aware.timestamp() * 1000
        else:
            millis = value
        if millis < MIN_TIME_MS:
            return ValidationError("too_old", f"{value} is before 2000-01-01", where)
        if millis > now + MAX_FUTURE_MS:
            return ValidationError("in_future", f"{value} is over a day ahead", where)
        return None

    def emit(value: str, src: Source) -> list[str]:
        src.unsized.add(value)
        latest, until = src.latest(MAX_FUTURE_MS)
        millis, utc, kind = src.name("ms"), src.const(UTC), src.const(datetime)
        aware = f"({value} if {value}.tzinfo is not None else {value}.replace(tzinfo={utc}))"
        decoded = f"type({value}) is {kind} and {value}.tzinfo is {utc}"
        return [
            f"if {value} is not None:",
            f"    if type({value}) is int:",
            f"        if {value} < {MIN_TIME_MS!r} or {value} > {latest}:",
            "            return False",
            # decoded times: compared as datetimes, no float (see time_bound)
            f"    elif {decoded} and {until} is not None:",
            f"        if {value} <= {src.const(_OLDEST)} or {value} > {until}:",
            "            return False",
            f"    elif isinstance({value}, {kind}):",
            f"        {millis} = {aware}.timestamp() * 1000",
            f"        if {millis} < {MIN_TIME_MS!r} or {millis} > {latest}:",
            "            return False",
            "    else:",
            "        return False",
        ]

    return FieldRule(path, test, emit)


_OLDEST = time_bound(MIN_TIME_MS, below=True)  # too old when at or before
assert _OLDEST is not None


def one_of(path: str, allowed: frozenset[str]) -> FieldRule:
    """Field equals one of ``allowed``."""

    def test(value: Any, where: str, record: Mapping[str, Any], now: int) -> ValidationError | None:
        if value in allowed:
            return None
        return ValidationError("unexpected", f"{value!r} not in {sorted(allowed)}", where)

    def emit(value: str, src: Source) -> list[str]:
        if allowed and all(type(one) is str for one in allowed):
            src.longest[value] = max(len(one) for one in allowed)
        return [f"if {value} not in {src.const(allowed)}:", "    return False"]

    return FieldRule(path, test, emit)


class _SizeLimits:
    """Length limit of every string/bytes field, derived from the schema and checked in one
    walk over the record (one check per field would cost more than decoding)."""

    def __init__(self, schema: dict[str, Any], skip: frozenset[str]) -> None:
        self.limits: dict[str, int] = {}
        self.children: dict[str, _SizeLimits] = {}
        for f in schema["fields"]:
            name = f["name"]
            kind = _non_null(f["type"])
            if isinstance(kind, dict) and kind.get("type") == "array":
                kind = _non_null(kind["items"])
            if isinstance(kind, dict) and kind.get("type") == "record":
                self.children[name] = _SizeLimits(kind, skip)
            elif _base(kind) in ("string", "bytes") and name not in skip:
                is_id = name.endswith(("_id", "_ref", "_key")) or name in ("sku", "event_type")
                self.limits[name] = MAX_ID if is_id else MAX_TEXT
            elif isinstance(kind, dict) and kind.get("type") == "map" and name not in skip:
                self.limits[name] = MAX_TEXT  # each value; keys are short by construction

    def check(self, node: Mapping[str, Any], where: str, out: list[ValidationError]) -> None:
        for name, limit in self.limits.items():
            value = node.get(name)
            if type(value) is str or type(value) is bytes:
                if len(value) > limit:
                    out.append(ValidationError("too_long", f"{len(value)} > {limit}", where + name))
            elif type(value) is dict:
                for key, item in value.items():
                    if isinstance(item, str) and len(item) > limit:
                        out.append(
                            ValidationError("too_long", f"> {limit}", f"{where}{name}.{key}")
                        )
        for name, child in self.children.items():
            value = node.get(name)
            if type(value) is dict:
                child.check(value, f"{where}{name}.", out)
            elif type(value) is list:
                for i, item in enumerate(value):
                    if type(item) is dict:
                        child.check(item, f"{where}{name}[{i}].", out)


def _non_null(schema: Any) -> Any:
    if isinstance(schema, list):
        typed = [s for s in schema if s != "null"]
        return typed[0] if len(typed) == 1 else schema
    return schema


def _base(schema: Any) -> Any:
    return schema.get("type") if isinstance(schema, dict) else schema


class SizeRule(Rule):
    """Every size limit of an event type, as one rule."""

    __slots__ = ("limits",)

    def __init__(self, et: EventType) -> None:
        # the original bytes of a dead letter are kept whatever their size
        limits = _SizeLimits(et.raw, frozenset({"value"} if et.name == "dead_letter" else ()))

        def check(record: Mapping[str, Any], now_ms: int, out: list[ValidationError]) -> None:
            limits.check(record, "", out)

        super().__init__(check)
        self.limits = limits

    def write(self, src: Source) -> None:
        src.lines.extend(size_source(self.limits, src, "record", ()))
