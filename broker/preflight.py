"""Fail fast when the Kafka cluster cannot be reached, instead of retrying in silence.

librdkafka retries an unreachable or refusing broker forever by design; for a command that is
starting up, that looks like a hang followed by a stack trace. One metadata request with a
bounded timeout turns it into a message that names the setting to fix.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from dealstream.broker.settings import KafkaSettings


class BrokerUnreachable(RuntimeError):
    """No broker answered at the configured bootstrap address (or it refused our credentials)."""


def require_broker(kafka: KafkaSettings, *, timeout_s: float | None = None) -> None:
    """Raise :class:`BrokerUnreachable` unless a broker answers a metadata request in time.

    ``timeout_s`` defaults to ``kafka.connect_timeout_s`` (``DEALSTREAM_KAFKA_CONNECT_TIMEOUT_S``).
    """
    timeout_s = kafka.connect_timeout_s if timeout_s is None else timeout_s
    try:
        config = kafka.client_config()
    except ValueError as error:  # incomplete SASL settings
        raise BrokerUnreachable(str(error)) from None
    errors: list[str] = []  # what librdkafka reported while trying (refused, auth failed...)

    def seen(error: KafkaError) -> None:
        errors.append(error.str())

    probe: dict[str, Any] = {
        **config,
        "socket.connection.setup.timeout.ms": str(int(timeout_s * 1000)),
        "error_cb": seen,
        # 0: the probe's connection errors would only repeat what its exception says.
        "log_level": 0,
    }
    admin = AdminClient(probe)
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as error:
        admin.poll(0.5)  # serves error_cb: librdkafka reports authentication failures there
        refused = [e for e in errors if "authentication" in e.lower()]
        if refused:
            raise BrokerUnreachable(
                f"Kafka at {kafka.bootstrap} refused the credentials ({refused[0]}). Check "
                "DEALSTREAM_KAFKA_SASL_USERNAME, _SASL_PASSWORD and _SASL_MECHANISM"
            ) from None
        detail = error.args[0].str() if error.args else str(error)
        raise BrokerUnreachable(_message(kafka, timeout_s, detail)) from None
    if not metadata.brokers:
        raise BrokerUnreachable(_message(kafka, timeout_s, "the cluster listed no brokers"))


def _message(kafka: KafkaSettings, timeout_s: float, detail: str) -> str:
    return (
        f"no Kafka broker answered at {kafka.bootstrap} within {timeout_s:g}s ({detail}). "
        "Check DEALSTREAM_KAFKA_BOOTSTRAP (and DEALSTREAM_KAFKA_SECURITY_PROTOCOL / _SASL_* / "
        "_SSL_* if the cluster needs them), or start a local broker with "
        "`dealstream broker start`."
    )
