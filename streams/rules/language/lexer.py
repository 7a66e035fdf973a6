"""Tokens of the expression language, each with its offset for error messages.

>>> [t.text for t in tokenize('min_over("p", "7d") < -5')]
['min_over', '(', 'p', ',', '7d', ')', '<', '-', '5', '']
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dealstream.streams.rules.errors import RuleError

MAX_SOURCE = 2000  # characters in one expression
MAX_LITERAL = 400  # characters in one string literal
MAX_NUMBER = 24  # digits in one number literal (no giant ints)

KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})
_TOKEN = re.compile(
    r"""(?P<ws>\s+)
      |(?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
      |(?P<name>[A-Za-z_][A-Za-z0-9_]*)
      |(?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
      |(?P<op><=|>=|==|!=|\*\*|[-+*/%<>()\[\],.])""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # number, name, keyword, string, op, end
    text: str  # for strings: the decoded value
    pos: int  # offset in the expression


class ExprError(RuleError):
    """An expression problem at ``offset`` characters into the expression text."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at expression column {offset + 1})")
        self.offset = offset
        self.detail = message


def tokenize(source: str) -> list[Token]:
    if len(source) > MAX_SOURCE:
        raise ExprError(f"expression longer than {MAX_SOURCE} characters", MAX_SOURCE)
    tokens: list[Token] = []
    pos = 0
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if m is None:
            ch = source[pos]
            hint = " (unterminated string?)" if ch in "\"'" else ""
            raise ExprError(f"unexpected character {ch!r}{hint}", pos)
        kind = m.lastgroup or "ws"
        text = m.group()
        if kind == "number" and len(text) > MAX_NUMBER:
            raise ExprError(f"number literal longer than {MAX_NUMBER} characters", pos)
        if kind == "string":
            if len(text) > MAX_LITERAL:
                raise ExprError(f"string literal longer than {MAX_LITERAL} characters", pos)
            text = _unescape(text[1:-1], pos)
        if kind == "op" and text == "**":
            raise ExprError("'**' (exponentiation) is not supported", pos)
        if kind == "name" and text in KEYWORDS:
            kind = "keyword"
        if kind != "ws":
            tokens.append(Token(kind, text, pos))
        pos = m.end()
    tokens.append(Token("end", "", len(source)))
    return tokens


def _unescape(body: str, pos: int) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1] if i + 1 < len(body) else ""
            if nxt not in _ESCAPES:
                raise ExprError(f"unknown escape '\\{nxt}' in string", pos + i + 1)
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)
