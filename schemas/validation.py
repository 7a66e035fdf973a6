"""Semantic checks that Avro cannot express, run after decode and before encode at the edge.

Checks are data: a table of small check functions per event type, built once from rule
constructors (:func:`required`, :func:`non_negative`, ...) plus a size limit on every string
field derived from the schema. Pure Python, no pydantic, so it is cheap per event. Extend
with :func:`register`.

Most records are valid, so :func:`validate` first runs one function generated per event
type from its rules (each :class:`Rule` writes its test as Python source, as fastjsonschema
does); only when that finds a problem are the checks run one by one for their messages.

>>> from dealstream.schemas.samples import sample_event
>>> validate("pos.transaction", sample_event("pos.transaction"))
[]
>>> [e.code for e in validate("pos.transaction", sample_event("pos.transaction", quantity=-2))]
['negative']
"""

from __future__ import annotations

import builtins
import math
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any, NamedTuple

from dealstream.schemas.catalog import EventType
from dealstream.schemas.catalog import event_type as _event_type

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
# The generated function of an event type: (record, now_ms) -> True when there is no problem.
_Fast = Callable[[Mapping[str, Any], int], bool]
# Writes a test as source: (variable holding the value, source) -> lines that return False
# where the test would find a problem.
_Emit = Callable[[str, "_Source"], list[str]]
_EMPTY: Mapping[str, Any] = MappingProxyType({})  # what the step after a missing one reads


class _Source:
    """Source of one generated function: its lines, its constants, and the record's field
    lookups, each written once at the top level and shared by every rule that reads it.

    Only our own rule tables and schemas write here, never a record: field names are
    embedded with ``repr`` and every other value is passed in as a named constant.
    """

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.consts: dict[str, object] = {"_EMPTY": _EMPTY}
        # What passed rules tell the size walk: a variable holds an exact str (``required``),
        # or no str, bytes or dict at all (numbers, times).
        self.text: set[str] = set()
        self.unsized: set[str] = set()
        self.longest: dict[str, int] = {}  # the value equals one of these exact strs
        self._const_names: dict[int, str] = {}
        self._values: dict[tuple[str, ...], str] = {(): "record"}
        self._nodes: dict[tuple[str, ...], str] = {(): "record"}
        self._latest = self._until = ""
        self._count = 0

    def name(self, hint: str) -> str:
        """A new variable."""
        self._count += 1
        return f"{hint}{self._count}"

    def const(self, value: object) -> str:
        """The name under which the function sees ``value`` (a set, a predicate...)."""
        found = self._const_names.get(id(value))
        if found is None:
            found = self._const_names[id(value)] = self.name("c")
            self.consts[found] = value
        return found

    def value(self, path: str) -> str:
        """Variable holding the value at a dotted path, read as :func:`_getter` reads it
        (the generated function has already checked that the record is a dict)."""
        return self._value(tuple(path.split(".")) if path else ())

    def known(self, keys: tuple[str, ...]) -> str | None:
        """Variable holding the value at ``keys`` if a rule has read it already."""
        return self._values.get(keys)

    def latest(self) -> tuple[str, str]:
        """Variables holding the latest time accepted, ``now + MAX_FUTURE_MS``, and the
        same as a datetime (:func:`_latest_time`)."""
        if not self._latest:
            self._latest, self._until = self.name("latest"), self.name("until")
            key = self.name("key")
            self.lines += [
                f"{self._latest} = now + {MAX_FUTURE_MS!r}",
                f"{key}, {self._until} = {self.const(_UNTIL)}[0]",
                f"if {key} != {self._latest}:",
                f"    {self._until} = {self.const(_latest_time)}({self._latest})",
            ]
        return self._latest, self._until

    def _value(self, keys: tuple[str, ...]) -> str:
        found = self._values.get(keys)
        if found is None:
            node = self._node(keys[:-1])
            found = self._values[keys] = self.name("v")
            self.lines.append(f"{found} = {node}.get({keys[-1]!r})")
        return found

    def _node(self, keys: tuple[str, ...]) -> str:
        found = self._nodes.get(keys)
        if found is None:
            value = self._value(keys)
            found = self._nodes[keys] = self.name("d")
            self.lines.append(f"{found} = {value} if isinstance({value}, dict) else _EMPTY")
        return found


def _indent(lines: list[str], depth: int) -> list[str]:
    pad = "    " * depth
    return [pad + line for line in lines] if lines else [pad + "pass"]


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

    def write(self, src: _Source) -> None:
        """Append to ``src`` statements that return False where :attr:`check` finds a problem."""
        raise NotImplementedError


