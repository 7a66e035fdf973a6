"""The ``dealstream`` command: one entry point for operators, data engineers and CI."""

from __future__ import annotations

import typer

from dealstream.cli import (
    broker,
    connectors,
    dashboard,
    demo,
    rules,
    schemas,
    simulate,
    topics,
    worker,
)

app = typer.Typer(
    name="dealstream",
    help="Streaming event processing for sales: connectors -> Kafka -> workers -> ClickHouse.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
app.add_typer(broker.app, name="broker")
app.add_typer(topics.app, name="topics")
app.add_typer(schemas.app, name="schemas")
app.add_typer(connectors.app, name="connectors")
app.add_typer(rules.app, name="rules")
app.command("worker")(worker.worker)
app.command("demo")(demo.demo)
app.command("dashboard")(dashboard.dashboard)
app.command("simulate")(simulate.simulate)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
