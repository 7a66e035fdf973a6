"""The one error type rule loading raises, located in the YAML so an author can fix it."""

from __future__ import annotations


class RuleError(ValueError):
    """A rule (or rule file) is invalid: says what is wrong and, when known, where.

    >>> str(RuleError("unknown function 'open'", line=3, column=9))
    "line 3, column 9: unknown function 'open'"
    """

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        problems: tuple[RuleError, ...] = (),
    ) -> None:
        self.message = message
        self.line = line  # 1-based, in the YAML text
        self.column = column  # 1-based
        self.problems = problems or (self,)
        super().__init__(self.__str__())

    def __str__(self) -> str:
        if self.line is None:
            return self.message
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.message}"

    def at(self, line: int | None, column: int | None) -> RuleError:
        """The same error placed at a YAML position (when it has none of its own yet)."""
        if self.line is not None:
            return self
        return RuleError(self.message, line=line, column=column)


def combine(errors: list[RuleError]) -> RuleError:
    """One error for many problems, so validation reports all of them at once."""
    if len(errors) == 1:
        return errors[0]
    text = f"{len(errors)} problems:\n" + "\n".join(f"  {e}" for e in errors)
    return RuleError(text, problems=tuple(errors))
