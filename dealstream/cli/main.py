"""The ``dealstream`` command: one entry point for operators, data engineers and CI."""

from __future__ import annotations

import typer

from dealstream.cli import broker

app = typer.Typer(
    name="dealstream",
    help="Streaming event processing for sales: connectors -> Kafka -> workers -> ClickHouse.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
app.add_typer(broker.app, name="broker")


def main() -> None:
    app()
