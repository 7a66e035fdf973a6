"""Backward-compatibility check: can the current schema read everything ever released?

Hand-written from the Avro specification's "Schema Resolution" section, because no
maintained Python library implements it (fastavro resolves at read time and only fails on
the first record that hits a mismatch; the registry's checker lives in Java). The rules:
reader fields missing from the writer need a default; writer-only fields are skipped; int
promotes to long, float, double; long to float, double; float to double; string and bytes
interchange; enum symbols the writer may send must exist in the reader or the reader enum
needs a default; every writer union branch must be readable; records, enums and fixed
match by (unqualified) name or alias; arrays and maps by items and values. In addition a
decimal must keep its scale and precision (the bytes would be read as another number).

>>> old = {"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]}
>>> new = {"type": "record", "name": "R", "fields": [{"name": "a", "type": "long"},
...        {"name": "b", "type": "string"}]}
>>> [p.message for p in check_pair(writer=old, reader=new)]
['reader field has no default and the writer lacks it']
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dealstream.schemas import catalog
from dealstream.schemas.catalog import all_types, event_type, normal_form, reload

_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
_NAMED = {"record", "enum", "fixed"}
_PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One compatibility finding; ``error`` breaks readers, ``warning`` needs attention."""

    subject: str
    severity: Literal["error", "warning"]
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.subject} {self.path}: {self.message}"


class _Names:
    """Named types of one schema, by full and short name, for resolving references."""

    def __init__(self, schema: Any) -> None:
        self.types: dict[str, dict[str, Any]] = {}
        self._collect(schema, None)

    def _collect(self, node: Any, namespace: str | None) -> None:
        if isinstance(node, list):
            for branch in node:
                self._collect(branch, namespace)
            return
        if not isinstance(node, dict):
            return
        kind = node.get("type")
        if kind in _NAMED:
            name = str(node["name"])
            ns = node.get("namespace", namespace)
            if "." in name:
                ns = name.rsplit(".", 1)[0]
            full = name if "." in name or not ns else f"{ns}.{name}"
            self.types[full] = node
            self.types.setdefault(full.rsplit(".", 1)[-1], node)
            namespace = ns
        for f in node.get("fields", ()):
            self._collect(f["type"], namespace)
        for key in ("items", "values"):
            if key in node:
                self._collect(node[key], namespace)
        if isinstance(kind, dict | list):
            self._collect(kind, namespace)

    def resolve(self, node: Any) -> Any:
        """Replace a name reference by its definition; unwrap ``{"type": "int"}``."""
        while True:
            if isinstance(node, str) and node not in _PRIMITIVES:
                found = self.types.get(node) or self.types.get(node.rsplit(".", 1)[-1])
                if found is None:
                    return node
                node = found
            elif isinstance(node, dict) and isinstance(node.get("type"), dict | list):
                node = node["type"]
            elif (
                isinstance(node, dict)
                and node.get("type") in _PRIMITIVES
                and ("logicalType" not in node)
            ):
                return node["type"]
            else:
                return node


def _kind(node: Any) -> str:
    if isinstance(node, list):
        return "union"
    if isinstance(node, dict):
        return str(node.get("type"))
    return str(node)


def _short(name: Any) -> str:
    return str(name).rsplit(".", 1)[-1]


