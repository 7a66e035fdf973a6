"""The hostile corpus (``tests/corpus.py``) through a real worker process on the real broker.

Raw bytes go in with a plain confluent-kafka producer (no dealstream client in between), mixed
with good POS events, on every topic the worker reads. Afterwards the worker must still be
alive and ready, every bad record must be on its ``dlq.<topic>`` exactly once with a reason and
its original bytes, every good event must be in ClickHouse, and
``dealstream_dead_letters_total`` must count exactly the dead letters the worker wrote.
"""

from __future__ import annotations

import random
import signal
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from dealstream.broker.settings import KafkaSettings
from dealstream.schemas import catalog, codec
from dealstream.schemas.codec import decoder_for
from dealstream.schemas.samples import sample_event
from dealstream.streams.worker import default_pipelines
from tests.corpus import (
    CHAT_TOPIC,
    DLQ_POS_TOPIC,
    POS_TOPIC,
    Case,
    chat_cases,
    dead_letter_cases,
    pos_cases,
    pos_record,
)
from tests.integration.observe import chdb_query

GOOD_POS = 2_000


def other_topic_cases(topic: str, tag: str) -> list[Case]:
    """Bad records for a topic the corpus has no hand-written cases for, and one good event."""
    event_type = next(et for et in catalog.all_types() if et.topic == topic)
    record = sample_event(event_type.name, event_id=f"{tag}-{topic}-good")
    now = int(time.time() * 1000)
    record["occurred_at"] = record["ingested_at"] = now
    value, headers = codec.encode(event_type, record)
    stranger = "wecom.message" if event_type.name != "wecom.message" else "pos.transaction"
    alien_value, alien_headers = codec.encode(stranger, sample_event(stranger))
    noise = bytes(random.Random(topic).getrandbits(8) for _ in range(120))
    return [
        Case(f"{topic}-good", topic, value, headers, "row", record["event_id"]),
        Case(f"{topic}-empty", topic, b"", headers, "dead"),
        Case(f"{topic}-truncated", topic, value[: len(value) // 2], headers, "dead"),
        Case(f"{topic}-random", topic, noise, None, "dead"),
        Case(f"{topic}-other-type", topic, alien_value, alien_headers, "dead"),
    ]


def corpus(kafka: KafkaSettings, tag: str) -> list[Case]:
    read = {t for p in default_pipelines(kafka) for t in p.topics}
    own = {POS_TOPIC, CHAT_TOPIC, DLQ_POS_TOPIC}
    others = sorted(t.removeprefix(kafka.topic_prefix) for t in read if not t.startswith("dlq."))
    cases = [*pos_cases(tag), *chat_cases(tag), *dead_letter_cases(tag)]
    for topic in others:
        if topic not in own:
            cases.extend(other_topic_cases(topic, tag))
    for i in range(GOOD_POS):
        value, headers = codec.encode("pos.transaction", pos_record(f"{tag}-good-{i}"))
        cases.append(Case(f"good-{i}", POS_TOPIC, value, headers, "row", f"{tag}-good-{i}"))
    random.Random(tag).shuffle(cases)
    return cases


def real_topic(kafka: KafkaSettings, topic: str) -> str:
    if topic.startswith("dlq."):
        return "dlq." + kafka.topic(topic.removeprefix("dlq."))
    return kafka.topic(topic)


def produce_raw(kafka: KafkaSettings, cases: list[Case]) -> None:
    producer = Producer(
        {"bootstrap.servers": kafka.bootstrap, "message.max.bytes": 2_000_000, "acks": "all"}
    )
    failures: list[str] = []

    def delivered(error: Any, _: Any) -> None:
        if error is not None:
            failures.append(str(error))

    for case in cases:
        producer.produce(
            real_topic(kafka, case.topic), value=case.value, headers=case.headers,
            on_delivery=delivered,
        )  # fmt: skip
        producer.poll(0)
    assert producer.flush(60) == 0 and not failures, failures[:3]


def read_topic(kafka: KafkaSettings, topic: str) -> list[Any]:
    """Every record of ``topic`` up to its current end, by a fresh consumer."""
    consumer = Consumer(
        {"bootstrap.servers": kafka.bootstrap, "group.id": f"it-read-{uuid.uuid4().hex[:6]}",
         "auto.offset.reset": "earliest", "enable.auto.commit": False}
    )  # fmt: skip
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        parts = [TopicPartition(topic, p, 0) for p in metadata.partitions]
        end = sum(consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in parts)
        consumer.assign(parts)
        records: list[Any] = []
        deadline = time.monotonic() + 60
        while len(records) < end and time.monotonic() < deadline:
            records.extend(m for m in consumer.consume(500, 0.5) if m.error() is None)
        return records
    finally:
        consumer.close()


def metrics_text(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def dead_letters_counted(text: str) -> Counter[tuple[str, str]]:
    """dealstream_dead_letters_total summed per (topic, stage)."""
    counted: Counter[tuple[str, str]] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "dealstream_dead_letters_total":
                key = (sample.labels["topic"], sample.labels["stage"])
                counted[key] += int(sample.value)
    return counted


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.5)


def test_hostile_records_on_every_topic_leave_the_worker_running_and_go_to_their_dlq(
    kafka: KafkaSettings, tmp_path: Path, worker_factory: Any
) -> None:
    tag = f"hw{uuid.uuid4().hex[:6]}"
    cases = corpus(kafka, tag)
    dead = Counter(c.topic for c in cases if c.fate == "dead" and not c.topic.startswith("dlq."))
    chdb = tmp_path / "chdb"
    worker = worker_factory(kafka, chdb, f"it-hostile-{tag}")
    process = worker.start()
    try:
        wait_for(lambda: ready(worker.port) or process.poll() is not None, 90, "worker ready")
        produce_raw(kafka, cases)

        seen: dict[str, int] = {}

        def all_dead_lettered() -> bool:
            counted = dead_letters_counted(metrics_text(worker.port))
            for topic in dead:
                seen[topic] = sum(n for (t, _), n in counted.items() if t == kafka.topic(topic))
            done = all(seen[topic] >= expected for topic, expected in dead.items())
            return done or process.poll() is not None

        try:
            wait_for(all_dead_lettered, 180, "every bad record dead-lettered")
        except AssertionError as timeout:
            short = {t: (seen.get(t), n) for t, n in dead.items() if seen.get(t) != n}
            raise AssertionError(f"{timeout}; (counted, expected) per topic: {short}") from None
        processed = 0.0
        for family in text_string_to_metric_families(metrics_text(worker.port)):
            for sample in family.samples:
                if (
                    sample.name == "dealstream_events_processed_total"
                    and sample.labels.get("pipeline") == "pos-transactions"
                ):
                    processed += sample.value
        assert process.poll() is None, "the worker died on hostile input"
        wait_for(lambda: ready(worker.port), 60, "the worker ready after the corpus")
        counted = dead_letters_counted(metrics_text(worker.port))
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    # Every bad record is on its dead-letter topic exactly once, with a reason and its bytes.
    for topic, expected in sorted(dead.items()):
        dlq = "dlq." + kafka.topic(topic)
        decode = decoder_for(dlq).decode
        raw = [m for m in read_topic(kafka, dlq)]
        if topic == POS_TOPIC:  # the corpus' own garbage on dlq.pos, which the archive skips
            garbage = {c.value for c in cases if c.topic == DLQ_POS_TOPIC and c.fate == "dead"}
            raw = [m for m in raw if (m.value() or b"") not in garbage]
        letters = [decode(m.value() or b"", m.headers()) for m in raw]
        mine = [x for x in letters if x["stage"] != "ARCHIVE"]
        if topic == POS_TOPIC:  # the corpus also wrote readable dead letters there itself
            mine = [x for x in mine if not str(x["source"]).startswith(tag)]
        assert all(x["error_code"] and x["error_message"] for x in mine), topic
        sent = Counter(c.value for c in cases if c.topic == topic and c.fate == "dead")
        assert Counter(bytes(x["value"]) for x in mine) == sent, topic
        worker_counted = sum(n for (t, s), n in counted.items() if t == kafka.topic(topic))
        print(f"hostile worker: {topic}: {expected} bad, {len(mine)} dead letters, "
              f"{worker_counted} counted")  # fmt: skip
        assert len(mine) == expected == worker_counted, topic
    archive_garbage = counted[("dlq." + kafka.topic(POS_TOPIC), "ARCHIVE")]
    assert archive_garbage == sum(1 for c in cases if c.topic == DLQ_POS_TOPIC and c.fate == "dead")

    # Every good POS event is stored (the duplicate once), the hostile text byte for byte.
    rows = chdb_query(chdb, "SELECT event_id, sku FROM pos_transactions FINAL")
    stored = {event_id: sku for event_id, sku in rows if str(event_id).startswith(tag)}
    good = {c.event_id for c in cases if c.topic == POS_TOPIC and c.fate == "row"}
    print(f"hostile worker: {len(cases)} records in, {len(good)} good POS ids, "
          f"{len(stored)} stored, {processed:.0f} processed")  # fmt: skip
    assert set(stored) == good
    for case in cases:
        if case.topic == POS_TOPIC and case.fate == "row" and "sku" in case.expect:
            assert stored[case.event_id] == case.expect["sku"], case.name
    # Planted violations are stored as violations; readable dead letters are archived.
    violations = {
        row[0]
        for row in chdb_query(chdb, "SELECT message_event_id FROM compliance_violations FINAL")
    }
    assert {c.event_id for c in cases if c.fate == "alert"} <= violations
    archived = {row[0] for row in chdb_query(chdb, "SELECT source FROM dead_letters")}
    assert {c.event_id for c in cases if c.topic == DLQ_POS_TOPIC and c.fate == "row"} <= archived
