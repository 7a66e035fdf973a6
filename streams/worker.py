"""Builds a worker from settings: ClickHouse sink, Kafka clients, pipelines, engine, faust app."""

from __future__ import annotations

import gc
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass

import faust

from dealstream.broker.clients import make_consumer, make_producer
from dealstream.broker.settings import KafkaSettings
from dealstream.schemas import catalog, registry
from dealstream.schemas.codec import SchemaResolver
from dealstream.sinks.clickhouse.batching import BatchingSink
from dealstream.sinks.clickhouse.client import connect
from dealstream.sinks.clickhouse.migrate import migrate
from dealstream.sinks.clickhouse.settings import ClickHouseSettings
from dealstream.sinks.kafka.alerts import AlertPublisher
from dealstream.sinks.kafka.events import EventPublisher
from dealstream.sinks.wecom.delivery import delivery_listeners
from dealstream.streams import metrics
from dealstream.streams.app import create_app
from dealstream.streams.business import BusinessRulesPipeline, BusinessSettings
from dealstream.streams.changelog import ChangelogReader, StateReader
from dealstream.streams.compliance import TOPIC as COMPLIANCE_TOPIC
from dealstream.streams.compliance import CompliancePipeline, ComplianceSettings
from dealstream.streams.dead_letter_archive import DeadLetterArchivePipeline, dead_letter_topics
from dealstream.streams.decoding import RecordReader
from dealstream.streams.engine import Engine
from dealstream.streams.forecast import ForecastPipeline, ForecastSettings
from dealstream.streams.journeys import JourneysPipeline
from dealstream.streams.logs import LogFormat, configure_json
from dealstream.streams.pipeline import Pipeline
from dealstream.streams.pos import TOPIC as POS_TOPIC
from dealstream.streams.pos import PosTransactionsPipeline
from dealstream.streams.rep_forecast import CHANGELOG_TOPIC as REP_FORECAST_CHANGELOG
from dealstream.streams.rep_forecast import TOPIC as ERP_ORDER_TOPIC
from dealstream.streams.rep_forecast import RepForecastPipeline, RepForecastSettings
from dealstream.streams.reviews import CHANGELOG_TOPIC as REVIEWS_CHANGELOG
from dealstream.streams.reviews import TOPIC as REVIEWS_TOPIC
from dealstream.streams.reviews import ReviewSentimentPipeline, ReviewSettings
from dealstream.streams.service import EngineService
from dealstream.streams.settings import WorkerSettings
from dealstream.streams.tasks.pipeline import EVENT_TYPE as TASK_EVENT_TYPE
from dealstream.streams.tasks.pipeline import StoreTasksPipeline

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerConfig:
    worker: WorkerSettings
    kafka: KafkaSettings
    clickhouse: ClickHouseSettings

    @classmethod
    def from_env(cls) -> WorkerConfig:
        return cls(WorkerSettings(), KafkaSettings(), ClickHouseSettings())


def worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def shared_readers(kafka: KafkaSettings, resolve: SchemaResolver | None) -> dict[str, RecordReader]:
    """One reader per event topic, handed to every pipeline of that topic.

    A reader remembers the batches it decoded, so a record read by several pipelines (POS lines:
    storage, forecasts, business rules, journeys, store tasks) is decoded and validated once.
    """
    return {
        kafka.topic(et.topic): RecordReader(et.name, resolver=resolve)
        for et in catalog.event_types()
        if et.enveloped
    }


def default_pipelines(
    kafka: KafkaSettings, *, state_reader: StateReader | None = None
) -> list[Pipeline]:
    """Every pipeline a worker can run, restoring state through ``state_reader`` (default: the
    changelog topics on the broker; benchmarks and tests pass an empty one to start cold)."""
    changelogs = state_reader or ChangelogReader(kafka)
    resolve = registry.resolver()
    readers = shared_readers(kafka, resolve)
    pos_records = readers[kafka.topic(POS_TOPIC)]
    pipelines: list[Pipeline] = [
        PosTransactionsPipeline(topic=kafka.topic(POS_TOPIC), reader=pos_records),
        CompliancePipeline(
            ComplianceSettings().load(),
            topic=kafka.topic(COMPLIANCE_TOPIC),
            reader=readers[kafka.topic(COMPLIANCE_TOPIC)],
        ),
        DeadLetterArchivePipeline(dead_letter_topics(kafka.topic_prefix), resolver=resolve),
        # Every worker also reads all of the region signal topics (streams/forecast_signals.py).
        ForecastPipeline.from_settings(
            kafka,
            ForecastSettings(),
            state_reader=changelogs,
            records=pos_records,
            resolver=resolve,
        ),
    ]
    review_settings = ReviewSettings()
    pipelines.append(
        ReviewSentimentPipeline(
            state_reader=changelogs,
            topic=kafka.topic(REVIEWS_TOPIC),
            changelog_topic=kafka.topic(REVIEWS_CHANGELOG),
            chat_topic=kafka.topic(COMPLIANCE_TOPIC) if review_settings.chats else None,
            settings=review_settings,
            records=readers[kafka.topic(REVIEWS_TOPIC)],
            chat_records=readers[kafka.topic(COMPLIANCE_TOPIC)],
        )
    )
    # Business rules read every event topic; the topics above dead-letter their own bad records.
    pipelines.append(
        BusinessRulesPipeline.from_settings(
            kafka,
            BusinessSettings(),
            state_reader=changelogs,
            readers=readers,
            owned_elsewhere={t for p in pipelines for t in p.topics},
            resolver=resolve,
        )
    )
    # Rep forecasts read ERP orders after the business pipeline, which dead-letters bad ones.
    pipelines.append(
        RepForecastPipeline(
            state_reader=changelogs,
            topic=kafka.topic(ERP_ORDER_TOPIC),
            changelog_topic=kafka.topic(REP_FORECAST_CHANGELOG),
            settings=RepForecastSettings(),
            records=readers[kafka.topic(ERP_ORDER_TOPIC)],
        )
    )
    # Journeys and channel health last: the pipelines above dead-letter their topics' bad records.
    pipelines.append(
        JourneysPipeline.from_settings(
            kafka, state_reader=changelogs, readers=readers, resolver=resolve
        )
    )
    # Store tasks read views, purchases and stock; the pipelines above dead-letter bad ones.
    pipelines.append(
        StoreTasksPipeline(
            state_reader=changelogs,
            topic_prefix=kafka.topic_prefix,
            readers=readers,
            resolver=resolve,
        )
    )
    return pipelines


