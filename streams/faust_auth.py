"""The Kafka credentials of the settings, in the form faust's aiokafka transport takes.

Every confluent-kafka client gets them from ``KafkaSettings.client_config()``; faust (which
reads the rules topic) has its own client and needs ``broker_credentials``, or a worker on a
SASL or TLS cluster could not start its agents.
"""

from __future__ import annotations

import logging
import ssl

import faust

from dealstream.broker.settings import KafkaSettings


def hide_authentication_requests() -> None:
    """aiokafka logs every request at DEBUG, SASL PLAIN's password bytes included: never below
    INFO for its connection logger, whatever the worker's log level."""
    logging.getLogger("aiokafka.conn").setLevel(logging.INFO)


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext:
    """A TLS context from the CA, certificate and key files of the settings."""
    context = ssl.create_default_context(cafile=kafka.ssl_ca_location)
    if kafka.ssl_certificate_location:
        password = kafka.ssl_key_password.get_secret_value() if kafka.ssl_key_password else None
        context.load_cert_chain(
            kafka.ssl_certificate_location, kafka.ssl_key_location, password=password
        )
    return context


def broker_credentials(kafka: KafkaSettings) -> faust.SASLCredentials | faust.SSLCredentials | None:
    """None for PLAINTEXT; SASL (over TLS for SASL_SSL) or TLS credentials otherwise."""
    protocol = kafka.security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = ssl_context(kafka) if protocol in ("SSL", "SASL_SSL") else None
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    kafka.client_config()  # raises with what to set when the SASL settings are incomplete
    assert kafka.sasl_password is not None
    return faust.SASLCredentials(
        username=kafka.sasl_username,
        password=kafka.sasl_password.get_secret_value(),
        mechanism=kafka.sasl_mechanism,
        ssl_context=context,
    )
