"""Recursive-descent parser: expression text → a small, checked AST.

Grammar (lowest precedence first)::

    or    := and ("or" and)*          and  := not ("and" not)*
    not   := "not" not | cmp          cmp  := sum (CMP sum | ["not"] "in" sum)?
    sum   := prod (("+"|"-") prod)*   prod := unary (("*"|"/"|"%") unary)*
    unary := "-" unary | atom
    atom  := NUMBER | STRING | true | false | null | "(" or ")" | "[" items "]"
           | NAME "(" items ")" | NAME ("." NAME)*

Size and nesting are bounded while parsing, so a hostile rule fails with a :class:`RuleError`
long before it could exhaust the stack or the CPU.

>>> tree = parse('last("turnover_days") > 45 and payload.sku in ["A", "B"]')
>>> tree.op, tree.left.op, tree.right.op, tree.right.left
('and', '>', 'in', Field(path=('payload', 'sku')))
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dealstream.streams.rules.language.lexer import ExprError, Token, tokenize

MAX_NODES = 200
MAX_DEPTH = 24
FIELD_ROOTS = ("event", "payload", "key")
_COMPARISONS = frozenset({"<", "<=", ">", ">=", "==", "!="})


@dataclass(frozen=True, slots=True)
class Literal:
    value: float | int | str | bool | None
    pos: int = field(repr=False)


@dataclass(frozen=True, slots=True)
class Field:
    path: tuple[str, ...]
    pos: int = field(repr=False)


@dataclass(frozen=True, slots=True)
class ListExpr:
    items: tuple[Expr, ...]
    pos: int = field(repr=False)


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "-" or "not"
    operand: Expr
    pos: int


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Expr
    right: Expr
    pos: int


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Expr, ...]
    pos: int


Expr = Literal | Field | ListExpr | Unary | Binary | Call


def parse(source: str) -> Expr:
    """Parse one expression; raises :class:`ExprError` (a ``RuleError``) with the column."""
    return _Parser(tokenize(source)).parse()


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0
        self.nodes = 0
        self.depth = 0

    def parse(self) -> Expr:
        if self.peek.kind == "end":
            raise ExprError("empty expression", 0)
        expr = self.or_()
        if self.peek.kind != "end":
            raise ExprError(
                f"unexpected {self.describe(self.peek)} after a complete expression", self.peek.pos
            )
        return expr

    # -- helpers ---------------------------------------------------------------------------
    @property
    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def accept(self, kind: str, text: str) -> bool:
        if self.peek.kind == kind and self.peek.text == text:
            self.i += 1
            return True
        return False

    def expect(self, text: str) -> Token:
        tok = self.take()
        if tok.kind != "op" or tok.text != text:
            raise ExprError(f"expected {text!r} but found {self.describe(tok)}", tok.pos)
        return tok

    def node(self) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ExprError(f"expression too large (more than {MAX_NODES} nodes)", self.peek.pos)

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError(f"expression nested deeper than {MAX_DEPTH} levels", self.peek.pos)

    @staticmethod
    def describe(tok: Token) -> str:
        if tok.kind == "end":
            return "end of expression"
        return f"{tok.kind} {tok.text!r}"

    # -- grammar ---------------------------------------------------------------------------
    def or_(self) -> Expr:
        self.enter()
        left = self.and_()
        while self.peek.kind == "keyword" and self.peek.text == "or":
            pos = self.take().pos
            self.node()
            left = Binary("or", left, self.and_(), pos)
        self.depth -= 1
        return left

    def and_(self) -> Expr:
        left = self.not_()
        while self.peek.kind == "keyword" and self.peek.text == "and":
            pos = self.take().pos
            self.node()
            left = Binary("and", left, self.not_(), pos)
        return left

    def not_(self) -> Expr:
        if self.peek.kind == "keyword" and self.peek.text == "not":
            pos = self.take().pos
            self.node()
            self.enter()
            operand = self.not_()
            self.depth -= 1
            return Unary("not", operand, pos)
        return self.comparison()

    def comparison(self) -> Expr:
        left = self.sum_()
        tok = self.peek
        if tok.kind == "op" and tok.text in _COMPARISONS:
            self.take()
            op = tok.text
        elif tok.kind == "keyword" and tok.text == "in":
            self.take()
            op = "in"
        elif tok.kind == "keyword" and tok.text == "not" and self.tokens[self.i + 1].text == "in":
            self.i += 2
            op = "not in"
        else:
            return left
        self.node()
        right = self.sum_()
        nxt = self.peek
        if (nxt.kind == "op" and nxt.text in _COMPARISONS) or nxt.text == "in":
            raise ExprError("chained comparisons are not supported; use 'and'", nxt.pos)
        return Binary(op, left, right, tok.pos)

    def sum_(self) -> Expr:
        left = self.product()
        while self.peek.kind == "op" and self.peek.text in ("+", "-"):
            tok = self.take()
            self.node()
            left = Binary(tok.text, left, self.product(), tok.pos)
        return left

    def product(self) -> Expr:
        left = self.unary()
        while self.peek.kind == "op" and self.peek.text in ("*", "/", "%"):
            tok = self.take()
            self.node()
            left = Binary(tok.text, left, self.unary(), tok.pos)
        return left

    def unary(self) -> Expr:
        if self.peek.kind == "op" and self.peek.text == "-":
            pos = self.take().pos
            self.node()
            self.enter()
            operand = self.unary()
            self.depth -= 1
            value = operand.value if isinstance(operand, Literal) else None
            if isinstance(value, int | float) and not isinstance(value, bool):
                return Literal(-value, pos)
            return Unary("-", operand, pos)
        return self.atom()

    def atom(self) -> Expr:  # noqa: PLR0911
        tok = self.take()
        self.node()
        if tok.kind == "number":
            text = tok.text
            return Literal(float(text) if any(c in text for c in ".eE") else int(text), tok.pos)
        if tok.kind == "string":
            return Literal(tok.text, tok.pos)
        if tok.kind == "keyword" and tok.text in ("true", "false", "null"):
            return Literal({"true": True, "false": False, "null": None}[tok.text], tok.pos)
        if tok.kind == "op" and tok.text == "(":
            if self.peek.kind == "op" and self.peek.text == ")":
                raise ExprError("empty parentheses: tuples are not supported", tok.pos)
            inner = self.or_()
            self.expect(")")
            return inner
        if tok.kind == "op" and tok.text == "[":
            return ListExpr(self.items("]"), tok.pos)
        if tok.kind == "name":
            _check_name(tok)
            if self.accept("op", "("):
                return Call(tok.text, self.items(")"), tok.pos)
            path = [tok.text]
            while self.accept("op", "."):
                part = self.take()
                if part.kind not in ("name", "keyword"):
                    raise ExprError(
                        f"expected a field name after '.', found {self.describe(part)}", part.pos
                    )
                _check_name(part)
                path.append(part.text)
            if path[0] not in FIELD_ROOTS:
                raise ExprError(
                    f"unknown name {path[0]!r}: a field starts with {', '.join(FIELD_ROOTS)}"
                    " (e.g. payload.sku); functions are called with ()",
                    tok.pos,
                )
            if len(path) == 1 and path[0] != "payload":
                raise ExprError(f"{path[0]!r} needs a field after it, like {path[0]}.x", tok.pos)
            return Field(tuple(path), tok.pos)
        raise ExprError(f"unexpected {self.describe(tok)}", tok.pos)

    def items(self, close: str) -> tuple[Expr, ...]:
        out: list[Expr] = []
        self.enter()
        if not self.accept("op", close):
            while True:
                out.append(self.or_())
                if self.accept("op", close):
                    break
                self.expect(",")
        self.depth -= 1
        return tuple(out)


def _check_name(tok: Token) -> None:
    if tok.text.startswith("_"):
        raise ExprError(f"names starting with '_' are not allowed ({tok.text!r})", tok.pos)
