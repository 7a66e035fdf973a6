"""The journeys pipeline over the simulated world, scored against the world's own customers."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Message
from pydantic import SecretStr

from dealstream.connectors.pii import Desensitizer
from dealstream.connectors.simulator.customers import SLOW_STORES
from dealstream.connectors.simulator.world import World
from dealstream.schemas import catalog, codec
from dealstream.streams.decoding import RecordReader
from dealstream.streams.journeys import EVENT_TYPES, JourneysPipeline
from tests.unit.streams.test_journeys_pipeline import DictChangelog

PII = Desensitizer(SecretStr("k"))


def run(world: World) -> tuple[JourneysPipeline, Counter[str], list[dict[str, Any]]]:
    topics = {catalog.event_type(et).topic: et for et in EVENT_TYPES}
    p = JourneysPipeline(
        state_reader=DictChangelog(),
        readers={t: RecordReader(et) for t, et in topics.items()},
        changelog_topic="state.identity.v1",
    )
    offsets: Counter[str] = Counter()
    rows: Counter[str] = Counter()
    alerts: list[dict[str, Any]] = []
    batch: list[Message] = []
    events = list(world.events())
    for n, (event_type, record) in enumerate(events, 1):
        topic = catalog.event_type(event_type).topic
        if topic in topics:
            value, headers = codec.encode(event_type, record)
            batch.append(Message(topic=topic, partition=0, offset=offsets[topic], value=value,
                                 headers=headers))  # fmt: skip
            offsets[topic] += 1
        if len(batch) == 500 or (n == len(events) and batch):
            result = p.process(batch)
            batch = []
            rows.update({t: len(r) for t, r in result.rows.items()})
            alerts += result.alerts
    return p, rows, alerts


def test_world_customers_resolve_without_splits_or_strangers_and_only_slow_stores_alert() -> None:
    world = World(3, days=60, end=datetime(2026, 9, 1, tzinfo=UTC), pii=PII, scale=0.5)
    p, rows, alerts = run(world)
    resolver = p.state.resolver
    owner: dict[str, int] = {}  # customer id -> the world customer whose identifier it holds
    linked = 0
    for c in world.customers:
        ids = [
            PII.ref("unionid", c.unionid),
            PII.phone(c.phone),
            PII.ref("wecom_external", c.external),
        ]
        got = [resolver.customer_of(i) for i in ids]
        known = {g for g in got if g is not None}
        if c.shares_phone:  # every link planted: one customer
            assert len(known) <= 1, c
            linked += len(known) == 1 and None not in got
        for g in known:
            assert owner.setdefault(g, c.index) == c.index  # never two people in one customer
    assert linked > 50
    assert rows["journey_steps"] > 2_000 and rows["customer_merges"] > 0
    assert {a["entity_key"] for a in alerts} == SLOW_STORES and len(alerts) == len(SLOW_STORES)
