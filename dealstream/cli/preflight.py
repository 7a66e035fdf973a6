"""Startup checks shared by the commands that need Kafka: a message and exit 2, not a hang."""

from __future__ import annotations

import typer

from dealstream.broker.preflight import BrokerUnreachable, require_broker
from dealstream.broker.settings import KafkaSettings


def kafka_or_exit(kafka: KafkaSettings) -> None:
    """Exit with code 2 and a message naming the settings when the broker does not answer."""
    try:
        require_broker(kafka)
    except BrokerUnreachable as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
