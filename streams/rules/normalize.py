"""Text normalisation for phrase matching, keeping a map back to the original characters.

Reps evade filters with full-width letters, traditional characters and separators slipped
between characters ("保 本", "稳-赚", "保．本", "Ｇｕａｒａｎｔｅｅｄ  return"). Matching runs on a
normalised form: NFKC (full-width→half-width), case folding, traditional→simplified (OpenCC
``t2s``), with spaces, punctuation and zero-width/format characters removed. ``offsets`` maps
each normalised character back to its original index so a match reports the original span.

>>> n = Normalizer().normalize("他說：保．本 Ｇｕａｒａｎｔｅｅｄ  Return!")
>>> n.text
'他说保本guaranteedreturn'
>>> start, end = n.original_span(n.text.index("保本"), n.text.index("保本") + 2)
>>> "他說：保．本 Ｇｕａｒａｎｔｅｅｄ  Return!"[start:end]
'保．本'
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import opencc

# Removed between characters; sentence punctuation also ends a clause (for negation scope).
_DROP_CATEGORIES = frozenset(
    {"Zs", "Zl", "Zp", "Cc", "Cf", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po"}
)
_CLAUSE_BREAKS = frozenset("，。！？；,.!?;\n\r…")
_EXTRA_DROP = frozenset("~`^|·・")


@dataclass(frozen=True, slots=True)
class Normalized:
    """Normalised text plus, per normalised character, where it came from and what was cut."""

    text: str
    offsets: tuple[int, ...]  # original index of each normalised character
    word_break: tuple[bool, ...]  # something was removed just before this character
    clause_break: tuple[bool, ...]  # a clause-ending punctuation mark was removed just before
    original_length: int

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Original ``[start, end)`` covering normalised ``[start, end)`` (end exclusive)."""
        if end <= start:
            pos = self.offsets[start] if start < len(self.offsets) else self.original_length
            return pos, pos
        return self.offsets[start], self.offsets[end - 1] + 1

    def is_word_edge(self, pos: int) -> bool:
        """True when ``pos`` is not inside a run of Latin letters/digits (a word boundary)."""
        if pos <= 0 or pos >= len(self.text):
            return True
        if self.word_break[pos]:
            return True
        return not (_is_word_char(self.text[pos - 1]) and _is_word_char(self.text[pos]))


def _dropped(ch: str) -> bool:
    return unicodedata.category(ch) in _DROP_CATEGORIES or ch in _EXTRA_DROP


def _is_word_char(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


class Normalizer:
    """Normalises text; keeps a per-character cache, so build one and reuse it."""

    def __init__(self, *, traditional_to_simplified: bool = True) -> None:
        self._t2s = opencc.OpenCC("t2s") if traditional_to_simplified else None
        self._cache: dict[str, tuple[str, bool, bool]] = {}

    def _char(self, ch: str) -> tuple[str, bool, bool]:
        """(replacement, dropped, clause break) for one original character."""
        hit = self._cache.get(ch)
        if hit is not None:
            return hit
        folded = unicodedata.normalize("NFKC", ch).casefold()
        kept = "".join(c for c in folded if not _dropped(c))
        brk = any(c in _CLAUSE_BREAKS for c in folded) or ch in _CLAUSE_BREAKS
        result = (kept, not kept, brk)
        if len(self._cache) < 65_536:
            self._cache[ch] = result
        return result

    def normalize(self, text: str) -> Normalized:
        chars: list[str] = []
        offsets: list[int] = []
        word_break: list[bool] = []
        clause_break: list[bool] = []
        pending_word = pending_clause = False
        for i, ch in enumerate(text):
            kept, dropped, brk = self._char(ch)
            if dropped:
                pending_word = True
                pending_clause = pending_clause or brk
                continue
            for c in kept:
                chars.append(c)
                offsets.append(i)
                word_break.append(pending_word)
                clause_break.append(pending_clause)
                pending_word = pending_clause = False
        out = "".join(chars)
        if self._t2s is not None and not out.isascii():
            out = self._simplify(out)
        return Normalized(out, tuple(offsets), tuple(word_break), tuple(clause_break), len(text))

    def normalize_phrase(self, phrase: str) -> str:
        """The form a phrase is compiled into the automaton with."""
        return self.normalize(phrase).text

    def _simplify(self, text: str) -> str:
        assert self._t2s is not None
        converted: str = self._t2s.convert(text)
        if len(converted) == len(text):
            return converted
        # A phrase conversion changed the length: fall back to one character at a time so
        # the offsets stay aligned (rare; OpenCC t2s is almost always 1:1).
        parts = []
        for c in text:
            one: str = self._t2s.convert(c)
            parts.append(one if len(one) == 1 else c)
        return "".join(parts)
