"""State comes only from its snapshot (DESIGN §3.3): restore, continue, same answers."""

from __future__ import annotations

import pickle

import pytest

from dealstream.models.forecaster import ForecasterConfig
from dealstream.models.periods import DAY_MS
from dealstream.models.registry import default_specs
from dealstream.models.snapshot import FORMAT_VERSION, SnapshotError, checkpoint, dumps, loads
from dealstream.models.state import KeyState
from dealstream.models.synthetic import signal_driven_series

WEEK_MS = 7 * DAY_MS
MON = 1_704_067_200_000


def events(n_weeks: int) -> list[tuple[int, float, dict[str, float]]]:
    sales, signal = signal_driven_series(n_weeks, seed=2)
    out = []
    for w, (y, s) in enumerate(zip(sales, signal, strict=True)):
        base = MON + w * WEEK_MS
        out.append((base + DAY_MS, y / 2, {"tender": s}))
        out.append((base + 3 * DAY_MS, y / 2, {}))
        if w > 2:
            out.append((base - WEEK_MS + 2 * DAY_MS, 1.0, {}))  # a late sale: revision
    return out


def replay(state: KeyState, evs: list[tuple[int, float, dict[str, float]]]) -> list[object]:
    return [state.add(t, q, x).forecast for t, q, x in evs]


@pytest.mark.parametrize("spec", default_specs((1, 4, 13)), ids=lambda s: s.family)
def test_restore_and_continue_equals_an_uninterrupted_run(spec) -> None:
    evs = events(90)
    cfg = ForecasterConfig(horizons=(1, 4, 13))
    straight = KeyState.new("sku|north", spec, cfg)
    expected = replay(straight, evs)

    first = KeyState.new("sku|north", spec, cfg)
    head = replay(first, evs[:150])
    blob = dumps(first)
    restored = loads(blob)
    assert restored.dirty is False
    got = head + replay(restored, evs[150:])
    assert got == expected
    assert restored.forecast() == straight.forecast()
    assert restored.accuracy == straight.accuracy
    assert restored.forecast().status == "ok"


def test_unknown_versions_and_garbage_are_refused() -> None:
    blob = dumps(KeyState.new("k", default_specs()[0]))
    assert blob[0] == FORMAT_VERSION
    with pytest.raises(SnapshotError, match="version 2"):
        loads(bytes([2]) + blob[1:])
    with pytest.raises(SnapshotError, match="empty"):
        loads(b"")
    with pytest.raises(SnapshotError, match="not KeyState"):
        loads(bytes([FORMAT_VERSION]) + pickle.dumps({"a": 1}))


def test_checkpoint_saves_only_dirty_keys() -> None:
    spec = default_specs()[0]
    states = {k: KeyState.new(k, spec) for k in ("a", "b")}
    assert checkpoint(states) == {}
    states["a"].add(MON, 1.0)
    saved = checkpoint(states)
    assert list(saved) == ["a"]
    assert checkpoint(states) == {}
    assert loads(saved["a"]).buckets.watermark_ms == MON
