"""Many phrases, one Aho-Corasick automaton, matched over normalised text, negation-aware.

Every phrase (Chinese or English, thousands of them) goes into a single pyahocorasick
automaton, so a message is scanned once whatever the number of rules. Phrases that start or end
with a Latin letter/digit only match at word boundaries ("guaranteed return" does not match
inside "unguaranteed returns"). A match preceded, within the same clause, by a negation cue and
at most ``max_gap`` filler characters is flagged ``negated``: "不保本" and "not guaranteed" are
disclosures, not promises.

>>> m = PhraseMatcher([("保本", "R1"), ("稳赚", "R2"), ("guaranteed return", "R3")])
>>> [(x.payload, x.text, x.negated) for x in m.find("我们不是说保本，而是稳-赚")]
[('R1', '保本', True), ('R2', '稳-赚', False)]
>>> [(x.payload, x.span) for x in m.find("A Guaranteed  Return!")]
[('R3', (2, 20))]
>>> m.find("unguaranteed returns")
[]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

import ahocorasick

from dealstream.streams.rules.errors import RuleError
from dealstream.streams.rules.normalize import Normalized, Normalizer

T = TypeVar("T")

DEFAULT_CUES: tuple[str, ...] = (
    "不", "非", "无", "没", "没有", "不能", "不会", "不是", "未", "别", "绝不", "并非", "无法",
    "not", "no", "never", "without", "cannot", "cant", "dont", "doesnt", "isnt", "wont", "arent",
)  # fmt: skip
# Words that start with a cue but do not negate what follows ("不仅保本" still promises).
DEFAULT_PSEUDO_CUES: tuple[str, ...] = (
    "不仅", "不但", "不只", "不光", "不单", "无论", "不管", "非常", "没想到", "不错", "not only",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Negation:
    """Which words negate a following phrase, and how much filler may sit between them."""

    cues: tuple[str, ...] = DEFAULT_CUES
    pseudo_cues: tuple[str, ...] = DEFAULT_PSEUDO_CUES
    max_gap: int = 3  # normalised characters allowed between the cue and the phrase


@dataclass(frozen=True, slots=True)
class PhraseMatch(Generic[T]):
    """One occurrence: the phrase's payload, normalised and original spans, original text."""

    payload: T
    phrase: str  # the phrase as configured
    start: int  # original character offsets, end exclusive
    end: int
    text: str  # the original text that matched, separators and all
    negated: bool

    @property
    def span(self) -> tuple[int, int]:
        return self.start, self.end


@dataclass(frozen=True, slots=True)
class _Entry(Generic[T]):
    phrase: str
    payload: T


class PhraseMatcher(Generic[T]):
    """Compiled phrase set; immutable once built (rebuild to change phrases)."""

    def __init__(
        self,
        phrases: Iterable[tuple[str, T]],
        *,
        normalizer: Normalizer | None = None,
        negation: Negation | None = None,
    ) -> None:
        self.normalizer = normalizer or Normalizer()
        self.negation = negation or Negation()
        self._automaton = ahocorasick.Automaton(ahocorasick.STORE_ANY, ahocorasick.KEY_STRING)
        table: dict[str, list[_Entry[T]]] = {}
        for phrase, payload in phrases:
            key = self.normalizer.normalize_phrase(phrase)
            if not key:
                raise RuleError(f"phrase {phrase!r} is empty once normalised")
            table.setdefault(key, []).append(_Entry(phrase, payload))
        for key, entries in table.items():
            edges = (_is_word_char(key[0]), _is_word_char(key[-1]))
            self._automaton.add_word(key, (len(key), edges, tuple(entries)))
        self.size = len(table)
        if table:
            self._automaton.make_automaton()
        norm = self.normalizer.normalize_phrase
        self._cues = tuple(sorted({norm(c) for c in self.negation.cues} - {""}, key=len))
        self._pseudo = tuple({norm(c) for c in self.negation.pseudo_cues} - {""})

    def find(self, text: str | Normalized, original: str | None = None) -> list[PhraseMatch[T]]:
        """All occurrences (overlapping ones too), in order of their end position."""
        if isinstance(text, Normalized):
            norm, source = text, original or ""
        else:
            norm, source = self.normalizer.normalize(text), text
        if self.size == 0 or not norm.text:
            return []
        found: list[PhraseMatch[T]] = []
        for last, (length, (word_start, word_end), entries) in self._automaton.iter(norm.text):
            start, end = last - length + 1, last + 1
            if word_start and not norm.is_word_edge(start):
                continue
            if word_end and not norm.is_word_edge(end):
                continue
            negated = self._negated(norm, start)
            o_start, o_end = norm.original_span(start, end)
            for entry in entries:
                found.append(
                    PhraseMatch(
                        entry.payload, entry.phrase, o_start, o_end, source[o_start:o_end], negated
                    )
                )
        return found

    def _negated(self, norm: Normalized, start: int) -> bool:
        """Is there a negation cue ending at most ``max_gap`` characters before ``start``?"""
        text = norm.text
        j = start
        for _ in range(self.negation.max_gap + 1):
            if j <= 0 or norm.clause_break[j]:
                return False
            for cue in self._cues:
                c0 = j - len(cue)
                if c0 < 0 or not text.startswith(cue, c0):
                    continue
                if any(norm.clause_break[k] for k in range(c0 + 1, j)):
                    continue
                if _is_word_char(cue[0]) and not (norm.is_word_edge(c0) and norm.is_word_edge(j)):
                    continue
                if any(text.startswith(p, c0) for p in self._pseudo):
                    continue
                return True
            j -= 1
        return False


def _is_word_char(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()