class _Checker:
    def __init__(self, writer: Any, reader: Any) -> None:
        self.wn = _Names(writer)
        self.rn = _Names(reader)
        self.problems: list[tuple[str, str]] = []
        self._seen: set[tuple[int, int]] = set()  # recursion guard for named types

    def fail(self, path: str, message: str) -> None:
        self.problems.append((path or "/", message))

    def matches(self, w: Any, r: Any) -> bool:
        """Would the reader branch ``r`` be chosen for writer ``w`` (shallow, per spec)?"""
        wk, rk = _kind(w), _kind(r)
        if wk in _NAMED and rk == wk:
            return _short(w["name"]) == _short(r["name"]) or _names_alias(w, r)
        if wk == rk:
            return True
        return rk in _PROMOTIONS.get(wk, set())

    def check(self, w: Any, r: Any, path: str) -> None:
        w, r = self.wn.resolve(w), self.rn.resolve(r)
        if isinstance(w, list):
            for i, branch in enumerate(w):
                self.check(branch, r, f"{path}<{_kind(self.wn.resolve(branch))}#{i}>")
            return
        if isinstance(r, list):
            branches = [self.rn.resolve(b) for b in r]
            exact = [b for b in branches if _kind(b) == _kind(w) and self.matches(w, b)]
            chosen = exact or [b for b in branches if self.matches(w, b)]
            if not chosen:
                self.fail(path, f"writer type {_kind(w)} matches no branch of the reader union")
                return
            self.check(w, chosen[0], path)
            return
        wk, rk = _kind(w), _kind(r)
        if wk != rk:
            if rk not in _PROMOTIONS.get(wk, set()):
                self.fail(path, f"writer type {wk} cannot be read as {rk}")
            return
        if isinstance(w, dict) and isinstance(r, dict):
            self._check_complex(w, r, wk, path)

    def _check_complex(self, w: dict[str, Any], r: dict[str, Any], kind: str, path: str) -> None:
        if w.get("logicalType") == "decimal" or r.get("logicalType") == "decimal":
            for attr, default in (("precision", None), ("scale", 0)):
                if w.get(attr, default) != r.get(attr, default):
                    self.fail(path, f"decimal {attr} changed from {w.get(attr)} to {r.get(attr)}")
        if kind in _NAMED and not (_short(w["name"]) == _short(r["name"]) or _names_alias(w, r)):
            self.fail(path, f"named type {w['name']} cannot be read as {r['name']}")
            return
        if kind == "record":
            self._check_record(w, r, path)
        elif kind == "enum":
            missing = [s for s in w["symbols"] if s not in r["symbols"]]
            if missing and "default" not in r:
                self.fail(
                    path, f"enum symbols {missing} unknown to the reader, which has no default"
                )
        elif kind == "fixed":
            if w["size"] != r["size"]:
                self.fail(path, f"fixed size changed from {w['size']} to {r['size']}")
        elif kind == "array":
            self.check(w["items"], r["items"], f"{path}[]")
        elif kind == "map":
            self.check(w["values"], r["values"], f"{path}{{}}")

    def _check_record(self, w: dict[str, Any], r: dict[str, Any], path: str) -> None:
        key = (id(w), id(r))
        if key in self._seen:
            return
        self._seen.add(key)
        by_name = {f["name"]: f for f in w["fields"]}
        for rf in r["fields"]:
            here = f"{path}.{rf['name']}"
            wf = by_name.get(rf["name"]) or next(
                (by_name[a] for a in rf.get("aliases", ()) if a in by_name), None
            )
            if wf is None:
                if "default" not in rf:
                    self.fail(here, "reader field has no default and the writer lacks it")
            else:
                self.check(wf["type"], rf["type"], here)


def _names_alias(w: dict[str, Any], r: dict[str, Any]) -> bool:
    aliases = {_short(a) for a in r.get("aliases", ())}
    return _short(w["name"]) in aliases


def check_pair(*, writer: Any, reader: Any, subject: str = "") -> list[Problem]:
    """Problems reading data written with ``writer`` using ``reader`` (empty: compatible)."""
    checker = _Checker(writer, reader)
    checker.check(writer, reader, "")
    return [Problem(subject, "error", path, msg) for path, msg in checker.problems]


def check_all() -> list[Problem]:
    """Check every subject's current schema against all its released versions."""
    problems: list[Problem] = []
    for et in all_types():
        if not et.history:
            problems.append(Problem(et.subject, "warning", "/", "no released version yet"))
            continue
        for old in et.history:
            for p in check_pair(writer=old.raw, reader=et.raw, subject=et.subject):
                problems.append(
                    Problem(p.subject, p.severity, f"v{old.version}:{p.path}", p.message)
                )
        if not et.frozen:
            problems.append(
                Problem(
                    et.subject,
                    "warning",
                    "/",
                    f"current schema differs from v{et.history[-1].version} and is not yet"
                    " frozen (run freeze before release)",
                )
            )
    return problems


def freeze(subject_or_type: str) -> Path:
    """Release the current schema as the next ``history/<subject>/v<N>.avsc``.

    Refuses when it is incompatible with a released version; returns the existing file when
    the current schema is already the latest version.
    """
    et = next((t for t in all_types() if subject_or_type in (t.subject, t.name)), None)
    if et is None:
        et = event_type(subject_or_type)  # raises a KeyError naming the known types
    errors = [p for p in check_all() if p.subject == et.subject and p.severity == "error"]
    if errors:
        raise ValueError("incompatible: " + "; ".join(str(p) for p in errors))
    folder = catalog.HISTORY_DIR / et.subject
    if et.history and normal_form(et.history[-1].raw) == normal_form(et.raw):
        return folder / f"v{et.history[-1].version}.avsc"
    version = et.history[-1].version + 1 if et.history else 1
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"v{version}.avsc"
    path.write_text(json.dumps(et.raw, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    reload()
    return path
