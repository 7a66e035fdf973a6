"""Checks a parsed expression against the functions and signals a rule may use, then compiles it
to nested closures (no ``eval``): fields are read from mappings only, never via ``getattr``.

Missing data is ``null`` and logic is three-valued (SQL-like): ``null > 5`` is ``null``, and a
rule fires only when its condition is exactly ``true``. A type mismatch at run time is ``null``
too, so one odd event never stops an agent.

>>> from dealstream.streams.rules.state import Point, SeriesStore
>>> store = SeriesStore(); store.append("k", "pct", Point(1000, -7.0, "e1"))
>>> check = compile_expr('min_over("pct", "7d") < -5 and payload.n * 2 > 3', {"pct"})
>>> scope = Scope({"payload": {"n": 2}}, {}, store, "k", now_ms=2000)
>>> check.fn(scope), scope.event_ids, scope.notes
(True, ['e1'], {'min_over(pct, 7d)': '-7.0'})
>>> compile_expr('open("/etc/passwd")', set())  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
dealstream.streams.rules.language.lexer.ExprError: unknown function 'open'; allowed: abs, ...
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from dealstream.streams.rules.errors import RuleError
from dealstream.streams.rules.language.lexer import ExprError
from dealstream.streams.rules.language.parser import (
    Binary,
    Call,
    Expr,
    Field,
    ListExpr,
    Literal,
    Unary,
    parse,
)
from dealstream.streams.rules.source import Node, parse_duration
from dealstream.streams.rules.state import Point, SeriesStore

MAX_EVENT_IDS = 100


@dataclass(slots=True)
class Scope:
    """What an expression can see: one event, its state key and that key's signal series."""

    event: Mapping[str, Any]
    key: Mapping[str, Any]
    store: SeriesStore
    state_key: str
    now_ms: int
    event_ids: list[str] = field(default_factory=list)  # inputs that the result depended on
    notes: dict[str, str] = field(default_factory=dict)  # function results, for the alert

    def use(self, points: list[Point]) -> None:
        for p in points:
            if p.event_id not in self.event_ids and len(self.event_ids) < MAX_EVENT_IDS:
                self.event_ids.append(p.event_id)


Fn = Callable[[Scope], Any]


@dataclass(frozen=True, slots=True)
class Compiled:
    source: str
    fn: Fn
    windows: dict[str, int]  # signal → longest window it is read over (for retention)
    reads: dict[str, frozenset[str]] = field(default_factory=dict)  # signal → functions reading it


_NUMBER = frozenset({int, float})


def _num(v: Any) -> float | int | None:
    if type(v) in _NUMBER:
        return v  # type: ignore[no-any-return]
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int | float):
        return v
    if isinstance(v, Decimal):
        return float(v)
    return None


WINDOW_FUNCTIONS = frozenset({"min_over", "max_over", "sum_over", "avg_over", "count_over"})
SCALAR_FUNCTIONS: dict[str, tuple[int, int]] = {
    "abs": (1, 1),
    "min": (2, 8),
    "max": (2, 8),
    "coalesce": (2, 8),
}
ALLOWED = sorted({*WINDOW_FUNCTIONS, *SCALAR_FUNCTIONS, "last"})


def compile_expr(source: str, signals: set[str], *, condition: bool = False) -> Compiled:
    """Parse, check and compile; ``signals`` are the names the rule records (its state).

    A ``condition`` is only ever asked "is it exactly true?": its top-level ``and``/``or``
    chain then stops at the first operand that settles that question (``null and x`` need not
    look at ``x``), which skips window lookups on keys that lack the first operand's signal.

    >>> calls = compile_expr('last("t") > 45 and max_over("p", "7d") > 5', {"t", "p"},
    ...                      condition=True)
    >>> from dealstream.streams.rules.state import SeriesStore
    >>> scope = Scope({}, {}, SeriesStore(), "k", now_ms=0)
    >>> calls.fn(scope), scope.notes  # last("t") is null: max_over is never evaluated
    (False, {})
    """
    compiler = _Compiler(signals, {}, condition=condition)
    fn = compiler.compile(parse(source))
    reads = {sig: frozenset(names) for sig, names in compiler.reads.items()}
    return Compiled(source, fn, compiler.windows, reads)


def compile_node(node: Node, signals: set[str], *, condition: bool = False) -> Compiled:
    """Compile a rule file's YAML scalar, placing any error at its line and column."""
    try:
        return compile_expr(node.scalar_text(), signals, condition=condition)
    except ExprError as exc:
        line, col = node.expression_position(exc.offset)
        raise RuleError(f"in {node.name!r}: {exc.detail}", line=line, column=col) from None
    except RuleError as exc:
        raise exc.at(node.line, node.column) from None


