"""A condition compiled for "is it exactly true?" agrees with full three-valued evaluation."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dealstream.streams.rules.language.evaluator import Scope, compile_expr
from dealstream.streams.rules.state import Point, SeriesStore

LEAVES = st.sampled_from(
    [
        "true", "false", "null", "payload.a > 1", "payload.b == 'x'", "payload.missing > 0",
        "not payload.flag", 'last("s") > 2', 'max_over("s", "1h") < 5', "payload.a * 2 >= 4",
    ]
)  # fmt: skip
EXPRESSIONS = st.recursive(
    LEAVES,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        inner.map(lambda e: f"not ({e})"),
    ),
    max_leaves=8,
)
PAYLOADS = st.fixed_dictionaries(
    {},
    optional={
        "a": st.one_of(st.none(), st.integers(-3, 5), st.text(max_size=1)),
        "b": st.sampled_from(["x", "y"]),
        "flag": st.one_of(st.none(), st.booleans()),
    },
)


@settings(max_examples=400, deadline=None)
@given(EXPRESSIONS, PAYLOADS, st.lists(st.integers(-2, 8), max_size=3))
def test_condition_mode_is_true_exactly_when_three_valued_logic_is(
    source: str, payload: dict[str, object], values: list[int]
) -> None:
    store = SeriesStore()
    for i, v in enumerate(values):
        store.append("k", "s", Point(1000 + i, v, f"e{i}"))
    full = compile_expr(source, {"s"}).fn(Scope({"payload": payload}, {}, store, "k", 2000))
    fast = compile_expr(source, {"s"}, condition=True).fn(
        Scope({"payload": payload}, {}, store, "k", 2000)
    )
    assert (fast is True) == (full is True), source
