"""The business rule expression language: a lexer, a recursive-descent parser, an evaluator.

No ``eval``/``exec``, no attribute access, calls only to a fixed table of functions, and a
bounded size, so a rule from YAML can do nothing but compute a value from an event and state.
"""
