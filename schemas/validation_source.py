"""Writes and compiles the fast path of :mod:`dealstream.schemas.validation`: one Python
function per event type that only answers "no problem?" (as fastjsonschema does).

Most records are valid, and a valid record checked by one generated function costs about a
third of running its check closures one by one (6.7 -> 2.0 µs per POS record), about as much
as decoding it. When the function finds something, ``validate`` falls back to the checks,
which say what and where. Each rule writes its own test here through :class:`Source`; this
module holds what they share: variables, constants, field lookups, the walks over lists and
string sizes, the datetime bounds, and :func:`generate`. It imports nothing of validation,
which hands it what it needs.

>>> def sku_present(src: Source) -> None:
...     sku = src.value("payload.sku")
...     src.lines += [f"if {sku} is None:", "    return False"]
>>> fast, source = generate("demo", [sku_present])
>>> print(source)
def fast(record, now):
    if not isinstance(record, dict):
        return False
    v1 = record.get('payload')
    d2 = v1 if isinstance(v1, dict) else _EMPTY
    v3 = d2.get('sku')
    if v3 is None:
        return False
    return True
<BLANKLINE>
>>> fast({"payload": {"sku": "A1"}}, 0), fast({"payload": None}, 0)
(True, False)
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Protocol

# The generated function of an event type: (record, now_ms) -> True when there is no problem.
Fast = Callable[[Mapping[str, Any], int], bool]
# Writes a test as source: (variable holding the value, source) -> lines that return False
# where the test would find a problem.
Emit = Callable[[str, "Source"], list[str]]
# Appends one rule's statements to the source.
Writer = Callable[["Source"], None]
_EMPTY: Mapping[str, Any] = MappingProxyType({})  # what the step after a missing one reads


class Source:
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
        """Variable holding the value at a dotted path, read as validation's getters read
        it (the generated function has already checked that the record is a dict)."""
        return self._value(tuple(path.split(".")) if path else ())

    def known(self, keys: tuple[str, ...]) -> str | None:
        """Variable holding the value at ``keys`` if a rule has read it already."""
        return self._values.get(keys)

    def latest(self, ahead_ms: int) -> tuple[str, str]:
        """Variables holding the latest time accepted, ``now + ahead_ms``, and the same as a
        datetime (:func:`_latest_time`). Written once: every time rule accepts the same."""
        if not self._latest:
            self._latest, self._until = self.name("latest"), self.name("until")
            key = self.name("key")
            self.lines += [
                f"{self._latest} = now + {ahead_ms!r}",
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


def write_field(
    src: Source, path: str, emit: Emit, getter: Callable[[str], Callable[[Any], Any]]
) -> None:
    """Append the test ``emit`` writes for the value at ``path``; one ``[]`` loops over a
    list, as validation's ``field_check`` fans out. ``getter`` is that module's compiled
    lookup, called for an item's nested path."""
    if "[]" not in path:
        value = src.value(path)
        src.lines.extend(emit(value, src))
        return
    head, _, tail = path.partition("[]")
    items, item = src.value(head), src.name("item")
    keys = tail.removeprefix(".")
    value, get = item, []
    if keys:
        value = src.name("v")
        if "." in keys:  # rare: read it with the slow path's own getter
            get = [f"{value} = {src.const(getter(keys))}({item})"]
        else:
            get = [f"{value} = {item}.get({keys!r}) if isinstance({item}, dict) else None"]
    body = get + emit(value, src)
    loop = [f"if isinstance({items}, list):", f"    for {item} in {items}:"]
    src.lines.extend(loop + _indent(body, 2))


class SizeTree(Protocol):
    """Length limits of a record's string fields and of its nested records' (validation's
    ``_SizeLimits``)."""

    @property
    def limits(self) -> Mapping[str, int]: ...

    @property
    def children(self) -> Mapping[str, SizeTree]: ...


def size_source(tree: SizeTree, src: Source, node: str, keys: tuple[str, ...] | None) -> list[str]:
    """Lines failing where the size walk finds a problem in the dict ``node``; ``keys`` is
    its path when the rules' lookups can be reused (None inside a list)."""
    lines: list[str] = []

    def read(name: str) -> str:
        known = None if keys is None else src.known((*keys, name))
        if known is not None:
            return known
        value = src.name("s")
        lines.append(f"{value} = {node}.get({name!r})")
        return value

    for name, limit in tree.limits.items():
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
    for name, child in tree.children.items():
        value, item = read(name), src.name("item")
        if value in src.unsized:
            continue
        inner = size_source(child, src, value, None if keys is None else (*keys, name))
        lines += [
            f"if type({value}) is dict:",
            *_indent(inner, 1),
            f"elif type({value}) is list:",
            f"    for {item} in {value}:",
            f"        if type({item}) is dict:",
            *_indent(size_source(child, src, item, None), 3),
        ]
    return lines


def time_bound(limit: int, *, below: bool) -> datetime | None:
    """The last UTC datetime whose ``timestamp() * 1000`` is below ``limit`` (or at most
    ``limit``): comparing a datetime with it gives the same answer as the time check's
    float, bit for bit, for a fraction of the cost. None when there is none to compare with
    or it is not found within a few microseconds (after 2242, where a float step of
    ``timestamp()`` is over a microsecond); the generated code computes the float then."""

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
    """:func:`time_bound` of the latest time accepted, cached: it changes once a
    millisecond while records come by the thousand."""
    if type(latest) is not int:
        return None
    key, found = _UNTIL[0]
    if key != latest:
        found = time_bound(latest, below=False)
        _UNTIL[0] = (latest, found)
    return found


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNTIL: list[tuple[int, datetime | None]] = [(-1, time_bound(-1, below=False))]


def calls(check: Callable[..., None]) -> Writer:
    """Writer of a plain check (not a rule): the generated function calls it and fails
    when it reports anything."""

    def write(src: Source) -> None:
        found = src.name("found")
        call = f"{src.const(check)}(record, now, {found})"
        src.lines += [f"{found} = []", call, f"if {found}:", "    return False"]

    return write


def generate(name: str, writers: Iterable[Writer]) -> tuple[Fast, str]:
    """One function running every writer's test inline, and its source to read when
    debugging. A mapping that is not a dict always fails (the checks' getters read it as
    empty)."""
    src = Source()
    for write in writers:
        write(src)
    head = [
        "def fast(record, now):",
        "    if not isinstance(record, dict):",
        "        return False",
    ]
    source = "\n".join([*head, *_indent([*src.lines, "return True"], 1), ""])
    namespace: dict[str, Any] = {"__builtins__": builtins, **src.consts}
    # Trusted source: written above from our rule tables and schemas, never from a record.
    exec(compile(source, f"<validation of {name}>", "exec"), namespace)  # noqa: S102
    fast: Fast = namespace["fast"]
    return fast, source
