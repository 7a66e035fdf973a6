"""Which pipeline's state grows in a long run: the soak, in memory, on a simulated clock.

The full-path soak (``bench/run.py --soak-seconds``) says that the worker's RSS grows; this says
where. It builds the worker's own pipelines with empty changelogs (``bench.pipeline_costs``),
feeds them fresh events in chunks as the soak does (new ids per chunk, the bench's event mix),
but stamps them with a simulated clock advancing at ``--events-per-s`` instead of waiting for the
wall clock. ``time.time`` is the simulated clock while pipelines run (business rules and channel
health read it); ``datetime.now`` is not patched, it only stamps output rows there.

    python -m bench.memory_soak --minutes-simulated 30 --events-per-s 2000

Every simulated minute it records tracemalloc's current size and, per pipeline, the entries of
its state containers (summed by attribute path) and its own bytes (objects reachable from it and
from no other pipeline). Prints growth per simulated 10 minutes after the warm-up.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import tracemalloc
import zlib
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import FunctionType, ModuleType
from typing import Any
from unittest import mock

from confluent_kafka import Message

from bench.events import make_events
from bench.pipeline_costs import PARTITIONS, build
from dealstream.broker.headers import producer_headers
from dealstream.broker.settings import KafkaSettings
from dealstream.streams.pipeline import Pipeline, StatefulPipeline

CHUNK = 20_000  # as bench/run.py's soak: one make_events call per chunk, a new seed each
BATCH = 1_000  # records per process call (the engine's max batch)
START_MS = 1_780_000_000_000  # the simulated clock's start (mid-2026)
MIN_LEN = 50  # containers smaller than this are not listed (settings, per-partition maps)
OUT = Path(__file__).resolve().parent / "results" / "memory_soak.json"


class SimClock:
    """Milliseconds since the epoch, moved by the harness, never by the wall clock."""

    def __init__(self, start_ms: int) -> None:
        self.ms = float(start_ms)

    def time(self) -> float:
        return self.ms / 1000


def _sim_datetime(clock: SimClock, step_ms: float) -> type[datetime]:
    """A ``datetime`` whose ``now`` reads the clock and moves it one event on (POS rows)."""

    class SimDatetime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> SimDatetime:
            at = datetime.fromtimestamp(clock.ms / 1000, tz or UTC)
            clock.ms += step_ms
            return cls(*at.timetuple()[:6], at.microsecond, tzinfo=at.tzinfo)

    return SimDatetime


def fresh_chunk(index: int, start_ms: float, rate: float, kafka: KafkaSettings) -> list[Message]:
    """``CHUNK`` fresh events (seed ``1000 + index`` as the soak), timed from ``start_ms``."""
    clock = SimClock(int(start_ms))
    with (
        mock.patch("time.time", clock.time),
        mock.patch(
            "dealstream.connectors.simulator.pos.datetime", _sim_datetime(clock, 1000 / rate)
        ),
    ):
        events = make_events(CHUNK, seed=1_000 + index)
    out = []
    for offset, (base, key, value, headers, _) in enumerate(events):
        out.append(
            Message(
                topic=kafka.topic(base),
                partition=zlib.crc32(key or b"") % PARTITIONS,
                offset=index * CHUNK + offset,
                key=key,
                value=value,
                headers=producer_headers(headers),
                timestamp=(1, int(start_ms + offset * 1000 / rate)),
            )
        )
    return out


# -- state size -------------------------------------------------------------------------------
_SKIP = type | ModuleType | FunctionType


def _children(obj: Any) -> Iterator[tuple[str, Any]]:
    """(path step, child) of our own objects and containers; dict keys collapse to ``*``."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield "[*]", v
            if not isinstance(k, str | int | bytes):
                yield "[key]", k
    elif isinstance(obj, list | tuple | set | frozenset) or type(obj).__name__ == "deque":
        for v in obj:
            yield "[*]", v
    else:
        attrs = getattr(obj, "__dict__", None)
        if attrs is not None:
            for k, v in attrs.items():
                yield f".{k}", v
        for cls in type(obj).__mro__:
            for slot in getattr(cls, "__slots__", ()):
                if hasattr(obj, slot):
                    yield f".{slot}", getattr(obj, slot)


def containers(pipeline: Pipeline) -> dict[str, int]:
    """Entries of every container reachable from the pipeline, summed by attribute path."""
    sizes: dict[str, int] = defaultdict(int)
    seen: set[int] = set()
    stack: list[tuple[str, Any]] = [("", pipeline)]
    while stack:
        path, obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _SKIP | str | bytes | int | float | bool):
            continue
        seen.add(id(obj))
        if isinstance(obj, dict | list | set | frozenset) or type(obj).__name__ == "deque":
            sizes[path or "."] += len(obj)
        module = type(obj).__module__
        if not isinstance(obj, dict | list | tuple | set | frozenset) and not (
            module.startswith(("dealstream", "river", "collections")) or hasattr(obj, "__dict__")
        ):
            continue
        if module.startswith(("logging", "prometheus_client", "threading", "pydantic")):
            continue
        for step, child in _children(obj):
            stack.append((path + step, child))
    return {p: n for p, n in sizes.items() if n >= MIN_LEN}


def _reachable(root: Any) -> dict[int, Any]:
    seen: dict[int, Any] = {}
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _SKIP):
            continue
        seen[id(obj)] = obj
        stack.extend(gc.get_referents(obj))
    return seen


def own_bytes(pipelines: list[Pipeline]) -> dict[str, int]:
    """Bytes of the objects reachable from each pipeline and from no other one."""
    reach = {p.name: _reachable(p) for p in pipelines}
    count: dict[int, int] = defaultdict(int)
    for ids in reach.values():
        for i in ids:
            count[i] += 1
    return {
        name: sum(sys.getsizeof(obj) for i, obj in objs.items() if count[i] == 1)
        for name, objs in reach.items()
    }


