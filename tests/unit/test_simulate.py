"""The simulated world: reproducible, valid, PII-free, and its planted effects are real."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr
from typer.testing import CliRunner

from dealstream.cli.main import app
from dealstream.connectors.pii import Desensitizer
from dealstream.connectors.simulator.world import World
from dealstream.schemas import validation

END = datetime(2026, 9, 1, tzinfo=UTC)


def world(seed: int = 3) -> World:
    return World(seed, days=60, end=END, pii=Desensitizer(SecretStr("k")))


def test_same_seed_same_records_all_valid_and_pii_free() -> None:
    first, second = world(), world()
    a, b = list(first.events()), list(second.events())
    assert a == b and len(a) > 5_000
    assert list(world(4).events()) != a
    for event_type, record in a:
        assert validation.validate(event_type, record, now_ms=int(END.timestamp() * 1000)) == []
    text = json.dumps([r for _, r in a], default=str)
    assert not any(
        c.phone in text or c.openid in text or c.unionid in text for c in first.customers
    )
    assert {t for t, _ in a} == {
        "pos.transaction",
        "miniprogram.event",
        "wecom.message",
        "tender.notice",
        "iot.telemetry",
    }


def test_planted_effects_move_sales_and_tenders_announce_them() -> None:
    w = world()
    records = list(w.events())
    truth = w.effects()
    awards = [r["payload"] for t, r in records if t == "tender.notice"]
    planted = [e for e in truth["effects"] if e["kind"] == "tender_award"]
    assert {a["notice_id"] for a in awards} == {e["notice_id"] for e in planted}
    assert all(a["kind"] == "AWARD" and a["award_amount"] for a in awards)
    sales: Counter[tuple[str, str, str]] = Counter()
    for t, r in records:
        if t == "pos.transaction":
            day = datetime.fromtimestamp(r["occurred_at"] / 1000, UTC).date().isoformat()
            p = r["payload"]
            sales[p["region"], p["product_line"], day] += 1
    inside = outside = 0.0
    n_in = n_out = 0
    for e in truth["effects"]:
        for (region, line, day), count in sales.items():
            if (region, line) != (e["region"], e["product_line"]):
                continue
            if e["start"] <= day < e["end"]:
                inside, n_in = inside + count, n_in + 1
            else:
                outside, n_out = outside + count, n_out + 1
    assert inside / n_in > 1.3 * outside / n_out  # the lifts are visible in the data
    assert truth["chats"]["planted_violations"] > 0 and truth["journeys"]["completed_in_store"] > 0


def test_cli_dry_run_writes_the_truth(tmp_path: Path) -> None:
    effects = tmp_path / "truth.json"
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            "--dry-run",
            "--days",
            "10",
            "--events",
            "500",
            "--seed",
            "5",
            "--effects",
            str(effects),
        ],
    )
    assert result.exit_code == 0, result.output
    truth = json.loads(effects.read_text())
    assert truth["produced"] == 500 and truth["dead_lettered"] == 0
    assert sum(truth["counts"].values()) in (500, 501)
