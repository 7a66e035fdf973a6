"""``dealstream topics``: create dealstream's topics explicitly (never by auto-creation)."""

from __future__ import annotations

import typer

from dealstream.broker.settings import KafkaSettings
from dealstream.broker.standard_topics import standard_topics
from dealstream.broker.topics import ensure_topics
from dealstream.cli.preflight import kafka_or_exit

app = typer.Typer(help="Create and list the Kafka topics dealstream uses.")


@app.command()
def create() -> None:
    """Create every missing topic with its partitions, replication and cleanup policy."""
    kafka = KafkaSettings()
    kafka_or_exit(kafka)
    created = ensure_topics(kafka, standard_topics(kafka))
    typer.echo(f"created {len(created)} topic(s)" + (": " + ", ".join(created) if created else ""))


@app.command("list")
def list_() -> None:
    """Show the topics dealstream expects and their settings."""
    for spec in standard_topics(KafkaSettings()):
        extra = ",".join(f"{k}={v}" for k, v in spec.config.items())
        typer.echo(f"{spec.name:40} partitions={spec.partitions} {extra}")