# -- the run ----------------------------------------------------------------------------------
def run(
    minutes: int, rate: int, *, trace: bool, every_min: int = 1, output: Path | None = None
) -> dict[str, Any]:
    """Feed ``minutes`` of simulated events at ``rate``; samples are written to ``output`` as
    they come (a long run stopped early still leaves its figures)."""
    kafka = KafkaSettings(topic_prefix="memsoak.")
    pipelines = build(kafka)
    clock = SimClock(START_MS)
    samples: list[dict[str, Any]] = []
    if trace:
        tracemalloc.start()
    total = minutes * 60 * rate
    next_sample = START_MS
    sent = 0
    started = time.process_time()
    result: dict[str, Any] = {"minutes_simulated": minutes, "events_per_s": rate}
    with mock.patch("time.time", clock.time):
        while sent < total:
            chunk = fresh_chunk(sent // CHUNK, START_MS + sent * 1000 / rate, rate, kafka)
            for start in range(0, len(chunk), BATCH):
                batch = chunk[start : start + BATCH]
                clock.ms = batch[-1].timestamp()[1]
                by_topic: dict[str, list[Message]] = defaultdict(list)
                for m in batch:
                    by_topic[str(m.topic())].append(m)
                for pipeline in pipelines:
                    part = [m for t in pipeline.topics for m in by_topic.get(t, ())]
                    if part:
                        pipeline.process(part)
                if (start // BATCH) % 5 == 4:  # a checkpoint about once per 5 batches
                    for pipeline in pipelines:
                        if isinstance(pipeline, StatefulPipeline):
                            pipeline.snapshot()
                if clock.ms >= next_sample:
                    samples.append(sample(pipelines, clock, trace))
                    print(_line(samples[-1]), flush=True)
                    next_sample += every_min * 60_000
                    if output:
                        output.write_text(json.dumps({**result, "samples": samples}) + "\n")
            sent += len(chunk)
    samples.append(sample(pipelines, clock, trace))
    return {
        **result,
        "events": sent,
        "cpu_s": round(time.process_time() - started, 1),
        "samples": samples,
    }


def sample(pipelines: list[Pipeline], clock: SimClock, trace: bool) -> dict[str, Any]:
    gc.collect()
    return {
        "minute": round((clock.ms - START_MS) / 60_000, 2),
        "rss_mb": round(_rss() / 2**20, 1),
        "traced_mb": round(tracemalloc.get_traced_memory()[0] / 2**20, 1) if trace else None,
        "own_kb": {k: v // 1024 for k, v in own_bytes(pipelines).items()},
        "containers": {p.name: containers(p) for p in pipelines},
    }


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _line(s: dict[str, Any]) -> str:
    own = " ".join(f"{k}={v}" for k, v in s["own_kb"].items())
    return f"min {s['minute']:>6}: rss {s['rss_mb']} traced {s['traced_mb']} MB | own kB: {own}"


def growth(result: dict[str, Any], warm_up_min: float) -> dict[str, Any]:
    """Per pipeline: own kB and container entries at the end of warm-up and at the end, and
    the growth per simulated 10 minutes between them."""
    samples = [s for s in result["samples"] if s["minute"] >= warm_up_min]
    if len(samples) < 2:
        return {}
    first, last = samples[0], samples[-1]
    per10 = 10 / max(last["minute"] - first["minute"], 1e-9)
    out: dict[str, Any] = {
        "from_minute": first["minute"],
        "to_minute": last["minute"],
        "rss_mb": [first["rss_mb"], last["rss_mb"]],
        "traced_mb": [first["traced_mb"], last["traced_mb"]],
        "pipelines": {},
    }
    for name, kb in last["own_kb"].items():
        before = first["own_kb"].get(name, 0)
        grown = {
            path: [first["containers"][name].get(path, 0), n]
            for path, n in last["containers"][name].items()
            if n > first["containers"][name].get(path, 0)
        }
        out["pipelines"][name] = {
            "own_kb": [before, kb],
            "own_kb_per_10min": round((kb - before) * per10),
            "containers_grown": {
                p: {"from": a, "to": b, "per_10min": round((b - a) * per10)}
                for p, (a, b) in sorted(grown.items(), key=lambda kv: kv[1][0] - kv[1][1])
            },
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes-simulated", type=int, default=30)
    parser.add_argument("--events-per-s", type=int, default=2_000)
    parser.add_argument("--sample-every-minutes", type=int, default=1)
    parser.add_argument("--warm-up-minutes", type=float, default=None, help="default: a fifth")
    parser.add_argument(
        "--tracemalloc", action="store_true", help="also trace allocations (about 10x slower)"
    )
    parser.add_argument("--output", type=Path, default=OUT)
    args = parser.parse_args(argv)
    result = run(
        args.minutes_simulated,
        args.events_per_s,
        trace=args.tracemalloc,
        every_min=args.sample_every_minutes,
        output=args.output,
    )
    warm = args.warm_up_minutes
    result["growth"] = growth(result, args.minutes_simulated / 5 if warm is None else warm)
    g = result["growth"]
    print(f"\ngrowth from simulated minute {g['from_minute']} to {g['to_minute']}, per 10 min:")
    print(f"RSS MB {g['rss_mb'][0]} -> {g['rss_mb'][1]}, traced MB {g['traced_mb']}")
    for name, row in g["pipelines"].items():
        print(f"{name:<28} own kB {row['own_kb'][0]:>9,} -> {row['own_kb'][1]:>9,}")
        for path, c in row["containers_grown"].items():
            print(f"    {path:<60} {c['from']:>9,} -> {c['to']:>9,} (+{c['per_10min']:,}/10min)")
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
