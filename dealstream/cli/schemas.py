"""``dealstream schemas``: inspect event schemas, check backward compatibility, release versions."""

from __future__ import annotations

import json

import typer

from dealstream.schemas import catalog, compatibility

app = typer.Typer(help="Inspect Avro schemas, check backward compatibility, release versions.")


@app.command("list")
def list_() -> None:
    """Event types, their topics, Kafka keys, versions and fingerprints."""
    for et in catalog.all_types():
        keys = ",".join(et.key_fields) or "-"
        typer.echo(f"{et.name:20} {et.topic:28} key={keys:38} v{et.version} {et.fingerprint.hex()}")


@app.command()
def show(name: str) -> None:
    """Print the full (composed) Avro schema of an event type."""
    typer.echo(json.dumps(catalog.event_type(name).raw, indent=2, ensure_ascii=False))


@app.command()
def check() -> None:
    """Exit 1 when a schema cannot read data written by any released version of it."""
    problems = compatibility.check_all()
    for problem in problems:
        typer.echo(str(problem))
    if any(problem.severity == "error" for problem in problems):
        raise typer.Exit(1)
    typer.echo(f"{len(catalog.all_types())} schemas backward compatible with their history")


@app.command()
def freeze(name: str) -> None:
    """Release the current schema of NAME as its next version (refused if incompatible)."""
    try:
        path = compatibility.freeze(name)
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error
    typer.echo(f"released {path}")
