"""Credentials live only in settings fields typed ``SecretStr``, and no repr, str, JSON dump or
log line of a settings object shows them.

Every pydantic-settings class of the package is found by importing every module, so a new
connector with a ``password: str`` field fails here. (A running worker's own output is checked
over SASL in tests/integration/test_kafka_sasl.py.)
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import re
from typing import Any, get_args

import pytest
from pydantic import SecretStr
from pydantic_settings import BaseSettings

import dealstream
from dealstream.broker.local.config import SaslListener
from dealstream.broker.settings import KafkaSettings
from dealstream.sinks.clickhouse.settings import ClickHouseSettings

SECRET_NAME = re.compile(r"(password|token|secret|(^|_)key|dsn)$", re.IGNORECASE)
NOT_SECRET = {"ssl_key_location"}  # a file path


def settings_classes() -> list[type[BaseSettings]]:
    for module in pkgutil.walk_packages(dealstream.__path__, "dealstream."):
        if ".cli." not in module.name:  # the CLI only composes the settings below
            importlib.import_module(module.name)
    found: list[type[BaseSettings]] = []
    todo = list(BaseSettings.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("dealstream.") and cls not in found:
            found.append(cls)
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}")


def is_secret_type(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in get_args(annotation)


CLASSES = settings_classes()


def secret_fields(cls: type[BaseSettings]) -> list[str]:
    return [
        name for name in cls.model_fields if SECRET_NAME.search(name) and name not in NOT_SECRET
    ]


def test_the_package_has_the_settings_classes_we_expect() -> None:
    names = {c.__name__ for c in CLASSES}
    assert {"KafkaSettings", "ClickHouseSettings", "DashboardSettings"} <= names


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_credential_fields_are_secret_and_never_shown(
    cls: type[BaseSettings], caplog: pytest.LogCaptureFixture
) -> None:
    fields = secret_fields(cls)
    for name in fields:
        assert is_secret_type(cls.model_fields[name].annotation), f"{cls.__name__}.{name}"
    values = {name: SecretStr(f"hunter2-{name}") for name in fields}
    settings = cls.model_construct(**values)
    shown = [repr(settings), str(settings), settings.model_dump_json()]
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("dealstream.test").info("settings %s %r", settings, settings)
    shown.append(caplog.text)
    for name in fields:
        assert not any(f"hunter2-{name}" in text for text in shown), f"{cls.__name__}.{name}"


def test_kafka_and_clickhouse_credentials_in_env_are_hidden(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEALSTREAM_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("DEALSTREAM_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("DEALSTREAM_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("DEALSTREAM_KAFKA_SASL_PASSWORD", "kafka-hunter2")
    monkeypatch.setenv("DEALSTREAM_KAFKA_SSL_KEY_PASSWORD", "tls-hunter2")
    monkeypatch.setenv("DEALSTREAM_CLICKHOUSE_URL", "https://bi:url-hunter2@ch:8443/sales")
    kafka, clickhouse = KafkaSettings(), ClickHouseSettings()
    shown = " ".join(
        [repr(kafka), str(kafka), kafka.model_dump_json(), repr(clickhouse), str(clickhouse),
         clickhouse.model_dump_json(), repr(clickhouse.target())]
    )  # fmt: skip
    for secret in ("kafka-hunter2", "tls-hunter2", "url-hunter2"):
        assert secret not in shown
    assert kafka.client_config()["sasl.password"] == "kafka-hunter2"  # still usable


def test_local_broker_sasl_listener_hides_its_password() -> None:
    listener = SaslListener("SCRAM-SHA-256", "svc", "listener-hunter2")
    assert "listener-hunter2" not in repr(listener) + str(listener)
