"""Settings and rendered files of the single-node KRaft broker that dealstream runs locally."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

KAFKA_VERSION = "4.1.1"
"""Pinned Apache Kafka release fetched from Maven Central (org.apache.kafka:kafka_2.13)."""


def _default_home() -> Path:
    return Path.cwd() / ".local" / "kafka"


class LocalBrokerSettings(BaseSettings):
    """Where the local broker keeps its jars, data and logs, and how much memory it gets.

    ``kafka_home`` (``KAFKA_HOME``) points at an unpacked Apache Kafka distribution to use
    instead of fetching jars.
    """

    model_config = SettingsConfigDict(env_prefix="DEALSTREAM_BROKER_", extra="forbid")

    home: Path = Field(default_factory=_default_home)
    kafka_version: str = KAFKA_VERSION
    kafka_home: Path | None = Field(
        default=None, validation_alias=AliasChoices("KAFKA_HOME", "DEALSTREAM_BROKER_KAFKA_HOME")
    )
    heap: str = "768m"
    start_timeout_s: float = 60.0

    @property
    def libs_dir(self) -> Path:
        if self.kafka_home is not None:
            return self.kafka_home / "libs"
        return self.home / "libs" / self.kafka_version

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def pid_file(self) -> Path:
        return self.home / "broker.pid"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"


@dataclass(frozen=True)
class SaslListener:
    """A SASL_PLAINTEXT client listener with one user, who is also the broker's own identity.

    The password is written into the broker's config (as Kafka's JAAS needs it), so the local
    broker is for development and tests, not for guarding production data.
    """

    mechanism: str  # PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
    username: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        for value in (self.username, self.password):
            if not value or any(c in value for c in '"\\\n\r'):
                raise ValueError("SASL user and password must be non-empty, without quotes")

    def jaas(self) -> str:
        user = f'username="{self.username}" password="{self.password}"'
        if self.mechanism == "PLAIN":
            module = "org.apache.kafka.common.security.plain.PlainLoginModule"
            return f'{module} required {user} user_{self.username}="{self.password}";'
        module = "org.apache.kafka.common.security.scram.ScramLoginModule"
        return f"{module} required {user};"

    def scram_credential(self) -> str | None:
        """``kafka-storage format --add-scram`` argument; None for PLAIN (users live in JAAS)."""
        if self.mechanism == "PLAIN":
            return None
        return f"{self.mechanism}=[name={self.username},password={self.password}]"


def server_properties(
    *, host: str, port: int, data_dir: Path, sasl: SaslListener | None = None
) -> str:
    """A KRaft combined broker+controller config tuned for one machine and fast test runs.

    Topic auto-creation is off: dealstream creates every topic it uses explicitly. With
    ``sasl`` the client listener is SASL_PLAINTEXT instead of PLAINTEXT.

    >>> "auto.create.topics.enable=false" in server_properties(
    ...     host="127.0.0.1", port=9092, data_dir=Path("/tmp/x"))
    True
    """
    controller_port = port + 1
    name = "PLAINTEXT" if sasl is None else "SASL_PLAINTEXT"
    security: list[str] = []
    if sasl is not None:
        prefix = f"listener.name.sasl_plaintext.{sasl.mechanism.lower()}"
        security = [
            f"sasl.enabled.mechanisms={sasl.mechanism}",
            f"sasl.mechanism.inter.broker.protocol={sasl.mechanism}",
            f"{prefix}.sasl.jaas.config={sasl.jaas()}",
        ]
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{host}:{controller_port}",
            f"listeners={name}://{host}:{port},CONTROLLER://{host}:{controller_port}",
            f"advertised.listeners={name}://{host}:{port}",
            "controller.listener.names=CONTROLLER",
            f"listener.security.protocol.map={name}:{name},CONTROLLER:PLAINTEXT",
            f"inter.broker.listener.name={name}",
            *security,
            f"log.dirs={data_dir}",
            "auto.create.topics.enable=false",
            "num.partitions=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=8",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "log.retention.hours=24",
            "log.segment.bytes=67108864",
            "",
        ]
    )


def log4j2_properties(*, log_dir: Path) -> str:
    """Broker logs go to a rolling file, not to the terminal that started it."""
    return "\n".join(
        [
            "status = error",
            "appender.file.type = RollingFile",
            "appender.file.name = FILE",
            f"appender.file.fileName = {log_dir}/server.log",
            f"appender.file.filePattern = {log_dir}/server.log.%i",
            "appender.file.layout.type = PatternLayout",
            "appender.file.layout.pattern = [%d] %p %m (%c)%n",
            "appender.file.policies.type = Policies",
            "appender.file.policies.size.type = SizeBasedTriggeringPolicy",
            "appender.file.policies.size.size = 20MB",
            "appender.file.strategy.type = DefaultRolloverStrategy",
            "appender.file.strategy.max = 3",
            "rootLogger.level = INFO",
            "rootLogger.appenderRef.file.ref = FILE",
            "logger.kafka.name = kafka",
            "logger.kafka.level = WARN",
            "logger.apache.name = org.apache.kafka",
            "logger.apache.level = WARN",
            "",
        ]
    )
