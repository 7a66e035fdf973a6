"""The bench soak's short horizons: the settings it hands the worker take effect as meant."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.run import short_horizons
from dealstream.streams.business import BusinessSettings
from dealstream.streams.channel_health import ChannelHealthSettings
from dealstream.streams.journeys import JourneySettings


def test_short_horizons_shorten_every_absence_rule_and_the_sla_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = BusinessSettings().load().rules
    env = short_horizons(90, tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    rules = BusinessSettings().load().rules
    absences = [r for r in rules if r.absence is not None]
    assert absences, "the bundled rules have an absence rule to shorten"
    assert {r.absence.within_ms for r in absences if r.absence} == {90_000}
    # Nothing else changed: same rules, same order.
    assert [r.id for r in rules] == [r.id for r in shipped]
    assert ChannelHealthSettings().sla_s == 90
    assert JourneySettings().sla_lateness_s == 0
