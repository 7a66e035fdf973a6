"""``dealstream simulate``: produce a seeded synthetic sales world to the real topics.

The world (:mod:`dealstream.connectors.simulator.world`) is replayed in event-time order
through one :class:`EventWriter` per event type, paced to ``--rate`` events/s or as fast as
the producer takes them; it stops after ``--events``, ``--duration`` seconds or the last
simulated day. The planted truth (effects, violations, faults, journeys, counts) is written
to ``--effects`` so forecasts, alerts and identity stitching can be scored.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from dealstream.broker.clients import make_producer
from dealstream.broker.settings import KafkaSettings
from dealstream.broker.standard_topics import standard_topics
from dealstream.broker.topics import ensure_topics
from dealstream.connectors.output import EventWriter
from dealstream.connectors.pii import Desensitizer, PiiSettings
from dealstream.connectors.simulator.world import World
from dealstream.schemas import codec, validation

EVENT_TYPES = (
    "pos.transaction",
    "miniprogram.event",
    "wecom.message",
    "tender.notice",
    "iot.telemetry",
)


class _DryRun:
    """Validates and encodes like the Kafka path, sends nothing (tests, benchmarks of the world)."""

    def __init__(self) -> None:
        self.produced = 0

    def write(self, record: dict[str, Any], *, event_type: str) -> bool:
        if validation.validate(event_type, record):
            return False
        codec.encode(event_type, record)
        self.produced += 1
        return True


def _replay(
    world: World,
    write: Callable[[str, dict[str, Any]], bool],
    *,
    events: int | None,
    duration: float | None,
    rate: float | None,
    stopping: Callable[[], bool],
) -> tuple[int, int]:
    """Feed the world's records to ``write`` until a limit; (produced, dead-lettered)."""
    started = time.monotonic()
    sent = rejected = 0
    for event_type, record in world.events():
        if stopping() or (events is not None and sent + rejected >= events):
            break
        now = time.monotonic()
        if duration is not None and now - started >= duration:
            break
        if rate:
            delay = started + (sent + rejected) / rate - now
            if delay > 0:
                time.sleep(delay)
        ok = write(event_type, record)
        sent, rejected = sent + ok, rejected + (not ok)
    return sent, rejected


def simulate(
    *,
    seed: Annotated[int, typer.Option(help="Same seed, same world and records.")] = 7,
    days: Annotated[int, typer.Option(min=1, help="Simulated days, ending today.")] = 90,
    events: Annotated[int | None, typer.Option(min=1, help="Stop after this many events.")] = None,
    duration: Annotated[
        float | None, typer.Option(min=0, help="Stop after this many seconds.")
    ] = None,
    rate: Annotated[
        float | None, typer.Option(min=0, help="Events per second; default as fast as possible.")
    ] = None,
    scale: Annotated[float, typer.Option(min=0.01, help="Multiplies daily volumes.")] = 1.0,
    customers: Annotated[int, typer.Option(min=1)] = 400,
    violation_rate: Annotated[float, typer.Option(min=0, max=1)] = 0.05,
    topic_prefix: Annotated[
        str | None, typer.Option(help="Topic prefix; default DEALSTREAM_KAFKA_TOPIC_PREFIX.")
    ] = None,
    effects: Annotated[Path, typer.Option(help="Where to write the planted truth (JSON).")] = Path(
        "simulate-effects.json"
    ),
    dry_run: Annotated[bool, typer.Option(help="Validate and encode only; no Kafka.")] = False,
    create_topics: Annotated[bool, typer.Option(help="Create missing topics first.")] = True,
) -> None:
    """Produce a coherent synthetic world (sales, journeys, chats, tenders, IoT) to Kafka."""
    kafka = KafkaSettings()
    if topic_prefix is not None:
        kafka = kafka.model_copy(update={"topic_prefix": topic_prefix})
    world = World(
        seed,
        days=days,
        customers=customers,
        scale=scale,
        violation_rate=violation_rate,
        pii=Desensitizer(PiiSettings().key),
    )
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = signal.signal(signal.SIGINT, on_signal)
    dry = _DryRun()
    writers: dict[str, EventWriter] = {}
    if not dry_run:
        if create_topics:
            ensure_topics(kafka, standard_topics(kafka))
        producer = make_producer(kafka, client_id="dealstream-simulate")
        writers = {
            name: EventWriter(
                producer, event_type=name, source="simulate", topic_prefix=kafka.topic_prefix
            )
            for name in EVENT_TYPES
        }

    def write(event_type: str, record: dict[str, Any]) -> bool:
        if dry_run:
            return dry.write(record, event_type=event_type)
        return writers[event_type].write(record, raw=b"", position=f"seed{seed}")

    started = time.monotonic()
    try:
        sent, rejected = _replay(
            world, write, events=events, duration=duration, rate=rate, stopping=lambda: stopping
        )
        for writer in writers.values():
            writer.flush()
    finally:
        signal.signal(signal.SIGINT, previous)
    elapsed = time.monotonic() - started
    truth = world.effects()
    truth["produced"] = sent
    truth["dead_lettered"] = rejected
    truth["topic_prefix"] = kafka.topic_prefix
    effects.write_text(json.dumps(truth, ensure_ascii=False, indent=2), encoding="utf-8")
    table = Table(title=f"simulate seed={seed}: {sent} event(s) in {elapsed:.1f}s")
    table.add_column("event type")
    table.add_column("events", justify="right")
    for name, count in sorted(truth["counts"].items()):
        table.add_row(name, str(count))
    Console().print(table)
    typer.echo(
        f"planted truth: {effects} ({len(truth['effects'])} effects, "
        f"{truth['chats']['planted_violations']} chat violations)"
    )
    if rejected:
        typer.echo(f"warning: {rejected} record(s) dead-lettered", err=True)
