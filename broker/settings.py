"""Kafka connection settings shared by connectors, workers and sinks.

One pydantic-settings class, read from ``DEALSTREAM_KAFKA_*`` variables, turned into the
librdkafka configuration that confluent-kafka expects. Credentials are ``SecretStr`` so they
never show up in a repr or a log line.
"""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaSettings(BaseSettings):
    """Where the Kafka cluster is and how to authenticate to it.

    >>> KafkaSettings(bootstrap="127.0.0.1:9092").client_config()
    {'bootstrap.servers': '127.0.0.1:9092', 'security.protocol': 'PLAINTEXT'}
    """

    model_config = SettingsConfigDict(env_prefix="DEALSTREAM_KAFKA_", extra="forbid")

    bootstrap: str = "127.0.0.1:9092"
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    ssl_key_password: SecretStr | None = None
    connect_timeout_s: float = 10.0
    """How long commands wait for a first answer from the cluster before failing at startup."""
    topic_partitions: int = 4
    topic_replication: int = 1
    topic_prefix: str = ""
    """Prepended to every topic name: isolates tenants on a shared cluster, and test runs."""

    def topic(self, name: str) -> str:
        """The real name of one of dealstream's topics.

        >>> KafkaSettings(topic_prefix="t1.").topic("pos.transactions.v1")
        't1.pos.transactions.v1'
        """
        return self.topic_prefix + name

    def client_config(self) -> dict[str, str | int | float | bool]:
        """librdkafka properties common to producers, consumers and the admin client."""
        config: dict[str, str | int | float | bool] = {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": self.security_protocol,
        }
        if self.security_protocol.startswith("SASL"):
            if not (self.sasl_mechanism and self.sasl_username and self.sasl_password):
                raise ValueError(
                    "DEALSTREAM_KAFKA_SECURITY_PROTOCOL is SASL_*: set "
                    "DEALSTREAM_KAFKA_SASL_MECHANISM, _SASL_USERNAME and _SASL_PASSWORD"
                )
            config["sasl.mechanism"] = self.sasl_mechanism
            config["sasl.username"] = self.sasl_username
            config["sasl.password"] = self.sasl_password.get_secret_value()
        optional = {
            "ssl.ca.location": self.ssl_ca_location,
            "ssl.certificate.location": self.ssl_certificate_location,
            "ssl.key.location": self.ssl_key_location,
            "ssl.key.password": (
                self.ssl_key_password.get_secret_value() if self.ssl_key_password else None
            ),
        }
        config.update({key: value for key, value in optional.items() if value is not None})
        return config
