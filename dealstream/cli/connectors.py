"""``dealstream connectors``: run and check source connectors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dealstream.broker.settings import KafkaSettings
from dealstream.connectors.pos_file.connector import PosFileConnector, PosFileSettings

app = typer.Typer(help="Run and check source connectors.")

Paths = Annotated[list[Path], typer.Argument(help="CSV or JSON Lines POS export files.")]


def _pos_file(paths: list[Path]) -> PosFileConnector:
    return PosFileConnector(PosFileSettings(paths=paths), kafka=KafkaSettings())


@app.command("check-pos-file")
def check_pos_file(paths: Paths) -> None:
    """Can the POS file connector read these files?"""
    result = _pos_file(paths).check()
    typer.echo(result.message)
    if not result.ok:
        raise typer.Exit(1)


@app.command("pos-file")
def pos_file(paths: Paths) -> None:
    """Produce POS export files to pos.transactions.v1, resuming from the saved cursor."""
    stats = _pos_file(paths).execute()
    typer.echo(
        f"read {stats.read} line(s): {stats.produced} produced, {stats.dead_letters} dead-lettered"
    )
