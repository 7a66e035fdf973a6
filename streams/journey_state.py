"""Everything the journeys pipeline keeps, as one plain-data document.

Identity links, customer profiles, open WeCom conversations and channel health depend on each
other (a merge moves a profile and changes the buyer counts of its channels). The changelog
holds one entry per customer, channel, region and conversation, written when changed (the
``dirty`` sets) and restored one complete checkpoint at a time
(:mod:`dealstream.streams.journey_changelog`). :meth:`JourneyState.encode` gives the whole state
as one document: the format of version 1, still read, and a way to compare two states.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any

from dealstream.streams.channel_health import ChannelHealth, ChannelHealthSettings
from dealstream.streams.identity import IdentityResolver

_VERSION = 1
MAX_PURCHASES = 20  # recent purchase ids per customer, to count a ticket once (lines repeat it)


@dataclass
class Profile:
    """One customer: home channel and purchases per channel (repurchase intent)."""

    home: str | None = None
    bought: dict[str, int] = field(default_factory=dict)  # channel -> purchases
    back: list[str] = field(default_factory=list)  # channels with intent after buying
    purchases: list[str] = field(default_factory=list)  # ticket / order ids counted

    def contribution(self, channel: str) -> tuple[int, int]:
        """(is a buyer, is a returning buyer) of ``channel``."""
        n = self.bought.get(channel, 0)
        if n == 0:
            return 0, 0
        return 1, int(n >= 2 or channel in self.back)

    def absorb(self, other: Profile) -> None:
        self.home = self.home or other.home
        for channel, n in other.bought.items():
            self.bought[channel] = self.bought.get(channel, 0) + n
        self.back = sorted({*self.back, *other.back})
        self.purchases = list(dict.fromkeys([*self.purchases, *other.purchases]))[-MAX_PURCHASES:]


@dataclass
class Conversation:
    channel: str | None = None  # the store of the WeCom channel QR code, when known
    customer: str | None = None
    pending_ms: int | None = None  # first unanswered customer message
    pending_event: str = ""
    last_ms: int = 0


@dataclass
class JourneyState:
    resolver: IdentityResolver
    health: ChannelHealth
    profiles: dict[str, Profile] = field(default_factory=dict)
    conversations: dict[str, Conversation] = field(default_factory=dict)
    applied: dict[str, int] = field(default_factory=dict)  # "topic|partition" -> offset
    wecom_watermark_ms: int = 0
    unsaved: list[dict[str, Any]] = field(default_factory=list)  # merges since the snapshot
    unsaved_alerts: list[dict[str, Any]] = field(default_factory=list)
    # Changed since the last changelog write (not state: see journey_changelog).
    dirty_profiles: set[str] = field(default_factory=set, compare=False, repr=False)
    dirty_conversations: set[str] = field(default_factory=set, compare=False, repr=False)

    @classmethod
    def empty(cls, settings: ChannelHealthSettings, max_identifiers: int) -> JourneyState:
        return cls(IdentityResolver(max_identifiers), ChannelHealth(settings))

    def encode(self) -> bytes:
        doc = {
            "v": _VERSION,
            "identity": self.resolver.snapshot(),
            "health": self.health.snapshot(),
            "profiles": {c: asdict(p) for c, p in self.profiles.items()},
            "conversations": {c: asdict(v) for c, v in self.conversations.items()},
            "applied": self.applied,
            "wecom_watermark_ms": self.wecom_watermark_ms,
            "unsaved": self.unsaved,
            "unsaved_alerts": self.unsaved_alerts,
        }
        text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        return zlib.compress(text.encode(), 6)

    @classmethod
    def decode(cls, value: bytes, settings: ChannelHealthSettings) -> JourneyState:
        doc = json.loads(zlib.decompress(value))
        if doc.get("v") != _VERSION:
            raise ValueError(f"unsupported journey state version {doc.get('v')!r}")
        return cls(
            IdentityResolver.restore(doc["identity"]),
            ChannelHealth.restore(settings, doc["health"]),
            {c: Profile(**p) for c, p in doc["profiles"].items()},
            {c: Conversation(**v) for c, v in doc["conversations"].items()},
            {k: int(v) for k, v in doc["applied"].items()},
            int(doc["wecom_watermark_ms"]),
            list(doc["unsaved"]),
            list(doc["unsaved_alerts"]),
        )

    # -- profiles ----------------------------------------------------------------------------
    def profile(self, customer: str) -> Profile:
        """The customer's profile, to change (created when missing)."""
        found = self.profiles.get(customer)
        if found is None:
            found = self.profiles[customer] = Profile()
        self.dirty_profiles.add(customer)
        return found

    def conversation(self, conversation_id: str) -> Conversation:
        """The open conversation, to change (created when missing)."""
        found = self.conversations.get(conversation_id)
        if found is None:
            found = self.conversations[conversation_id] = Conversation()
        self.dirty_conversations.add(conversation_id)
        return found

    def forget_conversation(self, conversation_id: str) -> None:
        del self.conversations[conversation_id]
        self.dirty_conversations.add(conversation_id)

    def merge_profiles(self, merged: str, into: str, event_id: str, at_ms: int) -> None:
        """Move ``merged``'s profile into ``into``, keeping the channels' buyer counts right."""
        gone = self.profiles.pop(merged, None)
        if gone is None:
            return
        self.dirty_profiles.add(merged)
        kept = self.profile(into)
        channels = sorted({*gone.bought, *kept.bought})
        before = {c: _add(gone.contribution(c), kept.contribution(c)) for c in channels}
        kept.absorb(gone)
        for c in channels:
            after = kept.contribution(c)
            self.health.buyers(c, after[0] - before[c][0], after[1] - before[c][1], event_id, at_ms)
        for conversation_id, conversation in self.conversations.items():
            if conversation.customer == merged:
                conversation.customer = into
                self.dirty_conversations.add(conversation_id)

    def record_purchase(
        self, customer: str, channel: str, key: str, event_id: str, at_ms: int
    ) -> bool:
        """Count a purchase once per ticket or order; False when it was counted before."""
        p = self.profile(customer)
        if key in p.purchases:
            return False
        p.purchases = [*p.purchases[-(MAX_PURCHASES - 1) :], key]
        before = p.contribution(channel)
        p.bought[channel] = p.bought.get(channel, 0) + 1
        after = p.contribution(channel)
        self.health.buyers(channel, after[0] - before[0], after[1] - before[1], event_id, at_ms)
        return True

    def record_intent(self, customer: str, channel: str, event_id: str, at_ms: int) -> None:
        """A cart or order after a purchase at ``channel``: the buyer is coming back."""
        p = self.profile(customer)
        if not p.bought.get(channel) or channel in p.back:
            return
        before = p.contribution(channel)
        p.back = sorted({*p.back, channel})
        after = p.contribution(channel)
        self.health.buyers(channel, after[0] - before[0], after[1] - before[1], event_id, at_ms)


def _add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return a[0] + b[0], a[1] + b[1]
