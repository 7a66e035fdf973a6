from __future__ import annotations

import pytest

from dealstream.streams.rules.errors import RuleError
from dealstream.streams.rules.normalize import Normalizer
from dealstream.streams.rules.phrases import Negation, PhraseMatcher

PHRASES = [
    ("保本", "principal"),
    ("保息", "interest"),
    ("稳赚", "sure-win"),
    ("保证收益", "guarantee"),
    ("guaranteed return", "en-guarantee"),
    ("guaranteed", "en-guaranteed"),
    ("risk free", "en-riskfree"),
]


@pytest.fixture(scope="module")
def matcher() -> PhraseMatcher[str]:
    return PhraseMatcher(PHRASES)


def hits(m: PhraseMatcher[str], text: str) -> list[tuple[str, str, bool]]:
    return [(x.payload, x.text, x.negated) for x in m.find(text)]


@pytest.mark.parametrize(
    ("text", "original"),
    [
        ("买它保 本", "保 本"),
        ("稳-赚不赔", "稳-赚"),
        ("这个保．本", "保．本"),
        ("穩賺", "穩賺"),  # traditional
        ("稳\u200b赚", "稳\u200b赚"),  # zero-width space
        ("保\u3000本", "保\u3000本"),  # ideographic space
    ],
)
def test_evasions_match_and_report_original_span(
    matcher: PhraseMatcher[str], text: str, original: str
) -> None:
    found = matcher.find(text)
    assert found, text
    assert found[0].text == original
    assert text[found[0].start : found[0].end] == original


def test_fullwidth_english_with_double_space(matcher: PhraseMatcher[str]) -> None:
    text = "This is a Ｇｕａｒａｎｔｅｅｄ  return."
    found = {x.payload: x.text for x in matcher.find(text)}
    assert found["en-guarantee"] == "Ｇｕａｒａｎｔｅｅｄ  return"


def test_english_word_boundaries(matcher: PhraseMatcher[str]) -> None:
    assert hits(matcher, "unguaranteed returns") == []
    assert hits(matcher, "guaranteed returns") == [("en-guaranteed", "guaranteed", False)]
    assert hits(matcher, "a risk-free deal") == [("en-riskfree", "risk-free", False)]
    assert hits(matcher, "riskfreely") == []


def test_violation_side(matcher: PhraseMatcher[str]) -> None:
    assert hits(matcher, "保本保息") == [("principal", "保本", False), ("interest", "保息", False)]


@pytest.mark.parametrize(
    "text",
    [
        "本产品不保本",
        "不能保证收益",
        "not guaranteed",
        "no guaranteed return",
        "非保本型",
        "没有保本",
    ],
)
def test_negated_disclosures(matcher: PhraseMatcher[str], text: str) -> None:
    found = matcher.find(text)
    assert found and all(m.negated for m in found), hits(matcher, text)


def test_negation_stops_at_clause_break(matcher: PhraseMatcher[str]) -> None:
    assert hits(matcher, "我们不是说保本，而是稳赚") == [
        ("principal", "保本", True),
        ("sure-win", "稳赚", False),
    ]
    assert hits(matcher, "不行。保本") == [("principal", "保本", False)]


def test_pseudo_negation_is_not_negation(matcher: PhraseMatcher[str]) -> None:
    assert hits(matcher, "不仅保本还稳赚") == [
        ("principal", "保本", False),
        ("sure-win", "稳赚", False),
    ]
    assert hits(matcher, "not only guaranteed") == [("en-guaranteed", "guaranteed", False)]


def test_negation_cue_must_be_a_word(matcher: PhraseMatcher[str]) -> None:
    assert hits(matcher, "casino guaranteed") == [("en-guaranteed", "guaranteed", False)]


def test_negation_gap_is_configurable() -> None:
    tight = PhraseMatcher([("保本", "p")], negation=Negation(max_gap=0))
    assert tight.find("不保本")[0].negated
    assert not tight.find("不一定保本")[0].negated
    loose = PhraseMatcher([("保本", "p")], negation=Negation(max_gap=3))
    assert loose.find("不一定保本")[0].negated


def test_same_phrase_in_many_rules_and_empty_phrase() -> None:
    m = PhraseMatcher([("保本", "a"), ("保 本", "b")])
    assert sorted(x.payload for x in m.find("保本")) == ["a", "b"]
    with pytest.raises(RuleError):
        PhraseMatcher([("，。", "x")])
    assert PhraseMatcher[str]([]).find("保本") == []


def test_normalizer_offsets_cover_expanding_characters() -> None:
    n = Normalizer().normalize("ﬁne ㍻")  # ligature and square era name expand under NFKC
    assert n.text.startswith("fine")
    assert len(n.offsets) == len(n.text)
    assert n.original_span(0, 4) == (0, 3)
