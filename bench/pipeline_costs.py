"""Where a worker's time goes: each default pipeline's cost per event, in memory, no Kafka.

The full-path benchmark (``bench/run.py``) says how fast the worker is; this one says why. It
builds the worker's own pipelines (``streams.worker.default_pipelines``), routes the bench's
event mix to them in batches exactly as the engine does (per topic, decoded once per topic and
shared), and times each ``process`` call in CPU time (the machine may be busy). State starts
empty (no changelog to restore).

    python -m bench.pipeline_costs --events 100000

Prints µs per routed event and per input event for each pipeline, and the events/s the
pipelines alone would allow on one core (no Kafka, no ClickHouse writes).
"""

from __future__ import annotations

import argparse
import gc
import json
import time
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Any

from confluent_kafka import Message

from bench.events import make_events
from dealstream.broker.headers import producer_headers
from dealstream.broker.settings import KafkaSettings
from dealstream.streams import worker
from dealstream.streams.changelog import EmptyChangelog
from dealstream.streams.pipeline import Pipeline, StatefulPipeline
from dealstream.streams.settings import WorkerSettings

PARTITIONS = 4


def messages(count: int, kafka: KafkaSettings) -> list[Message]:
    now_ms = int(time.time() * 1000)
    out = []
    for offset, (base, key, value, headers, _) in enumerate(make_events(count)):
        out.append(
            Message(
                topic=kafka.topic(base),
                partition=zlib.crc32(key or b"") % PARTITIONS,
                offset=offset,
                key=key,
                value=value,
                headers=producer_headers(headers),
                timestamp=(1, now_ms),
            )
        )
    return out


def build(kafka: KafkaSettings) -> list[Pipeline]:
    worker.tune_gc(WorkerSettings().gc_threshold)  # as in a worker process
    pipelines = worker.default_pipelines(kafka, state_reader=EmptyChangelog())
    for pipeline in pipelines:
        if isinstance(pipeline, StatefulPipeline):
            pipeline.assigned([(t, p) for t in pipeline.topics for p in range(PARTITIONS)])
    return pipelines


def measure(pipelines: list[Pipeline], events: list[Message], batch: int) -> dict[str, Any]:
    gc.collect()
    gc.freeze()  # the harness's own objects (encoded events, messages) are not the worker's heap
    spent: dict[str, float] = defaultdict(float)
    routed: dict[str, int] = defaultdict(int)
    checkpoint = 0.0
    started = time.process_time()
    for start in range(0, len(events), batch):
        by_topic: dict[str, list[Message]] = defaultdict(list)
        for m in events[start : start + batch]:
            by_topic[str(m.topic())].append(m)
        for pipeline in pipelines:
            parts = [by_topic[t] for t in pipeline.topics if t in by_topic]
            if not parts:
                continue
            part = parts[0] if len(parts) == 1 else [m for p in parts for m in p]
            t0 = time.process_time()
            pipeline.process(part)
            spent[pipeline.name] += time.process_time() - t0
            routed[pipeline.name] += len(part)
        if (start // batch) % 20 == 19:  # the engine checkpoints about once a second
            t0 = time.process_time()
            for pipeline in pipelines:
                if isinstance(pipeline, StatefulPipeline):
                    pipeline.snapshot()
            checkpoint += time.process_time() - t0
    wall = time.process_time() - started
    n = len(events)
    rows = {
        name: {
            "routed": routed[name],
            "us_per_routed_event": round(spent[name] / routed[name] * 1e6, 2),
            "us_per_input_event": round(spent[name] / n * 1e6, 2),
        }
        for name in spent
    }
    rows["checkpoints (snapshot)"] = {
        "routed": n,
        "us_per_routed_event": round(checkpoint / n * 1e6, 2),
        "us_per_input_event": round(checkpoint / n * 1e6, 2),
    }
    return {"events": n, "batch": batch, "events_per_s": round(n / wall), "pipelines": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    kafka = KafkaSettings(topic_prefix="costs.")
    events = messages(args.events, kafka)
    result = measure(build(kafka), events, args.batch)
    print(
        f"{result['events']:,} events in batches of {result['batch']}: "
        f"{result['events_per_s']:,} events/s through the pipelines alone"
    )
    print(f"{'pipeline':<28}{'routed':>9}{'µs/routed':>11}{'µs/input':>10}")
    for name, row in result["pipelines"].items():
        print(
            f"{name:<28}{row['routed']:>9,}{row['us_per_routed_event']:>11}"
            f"{row['us_per_input_event']:>10}"
        )
    if args.output:
        args.output.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
