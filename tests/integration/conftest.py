"""Integration fixtures: the real local broker (started by `make test`), unique topics, chDB."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dealstream.broker.local.runner import broker_reachable
from dealstream.broker.settings import KafkaSettings
from dealstream.broker.standard_topics import standard_topics
from dealstream.broker.topics import delete_topics, ensure_topics


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def broker() -> KafkaSettings:
    settings = KafkaSettings()
    if not broker_reachable(settings):
        pytest.fail(
            f"no Kafka broker at {settings.bootstrap}: run `make test`, or "
            "`dealstream broker start` before running integration tests"
        )
    return settings


@pytest.fixture
def kafka(broker: KafkaSettings) -> Iterator[KafkaSettings]:
    """Kafka settings with a unique topic prefix; the topics exist and are deleted afterwards."""
    settings = broker.model_copy(update={"topic_prefix": f"it{uuid.uuid4().hex[:8]}."})
    topics = standard_topics(settings)
    ensure_topics(settings, topics)
    yield settings
    delete_topics(settings, [t.name for t in topics])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WorkerProcess:
    """A `dealstream worker` in its own process (it owns its chDB directory, as in production)."""

    def __init__(self, kafka: KafkaSettings, chdb: Path, group: str, *extra: str, **env: str):
        self.port = free_port()
        self.env = {
            **os.environ,
            "DEALSTREAM_KAFKA_BOOTSTRAP": kafka.bootstrap,
            "DEALSTREAM_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
            "DEALSTREAM_CLICKHOUSE_URL": f"chdb://{chdb}",
            "DEALSTREAM_WORKER_GROUP_ID": group,
            "DEALSTREAM_WORKER_WEB_PORT": str(self.port),
            **env,
        }
        self.args = [sys.executable, "-m", "dealstream.cli.main", "worker", *extra]

    def start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.args, env=self.env)

    def run(self, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(self.args, env=self.env, timeout=timeout, check=True)


@pytest.fixture
def worker_factory() -> type[WorkerProcess]:
    return WorkerProcess