class _Compiler:
    def __init__(self, signals: set[str], windows: dict[str, int], *, condition: bool) -> None:
        self.signals = signals
        self.windows = windows
        self.truth = condition  # compiling the top-level and/or chain of a condition
        self.reads: dict[str, set[str]] = {}

    def compile(self, e: Expr) -> Fn:  # noqa: PLR0911
        if not isinstance(e, Binary):
            self.truth = False  # below anything but and/or, three-valued logic applies
        if isinstance(e, Literal):
            value = e.value
            return lambda s: value
        if isinstance(e, Field):
            return _field(e.path)
        if isinstance(e, ListExpr):
            items = [self.compile(i) for i in e.items]
            return lambda s: [f(s) for f in items]
        if isinstance(e, Unary):
            inner = self.compile(e.operand)
            if e.op == "not":
                return lambda s: _not(inner(s))
            return lambda s: _neg(inner(s))
        if isinstance(e, Binary):
            return self.binary(e)
        return self.call(e)

    def binary(self, e: Binary) -> Fn:
        truth = self.truth and e.op in ("and", "or")
        self.truth = truth  # operands of a truth-only and/or are truth-only too
        left = self.compile(e.left)
        self.truth = truth
        right = self.compile(e.right)
        self.truth = truth
        if truth and e.op == "and":
            return lambda s: left(s) is True and right(s) is True
        if truth:
            return lambda s: left(s) is True or right(s) is True
        if e.op == "and":
            return lambda s: _and(left, right, s)
        if e.op == "or":
            return lambda s: _or(left, right, s)
        op = _BINARY[e.op]
        return lambda s: op(left(s), right(s))

    def call(self, e: Call) -> Fn:
        if e.name in WINDOW_FUNCTIONS or e.name == "last":
            return self.state_call(e)
        arity = SCALAR_FUNCTIONS.get(e.name)
        if arity is None:
            raise ExprError(f"unknown function {e.name!r}; allowed: {', '.join(ALLOWED)}", e.pos)
        lo, hi = arity
        if not lo <= len(e.args) <= hi:
            raise ExprError(f"{e.name}() takes {lo}..{hi} arguments, got {len(e.args)}", e.pos)
        args = [self.compile(a) for a in e.args]
        if e.name == "abs":
            return lambda s: _abs(args[0](s))
        if e.name == "coalesce":
            return lambda s: next((v for v in (a(s) for a in args) if v is not None), None)
        pick = min if e.name == "min" else max
        return lambda s: _pick(pick, [a(s) for a in args])

    def state_call(self, e: Call) -> Fn:
        want = 1 if e.name == "last" else 2
        if len(e.args) != want:
            usage = f'{e.name}("signal")' if want == 1 else f'{e.name}("signal", "7d")'
            raise ExprError(f"{e.name}() takes {want} argument(s): {usage}", e.pos)
        sig_arg = e.args[0]
        if not isinstance(sig_arg, Literal) or not isinstance(sig_arg.value, str):
            raise ExprError(f"the first argument of {e.name}() must be a signal name string", e.pos)
        signal = sig_arg.value
        if signal not in self.signals:
            known = ", ".join(sorted(self.signals)) or "none"
            raise ExprError(
                f"unknown signal {signal!r}: add it under 'record:' (recorded: {known})",
                sig_arg.pos,
            )
        label_sig = signal
        self.reads.setdefault(signal, set()).add(e.name)
        if e.name == "last":
            self.windows.setdefault(signal, 0)

            def last(s: Scope) -> Any:
                p = s.store.last(s.state_key, signal, s.now_ms)
                if p is None:
                    return None
                s.use([p])
                s.notes[f"last({label_sig})"] = str(p.value)
                return p.value

            return last
        win_arg = e.args[1]
        if not isinstance(win_arg, Literal) or not isinstance(win_arg.value, str):
            raise ExprError(f"the window of {e.name}() must be a duration string like '7d'", e.pos)
        try:
            window = parse_duration(win_arg.value)
        except ExprError:
            raise
        except ValueError as exc:
            raise ExprError(str(exc), win_arg.pos) from None
        self.windows[signal] = max(self.windows.get(signal, 0), window)
        return _window_function(e.name, signal, window, f"{e.name}({signal}, {win_arg.value})")


