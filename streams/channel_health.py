"""Channel (store or dealer) health: inventory turnover x service SLA x repurchase intent.

Each component is a rate in [0, 1] where 1 is healthy:

- turnover: ``target_turnover_days`` / the mean turnover days of the latest ERP inventory
  snapshots of the channel's region (capped at 1): stock that sits is unhealthy;
- SLA: the share of customer WeCom messages a rep answered within ``sla_s``, decayed per
  outcome (``sla_decay``) so that the recent service counts most;
- intent: the share of the channel's buyers who came back (a second purchase there, or a
  mini-program cart or order for it afterwards), over ``target_repurchase`` (capped at 1);
  ``intent_prior`` buyers at the target rate are added, since new buyers had no time to return.

The score is their weighted geometric mean (weights are exponents; a weight of 0 drops a
component), over the components with enough evidence (``min_sla_samples`` outcomes,
``min_buyers`` buyers); a channel with none has no score yet. A channel below ``threshold``
raises one alert; it raises again only after it recovered above ``threshold + rearm_margin``
(hysteresis), so a channel hovering at the line does not alert on every event.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ALERT_KIND = "channel"
MODEL_NAME = "channel-health"
_AUDIT_IDS = 20  # event ids kept per channel for the alert's audit trail


class ChannelHealthSettings(BaseSettings):
    """Weights, targets and the alert threshold (``DEALSTREAM_CHANNEL_HEALTH_*``)."""

    model_config = SettingsConfigDict(env_prefix="DEALSTREAM_CHANNEL_HEALTH_", extra="forbid")

    weight_turnover: float = Field(default=1.0, ge=0)
    weight_sla: float = Field(default=1.0, ge=0)
    weight_intent: float = Field(default=1.0, ge=0)
    threshold: float = Field(default=0.5, ge=0, le=1)
    rearm_margin: float = Field(default=0.1, ge=0)
    sla_s: int = Field(default=1800, gt=0)  # a customer message answered within this is on time
    sla_decay: float = Field(default=0.98, gt=0, le=1)
    target_turnover_days: float = Field(default=45.0, gt=0)
    target_repurchase: float = Field(default=0.15, gt=0, le=1)
    intent_prior: float = Field(default=50.0, ge=0)  # buyers assumed at the target rate
    min_sla_samples: int = Field(default=5, ge=1)
    min_buyers: int = Field(default=10, ge=1)
    model_version: str = "1"


@dataclass
class Channel:
    """What is known of one channel; plain data (JSON in the changelog)."""

    kind: str  # store | dealer
    region: str = ""
    sla_hits: float = 0.0  # decayed
    sla_total: float = 0.0  # decayed
    sla_n: int = 0
    buyers: int = 0
    returning: int = 0
    score: float | None = None
    alerting: bool = False
    episode: int = 0
    evidence: list[str] = field(default_factory=list)  # latest event ids that moved it

    def note(self, event_id: str) -> None:
        if event_id not in self.evidence[-1:]:
            self.evidence = [*self.evidence[-(_AUDIT_IDS - 1) :], event_id]


@dataclass(frozen=True)
class Components:
    turnover: float | None
    sla: float | None
    intent: float | None
    score: float | None


@dataclass(frozen=True)
class Scored:
    channel_id: str
    channel: Channel
    parts: Components
    event_id: str  # the latest event that moved the channel
    at_ms: int  # its event time


class ChannelHealth:
    """Channel states and region turnover; recomputes touched channels on :meth:`evaluate`."""

    def __init__(self, settings: ChannelHealthSettings) -> None:
        self.settings = settings
        self.channels: dict[str, Channel] = {}
        self.turnover: dict[str, dict[str, float]] = {}  # region -> sku|warehouse -> days
        self.touched: dict[str, tuple[str, int]] = {}  # channel -> last event id, its time
        # Channels and regions changed since the last changelog write (not state).
        self.dirty: set[str] = set()
        self.dirty_regions: set[str] = set()

    def channel(self, channel_id: str, kind: str, region: str | None = None) -> Channel:
        ch = self.channels.get(channel_id)
        if ch is None:
            ch = self.channels[channel_id] = Channel(kind)
            self.dirty.add(channel_id)
        if region and not ch.region:
            ch.region = region
            self.dirty.add(channel_id)
        return ch

    def sla_outcome(self, channel_id: str, on_time: bool, event_id: str, at_ms: int) -> None:
        ch = self.channels.get(channel_id)
        if ch is None:
            return
        decay = self.settings.sla_decay
        ch.sla_hits = ch.sla_hits * decay + (1.0 if on_time else 0.0)
        ch.sla_total = ch.sla_total * decay + 1.0
        ch.sla_n += 1
        self._touch(channel_id, ch, event_id, at_ms)

    def buyers(
        self, channel_id: str, buyers: int, returning: int, event_id: str, at_ms: int
    ) -> None:
        """Add (or, negative, remove) buyers and returning buyers of a channel."""
        ch = self.channels.get(channel_id)
        if ch is None or (buyers == 0 and returning == 0):
            return
        ch.buyers += buyers
        ch.returning += returning
        self._touch(channel_id, ch, event_id, at_ms)

    def inventory(self, region: str, item: str, days: float, event_id: str, at_ms: int) -> None:
        self.turnover.setdefault(region, {})[item] = days
        self.dirty_regions.add(region)
        for channel_id, ch in self.channels.items():
            if ch.region == region:
                self._touch(channel_id, ch, event_id, at_ms)

    def _touch(self, channel_id: str, ch: Channel, event_id: str, at_ms: int) -> None:
        ch.note(event_id)
        self.touched[channel_id] = (event_id, at_ms)
        self.dirty.add(channel_id)  # evaluate() changes only touched channels

    def components(self, ch: Channel) -> Components:
        s = self.settings
        days = self.turnover.get(ch.region)
        turnover = None
        if days:
            mean = sum(days.values()) / len(days)
            turnover = 1.0 if mean <= 0 else min(1.0, s.target_turnover_days / mean)
        sla = ch.sla_hits / ch.sla_total if ch.sla_n >= s.min_sla_samples else None
        intent = None
        if ch.buyers >= s.min_buyers:  # new buyers had no time to return yet: a prior
            prior = s.intent_prior
            rate = (ch.returning + prior * s.target_repurchase) / (ch.buyers + prior)
            intent = min(1.0, rate / s.target_repurchase)
        parts = [
            (turnover, s.weight_turnover),
            (sla, s.weight_sla),
            (intent, s.weight_intent),
        ]
        return Components(turnover, sla, intent, weighted_geometric_mean(parts))

    def evaluate(self, now_ms: int) -> tuple[list[Scored], list[dict[str, Any]]]:
        """Scores of the channels touched since the last call, and alerts for new falls."""
        s = self.settings
        scored: list[Scored] = []
        alerts: list[dict[str, Any]] = []
        for channel_id, (event_id, at_ms) in sorted(self.touched.items()):
            ch = self.channels[channel_id]
            parts = self.components(ch)
            ch.score = parts.score
            scored.append(Scored(channel_id, ch, parts, event_id, at_ms))
            if parts.score is None:
                continue
            if ch.alerting and parts.score >= s.threshold + s.rearm_margin:
                ch.alerting = False
            elif not ch.alerting and parts.score < s.threshold:
                ch.alerting = True
                ch.episode += 1
                alerts.append(self._alert(channel_id, ch, parts, now_ms))
        self.touched = {}
        return scored, alerts

    def _alert(
        self, channel_id: str, ch: Channel, parts: Components, now_ms: int
    ) -> dict[str, Any]:
        s = self.settings
        ident = "\x1f".join([MODEL_NAME, s.model_version, channel_id, str(ch.episode)])
        shown = {"turnover": parts.turnover, "sla": parts.sla, "intent": parts.intent}
        detail = ", ".join(f"{k} {v:.2f}" for k, v in shown.items() if v is not None)
        return {
            "alert_id": hashlib.sha256(ident.encode()).hexdigest()[:32],
            "kind": ALERT_KIND,
            "severity": "WARNING",
            "rule_id": None,
            "rule_version": None,
            "model_name": MODEL_NAME,
            "model_version": s.model_version,
            "entity_key": channel_id,
            "message": (
                f"{ch.kind} {channel_id}: health {parts.score:.2f} fell below "
                f"{s.threshold:.2f} ({detail})"
            ),
            "input_event_ids": list(ch.evidence),
            "raised_at": now_ms,
            "attributes": {
                "channel_kind": ch.kind,
                "region": ch.region,
                "score": f"{parts.score:.4f}",
                "threshold": str(s.threshold),
                "episode": str(ch.episode),
                **{k: f"{v:.4f}" for k, v in shown.items() if v is not None},
            },
        }

    # -- state -------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "channels": {c: asdict(ch) for c, ch in self.channels.items()},
            "turnover": self.turnover,
        }

    @classmethod
    def restore(cls, settings: ChannelHealthSettings, doc: dict[str, Any]) -> ChannelHealth:
        health = cls(settings)
        health.channels = {c: Channel(**v) for c, v in doc["channels"].items()}
        health.turnover = {r: dict(v) for r, v in doc["turnover"].items()}
        return health


def weighted_geometric_mean(parts: list[tuple[float | None, float]]) -> float | None:
    """prod(x_i ** w_i) ** (1 / sum w_i) over known parts with a positive weight.

    >>> weighted_geometric_mean([(0.25, 1.0), (1.0, 1.0), (None, 5.0)])
    0.5
    >>> weighted_geometric_mean([(0.0, 1.0), (1.0, 1.0)]), weighted_geometric_mean([(None, 1.0)])
    (0.0, None)
    """
    known = [(x, w) for x, w in parts if x is not None and w > 0]
    total = sum(w for _, w in known)
    if not known or total <= 0:
        return None
    if any(x <= 0 for x, _ in known):
        return 0.0
    return math.exp(sum(w * math.log(x) for x, w in known) / total)
