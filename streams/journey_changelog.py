"""Journey state as changelog entries, one per customer, channel, region and conversation.

Written whole, the state cost ~100 ms per checkpoint and grew with every customer; split, a
checkpoint writes only the entries that changed since the previous one, plus a metadata entry
(input offsets, identity merge counter, WeCom watermark, rows and alerts to re-emit).

Entries depend on each other (a merge rewrites two customers, the conversations naming the
merged one and the buyer counts of their channels), so a checkpoint must be restored whole or
not at all. Its records go to one partition in order, the metadata entry last; each other entry
carries the checkpoint number ``n`` and, besides its new value, the value it replaces (the one
of the last complete checkpoint). A crash part-way leaves entries newer than the metadata:
restore takes their previous value instead and writes them again at the next checkpoint, so
the state is always that of one complete checkpoint, whose offsets replay the rest. A deleted
entry is first written as a null value with its previous one, and tombstoned a checkpoint later.

>>> from dealstream.streams.channel_health import ChannelHealthSettings
>>> st = JourneyState.empty(ChannelHealthSettings(), 32)
>>> customer = st.resolver.resolve(["phone:p1"]).customer
>>> st.profile(customer).home = "SH001"
>>> log = Changelog()
>>> written = dict(log.checkpoint(changed(st), lambda n: meta(st, n)))
>>> len(written), log.checkpoint(changed(st), lambda n: meta(st, n))[-1][0] == META
(2, True)
>>> back, _ = restore(written, ChannelHealthSettings(), 32)
>>> back.profiles[customer].home, back.resolver.customer_of("phone:p1") == customer
('SH001', True)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from dealstream.streams.channel_health import Channel, ChannelHealth, ChannelHealthSettings
from dealstream.streams.identity import IdentityResolver
from dealstream.streams.journey_state import Conversation, JourneyState, Profile

META = b"\x00meta"
LEGACY_KEY = b"journeys"  # the whole state in one entry (version 1)
_VERSION = 2
CUSTOMER, CHANNEL, REGION, CONVERSATION = b"c:", b"h:", b"t:", b"w:"


def changed(st: JourneyState) -> dict[bytes, bytes | None]:
    """Current values (None: deleted) of the entries changed since the last call."""
    out: dict[bytes, bytes | None] = {}
    resolver, health = st.resolver, st.health
    for customer in resolver.touched | st.dirty_profiles:
        ids, profile = resolver.entry(customer), st.profiles.get(customer)
        doc = None
        if ids is not None or profile is not None:
            members, aliases = ids or ([], [])
            doc = {"m": members, "a": aliases, "p": None if profile is None else vars(profile)}
        out[CUSTOMER + customer.encode()] = _dumps(doc)
    for channel_id in health.dirty:
        found = health.channels.get(channel_id)
        out[CHANNEL + channel_id.encode()] = _dumps(None if found is None else vars(found))
    for region in health.dirty_regions:
        out[REGION + region.encode()] = _dumps(health.turnover.get(region))
    for conv_id in st.dirty_conversations:
        conv = st.conversations.get(conv_id)
        out[CONVERSATION + conv_id.encode()] = _dumps(None if conv is None else vars(conv))
    resolver.touched, st.dirty_profiles, st.dirty_conversations = set(), set(), set()
    health.dirty, health.dirty_regions = set(), set()
    return out


def meta(st: JourneyState, n: int) -> bytes:
    """The metadata entry of checkpoint ``n``: written last, it completes the checkpoint."""
    return orjson.dumps(
        {
            "v": _VERSION,
            "n": n,
            "max": st.resolver.max_identifiers,
            "seq": st.resolver.seq,
            "applied": st.applied,
            "wecom_watermark_ms": st.wecom_watermark_ms,
            "unsaved": st.unsaved,
            "unsaved_alerts": st.unsaved_alerts,
        }
    )


def _dumps(doc: Any) -> bytes | None:
    return None if doc is None else orjson.dumps(doc)


class Changelog:
    """What the changelog holds (the last complete value per key), to write checkpoints."""

    def __init__(self, written: dict[bytes, bytes] | None = None, n: int = 0) -> None:
        self._written = written or {}  # key -> value of the last checkpoint (deleted: absent)
        self._n = n  # the last checkpoint number used
        self._tombstones: set[bytes] = set()  # nulled at the last checkpoint, to delete now
        self._rewrite: set[bytes] = set()  # rolled back at restore: written again regardless

    def __len__(self) -> int:
        """Entries the changelog holds (the last checkpoint's keys)."""
        return len(self._written)

    def pending(self) -> bool:
        """Whether the next checkpoint has records to write even if nothing changes."""
        return bool(self._tombstones or self._rewrite)

    def checkpoint(
        self, values: Mapping[bytes, bytes | None], meta_of: Callable[[int], bytes]
    ) -> list[tuple[bytes, bytes | None]]:
        """Records of the next checkpoint: changed entries, then the metadata entry."""
        self._n += 1
        n = self._n
        out: list[tuple[bytes, bytes | None]] = [
            (k, None) for k in sorted(self._tombstones) if k not in values
        ]
        self._tombstones = set()
        for key, value in values.items():
            prev = self._written.get(key)
            if value == prev and key not in self._rewrite:
                continue
            if value is None:
                self._written.pop(key, None)
                if prev is None:  # never written, or already null in the changelog
                    out.append((key, None))
                    continue
                self._tombstones.add(key)
            else:
                self._written[key] = value
            out.append((key, _frame(n, value, prev)))
        for key in sorted(self._rewrite - values.keys()):  # rolled back and unchanged since
            value = self._written.get(key)
            out.append((key, None if value is None else _frame(n, value, value)))
        self._rewrite = set()
        out.append((META, meta_of(n)))
        return out


def _frame(n: int, value: bytes | None, prev: bytes | None) -> bytes:
    return b'{"n":%d,"cur":%b,"prev":%b}' % (n, value or b"null", prev or b"null")


def restore(
    entries: Mapping[bytes, bytes], settings: ChannelHealthSettings, max_identifiers: int
) -> tuple[JourneyState, Changelog]:
    """The state of the last complete checkpoint, and the changelog tracker after it.

    Raises ``ValueError``/``KeyError``/``TypeError`` on entries this code cannot read.
    """
    if META not in entries:
        legacy = entries.get(LEGACY_KEY)
        if legacy:  # version 1: everything is rewritten as entries, the old one deleted
            st = JourneyState.decode(legacy, settings)
            _all_dirty(st)
            log = Changelog()
            log._tombstones.add(LEGACY_KEY)
            return st, log
    doc = orjson.loads(entries[META]) if META in entries else {"v": _VERSION, "n": 0}
    if doc.get("v") != _VERSION:
        raise ValueError(f"unsupported journey state version {doc.get('v')!r}")
    complete = int(doc["n"])
    top, written, rewrite = complete, {}, set()
    values: dict[bytes, Any] = {}
    for key, raw in entries.items():
        if key in (META, LEGACY_KEY) or not raw:
            continue
        entry = orjson.loads(raw)
        n = int(entry["n"])
        top = max(top, n)
        value = entry["cur"] if n <= complete else entry["prev"]
        if n > complete:
            rewrite.add(key)
        if value is not None:
            values[key] = value
            written[key] = orjson.dumps(value)
    st = _state(doc, values, settings, max_identifiers)
    log = Changelog(written, top)
    log._rewrite = rewrite
    return st, log


def _state(
    doc: Mapping[str, Any],
    values: Mapping[bytes, Any],
    settings: ChannelHealthSettings,
    max_identifiers: int,
) -> JourneyState:
    resolver = IdentityResolver(int(doc.get("max", max_identifiers)), _seq=int(doc.get("seq", 0)))
    st = JourneyState(resolver, ChannelHealth(settings))
    for key, value in values.items():
        kind, name = key[:2], key[2:].decode()
        if kind == CUSTOMER:
            if value["m"]:
                resolver.load(name, value["m"], value["a"])
            if value["p"] is not None:
                st.profiles[name] = Profile(**value["p"])
        elif kind == CHANNEL:
            st.health.channels[name] = Channel(**value)
        elif kind == REGION:
            st.health.turnover[name] = dict(value)
        elif kind == CONVERSATION:
            st.conversations[name] = Conversation(**value)
    st.applied = {str(k): int(v) for k, v in doc.get("applied", {}).items()}
    st.wecom_watermark_ms = int(doc.get("wecom_watermark_ms", 0))
    st.unsaved = list(doc.get("unsaved", []))
    st.unsaved_alerts = list(doc.get("unsaved_alerts", []))
    return st


def _all_dirty(st: JourneyState) -> None:
    st.dirty_profiles.update(st.profiles)
    st.resolver.touched.update(st.resolver.snapshot()["members"])
    st.health.dirty.update(st.health.channels)
    st.health.dirty_regions.update(st.health.turnover)
    st.dirty_conversations.update(st.conversations)
