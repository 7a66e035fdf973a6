"""Typed reading of a YAML rule file that keeps each value's line and column for error messages.

Only YAML text is read (``yaml.compose`` with the safe loader): no files, no tags that build
objects.

>>> doc = Node.parse("rules:\\n  - id: a\\n    version: 2\\n")
>>> rule = doc.req("rules").items()[0]
>>> rule.req("version").integer(), rule.req("version").line
(2, 3)
>>> rule.req("id").integer()
Traceback (most recent call last):
...
dealstream.streams.rules.errors.RuleError: line 2, column 9: 'id' must be an integer, got 'a'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import yaml

from dealstream.streams.rules.errors import RuleError, combine

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_duration(text: str) -> int:
    """Milliseconds from ``"72h"``, ``"7d"``, ``"30m"``, ``"10s"``, ``"500ms"``.

    >>> parse_duration("72h"), parse_duration("7d")
    (259200000, 604800000)
    """
    m = _DURATION.match(text)
    if m is None:
        raise RuleError(f"bad duration {text!r}: use a number and ms, s, m, h, d or w, like '72h'")
    return int(float(m.group(1)) * _UNIT_MS[m.group(2)])


class Node:
    """One YAML node with its position; accessors raise :class:`RuleError` pointing at it."""

    __slots__ = ("_node", "name")

    def __init__(self, node: yaml.Node, name: str = "document") -> None:
        self._node = node
        self.name = name

    @classmethod
    def parse(cls, text: str) -> Node:
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            col = mark.column + 1 if mark is not None else None
            problem = getattr(exc, "problem", None) or str(exc)
            raise RuleError(f"not valid YAML: {problem}", line=line, column=col) from None
        if node is None:
            raise RuleError("the rule file is empty")
        return cls(node)

    @property
    def line(self) -> int:
        return int(self._node.start_mark.line) + 1

    @property
    def column(self) -> int:
        return int(self._node.start_mark.column) + 1

    @property
    def style(self) -> str | None:
        return getattr(self._node, "style", None)

    @property
    def is_scalar(self) -> bool:
        return isinstance(self._node, yaml.ScalarNode)

    def opt_text(self, key: str, default: str) -> str:
        found = self.get(key)
        return found.text() if found is not None else default

    def error(self, message: str) -> RuleError:
        return RuleError(message, line=self.line, column=self.column)

    def _mapping(self) -> list[tuple[yaml.Node, yaml.Node]]:
        if not isinstance(self._node, yaml.MappingNode):
            raise self.error(f"{self.name!r} must be a mapping")
        return list(self._node.value)

    def keys(self) -> list[str]:
        return [str(k.value) for k, _ in self._mapping()]

    def entries(self) -> list[tuple[str, Node]]:
        return [(str(k.value), Node(v, str(k.value))) for k, v in self._mapping()]

    def get(self, key: str) -> Node | None:
        for k, v in self._mapping():
            if k.value == key:
                return Node(v, key)
        return None

    def req(self, key: str) -> Node:
        found = self.get(key)
        if found is None:
            raise self.error(f"missing required field {key!r} in {self.name!r}")
        return found

    def check_keys(self, allowed: set[str]) -> None:
        for k, _ in self._mapping():
            if k.value not in allowed:
                raise Node(k, k.value).error(
                    f"unknown field {k.value!r}; allowed: {', '.join(sorted(allowed))}"
                )

    def items(self) -> list[Node]:
        if not isinstance(self._node, yaml.SequenceNode):
            raise self.error(f"{self.name!r} must be a list")
        return [Node(v, self.name) for v in self._node.value]

    def value(self) -> Any:
        return yaml.SafeLoader("").construct_object(self._node, deep=True)

    def text(self) -> str:
        v = self.value() if isinstance(self._node, yaml.ScalarNode) else None
        if not isinstance(v, str) or not v.strip():
            raise self.error(f"{self.name!r} must be a non-empty string, got {v!r}")
        return v

    def scalar_text(self) -> str:
        """A scalar of any type as its source text (numbers become expressions like ``1``)."""
        if not isinstance(self._node, yaml.ScalarNode):
            raise self.error(f"{self.name!r} must be a single value")
        return str(self._node.value)

    def integer(self) -> int:
        v = self.value() if isinstance(self._node, yaml.ScalarNode) else None
        if not isinstance(v, int) or isinstance(v, bool):
            raise self.error(f"{self.name!r} must be an integer, got {v!r}")
        return v

    def duration(self) -> int:
        try:
            return parse_duration(self.text())
        except RuleError as exc:
            raise exc.at(self.line, self.column) from None

    def strings(self) -> list[str]:
        """A list of strings; a single string is taken as a list of one."""
        if isinstance(self._node, yaml.ScalarNode):
            return [self.text()]
        return [item.text() for item in self.items()]

    def expression_position(self, offset: int) -> tuple[int, int]:
        """Line and column in the file of character ``offset`` of this scalar's text."""
        line, col = self.line, self.column
        if self.style in ("|", ">"):
            text = str(self._node.value)
            before = text[:offset]
            indent = self._block_indent()
            return line + 1 + before.count("\n"), indent + len(before.rsplit("\n", 1)[-1]) + 1
        if self.style in ('"', "'"):
            col += 1
        return line, col + offset

    def _block_indent(self) -> int:
        end = self._node.end_mark
        buf = getattr(self._node.start_mark, "buffer", None)
        if not buf:
            return int(end.column)
        lines = str(buf).splitlines()
        first = lines[self.line] if self.line < len(lines) else ""
        return len(first) - len(first.lstrip(" "))


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


R = TypeVar("R", bound=_Identified)


def parse_rule_list(
    nodes: Sequence[Node], parse: Callable[[Node], R]
) -> tuple[list[R], list[RuleError]]:
    """Parse every rule node, collecting every problem (bad rules, duplicate ids) at its line."""
    rules: list[R] = []
    errors: list[RuleError] = []
    seen: set[str] = set()
    for node in nodes:
        try:
            rule = parse(node)
        except RuleError as exc:
            errors.append(exc)
            continue
        if rule.id in seen:
            errors.append(node.error(f"duplicate rule id {rule.id!r}"))
        seen.add(rule.id)
        rules.append(rule)
    return rules, errors


def load_rule_list(text: str, parse: Callable[[Node], R], *, max_rules: int) -> tuple[R, ...]:
    """A YAML file of ``rules:``, each parsed by ``parse``; raises one :class:`RuleError` that
    names every problem (bad rules, duplicate ids, too many rules) at its line."""
    doc = Node.parse(text)
    doc.check_keys({"rules"})
    nodes = doc.req("rules").items()
    if len(nodes) > max_rules:
        raise doc.req("rules").error(f"more than {max_rules} rules in one file")
    rules, errors = parse_rule_list(nodes, parse)
    if errors:
        raise combine(errors)
    return tuple(rules)
