"""``dealstream rules``: validate a rule file, replay recorded events through it, roll it out.

``apply`` produces the document to ``config.rules.v1``; running workers validate it and swap it
in without a restart (an invalid document is rejected there too, and the old rules stay).
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from dealstream.broker.settings import KafkaSettings
from dealstream.schemas import catalog, codec
from dealstream.streams.business import RuleSet, compile_rule_set, digest
from dealstream.streams.rules.compliance import ComplianceRules
from dealstream.streams.rules.engine import RuleEngine, event_time_ms
from dealstream.streams.rules.errors import RuleError
from dealstream.streams.rules.source import parse_duration
from dealstream.streams.rules_config import RuleDocument, publish

app = typer.Typer(help="Validate, test and apply rule sets (hot-reloaded by running workers).")

RuleSetName = Literal["business", "compliance"]
FileArg = Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="YAML rule file")]
NameOpt = Annotated[str, typer.Option("--name", help="rule set: business or compliance")]


def _check(text: str, name: str, *, version: str = "local") -> RuleSet | ComplianceRules:
    """Validate as the worker will; raises :class:`RuleError`."""
    if name == "business":
        return compile_rule_set(text, version=version)
    if name == "compliance":
        return ComplianceRules.from_yaml(text)
    raise typer.BadParameter(f"unknown rule set {name!r}: use business or compliance")


def _fail(path: Path, error: RuleError) -> typer.Exit:
    for problem in error.problems:
        where = f"{problem.line}:{problem.column or 1}" if problem.line is not None else "-"
        typer.echo(f"{path}:{where}: {problem.message}", err=True)
    return typer.Exit(1)


@app.command()
def validate(file: FileArg, name: NameOpt = "business") -> None:
    """Exit 1 with ``FILE:LINE:COLUMN: problem`` lines when the rule file is invalid."""
    try:
        checked = _check(file.read_text(encoding="utf-8"), name)
    except RuleError as error:
        raise _fail(file, error) from None
    if isinstance(checked, RuleSet):
        for warning in checked.warnings:
            typer.echo(f"{file}: warning: {warning}", err=True)
        typer.echo(f"{file}: {len(checked.rules)} business rules OK")
    else:
        typer.echo(f"{file}: compliance rules OK")


@app.command("test")
def test_(
    file: FileArg,
    events: Annotated[
        Path, typer.Option("--events", exists=True, dir_okay=False, help="JSON lines of events")
    ],
    advance: Annotated[
        str, typer.Option(help="after the last event, move event time on by this ('72h')")
    ] = "0s",
    as_json: Annotated[bool, typer.Option("--json", help="one alert per line, as JSON")] = False,
) -> None:
    """Replay recorded events through the business rules and print the alerts they would raise.

    Each line is a full event record (envelope and payload) as the codec decodes it; times may
    be epoch milliseconds or ISO-8601, decimals numbers or strings. Timers advance with event
    time, as in the worker.
    """
    try:
        ruleset = compile_rule_set(file.read_text(encoding="utf-8"), version="local")
    except RuleError as error:
        raise _fail(file, error) from None
    engine = RuleEngine(ruleset.rules)
    alerts: list[dict[str, Any]] = []
    newest = 0
    count = 0
    for lineno, record in _records(events):
        try:
            alerts.extend(engine.process(record))
        except Exception as error:  # a bad line is reported, never a crash mid-replay
            typer.echo(f"{events}:{lineno}: {error}", err=True)
            raise typer.Exit(1) from error
        newest = max(newest, event_time_ms(record) or 0)
        alerts.extend(engine.advance(newest))
        count += 1
    try:
        alerts.extend(engine.advance(newest + parse_duration(advance)))
    except RuleError as error:
        raise typer.BadParameter(str(error)) from None
    for alert in alerts:
        if as_json:
            typer.echo(json.dumps(alert, ensure_ascii=False, default=str))
        else:
            when = datetime.fromtimestamp(alert["raised_at"] / 1000, tz=UTC).isoformat()
            typer.echo(
                f"{when} {alert['severity']:8} {alert['rule_id']} v{alert['rule_version']} "
                f"{alert['entity_key']}: {alert['message']} "
                f"(events {', '.join(alert['input_event_ids'])})"
            )
    typer.echo(f"{count} events, {len(alerts)} alerts", err=True)


@app.command()
def apply(
    file: FileArg,
    name: NameOpt = "business",
    version: Annotated[
        str | None, typer.Option(help="document version (default: content hash)")
    ] = None,
    author: Annotated[str | None, typer.Option(help="who applies it (default: $USER)")] = None,
) -> None:
    """Validate, then publish FILE as the new version of rule set NAME to config.rules.v1."""
    text = file.read_text(encoding="utf-8")
    doc = RuleDocument(
        name=name,
        text=text,
        version=version or f"sha-{digest(text)}",
        author=author or _user(),
    )
    partition, offset = apply_document(doc, KafkaSettings())
    typer.echo(
        f"applied {name} version {doc.version} by {doc.author} "
        f"({KafkaSettings().topic('config.rules.v1')}[{partition}]@{offset})"
    )


def apply_document(doc: RuleDocument, kafka: KafkaSettings) -> tuple[int, int]:
    """Validate locally (exit 1 with positions) and publish; what ``rules apply`` does."""
    try:
        _check(doc.text, doc.name, version=doc.version)
    except RuleError as error:
        raise _fail(Path(doc.name), error) from None
    return publish(kafka, doc)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as lines:
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                yield lineno, _as_decoded(raw)
            except (ValueError, KeyError, codec.EncodeError, codec.DecodeError) as error:
                typer.echo(f"{path}:{lineno}: not an event record: {error}", err=True)
                raise typer.Exit(1) from error


def _as_decoded(raw: dict[str, Any]) -> dict[str, Any]:
    """A JSON record as the worker sees it: typed by its schema, encoded and decoded again."""
    et = catalog.event_type(str(raw["event_type"]))
    record = _coerce(et.raw, raw)
    value, headers = codec.encode(et, record)
    return codec.Decoder(et.name).decode(value, headers)


def _coerce(schema: Any, value: Any) -> Any:  # noqa: PLR0911 - one return per schema shape
    """JSON values into what fastavro writes: Decimal for decimals, datetimes for timestamps."""
    if isinstance(schema, list):
        if value is None:
            return None
        for branch in schema:
            if branch != "null":
                return _coerce(branch, value)
        return value
    if isinstance(schema, dict):
        kind, logical = schema.get("type"), schema.get("logicalType")
        if logical == "decimal" and value is not None:
            return Decimal(str(value))
        if logical in ("timestamp-millis", "timestamp-micros") and value is not None:
            if isinstance(value, str):
                return datetime.fromisoformat(value.replace("Z", "+00:00"))
            return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
        if kind == "record" and isinstance(value, dict):
            return {
                f["name"]: _coerce(f["type"], value[f["name"]])
                for f in schema["fields"]
                if f["name"] in value
            }
        if kind == "array" and isinstance(value, list):
            return [_coerce(schema["items"], v) for v in value]
        if isinstance(kind, dict | list):
            return _coerce(kind, value)
    return value
