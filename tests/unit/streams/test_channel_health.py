"""Channel health: component rates, configurable weights, one alert per fall (hysteresis)."""

from __future__ import annotations

import pytest

from dealstream.schemas import codec
from dealstream.streams.channel_health import ChannelHealth, ChannelHealthSettings

S = ChannelHealthSettings(
    min_sla_samples=4, min_buyers=2, threshold=0.5, rearm_margin=0.1, intent_prior=0.0
)


def health(settings: ChannelHealthSettings = S) -> ChannelHealth:
    h = ChannelHealth(settings)
    h.channel("SH001", "store", "CN-EAST")
    return h


def outcomes(h: ChannelHealth, *on_time: bool, channel: str = "SH001") -> None:
    for n, ok in enumerate(on_time):
        h.sla_outcome(channel, ok, f"e{n}", n)


def test_no_score_without_evidence_then_sla_alone() -> None:
    h = health()
    outcomes(h, True, False, True)
    ((scored,), alerts) = h.evaluate(0)
    assert scored.parts.score is None and alerts == []
    outcomes(h, True)  # fourth outcome: enough evidence
    ((scored,), _) = h.evaluate(0)
    assert scored.parts.sla == pytest.approx((0.98**3 + 0.98 + 1) / (0.98**3 + 0.98**2 + 0.98 + 1))
    assert scored.parts.score == scored.parts.sla and scored.parts.turnover is None


def test_turnover_and_intent_against_their_targets_and_weights() -> None:
    h = health()
    h.inventory("CN-EAST", "A|WH", 90.0, "i1", 0)  # twice the 45-day target: 0.5
    h.inventory("CN-EAST", "B|WH", 90.0, "i2", 0)
    h.buyers("SH001", 4, 0, "p1", 0)  # nobody came back: intent 0
    ((scored,), _) = h.evaluate(0)
    assert scored.parts.turnover == pytest.approx(0.5)
    assert scored.parts.intent == 0.0 and scored.parts.score == 0.0
    no_intent = health(S.model_copy(update={"weight_intent": 0.0}))
    no_intent.inventory("CN-EAST", "A|WH", 90.0, "i1", 0)
    no_intent.buyers("SH001", 4, 0, "p1", 0)
    ((scored,), _) = no_intent.evaluate(0)
    assert scored.parts.score == pytest.approx(0.5)  # a zero weight drops the component
    h.buyers("SH001", 0, 1, "p2", 0)  # 1 of 4 came back: 0.25 / 0.15 target -> capped at 1
    ((scored,), _) = h.evaluate(0)
    assert scored.parts.intent == 1.0
    assert scored.parts.score == pytest.approx(0.5**0.5)


def test_the_intent_prior_keeps_a_new_channel_from_looking_abandoned() -> None:
    h = health(S.model_copy(update={"intent_prior": 20.0}))
    h.buyers("SH001", 5, 0, "p1", 0)  # five first-time buyers, none back yet
    ((scored,), _) = h.evaluate(0)
    assert scored.parts.intent == pytest.approx((20 * 0.15) / 25 / 0.15)
    h.buyers("SH001", 195, 0, "p2", 0)  # 200 buyers and still nobody came back
    ((scored,), alerts) = h.evaluate(0)
    assert scored.parts.intent == pytest.approx(20 / 220) and len(alerts) == 1


def test_one_alert_per_fall_and_again_only_after_recovering_past_the_margin() -> None:
    h = health(S.model_copy(update={"sla_decay": 1.0}))
    outcomes(h, True, True, True, True)
    assert h.evaluate(0)[1] == []
    outcomes(h, *[False] * 6)  # 4/10 on time
    _, alerts = h.evaluate(1_000)
    (alert,) = alerts
    assert alert["kind"] == "channel" and alert["entity_key"] == "SH001"
    assert alert["model_name"] == "channel-health" and alert["attributes"]["episode"] == "1"
    assert alert["input_event_ids"][-1] == "e5" and alert["raised_at"] == 1_000
    codec.encode("alert", alert)  # publishable as is
    outcomes(h, False, False)  # still falling: suppressed
    assert h.evaluate(0)[1] == []
    outcomes(h, *[True] * 4)  # 8/16 = 0.5: back at the line, not past the margin
    assert h.evaluate(0)[1] == [] and h.channels["SH001"].alerting
    outcomes(h, *[True] * 4)  # 12/20 = 0.6: re-armed
    assert h.evaluate(0)[1] == [] and not h.channels["SH001"].alerting
    outcomes(h, *[False] * 10)
    (again,) = h.evaluate(0)[1]
    assert again["attributes"]["episode"] == "2" and again["alert_id"] != alert["alert_id"]


def test_snapshot_restore_keeps_scores_and_alert_state() -> None:
    h = health(S.model_copy(update={"sla_decay": 1.0}))
    outcomes(h, *[False] * 5)
    assert len(h.evaluate(0)[1]) == 1
    restored = ChannelHealth.restore(h.settings, h.snapshot())
    outcomes(restored, False)
    outcomes(h, False)
    assert restored.evaluate(0) == h.evaluate(0)
    assert restored.channels == h.channels
