"""Forecast evidence: `python -m bench.forecast_eval` → table + `bench/results/forecast_eval.json`.

1. accuracy   - seeded weekly sales per SKU x region with tender awards and a policy change that
                shift a region's demand after a known lag (effects recorded in the JSON);
                prequential MAPE/WAPE per horizon of the linear model WITH the signals vs the
                same model WITHOUT them vs Holt-Winters, SNARIMAX and seasonal naive, and the
                coverage of the conformal intervals vs their nominal level.
2. real       - the same forecasters on real monthly sales shipped in packages: Australian wine
                sales (`pmdarima.datasets.load_wineind`) and airline passengers
                (`river.datasets.AirlinePassengers`).
3. stream     - the same world through `ForecastPipeline` itself: weekly POS sales as Avro
                messages and tender awards as `tender.notice` records on its signal feed (every
                key of the region sees them), WITH vs WITHOUT the feed, vs seasonal naive:
                MAPE/WAPE per horizon from its `forecast_accuracy` rows, coverage of its
                `forecasts` intervals, events/s, and changelog bytes per key and for the signals.
4. throughput - `ForecastPipeline.process` over Avro-encoded POS messages held in memory.
5. memory     - snapshot bytes per key, and tracemalloc of N live keys, per family.

No broker is needed. Timings are from a shared, noisy machine: compare ratios.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from confluent_kafka import Message
from rich.console import Console
from rich.table import Table

from dealstream.broker.headers import producer_headers
from dealstream.models import snapshot
from dealstream.models.accuracy import AccuracyStats
from dealstream.models.forecaster import Forecaster, ForecasterConfig
from dealstream.models.periods import DAY_MS
from dealstream.models.registry import ModelSpec
from dealstream.models.state import KeyState
from dealstream.schemas import codec
from dealstream.schemas.samples import sample_event
from dealstream.streams.changelog import EmptyChangelog
from dealstream.streams.forecast import (
    FORECAST_ACCURACY,
    FORECASTS,
    ForecastPipeline,
    ForecastSettings,
)
from dealstream.streams.forecast_signals import encode_state

RESULTS = Path(__file__).parent / "results" / "forecast_eval.json"
WEEK_MS = 7 * DAY_MS
MON = 1_704_067_200_000  # Monday 1 Jan 2024
LEVEL = 0.8
console = Console(width=170)


# -- 1. synthetic sales with external signals -------------------------------------------------
@dataclass
class World:
    """Weekly sales per key and the regional signals that drive them (with the true effects)."""

    sales: dict[str, list[float]] = field(default_factory=dict)
    signals: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    effects: dict[str, Any] = field(default_factory=dict)


def simulate(weeks: int, *, skus: int, regions: int, seed: int) -> World:
    """Tender awards lift a region's demand ``award_lag`` weeks later for ``award_weeks``
    weeks; a policy change announced in week P raises it by ``policy_lift`` from P + lag on."""
    rng = random.Random(seed)
    award_lag, award_weeks, policy_lag = 3, 2, 4
    world = World()
    world.effects = {
        "tender_award": {"lag_weeks": award_lag, "duration_weeks": award_weeks,
                         "lift_share_of_level": "0.35..0.6 per SKU"},
        "policy_change": {"lag_weeks": policy_lag, "lift_share_of_level": 0.25,
                          "announced_week": {}},
    }  # fmt: skip
    for r in range(regions):
        region = f"R{r}"
        awards = [1.0 if rng.random() < 0.12 else 0.0 for _ in range(weeks)]
        announced = rng.randrange(weeks // 3, 2 * weeks // 3)
        world.effects["policy_change"]["announced_week"][region] = announced
        sig = [
            {"tender_award": awards[t], "policy": 1.0 if t >= announced else 0.0}
            for t in range(weeks)
        ]
        for s in range(skus):
            key = f"SKU{s}|{region}"
            level = rng.uniform(60, 400)
            amp, trend = rng.uniform(0.1, 0.3) * level, rng.uniform(-0.05, 0.2)
            lift = rng.uniform(0.35, 0.6) * level
            phase = rng.uniform(0, 2 * math.pi)
            ys = []
            for t in range(weeks):
                y = level + trend * t + amp * math.sin(2 * math.pi * t / 52 + phase)
                y += lift * sum(awards[t - award_lag - d] for d in range(award_weeks)
                                if t - award_lag - d >= 0)  # fmt: skip
                if t >= announced + policy_lag:
                    y += 0.25 * level
                ys.append(max(0.0, y + rng.gauss(0, 0.06 * level)))
            world.sales[key] = ys
            world.signals[key] = sig
    return world


def specs(horizons: tuple[int, ...], season: int) -> dict[str, ModelSpec]:
    linear = {"horizons": horizons, "seasonality": float(season), "n_lags": 4, "signal_lags": 6}
    return {
        "seasonal_naive": ModelSpec("seasonal_naive", params={"season": season}),
        "holt_winters": ModelSpec("holt_winters", params={"seasonality": season}),
        "snarimax": ModelSpec("snarimax", params={"p": 2, "d": 1, "q": 1}),
        "linear": ModelSpec("linear", params=linear),
    }


@dataclass
class Score:
    by_h: dict[int, AccuracyStats] = field(default_factory=dict)
    covered: dict[int, int] = field(default_factory=dict)
    with_interval: dict[int, int] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for h, s in sorted(self.by_h.items()):
            n = self.with_interval.get(h, 0)
            out[str(h)] = {
                "n": s.n, "mape": _r(s.mape), "wape": _r(s.wape), "bias": _r(s.bias),
                "coverage": _r(self.covered.get(h, 0) / n) if n else None,
            }  # fmt: skip
        return out


def replay(
    spec: ModelSpec,
    ys: Sequence[float],
    xs: Sequence[dict[str, float]] | None,
    horizons: tuple[int, ...],
    warmup: int,
    score: Score,
) -> None:
    """Learn one series prequentially; score forecasts whose target is past ``warmup``."""
    config = ForecasterConfig(horizons=horizons, level=LEVEL, min_history=0)
    f = Forecaster(spec.build(), config, model_name=spec.name)
    intervals: dict[tuple[int, int], tuple[float, float]] = {}
    for t, y in enumerate(ys):
        for s in f.learn_one(y, xs[t] if xs else None):
            if s.step < warmup:
                continue
            score.by_h.setdefault(s.horizon, AccuracyStats()).update(s.forecast, s.actual)
            lo_hi = intervals.pop((s.step, s.horizon), None)
            if lo_hi is not None and math.isfinite(lo_hi[1]):
                score.with_interval[s.horizon] = score.with_interval.get(s.horizon, 0) + 1
                score.covered[s.horizon] = score.covered.get(s.horizon, 0) + (
                    lo_hi[0] <= s.actual <= lo_hi[1]
                )
        fc = f.forecast()
        for h in horizons:
            intervals[(f.steps + h - 1, h)] = fc.intervals[h]


def accuracy(weeks: int, skus: int, regions: int, seed: int) -> dict[str, Any]:
    horizons, warmup = (1, 4, 13), 60
    world = simulate(weeks, skus=skus, regions=regions, seed=seed)
    models = specs(horizons, 52)
    slow = ModelSpec("linear", "linear_lr0.005", params={**models["linear"].params, "lr": 0.005})
    both, award = ("tender_award", "policy"), ("tender_award",)
    runs: dict[str, tuple[ModelSpec, tuple[str, ...]]] = {
        "linear_with_signals": (models["linear"], both),  # default parameters
        "linear_with_award_signal": (models["linear"], award),
        "linear_lr0.005_with_signals": (slow, both),
        "linear_without_signals": (models["linear"], ()),
        "linear_lr0.005_without_signals": (slow, ()),
        "holt_winters": (models["holt_winters"], ()),
        "snarimax": (models["snarimax"], ()),
        "seasonal_naive": (models["seasonal_naive"], ()),
    }
    out: dict[str, Any] = {}
    for name, (spec, names) in runs.items():
        score = Score()
        for key, ys in world.sales.items():
            xs = [{n: x[n] for n in names} for x in world.signals[key]] if names else None
            replay(spec, ys, xs, horizons, warmup, score)
        out[name] = score.row()
    return {
        "keys": len(world.sales), "weeks": weeks, "warmup_weeks": warmup, "level": LEVEL,
        "effects": world.effects, "by_model": out,
    }  # fmt: skip


# -- 2. real series shipped in packages -------------------------------------------------------
def real_series() -> dict[str, list[float]]:
    from pmdarima.datasets import load_wineind  # noqa: PLC0415 - the `bench` extra
    from river.datasets import AirlinePassengers  # noqa: PLC0415

    return {
        "wineind": [float(v) for v in load_wineind()],
        "airline_passengers": [
            float(y)
            for _, y in AirlinePassengers()  # type: ignore[no-untyped-call]  # river: untyped
        ],
    }


def real(horizons: tuple[int, ...] = (1, 4, 12), warmup: int = 24) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, ys in real_series().items():
        models = specs(horizons, 12)
        models["holt_winters_mult"] = ModelSpec(
            "holt_winters", "holt_winters_mult", params={"seasonality": 12, "multiplicative": True}
        )
        res: dict[str, Any] = {}
        for family, spec in models.items():
            score = Score()
            replay(spec, ys, None, horizons, warmup, score)
            res[family] = score.row()
        out[name] = {"periods": len(ys), "season": 12, "warmup": warmup, "by_model": res}
    return out


# -- 3. the stream pipeline with and without its signal feed -----------------------------------
TENDERS = "tenders.notices.v1"


class ListFeed:
    """Signal records in memory; ``poll`` hands out those not handed out yet."""

    def __init__(self, messages: list[Message]) -> None:
        self._messages = messages
        self.positions: dict[tuple[str, int], int] = {}

    def seek(self, positions: Any) -> None:
        self.positions.update(positions)

    def poll(self) -> list[Message]:
        out, self._messages = self._messages, []
        return out

    def catch_up(self) -> list[Message]:
        return self.poll()


def world_messages(world: World, weeks: int) -> tuple[list[Message], list[Message]]:
    """One POS line per key and week (its weekly units), and one award notice per award."""
    template = sample_event("pos.transaction")
    pos: list[Message] = []
    offsets: dict[int, int] = {}
    for w in range(weeks):
        for k, (key, ys) in enumerate(sorted(world.sales.items())):
            sku, region = key.split("|")
            partition = k % 4
            rec = {**template, "payload": dict(template["payload"]), "event_id": f"{key}-{w}"}
            rec["payload"].update(sku=sku, region=region, store_id=f"S-{region}",
                                  transaction_id=f"T{key}{w}", quantity=round(ys[w]),
                                  discount=Decimal(0), amount=Decimal(10))  # fmt: skip
            at = datetime.fromtimestamp((MON + w * WEEK_MS + DAY_MS + k) / 1000, tz=UTC)
            rec["occurred_at"] = rec["ingested_at"] = at
            value, headers = codec.encode("pos.transaction", rec)
            offset = offsets[partition] = offsets.get(partition, -1) + 1
            pos.append(Message(topic="pos.transactions.v1", partition=partition, offset=offset,
                               key=key.encode(), value=value,
                               headers=producer_headers(headers)))  # fmt: skip
    notices: list[Message] = []
    regions = sorted({key.split("|")[1] for key in world.sales})
    for region in regions:
        first = next(k for k in world.sales if k.endswith(f"|{region}"))
        for w, x in enumerate(world.signals[first][:weeks]):
            if not x["tender_award"]:
                continue
            at = datetime.fromtimestamp((MON + w * WEEK_MS + 2 * DAY_MS) / 1000, tz=UTC)
            rec = sample_event("tender.notice", kind="AWARD", region=region, published_at=at,
                               notice_id=f"N{region}{w}")  # fmt: skip
            rec["occurred_at"] = rec["ingested_at"] = at
            value, headers = codec.encode("tender.notice", rec)
            notices.append(Message(topic=TENDERS, partition=0, offset=len(notices),
                                   value=value, headers=producer_headers(headers)))  # fmt: skip
    return pos, notices


def stream(weeks: int, skus: int, regions: int, seed: int, batch: int = 500) -> dict[str, Any]:
    """The forecast pipeline over the simulated world (module docstring, section 3)."""
    horizons, warmup = (1, 4, 13), 60
    world = simulate(weeks, skus=skus, regions=regions, seed=seed)
    pos, notices = world_messages(world, weeks)
    runs = {
        "linear_with_signals": ("linear", True),
        "linear_without_signals": ("linear", False),
        "holt_winters": ("holt_winters", False),
        "seasonal_naive": ("seasonal_naive", False),
    }
    out: dict[str, Any] = {
        "keys": len(world.sales), "weeks": weeks, "warmup_weeks": warmup, "events": len(pos),
        "signal_records": len(notices), "by_model": {},
    }  # fmt: skip
    for name, (family, fed) in runs.items():
        settings = ForecastSettings(family=family, season=52, horizons=horizons, level=LEVEL,
                                    min_history=0, promotions=False)  # fmt: skip
        pipeline = ForecastPipeline(
            state_reader=EmptyChangelog(), settings=settings,
            signal_feed=ListFeed(list(notices)) if fed else None, signal_topics=(TENDERS,),
        )  # fmt: skip
        forecasts: list[Any] = []
        scored: list[Any] = []
        start = time.perf_counter()
        for i in range(0, len(pos), batch):
            rows = pipeline.process(pos[i : i + batch]).rows
            forecasts += rows[FORECASTS.name]
            scored += rows[FORECAST_ACCURACY.name]
        elapsed = time.perf_counter() - start
        keyed = [len(snapshot.dumps(state)) for state in pipeline.keys.values()]
        signal_bytes = len(encode_state(pipeline.signals))
        score = _stream_score(forecasts, scored, warmup)
        out["by_model"][name] = score.row()
        out[f"{name}_cost"] = {
            "events_per_s": round(len(pos) / elapsed),  # every event closes a period here
            "snapshot_bytes_per_key": round(sum(keyed) / len(keyed)),
            "signal_state_bytes": signal_bytes,
        }
    return out


def _stream_score(forecasts: list[Any], scored: list[Any], warmup: int) -> Score:
    """Accuracy rows past the warm-up, and whether each actual fell in its interval."""
    fc = {n: i for i, n in enumerate(FORECASTS.columns)}
    ac = {n: i for i, n in enumerate(FORECAST_ACCURACY.columns)}
    first = min(r[ac["period_start"]] for r in scored)
    start = first.timestamp() * 1000 + warmup * WEEK_MS
    intervals = {
        (r[fc["key"]], r[fc["target_start"]], r[fc["horizon"]]): (r[fc["lower"]], r[fc["upper"]])
        for r in forecasts
    }
    score = Score()
    for r in scored:
        if r[ac["period_start"]].timestamp() * 1000 < start:
            continue
        h, actual = r[ac["horizon"]], r[ac["actual"]]
        score.by_h.setdefault(h, AccuracyStats()).update(r[ac["forecast"]], actual)
        lo_hi = intervals.get((r[ac["key"]], r[ac["period_start"]], h))
        if lo_hi is not None and math.isfinite(lo_hi[1]):
            score.with_interval[h] = score.with_interval.get(h, 0) + 1
            score.covered[h] = score.covered.get(h, 0) + (lo_hi[0] <= actual <= lo_hi[1])
    return score


# -- 4. pipeline throughput -------------------------------------------------------------------


def pos_messages(n: int, keys: int, weeks: int, seed: int) -> list[Message]:
    rng = random.Random(seed)
    template = sample_event("pos.transaction")
    out = []
    for i in range(n):
        k = rng.randrange(keys)
        at = MON + (i * weeks * WEEK_MS) // n  # time moves forward; periods close
        rec = {**template, "payload": dict(template["payload"]), "event_id": f"e{i}"}
        rec["payload"].update(sku=f"SKU{k}", region=f"R{k % 4}", transaction_id=f"T{i}",
                              quantity=rng.randint(1, 4), amount=Decimal("10.00"))  # fmt: skip
        rec["occurred_at"] = rec["ingested_at"] = datetime.fromtimestamp(at / 1000, tz=UTC)
        value, headers = codec.encode("pos.transaction", rec)
        key = f"SKU{k}|R{k % 4}".encode()
        out.append(
            Message(topic="pos.transactions.v1", partition=k % 4, offset=i, key=key,
                    value=value, headers=producer_headers(headers))
        )  # fmt: skip
    return out


def throughput(n: int, keys: int, weeks: int, batch: int, seed: int) -> dict[str, Any]:
    messages = pos_messages(n, keys, weeks, seed)
    out: dict[str, Any] = {"events": n, "keys": keys, "weeks": weeks, "batch": batch}
    for family in ("holt_winters", "linear", "snarimax"):
        settings = ForecastSettings(family=family, season=52)
        pipeline = ForecastPipeline(state_reader=EmptyChangelog(), settings=settings)
        rows = 0
        start = time.perf_counter()
        for i in range(0, n, batch):
            result = pipeline.process(messages[i : i + batch])
            rows += sum(len(r) for r in result.rows.values())
        elapsed = time.perf_counter() - start
        out[family] = {"events_per_s": round(n / elapsed), "rows": rows, "seconds": _r(elapsed)}
    return out


# -- 5. memory per key ------------------------------------------------------------------------
def memory(keys: int, weeks: int, seed: int) -> dict[str, Any]:
    horizons = (1, 4, 13)
    world = simulate(weeks, skus=max(1, keys // 4), regions=4, seed=seed)
    config = ForecasterConfig(horizons=horizons)
    out: dict[str, Any] = {"keys": len(world.sales), "weeks_learned": weeks}
    for family, spec in specs(horizons, 52).items():
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        states = {}
        for key, ys in world.sales.items():
            st = KeyState.new(key, spec, config)
            for t, y in enumerate(ys):
                st.add(MON + t * WEEK_MS, y, world.signals[key][t])
            states[key] = st
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        live = sum(s.size_diff for s in after.compare_to(before, "filename"))
        blobs = [len(snapshot.dumps(s)) for s in states.values()]
        out[family] = {
            "snapshot_bytes_mean": round(sum(blobs) / len(blobs)),
            "snapshot_bytes_max": max(blobs),
            "tracemalloc_bytes_per_key": round(live / len(states)),
        }
    return out


# -- report -----------------------------------------------------------------------------------
def _r(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else round(v, 4)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _table(title: str, by_model: dict[str, Any]) -> Table:
    horizons = sorted({h for row in by_model.values() for h in row}, key=int)
    table = Table(title=title)
    table.add_column("model", no_wrap=True)
    for h in horizons:
        table.add_column(f"h={h} MAPE")
        table.add_column(f"h={h} WAPE")
        table.add_column(f"h={h} cov")
    for model, row in by_model.items():
        cells = []
        for h in horizons:
            c = row.get(h, {})
            cells += [_fmt(c.get("mape")), _fmt(c.get("wape")), _fmt(c.get("coverage"))]
        table.add_row(model, *cells)
    return table


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weeks", type=int, default=208)
    ap.add_argument("--skus", type=int, default=6)
    ap.add_argument("--regions", type=int, default=4)
    ap.add_argument("--events", type=int, default=60_000)
    ap.add_argument("--memory-keys", type=int, default=400)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--output", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "note": "timings from a shared 2-core machine: compare ratios, not absolute figures",
        "accuracy": accuracy(args.weeks, args.skus, args.regions, args.seed),
    }
    result["stream"] = stream(args.weeks, args.skus, args.regions, args.seed)
    if not args.skip_real:
        result["real"] = real()
    result["throughput"] = throughput(args.events, 100, 26, 1000, args.seed)
    result["memory"] = memory(args.memory_keys, 104, args.seed)
    result["seconds"] = _r(time.perf_counter() - t0)
    console.print(_table("synthetic weekly sales with signals", result["accuracy"]["by_model"]))
    console.print(_table("the same through ForecastPipeline", result["stream"]["by_model"]))
    for name, res in result.get("real", {}).items():
        console.print(_table(f"{name} (monthly)", res["by_model"]))
    costs = {k: v for k, v in result["stream"].items() if k.endswith("_cost")}
    console.print_json(
        data={"stream": costs, "throughput": result["throughput"], "memory": result["memory"]}
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    console.print(f"written {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
