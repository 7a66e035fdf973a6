"""``dealstream broker``: run a local single-node Kafka broker for development, demos and tests."""

from __future__ import annotations

import typer

from dealstream.broker.local import runner
from dealstream.broker.local.config import LocalBrokerSettings
from dealstream.broker.settings import KafkaSettings

app = typer.Typer(help="Fetch, start, stop and inspect the local Kafka broker (KRaft, no Docker).")


@app.command()
def fetch() -> None:
    """Download the pinned Apache Kafka jars from Maven Central into .local/kafka."""
    libs = runner.fetch(LocalBrokerSettings())
    typer.echo(f"Kafka jars in {libs}")


@app.command()
def start() -> None:
    """Start the broker in the background and wait until it answers (no-op if one already does)."""
    try:
        state = runner.start(KafkaSettings(), LocalBrokerSettings())
    except runner.BrokerError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error
    typer.echo(state.detail)


@app.command()
def stop() -> None:
    """Stop the broker that `dealstream broker start` started."""
    stopped = runner.stop(LocalBrokerSettings())
    typer.echo("broker stopped" if stopped else "no local broker was running")


@app.command()
def status() -> None:
    """Say whether a broker answers at DEALSTREAM_KAFKA_BOOTSTRAP; exit 1 if none does."""
    state = runner.status(KafkaSettings(), LocalBrokerSettings())
    typer.echo(state.detail)
    if not state.reachable:
        raise typer.Exit(1)
