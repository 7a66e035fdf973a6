"""``dealstream connectors``: list, check and run source connectors from the registry."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dealstream.broker.settings import KafkaSettings
from dealstream.cli.preflight import kafka_or_exit
from dealstream.connectors.base import Connector
from dealstream.connectors.documents.connector import DocumentsConnector, DocumentsSettings
from dealstream.connectors.pos_file.connector import PosFileConnector, PosFileSettings
from dealstream.connectors.reviews.files import ReviewsFileConnector, ReviewsFileSettings
from dealstream.connectors.sdk import registry
from dealstream.connectors.sdk.errors import ConfigError

app = typer.Typer(help="Run and check source connectors.")

Paths = Annotated[list[Path], typer.Argument(help="CSV or JSON Lines POS export files.")]
Name = Annotated[str, typer.Argument(help="Connector name (see `dealstream connectors list`).")]
Config = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML or JSON settings file; env vars fill the rest."),
]


def _create(name: str, config: Path | None) -> Connector:
    try:
        return registry.create(name, config)
    except ConfigError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


def _report(connector: Connector) -> None:
    stats = connector.stats
    typer.echo(
        f"read {stats.read} record(s): {stats.produced} produced, "
        f"{stats.dead_letters} dead-lettered"
    )


def _run(connector: Connector) -> None:
    """Run until done or SIGINT/SIGTERM, which only ask the connector to stop."""

    def ask_stop(signum: int, _frame: FrameType | None) -> None:
        typer.echo(f"signal {signum}: stopping after the current unit of work", err=True)
        connector.stop()

    kafka = getattr(connector, "kafka", None)
    if isinstance(kafka, KafkaSettings):
        kafka_or_exit(kafka)
    previous = {sig: signal.signal(sig, ask_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        connector.execute()
    except ConfigError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _report(connector)


@app.command("list")
def list_connectors() -> None:
    """Installed connectors (entry point group ``dealstream.connectors``)."""
    table = Table("name", "class", "about")
    for name, entry in sorted(registry.available().items()):
        try:
            cls = entry.load()
            about = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        except Exception as error:  # a broken plugin must not hide the others
            about = f"cannot load: {error}"
        table.add_row(name, entry.value, about)
    Console().print(table)


@app.command("check")
def check(name: Name, config: Config = None) -> None:
    """Can connector NAME reach its source with this configuration?"""
    result = _create(name, config).check()
    typer.echo(result.message)
    if not result.ok:
        raise typer.Exit(1)


@app.command("run")
def run(name: Name, config: Config = None) -> None:
    """Run connector NAME until stopped (or until idle, if its settings say so)."""
    _run(_create(name, config))


def _pos_file(paths: list[Path]) -> PosFileConnector:
    return PosFileConnector(PosFileSettings(paths=paths), kafka=KafkaSettings())


@app.command("check-pos-file")
def check_pos_file(paths: Paths) -> None:
    """Can the POS file connector read these files? (same as `check pos-file`)"""
    result = _pos_file(paths).check()
    typer.echo(result.message)
    if not result.ok:
        raise typer.Exit(1)


@app.command("pos-file")
def pos_file(paths: Paths) -> None:
    """Produce POS export files to pos.transactions.v1, resuming from the saved cursor."""
    _run(_pos_file(paths))


ReviewPaths = Annotated[list[Path], typer.Argument(help="JSON Lines or CSV review exports.")]
DocumentPaths = Annotated[
    list[Path], typer.Argument(help="PDF or image files, or folders of them.")
]


@app.command("reviews-file")
def reviews_file(
    paths: ReviewPaths,
    platform: Annotated[str, typer.Option(help="Platform of lines that name none.")] = "export",
) -> None:
    """Produce review exports to reviews.posts.v1, resuming from the saved cursor."""
    settings = ReviewsFileSettings.model_validate({"paths": paths, "platform": platform})
    _run(ReviewsFileConnector(settings, kafka=KafkaSettings()))


@app.command("documents")
def documents(
    paths: DocumentPaths,
    watch: Annotated[bool, typer.Option(help="Keep polling the folders for new files.")] = False,
) -> None:
    """Extract procurement plans (text PDFs, scans via OCR) to procurement.plans.v1, once each."""
    settings = DocumentsSettings.model_validate(
        {
            "folders": [p for p in paths if p.is_dir()],
            "paths": [p for p in paths if not p.is_dir()],
            "stop_when_idle": not watch,
        }
    )
    _run(DocumentsConnector(settings, kafka=KafkaSettings()))
