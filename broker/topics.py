"""Explicit topic creation: dealstream never relies on broker-side auto-creation.

Every topic is declared with its partition count, replication factor and the configuration that
matters for it (compaction for state and config topics, retention for dead letters).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from dealstream.broker.settings import KafkaSettings


@dataclass(frozen=True)
class TopicSpec:
    """A topic as dealstream wants it to exist.

    >>> TopicSpec("config.rules.v1", partitions=1, config={"cleanup.policy": "compact"}).compacted
    True
    """

    name: str
    partitions: int = 4
    replication: int = 1
    config: dict[str, str] = field(default_factory=dict)

    @property
    def compacted(self) -> bool:
        return "compact" in self.config.get("cleanup.policy", "")


def _admin(kafka: KafkaSettings) -> AdminClient:
    return AdminClient(kafka.client_config())


def ensure_topics(
    kafka: KafkaSettings, specs: Iterable[TopicSpec], *, timeout_s: float = 30.0
) -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    Topics that exist are left alone (their partition count is not changed: that would move keys
    to other partitions and break per-key state).
    """
    admin = _admin(kafka)
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    wanted = [spec for spec in specs if spec.name not in existing]
    if not wanted:
        return []
    futures = admin.create_topics(
        [
            NewTopic(spec.name, spec.partitions, spec.replication, config=dict(spec.config))
            for spec in wanted
        ],
        request_timeout=timeout_s,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_s)
            created.append(name)
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return sorted(created)


def delete_topics(kafka: KafkaSettings, names: Iterable[str], *, timeout_s: float = 30.0) -> None:
    """Delete topics (tests clean up after themselves); missing topics are ignored."""
    names = list(names)
    if not names:
        return
    admin = _admin(kafka)  # must outlive the futures, or they fail with _DESTROY
    for future in admin.delete_topics(names, operation_timeout=timeout_s).values():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as error:
            if error.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise
