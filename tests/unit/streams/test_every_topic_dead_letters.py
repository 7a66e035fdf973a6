"""Every topic the worker reads dead-letters an unreadable record exactly once (no pipeline drops
it silently, no two pipelines both dead-letter it), with the worker's real pipeline list.
"""

from __future__ import annotations

import pytest
from confluent_kafka import Message

from dealstream.broker.settings import KafkaSettings
from dealstream.schemas import catalog, codec
from dealstream.schemas.samples import sample_event
from dealstream.streams.pipeline import Pipeline
from dealstream.streams.worker import default_pipelines

PREFIX = "t."


def pipelines() -> list[Pipeline]:
    return default_pipelines(KafkaSettings(topic_prefix=PREFIX))


def event_topics() -> list[str]:
    read = {t for p in pipelines() for t in p.topics if not t.startswith("dlq.")}
    return sorted(t.removeprefix(PREFIX) for t in read)


def bad_records(topic: str) -> list[Message]:
    event_type = next(et for et in catalog.all_types() if et.topic == topic)
    value, headers = codec.encode(event_type, sample_event(event_type.name))
    cases = [(b"", headers), (value[: len(value) // 2], headers), (b"\x00\x01garbage", None)]
    return [
        Message(topic=PREFIX + topic, partition=0, offset=i, value=v, headers=h)
        for i, (v, h) in enumerate(cases)
    ]


@pytest.mark.parametrize("topic", event_topics())
def test_a_bad_record_is_dead_lettered_exactly_once_by_the_worker(topic: str) -> None:
    messages = bad_records(topic)
    letters = []
    for pipeline in pipelines():
        readers = [m for m in messages if m.topic() in pipeline.topics]
        if readers:
            letters.extend(pipeline.process(readers).dead_letters)
    offsets = sorted(letter.offset for letter in letters if letter.offset is not None)
    assert offsets == list(range(len(messages))), f"{topic}: dead letters at {offsets}"
    assert all(letter.error_code and letter.error_message for letter in letters)
