"""``dealstream worker``: run the stream worker (faust app + batch engine)."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError

from dealstream.cli.preflight import kafka_or_exit
from dealstream.sinks.clickhouse.errors import SinkConfigError
from dealstream.streams.worker import WorkerConfig, run_worker


def worker(
    idle_stop: Annotated[
        float | None,
        typer.Option(help="Stop after this many seconds without new records (demos, batch jobs)."),
    ] = None,
    loglevel: Annotated[str, typer.Option(help="crit, error, warn, info or debug")] = "warn",
    log_format: Annotated[
        str, typer.Option(envvar="DEALSTREAM_LOG_FORMAT", help="text, or json (one object a line)")
    ] = "text",
) -> None:
    """Consume the event topics, write ClickHouse, publish alerts; stop with Ctrl-C/SIGTERM."""
    try:
        config = WorkerConfig.from_env()
    except ValidationError as error:
        typer.echo(f"error: invalid configuration: {error}", err=True)
        raise typer.Exit(2) from None
    if idle_stop is not None:
        config = WorkerConfig(
            config.worker.model_copy(update={"stop_when_idle_s": idle_stop}),
            config.kafka,
            config.clickhouse,
        )
    if log_format not in ("text", "json"):
        raise typer.BadParameter("use text or json", param_hint="--log-format")
    kafka_or_exit(config.kafka)
    try:
        engine = run_worker(config, loglevel=loglevel, log_format=log_format)  # type: ignore[arg-type]
    except SinkConfigError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    totals = engine.totals
    typer.echo(
        f"processed {totals.processed} event(s), {totals.dead_letters} dead letter(s), "
        f"{totals.alerts} alert(s)"
    )
