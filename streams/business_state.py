"""Business rule state as changelog entries: one per rule+entity, plus one of partition metadata.

A whole :class:`RuleEngine` snapshot per partition would grow with every key and soon pass
Kafka's 1 MB record limit; split per state key, each checkpoint writes only the entries of the
keys the engine changed since the last one (and tombstones for keys left empty), and compaction
keeps one entry per key. A checkpoint costs what changed, not what is kept.

The metadata entry holds the watermark and, per input topic, the offset of the last record the
state includes: records at or below it are skipped when they are re-read after a crash, so an
at-least-once replay never counts an event twice.

>>> from dealstream.streams.rules.engine import RuleEngine
>>> engine, state = RuleEngine(()), PartitionState()
>>> records = state.changes(engine.take_changes(), engine.meta(), {"t": 7})
>>> [k for k, _ in records]
[b'\\x00meta']
>>> _, engine_bytes, applied = PartitionState.restore(dict(records))
>>> applied, RuleEngine((), state=engine_bytes).watermark_ms
({'t': 7}, 0)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

META = b"\x00meta"
_VERSION = 1


class StateError(ValueError):
    """A changelog entry this code cannot read (wrong version or shape)."""


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def split(engine_snapshot: bytes, applied: Mapping[str, int]) -> dict[bytes, bytes]:
    """Changelog entries (key → value) of one engine snapshot (the rules core's JSON format)."""
    doc = json.loads(engine_snapshot)
    store = json.loads(doc["store"])
    per_key: dict[str, dict[str, Any]] = {}
    for key, series in store["series"].items():
        per_key.setdefault(key, {})["series"] = series
    for timer in doc["timers"]:
        per_key.setdefault(timer["key"], {})["timer"] = timer
    for key, until in doc["suppressed"].items():
        per_key.setdefault(key, {})["suppressed"] = until
    out = {key.encode(): _dumps(value) for key, value in per_key.items()}
    meta = {
        "v": _VERSION,
        "engine_v": doc["v"],
        "store_v": store["v"],
        "watermark_ms": doc["watermark_ms"],
        "retention_ms": store["retention_ms"],
        "applied": dict(applied),
    }
    out[META] = _dumps(meta)
    return out


def join(entries: Mapping[bytes, bytes]) -> tuple[bytes, dict[str, int]]:
    """Inverse of :func:`split`: an engine snapshot and the applied offsets."""
    if META not in entries:
        raise StateError("no metadata entry")
    meta = json.loads(entries[META])
    if meta.get("v") != _VERSION:
        raise StateError(f"unsupported business state version {meta.get('v')!r}")
    series: dict[str, Any] = {}
    timers: list[dict[str, Any]] = []
    suppressed: dict[str, int] = {}
    for raw_key, value in entries.items():
        if raw_key == META:
            continue
        key, doc = raw_key.decode(), json.loads(value)
        if "series" in doc:
            series[key] = doc["series"]
        if "timer" in doc:
            timers.append(doc["timer"])
        if "suppressed" in doc:
            suppressed[key] = int(doc["suppressed"])
    timers.sort(key=lambda t: (t["due_ms"], t["rule_id"], t["key"]))
    store = {"v": meta["store_v"], "retention_ms": meta["retention_ms"], "series": series}
    engine = {
        "v": meta["engine_v"],
        "store": json.dumps(store, ensure_ascii=False, separators=(",", ":")),
        "timers": timers,
        "suppressed": suppressed,
        "watermark_ms": meta["watermark_ms"],
    }
    applied = {str(t): int(o) for t, o in meta["applied"].items()}
    return _dumps(engine), applied


class PartitionState:
    """Which keys the changelog holds for one partition, to write changes and tombstones only."""

    def __init__(self, written: Mapping[bytes, bytes] | None = None) -> None:
        entries = dict(written or {})
        self._meta = entries.pop(META, None)
        self._keys = set(entries)

    def __len__(self) -> int:
        """Rule+entity entries the changelog holds (metadata aside)."""
        return len(self._keys)

    def changes(
        self,
        changed: Mapping[str, Mapping[str, Any] | None],
        meta: Mapping[str, Any],
        applied: Mapping[str, int],
    ) -> list[tuple[bytes, bytes | None]]:
        """Entries to produce for the keys an engine changed (``RuleEngine.take_changes``):
        new values, tombstones (None) for keys that hold nothing now, and the metadata entry
        last, when it changed (a checkpoint cut short leaves the previous metadata)."""
        out: list[tuple[bytes, bytes | None]] = []
        for key, doc in changed.items():
            raw = key.encode()
            if doc is not None:
                out.append((raw, _dumps(doc)))
                self._keys.add(raw)
            elif raw in self._keys:
                out.append((raw, None))
                self._keys.discard(raw)
        entry = _dumps({"v": _VERSION, **meta, "applied": dict(applied)})
        if out or entry != self._meta:
            out.append((META, entry))
            self._meta = entry
        return out

    @classmethod
    def restore(
        cls, entries: Mapping[bytes, bytes]
    ) -> tuple[PartitionState, bytes, dict[str, int]]:
        """The tracker, the engine snapshot and the applied offsets of restored entries."""
        engine, applied = join(entries)
        return cls(entries), engine, applied
