"""Rule sets as versioned documents on the compacted ``config.rules.v1``, hot-reloaded in workers.

A document is one Kafka record: key = rule-set name (``business``, ``compliance``), value = the
YAML text, headers = version and author. Compaction keeps the latest document per name.

Each worker reads every document (its faust control consumer has a group of its own, so rule
updates reach all workers, not one), validates it, and swaps it into the pipelines that run that
rule set. An invalid document is logged with its line and column and ignored: the old rules
stay. At start-up the worker first reads the topic to its end synchronously, so the engine never
processes a record under stale rules, and the agent skips what that read already applied.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from prometheus_client import Counter

from dealstream.broker.clients import make_producer
from dealstream.broker.settings import KafkaSettings
from dealstream.broker.standard_topics import RULES_TOPIC
from dealstream.streams.business import BusinessRulesPipeline, RuleSet, digest
from dealstream.streams.compliance import CompliancePipeline
from dealstream.streams.rules.compliance import ComplianceRules
from dealstream.streams.rules.errors import RuleError

log = logging.getLogger(__name__)

HEADER_VERSION = "dealstream-rules-version"
HEADER_AUTHOR = "dealstream-rules-author"
HEADER_SENT_AT = "dealstream-rules-sent-at"  # epoch ms, for reload latency

RELOADS = Counter(
    "dealstream_rules_reloads_total",
    "Rule documents seen on config.rules.v1, by outcome",
    ["rule_set", "outcome"],
)


@dataclass(frozen=True, slots=True)
class RuleDocument:
    """One version of a named rule set, as stored on ``config.rules.v1``."""

    name: str
    text: str
    version: str
    author: str = ""
    sent_at_ms: int | None = None

    def headers(self) -> list[tuple[str, bytes]]:
        sent = self.sent_at_ms if self.sent_at_ms is not None else int(time.time() * 1000)
        return [
            (HEADER_VERSION, self.version.encode()),
            (HEADER_AUTHOR, self.author.encode()),
            (HEADER_SENT_AT, str(sent).encode()),
        ]

    @classmethod
    def from_record(
        cls, key: bytes | None, value: bytes | None, headers: Any
    ) -> RuleDocument | None:
        """The document of a record; None for a tombstone or a keyless record."""
        if not key or value is None:
            return None
        found = _headers(headers)
        text = value.decode("utf-8", errors="replace")
        sent = found.get(HEADER_SENT_AT, "")
        return cls(
            name=key.decode("utf-8", errors="replace"),
            text=text,
            version=found.get(HEADER_VERSION) or f"sha-{digest(text)}",
            author=found.get(HEADER_AUTHOR, ""),
            sent_at_ms=int(sent) if sent.isdigit() else None,
        )


def _headers(headers: Any) -> dict[str, str]:
    """Headers as text, from confluent (list of pairs) or faust (list, tuple or mapping)."""
    if not headers:
        return {}
    pairs: Iterable[tuple[Any, Any]] = (
        headers.items()
        if isinstance(headers, Mapping)
        else cast(Iterable[tuple[Any, Any]], headers)
    )
    out: dict[str, str] = {}
    for k, v in pairs:
        name = k.decode() if isinstance(k, bytes) else str(k)
        out[name] = v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v or "")
    return out


class RuleTarget(Protocol):
    """Something that runs one named rule set and can take a new version of it."""

    @property
    def rule_set_name(self) -> str: ...
    def check(self, doc: RuleDocument) -> object:
        """Validate (raises :class:`RuleError`); returns the compiled, immutable rules."""

    def install(self, compiled: object) -> None: ...


class BusinessTarget:
    def __init__(self, pipeline: BusinessRulesPipeline) -> None:
        self.pipeline = pipeline
        self.rule_set_name = pipeline.rule_set_name

    def check(self, doc: RuleDocument) -> object:
        rules = self.pipeline.compile(doc.text, version=doc.version, author=doc.author)
        for warning in rules.warnings:
            log.warning("rules %s %s: %s", doc.name, doc.version, warning)
        return rules

    def install(self, compiled: object) -> None:
        assert isinstance(compiled, RuleSet)
        self.pipeline.replace_rules(compiled)


class ComplianceTarget:
    rule_set_name = "compliance"

    def __init__(self, pipeline: CompliancePipeline) -> None:
        self.pipeline = pipeline

    def check(self, doc: RuleDocument) -> object:
        return ComplianceRules.from_yaml(doc.text)

    def install(self, compiled: object) -> None:
        assert isinstance(compiled, ComplianceRules)
        self.pipeline.replace_rules(compiled)  # one attribute store: atomic, next batch uses it


def rule_targets(pipelines: Iterable[object]) -> list[RuleTarget]:
    """Adapters for the pipelines whose rules can be reloaded."""
    out: list[RuleTarget] = []
    for p in pipelines:
        if isinstance(p, BusinessRulesPipeline):
            out.append(BusinessTarget(p))
        elif isinstance(p, CompliancePipeline):
            out.append(ComplianceTarget(p))
    return out


class RulesReloader:
    """Validates documents and installs them into every target of their rule set."""

    def __init__(self, targets: Sequence[RuleTarget]) -> None:
        self.targets = tuple(targets)
        self.names = frozenset(t.rule_set_name for t in targets)
        self.current: dict[str, tuple[str, str]] = {}  # name -> (version, digest)
        self.start_offsets: dict[int, int] = {}  # partition -> first offset the agent applies

    def apply(self, doc: RuleDocument) -> str:
        """``applied``, ``unchanged``, ``invalid`` or ``ignored`` (no pipeline runs it)."""
        mine = [t for t in self.targets if t.rule_set_name == doc.name]
        if not mine:
            RELOADS.labels(doc.name, "ignored").inc()
            return "ignored"
        ident = (doc.version, digest(doc.text))
        if self.current.get(doc.name) == ident:
            return "unchanged"
        started = time.perf_counter()
        try:
            compiled = [t.check(doc) for t in mine]  # all or nothing
        except RuleError as error:
            RELOADS.labels(doc.name, "invalid").inc()
            where = "\n".join(f"  {p}" for p in error.problems)
            log.error(
                "rules %s version %s by %s rejected, keeping the old rules:\n%s",
                doc.name,
                doc.version,
                doc.author or "?",
                where,
            )
            return "invalid"
        for target, rules in zip(mine, compiled, strict=True):
            target.install(rules)
        self.current[doc.name] = ident
        RELOADS.labels(doc.name, "applied").inc()
        age = (
            f", {time.time() * 1000 - doc.sent_at_ms:.0f} ms after apply" if doc.sent_at_ms else ""
        )
        log.info(
            "rules %s version %s by %s validated in %.1f ms, swapped in at the next batch%s",
            doc.name,
            doc.version,
            doc.author or "?",
            (time.perf_counter() - started) * 1000,
            age,
        )
        return "applied"

    def bootstrap(self, kafka: KafkaSettings, *, timeout_s: float = 30.0) -> None:
        """Apply the latest stored documents before the engine starts."""
        docs, ends = read_documents(kafka, timeout_s=timeout_s)
        for doc in docs.values():
            self.apply(doc)
        self.start_offsets = ends

    def should_apply(self, partition: int, offset: int) -> bool:
        """False for records the bootstrap read already covered."""
        return offset >= self.start_offsets.get(partition, 0)


def publish(kafka: KafkaSettings, doc: RuleDocument, *, timeout_s: float = 30.0) -> tuple[int, int]:
    """Produce a document to ``config.rules.v1``; returns (partition, offset) once acknowledged."""
    # Uncompressed: the workers read this topic with aiokafka, which has no lz4 codec here (an
    # lz4 batch would crash the control consumer); documents are small anyway.
    producer = make_producer(
        kafka, client_id="dealstream-rules-apply", **{"compression.type": "none"}
    )
    delivered: list[tuple[int, int]] = []
    errors: list[str] = []

    def done(error: KafkaError | None, message: Any) -> None:
        if error is not None:
            errors.append(str(error))
        else:
            delivered.append((message.partition(), message.offset()))

    producer.produce(
        kafka.topic(RULES_TOPIC),
        key=doc.name.encode(),
        value=doc.text.encode(),
        headers=doc.headers(),  # type: ignore[arg-type]
        on_delivery=done,
    )
    remaining = producer.flush(timeout_s)
    if errors or remaining or not delivered:
        raise RuntimeError(f"rule document not acknowledged: {errors or 'timeout'}")
    return delivered[0]


def read_documents(
    kafka: KafkaSettings, *, timeout_s: float = 30.0
) -> tuple[dict[str, RuleDocument], dict[int, int]]:
    """Latest document per name, and the end offset read to per partition."""
    topic = kafka.topic(RULES_TOPIC)
    consumer = Consumer(
        {
            **kafka.client_config(),
            "group.id": f"dealstream-rules-read-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    docs: dict[str, RuleDocument] = {}
    ends: dict[int, int] = {}
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if metadata is None or metadata.error is not None:
            log.warning("rules topic %s not found: using the configured rules", topic)
            return docs, ends
        for partition in metadata.partitions:
            try:
                _, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=timeout_s
                )
            except KafkaException as error:
                raise RuntimeError(f"watermarks of {topic}[{partition}]: {error}") from error
            ends[partition] = high
        pending = {p: end for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in pending])
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(500, 0.2):
                if message.error() is not None:
                    continue
                partition, offset = cast(int, message.partition()), cast(int, message.offset())
                if offset >= pending.get(partition, -1):
                    continue
                doc = RuleDocument.from_record(message.key(), message.value(), message.headers())
                if doc is not None:
                    docs[doc.name] = doc
                elif message.key():
                    docs.pop(message.key().decode(errors="replace"), None)  # type: ignore[union-attr]
                if offset >= pending[partition] - 1:
                    del pending[partition]
        if pending:
            raise RuntimeError(f"{topic} not read to its end within {timeout_s}s")
    finally:
        consumer.close()
    return docs, ends


def control_app_id(app_id: str) -> str:
    """The faust app id (its consumer group) of one worker: unique, so every worker gets every
    rule document (one shared group would hand the one-partition topic to a single worker)."""
    return f"{app_id}-control-{uuid.uuid4().hex[:8]}"


def install_agent(app: Any, kafka: KafkaSettings, reloader: RulesReloader) -> None:
    """A faust agent on ``config.rules.v1`` (raw bytes) that hands documents to ``reloader``."""
    topic = app.topic(
        kafka.topic(RULES_TOPIC),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        allow_empty=True,
    )

    @app.agent(topic, name="rules-reload")  # type: ignore[untyped-decorator]
    async def reload_rules(stream: Any) -> None:
        loop = asyncio.get_running_loop()
        async for event in stream.events():
            message = event.message
            if not reloader.should_apply(message.partition, message.offset):
                continue
            doc = RuleDocument.from_record(message.key, message.value, message.headers)
            if doc is not None:
                # Compiling a large rule set takes milliseconds: keep the event loop free.
                await loop.run_in_executor(None, reloader.apply, doc)