class FieldRule(Rule):
    """A test of the value at one path (see :func:`field_check`) with its source form."""

    __slots__ = ("emit", "path")

    def __init__(self, path: str, test: _Test, emit: _Emit) -> None:
        super().__init__(field_check(path, test))
        self.path = path
        self.emit = emit

    def write(self, src: _Source) -> None:
        if "[]" not in self.path:
            value = src.value(self.path)
            src.lines.extend(self.emit(value, src))
            return
        head, _, tail = self.path.partition("[]")
        items, item = src.value(head), src.name("item")
        keys = tail.removeprefix(".")
        value, get = item, []
        if keys:
            value = src.name("v")
            if "." in keys:  # rare: read it with the slow path's own getter
                get = [f"{value} = {src.const(_getter(keys))}({item})"]
            else:
                get = [f"{value} = {item}.get({keys!r}) if isinstance({item}, dict) else None"]
        body = get + self.emit(value, src)
        loop = [f"if isinstance({items}, list):", f"    for {item} in {items}:"]
        src.lines.extend(loop + _indent(body, 2))


def _flag_source(unless: str | Condition | None, src: _Source) -> str | None:
    """Expression of :func:`_flag` (None when there is no exemption)."""
    if unless is None:
        return None
    if isinstance(unless, str):
        return f"{src.value(unless)} is True"
    return f"{src.const(unless)}(record)"


def _number_source(value: str, src: _Source, *, signed: bool, flag: str | None) -> list[str]:
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


def _is_return_order(record: Mapping[str, Any]) -> bool:
    payload = record.get("payload")
    return isinstance(payload, dict) and payload.get("status") == "RETURNED"


def required(path: str) -> FieldRule:
    """Field must be a non-blank string (ids, names)."""

    def test(value: Any, where: str, record: Mapping[str, Any], now: int) -> ValidationError | None:
        if type(value) is str and value and not value.isspace():
            return None
        return ValidationError("empty", "required and must not be blank", where)

    def emit(value: str, src: _Source) -> list[str]:
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

    def emit(value: str, src: _Source) -> list[str]:
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

    def emit(value: str, src: _Source) -> list[str]:
        return _number_source(value, src, signed=False, flag=_flag_source(unless, src))

    return FieldRule(path, test, emit)


def finite(path: str) -> FieldRule:
    """Number, when present, is not NaN or infinite (sensor values may be negative)."""

    def test(value: Any, where: str, record: Mapping[str, Any], now: int) -> ValidationError | None:
        return None if value is None else _number_problem(value, where)

    def emit(value: str, src: _Source) -> list[str]:
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

    def emit(value: str, src: _Source) -> list[str]:
        src.unsized.add(value)
        latest, until = src.latest()
        millis, utc, kind = src.name("ms"), src.const(UTC), src.const(datetime)
        aware = f"({value} if {value}.tzinfo is not None else {value}.replace(tzinfo={utc}))"
        decoded = f"type({value}) is {kind} and {value}.tzinfo is {utc}"
        return [
            f"if {value} is not None:",
            f"    if type({value}) is int:",
            f"        if {value} < {MIN_TIME_MS!r} or {value} > {latest}:",
            "            return False",
            # decoded times: compared as datetimes, no float (see _time_bound)
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


def _time_bound(limit: int, *, below: bool) -> datetime | None:
    """The last UTC datetime whose ``timestamp() * 1000`` is below ``limit`` (or at most
    ``limit``): comparing a datetime with it gives the same answer as :func:`timestamp`'s
    float, bit for bit, for a fraction of the cost. None when there is none to compare with
    or it is not found within a few microseconds (after 2242, where a float step of
    ``timestamp()`` is over a microsecond); :func:`timestamp` computes the float then."""

    def past(micros: int) -> bool:  # as timestamp() computes it from the timedelta
        millis = micros / 1_000_000 * 1000
        return millis >= limit if below else millis > limit

    micros = limit * 1000
    try:
        # timestamp() * 1000 never decreases as the time grows: the bound is where it
        # crosses ``limit``, within a step or two of ``limit * 1000`` microseconds
        for _ in range(4):
            if past(micros):
                micros -= 1
            elif not past(micros + 1):
                micros += 1
            else:
                return _EPOCH + timedelta(microseconds=micros)
    except OverflowError:  # no datetime that far
        pass
    return None


def _latest_time(latest: int) -> datetime | None:
    """:func:`_time_bound` of the latest time accepted, cached: it changes once a
    millisecond while records come by the thousand."""
    if type(latest) is not int:
        return None
    key, found = _UNTIL[0]
    if key != latest:
        found = _time_bound(latest, below=False)
        _UNTIL[0] = (latest, found)
    return found


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_OLDEST = _time_bound(MIN_TIME_MS, below=True)  # too old when at or before
assert _OLDEST is not None
_UNTIL: list[tuple[int, datetime | None]] = [(-1, _time_bound(-1, below=False))]


def one_of(path: str, allowed: frozenset[str]) -> FieldRule:
    """Field equals one of ``allowed``."""

    def test(value: Any, where: str, record: Mapping[str, Any], now: int) -> ValidationError | None:
        if value in allowed:
            return None
        return ValidationError("unexpected", f"{value!r} not in {sorted(allowed)}", where)

    def emit(value: str, src: _Source) -> list[str]:
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

    def source(self, src: _Source, node: str, keys: tuple[str, ...] | None) -> list[str]:
        """Lines failing where :meth:`check` finds a problem in the dict ``node``; ``keys`` is
        its path when the rules' lookups can be reused (None inside a list)."""
        lines: list[str] = []

        def read(name: str) -> str:
            known = None if keys is None else src.known((*keys, name))
            if known is not None:
                return known
            value = src.name("s")
            lines.append(f"{value} = {node}.get({name!r})")
            return value

        for name, limit in self.limits.items():
            value = read(name)
            if value in src.unsized or src.longest.get(value, limit + 1) <= limit:
                continue
            if value in src.text:
                lines += [f"if len({value}) > {limit!r}:", "    return False"]
                continue
            kind, item = src.name("t"), src.name("item")
            lines += [
                f"{kind} = type({value})",
                f"if {kind} is str or {kind} is bytes:",
                f"    if len({value}) > {limit!r}:",
                "        return False",
                f"elif {kind} is dict:",
                f"    for {item} in {value}.values():",
                f"        if isinstance({item}, str) and len({item}) > {limit!r}:",
                "            return False",
            ]
        for name, child in self.children.items():
            value, item = read(name), src.name("item")
            if value in src.unsized:
                continue
            inner = child.source(src, value, None if keys is None else (*keys, name))
            lines += [
                f"if type({value}) is dict:",
                *_indent(inner, 1),
                f"elif type({value}) is list:",
                f"    for {item} in {value}:",
                f"        if type({item}) is dict:",
                *_indent(child.source(src, item, None), 3),
            ]
        return lines


def _non_null(schema: Any) -> Any:
    if isinstance(schema, list):
        typed = [s for s in schema if s != "null"]
        return typed[0] if len(typed) == 1 else schema
    return schema


def _base(schema: Any) -> Any:
    return schema.get("type") if isinstance(schema, dict) else schema


class _SizeRule(Rule):
    """Every size limit of an event type, as one rule."""

    __slots__ = ("limits",)

    def __init__(self, et: EventType) -> None:
        # the original bytes of a dead letter are kept whatever their size
        limits = _SizeLimits(et.raw, frozenset({"value"} if et.name == "dead_letter" else ()))

        def check(record: Mapping[str, Any], now_ms: int, out: list[ValidationError]) -> None:
            limits.check(record, "", out)

        super().__init__(check)
        self.limits = limits

    def write(self, src: _Source) -> None:
        src.lines.extend(self.limits.source(src, "record", ()))


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
    fast: _Fast  # True when the record has no problem
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
        rules: tuple[Check, ...] = (*own, _SizeRule(et))
        checks = tuple(one.check if isinstance(one, Rule) else one for one in rules)
        found = _compiled[et.name] = _Compiled(checks, *_generate(et.name, rules))
    return found


def _generate(name: str, rules: tuple[Check, ...]) -> tuple[_Fast, str]:
    """One function running every rule inline; a plain :data:`Check` is called from it.
    A mapping that is not a dict always takes the slow path (the getters read it as empty)."""
    src = _Source()
    for one in rules:
        if isinstance(one, Rule):
            one.write(src)
            continue
        found = src.name("found")
        call = f"{src.const(one)}(record, now, {found})"
        src.lines += [f"{found} = []", call, f"if {found}:", "    return False"]
    head = [
        "def fast(record, now):",
        "    if not isinstance(record, dict):",
        "        return False",
    ]
    source = "\n".join([*head, *_indent([*src.lines, "return True"], 1), ""])
    namespace: dict[str, Any] = {"__builtins__": builtins, **src.consts}
    # Trusted source: written above from our rule tables and schemas, never from a record.
    exec(compile(source, f"<validation of {name}>", "exec"), namespace)  # noqa: S102
    fast: _Fast = namespace["fast"]
    return fast, source


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