def _window_function(name: str, signal: str, window: int, label: str) -> Fn:
    """``min_over``/``max_over``/``sum_over``/``avg_over``/``count_over`` of one signal."""
    recent = 0 if name in ("min_over", "max_over") else MAX_EVENT_IDS

    def over(s: Scope) -> Any:
        # Incremental (see rules/windows.py): no scan of the window per event.
        stats = s.store.window_stats(
            s.state_key, signal, s.now_ms - window, s.now_ms, recent=recent
        )
        result: float | int | None
        if name in ("min_over", "max_over"):
            point = stats.min_point if name == "min_over" else stats.max_point
            result = None if point is None else _num(point.value)
            if point is not None:
                s.use([point])
        else:
            if name == "count_over":
                result = stats.count
            elif not stats.count:
                result = None
            elif name == "sum_over":
                result = stats.total
            else:
                result = stats.total / stats.count
            s.use(stats.recent)
        s.notes[label] = str(result)
        return result

    return over


_PLAIN = frozenset({str, int, float, bool, list, type(None)})


def _value(cur: Any) -> Any:
    """A field's value as the language sees it: plain values, Decimal as float, else null."""
    if type(cur) in _PLAIN:
        return cur
    if isinstance(cur, Decimal):
        return float(cur)
    return cur if isinstance(cur, str | int | float | bool | list) else None


def _field(path: tuple[str, ...]) -> Fn:
    root, rest = path[0], path[1:]
    if root == "payload" and len(rest) == 1:  # the common case, one dict lookup deep
        name = rest[0]

        def read_payload(s: Scope) -> Any:
            payload = s.event.get("payload")
            if type(payload) is dict:
                return _value(payload.get(name))
            return _value(payload.get(name)) if isinstance(payload, Mapping) else None

        return read_payload

    def read(s: Scope) -> Any:
        cur: Any
        if root == "event":
            cur = s.event
        elif root == "key":
            cur = s.key
        else:
            cur = s.event.get("payload")
        for part in rest:
            if not isinstance(cur, Mapping):
                return None
            cur = cur.get(part)
        return _value(cur)

    return read


def _not(v: Any) -> bool | None:
    return None if v is None else not bool(v)


def _neg(v: Any) -> float | int | None:
    n = _num(v)
    return None if n is None else -n


def _abs(v: Any) -> float | int | None:
    n = _num(v)
    return None if n is None else abs(n)


def _pick(pick: Callable[[list[Any]], Any], values: list[Any]) -> Any:
    nums = [_num(v) for v in values]
    if any(n is None for n in nums):
        return None
    return pick(nums)


def _and(left: Fn, right: Fn, s: Scope) -> bool | None:
    a = left(s)
    if a is not None and not a:
        return False
    b = right(s)
    if b is not None and not b:
        return False
    return None if a is None or b is None else True


def _or(left: Fn, right: Fn, s: Scope) -> bool | None:
    a = left(s)
    if a:
        return True
    b = right(s)
    if b:
        return True
    return None if a is None or b is None else False


def _arith(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def run(a: Any, b: Any) -> Any:
        if type(a) in _NUMBER and type(b) in _NUMBER:
            try:
                return op(a, b)
            except (ZeroDivisionError, OverflowError):
                return None
        x, y = _num(a), _num(b)
        if x is None or y is None:
            return None
        try:
            return op(x, y)
        except (ZeroDivisionError, OverflowError):
            return None

    return run


def _compare(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool | None]:
    def run(a: Any, b: Any) -> bool | None:
        if type(a) in _NUMBER and type(b) in _NUMBER:
            return op(a, b)
        x, y = _num(a), _num(b)
        if x is not None and y is not None:
            return op(x, y)
        if isinstance(a, str) and isinstance(b, str):
            return op(a, b)
        return None

    return run


def _eq(a: Any, b: Any) -> bool | None:
    if a is None or b is None:
        return None
    x, y = _num(a), _num(b)
    if x is not None and y is not None:
        return x == y
    return type(a) is type(b) and bool(a == b)


def _in(a: Any, b: Any) -> bool | None:
    if a is None or b is None:
        return None
    if isinstance(b, str):
        return a in b if isinstance(a, str) else None
    if isinstance(b, list):
        return any(_eq(a, item) for item in b)
    return None


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": _arith(lambda x, y: x + y),
    "-": _arith(lambda x, y: x - y),
    "*": _arith(lambda x, y: x * y),
    "/": _arith(lambda x, y: x / y),
    "%": _arith(lambda x, y: x % y),
    "<": _compare(lambda x, y: x < y),
    "<=": _compare(lambda x, y: x <= y),
    ">": _compare(lambda x, y: x > y),
    ">=": _compare(lambda x, y: x >= y),
    "==": _eq,
    "!=": lambda a, b: _not(_eq(a, b)),
    "in": _in,
    "not in": lambda a, b: _not(_in(a, b)),
}
