from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from dealstream.broker.local.config import server_properties
from dealstream.broker.settings import KafkaSettings
from dealstream.broker.standard_topics import standard_topics


def test_sasl_settings_become_librdkafka_properties_and_hide_the_password() -> None:
    settings = KafkaSettings(
        bootstrap="kafka:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="svc",
        sasl_password=SecretStr("s3cret"),
        ssl_ca_location="/etc/ca.pem",
    )
    config = settings.client_config()
    assert config["sasl.mechanism"] == "SCRAM-SHA-512"
    assert config["sasl.password"] == "s3cret"
    assert config["ssl.ca.location"] == "/etc/ca.pem"
    assert "s3cret" not in repr(settings)


def test_sasl_without_credentials_fails_with_what_to_set() -> None:
    with pytest.raises(ValueError, match="SASL_USERNAME"):
        KafkaSettings(security_protocol="SASL_PLAINTEXT").client_config()


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEALSTREAM_KAFKA_BOOTSTRAP", "10.0.0.1:9092")
    monkeypatch.setenv("DEALSTREAM_KAFKA_TOPIC_PREFIX", "acme.")
    settings = KafkaSettings()
    assert settings.bootstrap == "10.0.0.1:9092"
    assert settings.topic("pos.transactions.v1") == "acme.pos.transactions.v1"


def test_local_broker_config_disables_auto_creation_and_uses_the_port() -> None:
    text = server_properties(host="127.0.0.1", port=19092, data_dir=Path("/d"))
    lines = dict(line.split("=", 1) for line in text.splitlines() if line)
    assert lines["auto.create.topics.enable"] == "false"
    assert lines["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert lines["group.initial.rebalance.delay.ms"] == "0"


def test_standard_topics_are_prefixed_consistently() -> None:
    specs = {t.name: t for t in standard_topics(KafkaSettings(topic_prefix="p."))}
    assert "p.pos.transactions.v1" in specs
    assert "dlq.p.pos.transactions.v1" in specs
    assert specs["p.config.rules.v1"].compacted
    assert all(not name.startswith("dlq.dlq") for name in specs)
