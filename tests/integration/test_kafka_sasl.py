"""SASL end to end: a second local broker of this test only (own ports, own home), with a
SASL_PLAINTEXT listener, reached through dealstream's settings and client factories.

The broker on 9092 is never touched. A wrong password fails at startup with a message that says
authentication failed, not with a hang.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from dealstream.broker.clients import make_consumer, make_producer
from dealstream.broker.local import runner
from dealstream.broker.local.config import LocalBrokerSettings
from dealstream.broker.preflight import BrokerUnreachable, require_broker
from dealstream.broker.settings import KafkaSettings, SaslMechanism
from dealstream.broker.standard_topics import standard_topics
from dealstream.broker.topics import TopicSpec, ensure_topics

pytestmark = pytest.mark.slow

PASSWORD = "sasl-pw-" + uuid.uuid4().hex[:8]


def free_port_pair() -> int:
    """A port p with p + 1 free too (the local broker's controller listens on p + 1)."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port >= 65_000:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("no free port pair")


@pytest.fixture(params=["SCRAM-SHA-256", "PLAIN"])
def sasl_broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KafkaSettings]:
    shared = LocalBrokerSettings()
    if not any(shared.libs_dir.glob("kafka_2.13-*.jar")):
        pytest.skip(f"no Kafka jars in {shared.libs_dir}")
    home = tmp_path / "kafka"
    broker = LocalBrokerSettings(home=home, heap="384m")
    broker.libs_dir.parent.mkdir(parents=True)
    broker.libs_dir.symlink_to(shared.libs_dir.resolve(), target_is_directory=True)
    mechanism: SaslMechanism = request.param
    kafka = KafkaSettings(
        bootstrap=f"127.0.0.1:{free_port_pair()}",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism,
        sasl_username="dealstream",
        sasl_password=SecretStr(PASSWORD),
        topic_prefix="sasl.",
        topic_partitions=1,
    )
    runner.start(kafka, broker)
    try:
        yield kafka
    finally:
        runner.stop(broker, timeout_s=10)  # SIGKILL after that: the data is thrown away
    assert (home / "server.properties").stat().st_mode & 0o077 == 0, "config readable by others"


def test_producer_consumer_and_admin_authenticate(sasl_broker: KafkaSettings) -> None:
    kafka = sasl_broker
    require_broker(kafka)
    topic = kafka.topic("pos.transactions.v1")
    assert ensure_topics(kafka, [TopicSpec(topic, partitions=1)]) == [topic]
    producer = make_producer(kafka, client_id="it-sasl")
    sent = [f"event-{i}".encode() for i in range(50)]
    for value in sent:
        producer.produce(topic, value=value)
    assert producer.flush(30) == 0
    consumer = make_consumer(kafka, group_id="it-sasl", client_id="it-sasl")
    consumer.subscribe([topic])
    received: list[bytes] = []
    try:
        for _ in range(60):
            for message in consumer.consume(100, 0.5):
                assert message.error() is None, message.error()
                received.append(message.value() or b"")
            if len(received) >= len(sent):
                break
    finally:
        consumer.close()
    assert received == sent


SECRETS = {
    "DEALSTREAM_PII_KEY": "pii-key-" + uuid.uuid4().hex[:8],
    "DEALSTREAM_STATE_KEY": "state-key-" + uuid.uuid4().hex[:8],
    "DEALSTREAM_CLICKHOUSE_PASSWORD": "ch-pw-" + uuid.uuid4().hex[:8],
    "DEALSTREAM_SCHEMA_REGISTRY_PASSWORD": "sr-pw-" + uuid.uuid4().hex[:8],
    "DEALSTREAM_DASHBOARD_TOKEN": "dash-" + uuid.uuid4().hex[:8],
}


def sasl_env(kafka: KafkaSettings, password: str) -> dict[str, str]:
    return {
        **os.environ,
        "DEALSTREAM_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "DEALSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "DEALSTREAM_KAFKA_SASL_MECHANISM": str(kafka.sasl_mechanism),
        "DEALSTREAM_KAFKA_SASL_USERNAME": "dealstream",
        "DEALSTREAM_KAFKA_SASL_PASSWORD": password,
        "DEALSTREAM_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "DEALSTREAM_KAFKA_TOPIC_PARTITIONS": "1",
    }


def test_worker_runs_over_sasl_and_logs_no_secret(
    sasl_broker: KafkaSettings, tmp_path: Path
) -> None:
    """The whole worker (engine, faust agent for rules, dead letters) over SASL, at debug level."""
    kafka = sasl_broker
    assert ensure_topics(kafka, standard_topics(kafka))
    producer = make_producer(kafka, client_id="it-sasl")
    for i in range(20):
        producer.produce(kafka.topic("pos.transactions.v1"), value=f"not avro {i}".encode())
    assert producer.flush(30) == 0
    env = {
        **sasl_env(kafka, PASSWORD),
        **SECRETS,
        "DEALSTREAM_CLICKHOUSE_URL": f"chdb://{tmp_path / 'chdb'}",
        "DEALSTREAM_WORKER_WEB_PORT": str(free_port_pair()),
        "DEALSTREAM_WORKER_GROUP_ID": "it-sasl-worker",
    }
    command = [sys.executable, "-m", "dealstream.cli.main", "worker", "--idle-stop", "4",
               "--loglevel", "debug"]  # fmt: skip
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=180, check=False, cwd=tmp_path
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "20 dead letter(s)" in result.stdout, result.stdout
    leaked = [name for name, value in [("SASL", PASSWORD), *SECRETS.items()] if value in output]
    lines = [line for line in output.splitlines() if PASSWORD in line][:3]
    where = [line.replace(PASSWORD, "***")[:400] for line in lines]
    assert not leaked, f"secrets in the worker's output: {leaked}, e.g. {where}"


def test_wrong_password_or_plaintext_client_is_refused_clearly(
    sasl_broker: KafkaSettings, tmp_path: Path
) -> None:
    wrong = sasl_broker.model_copy(update={"sasl_password": SecretStr("not-the-password")})
    with pytest.raises(BrokerUnreachable) as refused:
        require_broker(wrong, timeout_s=10)
    message = str(refused.value)
    assert "authentication" in message.lower(), message
    assert "not-the-password" not in message and PASSWORD not in message
    plain = sasl_broker.model_copy(update={"security_protocol": "PLAINTEXT"})
    with pytest.raises(BrokerUnreachable):
        require_broker(plain, timeout_s=5)

    env = sasl_env(sasl_broker, "not-the-password")
    command = [sys.executable, "-m", "dealstream.cli.main", "topics", "create"]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "authentication" in result.stderr.lower() and "DEALSTREAM_KAFKA" in result.stderr
    assert "not-the-password" not in result.stdout + result.stderr