def build_engine(config: WorkerConfig, pipelines: list[Pipeline]) -> Engine:
    """Connect ClickHouse (applying migrations) and Kafka, and wire the engine."""
    client = connect(settings=config.clickhouse)
    applied = migrate(client, cluster=config.clickhouse.cluster)
    if applied:
        log.info("applied %d ClickHouse migration(s)", len(applied))
    sink = BatchingSink(client, settings=config.clickhouse, name="clickhouse-a")
    standby = BatchingSink(client, settings=config.clickhouse, name="clickhouse-b")
    encode = registry.encoder()
    producer = make_producer(config.kafka, client_id=f"{config.worker.app_id}-{worker_id()}")
    consumer = make_consumer(
        config.kafka,
        group_id=config.worker.group_id,
        client_id=f"{config.worker.app_id}-{worker_id()}",
        # librdkafka reports the lag per partition; turned into dealstream_consumer_lag.
        **{
            "statistics.interval.ms": 5_000,
            "stats_cb": metrics.lag_from_statistics("+".join(p.name for p in pipelines)),
        },
    )
    return Engine(
        pipelines=pipelines,
        consumer=consumer,
        producer=producer,
        sink=sink,
        alerts=AlertPublisher(producer, topic_prefix=config.kafka.topic_prefix, encode=encode),
        # Store tasks to tasks.store.v1 (and to WeCom when configured).
        events=EventPublisher(
            producer,
            event_types=[TASK_EVENT_TYPE],
            topic_prefix=config.kafka.topic_prefix,
            encode=encode,
            listeners=delivery_listeners(),
        ),
        encode=encode,
        max_batch=config.worker.max_batch,
        poll_timeout_s=config.worker.poll_timeout_s,
        commit_interval_s=config.worker.commit_interval_s,
        max_pending_rows=config.clickhouse.max_pending_rows,
        stop_when_idle_s=config.worker.stop_when_idle_s,
        standby_sink=standby,
    )


def build_app(config: WorkerConfig, engine: Engine) -> tuple[faust.App, EngineService]:
    service = EngineService(
        engine, stop_worker_when_done=config.worker.stop_when_idle_s is not None
    )
    app = create_app(worker=config.worker, kafka=config.kafka, services=[service])
    return app, service


def select_pipelines(pipelines: list[Pipeline], names: Sequence[str]) -> list[Pipeline]:
    """The pipelines named (all when ``names`` is empty), failing fast on an unknown name.

    >>> class P:
    ...     def __init__(self, name: str) -> None: self.name = name
    >>> [p.name for p in select_pipelines([P("a"), P("b")], ["b"])]  # type: ignore[list-item]
    ['b']
    >>> select_pipelines([P("a")], ["x"])  # type: ignore[list-item]
    Traceback (most recent call last):
    ...
    ValueError: DEALSTREAM_WORKER_PIPELINES names unknown pipeline(s) ['x']; known: ['a']
    """
    if not names:
        return pipelines
    known = [p.name for p in pipelines]
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(
            f"DEALSTREAM_WORKER_PIPELINES names unknown pipeline(s) {unknown}; known: {known}"
        )
    return [p for p in pipelines if p.name in names]


def tune_gc(threshold: int) -> None:
    """Fewer young-generation collections (see ``WorkerSettings.gc_threshold``); 0 leaves
    Python's defaults."""
    if threshold > 0:
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(threshold, older, oldest)


def run_worker(
    config: WorkerConfig, *, loglevel: str = "info", log_format: LogFormat = "text"
) -> Engine:
    """Run the faust worker until SIGTERM/SIGINT (or until idle, when configured)."""
    if log_format == "json":
        configure_json(loglevel)
    tune_gc(config.worker.gc_threshold)
    pipelines = select_pipelines(default_pipelines(config.kafka), config.worker.pipelines)
    engine = build_engine(config, pipelines)
    app, _ = build_app(config, engine)
    if config.worker.gc_threshold > 0:
        gc.collect()
        gc.freeze()  # modules, app and clients live as long as the process: never rescan them
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, override_logging=log_format == "text")
    try:
        worker.execute_from_commandline()
    except SystemExit as done:
        if done.code not in (0, None):
            raise
    return engine
