from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dealstream.streams.rules.errors import RuleError
from dealstream.streams.rules.language.evaluator import Scope, compile_expr
from dealstream.streams.rules.language.parser import MAX_DEPTH, parse
from dealstream.streams.rules.state import SeriesStore

SIGNALS = {"price", "days"}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ('__import__("os")', "'_' are not allowed"),
        ('__import__("os").system("id")', "'_' are not allowed"),
        ("().__class__", "empty parentheses"),
        ('"".__class__.__mro__', "unexpected op '.'"),
        ("payload.__class__.__mro__", "'_' are not allowed"),
        ("payload._secret", "'_' are not allowed"),
        ('open("/etc/passwd")', "unknown function 'open'"),
        ('eval("1")', "unknown function 'eval'"),
        ("getattr(payload, 'x')", "unknown function 'getattr'"),
        ("payload.x(1)", "expected"),
        ("os.system", "unknown name 'os'"),
        ("lambda: 1", "unexpected character ':'"),
        ("9 ** 9 ** 9", "exponentiation"),
        ("1 < 2 < 3", "chained comparisons"),
        ("(" * 500 + "1" + ")" * 500, "nested deeper"),
        ("not " * 100 + "true", "nested deeper"),
        ("-" * 500 + "1", "nested deeper"),
        (" + ".join(["1"] * 300), "too large"),
        ("1" * 100, "number literal longer"),
        ('"' + "a" * 1000 + '"', "string literal longer"),
        ("x" * 3000, "longer than 2000"),
        ("payload.a; import os", "unexpected character ';'"),
        ("[x for x in payload]", "unknown name 'x'"),
        ('min_over(payload.sku, "7d")', "signal name string"),
        ('min_over("price", payload.w)', "duration string"),
        ('"abc" \\ 1', "unexpected character"),
        ("", "empty expression"),
    ],
)
def test_hostile_expressions_are_rejected(source: str, message: str) -> None:
    with pytest.raises(RuleError) as err:
        compile_expr(source, SIGNALS)
    assert message in str(err.value)


def test_depth_limit_allows_reasonable_nesting() -> None:
    ok = "(" * (MAX_DEPTH - 2) + "1" + ")" * (MAX_DEPTH - 2)
    assert parse(ok) is not None


def run(source: str, payload: dict[str, object]) -> object:
    scope = Scope({"payload": payload}, {}, SeriesStore(), "k", now_ms=0)
    return compile_expr(source, SIGNALS).fn(scope)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("payload.a + 2 * 3 - 1", 14),
        ("(payload.a + 2) * 3", 33),
        ("payload.a / 0", None),
        ("payload.missing > 1", None),
        ("not (payload.missing > 1)", None),
        ("payload.missing > 1 or payload.a > 1", True),
        ("payload.missing > 1 and payload.a < 1", False),
        ('payload.s in ["x", "y"]', True),
        ('payload.s not in ["x", "y"]', False),
        ('"ab" in payload.t', True),
        ("payload.s * 3", None),  # no string repetition
        ("payload.s < 3", None),
        ("abs(-payload.a) == 9 and max(1, payload.a, 3) == 9", True),
        ("coalesce(payload.missing, payload.a)", 9),
        ("payload.n.deep == 1", True),
        ("payload.a % 4 == 1 and 1e3 > 999.5", True),
        ('count_over("price", "7d")', 0),
        ('last("days")', None),
    ],
)
def test_semantics(source: str, expected: object) -> None:
    payload = {"a": 9, "s": "x", "t": "cabd", "n": {"deep": 1}}
    assert run(source, payload) == expected


TOKENS = st.sampled_from(
    ["payload", ".", "sku", "(", ")", "[", "]", ",", "and", "or", "not", "in", "<", "==", "+",
     "*", "-", "/", '"7d"', '"price"', "min_over", "last", "1", "2.5", "__import__", "**", "_x",
     "'", '"', "\\", "true", "null", " "]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=200))
def test_parser_only_raises_rule_error_on_random_text(source: str) -> None:
    with contextlib.suppress(RuleError):
        compile_expr(source, SIGNALS)


@settings(max_examples=400, deadline=None)
@given(st.lists(TOKENS, max_size=60).map(" ".join))
def test_parser_only_raises_rule_error_on_token_soup(source: str) -> None:
    try:
        compiled = compile_expr(source, SIGNALS)
    except RuleError:
        return
    scope = Scope({"payload": {"sku": 1}}, {}, SeriesStore(), "k", now_ms=0)
    compiled.fn(scope)  # whatever parses also evaluates without raising
