"""Intent rules as YAML data, their conditions compiled by the business rule language.

A rule counts a customer's mini-program views of one subject (``series`` or ``sku``) and fires
when ``threshold`` views fall within ``window`` and no purchase of the subject does. Threshold
and window become the language's own expression
``count_over("view", window) >= threshold and count_over("purchase", window) == 0``, so the
counting is the evaluator's (windows, three-valued logic), not a second implementation; ``view``
filters events and ``when`` adds conditions, both checked when the file loads. Problems are
reported with their YAML line and column, all at once.

>>> rules = load_rules(BUNDLED_RULES.read_text(encoding="utf-8"))
>>> rules[0].id, rules[0].subject, rules[0].threshold, rules[0].window_ms // 86_400_000
('repeat_series_views', 'series', 3, 7)
>>> rules[0].condition.source
'count_over("view", "7d") >= 3 and count_over("purchase", "7d") == 0'
>>> load_rules("rules:\\n  - {id: x, version: 1, subject: store, view: 'true', threshold: 2,"
...            " window: 1d, attribution: 1d, script: hi}\\n")
Traceback (most recent call last):
...
dealstream.streams.rules.errors.RuleError: line 2, column 34: subject must be series or sku
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from dealstream.streams.rules.errors import RuleError
from dealstream.streams.rules.language.evaluator import Compiled, compile_expr, compile_node
from dealstream.streams.rules.source import Node, load_rule_list

BUNDLED_RULES = Path(__file__).with_name("intent_rules.yaml")
SIGNALS = frozenset({"view", "purchase"})
SUBJECTS = ("series", "sku")
PLACEHOLDERS = frozenset({"series", "sku", "store_id", "views", "stock", "tags"})
MAX_RULES = 200
MAX_SCRIPT = 500
_FIELDS = {
    "id", "version", "subject", "view", "threshold", "window", "when", "attribution", "script",
    "description",
}  # fmt: skip
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True, slots=True)
class IntentRule:
    id: str
    version: int
    subject: str  # series | sku
    view: Compiled  # which mini-program events count as a view
    threshold: int
    window_ms: int
    condition: Compiled  # threshold within window and no purchase, in the rule language
    when: Compiled | None
    attribution_ms: int
    script: str

    def retention(self) -> int:
        """How far back this rule reads its signals, or converts its tasks."""
        windows = [self.window_ms, self.attribution_ms, *self.condition.windows.values()]
        if self.when is not None:
            windows.extend(self.when.windows.values())
        return max(windows)


def load_rules(text: str) -> tuple[IntentRule, ...]:
    """Parse and validate a rule file; raises :class:`RuleError` naming every problem."""
    return load_rule_list(text, _rule, max_rules=MAX_RULES)


def render(template: str, values: dict[str, str]) -> str:
    """Fill ``{name}`` placeholders from ``values`` only (no format-string attribute access).

    >>> render("{series} x{views}", {"series": "净水器", "views": "3"})
    '净水器 x3'
    """
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def _expr(node: Node, signals: set[str]) -> Compiled:
    return compile_node(node, signals)


def _rule(node: Node) -> IntentRule:
    node.check_keys(_FIELDS)
    version = node.req("version").integer()
    if version < 1:
        raise node.req("version").error("version must be a positive integer")
    subject = node.req("subject").text()
    if subject not in SUBJECTS:
        raise node.req("subject").error(f"subject must be {' or '.join(SUBJECTS)}")
    threshold = node.req("threshold").integer()
    if threshold < 1:
        raise node.req("threshold").error("threshold must be at least 1")
    window_node = node.req("window")
    window_ms = window_node.duration()
    window = window_node.text().strip()
    core = (
        f'count_over("view", "{window}") >= {threshold} and count_over("purchase", "{window}") == 0'
    )
    when = node.get("when")
    script_node = node.req("script")
    script = script_node.text()
    if len(script) > MAX_SCRIPT:
        raise script_node.error(f"script longer than {MAX_SCRIPT} characters")
    for name in _PLACEHOLDER.findall(script):
        if name not in PLACEHOLDERS:
            raise script_node.error(
                f"unknown placeholder {{{name}}}; allowed: {', '.join(sorted(PLACEHOLDERS))}"
            )
    return IntentRule(
        id=node.req("id").text(),
        version=version,
        subject=subject,
        view=_expr(node.req("view"), set()),
        threshold=threshold,
        window_ms=window_ms,
        condition=compile_expr(core, set(SIGNALS)),
        when=_expr(when, set(SIGNALS)) if when is not None else None,
        attribution_ms=node.req("attribution").duration(),
        script=script,
    )


def main(argv: list[str]) -> int:
    """``python -m dealstream.streams.tasks.rules FILE``: validate a rule file."""
    path = Path(argv[0]) if argv else BUNDLED_RULES
    try:
        rules = load_rules(path.read_text(encoding="utf-8"))
    except RuleError as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 1
    print(f"{path}: {len(rules)} intent rule(s) valid")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
