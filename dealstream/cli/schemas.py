"""``dealstream schemas``: inspect event schemas and check their backward compatibility."""

from __future__ import annotations

import json

import typer

from dealstream.schemas import catalog

app = typer.Typer(help="Inspect Avro schemas and check backward compatibility.")


@app.command("list")
def list_() -> None:
    """Event types, their topics, Kafka keys and schema versions."""
    for et in catalog.all_types():
        keys = ",".join(et.key_fields) or "-"
        typer.echo(f"{et.name:20} {et.topic:28} key={keys:38} v{et.version} {et.fingerprint.hex()}")


@app.command()
def show(name: str) -> None:
    """Print the full (composed) Avro schema of an event type."""
    typer.echo(json.dumps(catalog.event_type(name).raw, indent=2, ensure_ascii=False))


@app.command()
def check() -> None:
    """Fail when a schema cannot read data written by any released version (BACKWARD_TRANSITIVE)."""
    from dealstream.schemas import compatibility

    problems = compatibility.check_all()
    for problem in problems:
        typer.echo(str(problem))
    errors = [p for p in problems if getattr(p, "level", "error") == "error"]
    if errors:
        raise typer.Exit(1)
    typer.echo(f"{len(catalog.all_types())} schemas backward compatible with their history")
