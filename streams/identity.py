"""Identity resolution: the desensitised identifiers of one person linked into one customer id.

Rules are deterministic: identifiers that one record carries together belong to one person (a
mini-program event's union id and authorised phone, a WeCom contact's external id and union id,
a POS member phone, an ERP account and its contact phone). Components form a union-find whose
membership is kept fully compressed (every identifier points at its customer; a merge relabels
the smaller component), so a lookup is one dict access.

A component's customer id is the smallest :func:`customer_id` of its identifiers: it depends
only on what is linked, never on the order records arrived in, so a replay or a restored
worker names the customer the same way. When a link joins two known customers the larger id is
merged into the smaller and a :class:`Merge` is returned for it and for every id merged into it
before, so journeys written under any old id can be re-attributed in one lookup (no chains).

A component stops growing at ``max_identifiers``: a shared phone (a shop's own number typed in
for walk-in customers) would otherwise fuse strangers. Such links are refused and counted.

>>> r = IdentityResolver()
>>> a = r.resolve(["unionid:u1", "phone:p1"]).customer
>>> b = r.resolve(["phone:p2"]).customer
>>> joined = r.resolve(["phone:p1", "phone:p2"])
>>> joined.customer == min(a, b), [m.merged for m in joined.merges] == [max(a, b)]
(True, True)
>>> IdentityResolver.restore(r.snapshot()).customer_of("unionid:u1") == joined.customer
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

_VERSION = 1


def customer_id(identifier: str) -> str:
    """Stable id of a one-identifier customer: a hash, so ids sort in no meaningful order."""
    return "cust-" + hashlib.sha256(identifier.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Merge:
    """``merged`` (an id journeys may have been written under) now belongs to ``into``."""

    merged: str
    into: str
    seq: int  # increases with every merge: the latest row per merged id wins


@dataclass(frozen=True, slots=True)
class Resolution:
    customer: str | None  # None when the record carried no identifier
    merges: tuple[Merge, ...] = ()
    refused: int = 0  # links not made because a component would pass max_identifiers


_NOBODY = Resolution(None)


@dataclass
class IdentityResolver:
    """Identifier → customer, with merges; state is plain data (:meth:`snapshot`)."""

    max_identifiers: int = 32
    _of: dict[str, str] = field(default_factory=dict)  # identifier -> customer
    _members: dict[str, list[str]] = field(default_factory=dict)  # customer -> identifiers
    _aliases: dict[str, list[str]] = field(default_factory=dict)  # customer -> merged ids
    _seq: int = 0
    # Customers whose members or aliases changed since the last changelog write (not state).
    touched: set[str] = field(default_factory=set, compare=False, repr=False)

    @property
    def seq(self) -> int:
        return self._seq

    def customer_of(self, identifier: str) -> str | None:
        return self._of.get(identifier)

    def members(self, customer: str) -> tuple[str, ...]:
        return tuple(self._members.get(customer, ()))

    def aliases(self, customer: str) -> tuple[str, ...]:
        return tuple(self._aliases.get(customer, ()))

    def __len__(self) -> int:
        return len(self._members)

    def resolve(self, identifiers: Iterable[str]) -> Resolution:
        """Link the identifiers of one record; the customer they now belong to."""
        given = tuple(identifiers)
        of = self._of
        found = of.get(given[0]) if given else None
        if found is not None and all(of.get(i) == found for i in given[1:]):
            return Resolution(found)  # the usual case: nothing new is linked
        ids = sorted({i for i in given if i})
        if not ids:
            return _NOBODY
        merges: list[Merge] = []
        refused = 0
        known = {self._of[i] for i in ids if i in self._of}  # ids rows may carry already
        current = self._add(ids[0])
        for identifier in ids[1:]:
            other = self._of.get(identifier)
            if other == current:
                continue
            size = len(self._members[current]) + (len(self._members[other]) if other else 1)
            if size > self.max_identifiers:
                refused += 1
                continue
            if other is None:  # a new identifier joins; a smaller hash renames the customer
                self._of[identifier] = current
                self._members[current].append(identifier)
                self.touched.add(current)
                fresh = customer_id(identifier)
                if fresh < current:
                    current = self._union(fresh, current, merges, known)
                continue
            current = self._union(current, other, merges, known)
        return Resolution(current, tuple(merges), refused)

    def _add(self, identifier: str) -> str:
        known = self._of.get(identifier)
        if known is not None:
            return known
        customer = customer_id(identifier)
        self._of[identifier] = customer
        self._members[customer] = [identifier]
        self.touched.add(customer)
        return customer

    def _union(self, a: str, b: str, merges: list[Merge], known: set[str]) -> str:
        """Move the larger id's component into the smaller (which may not exist yet).

        An id created by this very record was never handed out: no merge, no alias for it.
        """
        into, merged = min(a, b), max(a, b)
        self.touched.update((into, merged))
        moved = self._members.pop(merged)
        for identifier in moved:
            self._of[identifier] = into
        self._members.setdefault(into, []).extend(moved)
        gone = [merged] if merged in known else []
        gone += self._aliases.pop(merged, [])
        if gone:  # no empty alias lists: a customer's entry restores to the same state
            self._aliases.setdefault(into, []).extend(gone)
        for old in gone:
            self._seq += 1
            merges.append(Merge(old, into, self._seq))
        return into

    # -- state -------------------------------------------------------------------------------
    def entry(self, customer: str) -> tuple[list[str], list[str]] | None:
        """One customer's identifiers and merged ids (None: no such customer)."""
        members = self._members.get(customer)
        if members is None:
            return None
        return members, self._aliases.get(customer, [])

    def load(self, customer: str, members: list[str], aliases: list[str]) -> None:
        """Put back one customer's :meth:`entry` (restoring from per-customer entries)."""
        self._members[customer] = list(members)
        for identifier in members:
            self._of[identifier] = customer
        if aliases:
            self._aliases[customer] = list(aliases)

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready state: members and aliases per customer (the identifier map follows)."""
        return {
            "v": _VERSION,
            "max": self.max_identifiers,
            "seq": self._seq,
            "members": self._members,
            "aliases": self._aliases,
        }

    @classmethod
    def restore(cls, doc: dict[str, Any]) -> IdentityResolver:
        if doc.get("v") != _VERSION:
            raise ValueError(f"unsupported identity state version {doc.get('v')!r}")
        resolver = cls(int(doc["max"]), _seq=int(doc["seq"]))
        for customer, members in doc["members"].items():
            resolver._members[customer] = list(members)
            for identifier in members:
                resolver._of[identifier] = customer
        resolver._aliases = {c: list(a) for c, a in doc["aliases"].items()}
        return resolver
