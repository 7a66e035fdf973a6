from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.utils import generate_many

from dealstream.schemas import catalog, compatibility
from dealstream.schemas.compatibility import check_pair


def record(*fields: dict[str, Any], name: str = "R") -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": "t", "fields": list(fields)}


def f(name: str, type_: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, **extra}


BASE = record(
    f("id", "string"),
    f("n", "int"),
    f("kind", {"type": "enum", "name": "K", "symbols": ["A", "B"]}),
)

COMPATIBLE = {
    "add optional field": record(*BASE["fields"], f("note", ["null", "string"], default=None)),
    "add field with default": record(*BASE["fields"], f("c", "string", default="CNY")),
    "remove field": record(BASE["fields"][0], BASE["fields"][2]),
    "promote int to long": record(BASE["fields"][0], f("n", "long"), BASE["fields"][2]),
    "promote int to double": record(BASE["fields"][0], f("n", "double"), BASE["fields"][2]),
    "string to bytes": record(f("id", "bytes"), *BASE["fields"][1:]),
    "add enum symbol": record(
        *BASE["fields"][:2], f("kind", {"type": "enum", "name": "K", "symbols": ["A", "B", "C"]})
    ),
    "widen to union": record(f("id", ["null", "string"]), *BASE["fields"][1:]),
    "renamed with alias": record(f("ident", "string", aliases=["id"]), *BASE["fields"][1:]),
}
INCOMPATIBLE = {
    "add required field": record(*BASE["fields"], f("c", "string")),
    "remove enum symbol": record(
        *BASE["fields"][:2], f("kind", {"type": "enum", "name": "K", "symbols": ["A"]})
    ),
    "string to int": record(f("id", "int"), *BASE["fields"][1:]),
    "long cannot narrow": record(BASE["fields"][0], f("n", "string"), BASE["fields"][2]),
    "renamed record": {**BASE, "name": "Other"},
}


@pytest.mark.parametrize("name", sorted(COMPATIBLE))
def test_compatible_changes_pass_and_really_read(name: str) -> None:
    new = COMPATIBLE[name]
    assert check_pair(writer=BASE, reader=new) == []
    old_parsed, new_parsed = parse_schema(BASE), parse_schema(new)
    for datum in generate_many(BASE, 20):
        buf = BytesIO()
        schemaless_writer(buf, old_parsed, datum)
        buf.seek(0)
        schemaless_reader(buf, old_parsed, new_parsed)  # fastavro agrees: it reads


@pytest.mark.parametrize("name", sorted(INCOMPATIBLE))
def test_incompatible_changes_fail_and_really_fail(name: str) -> None:
    new = INCOMPATIBLE[name]
    assert check_pair(writer=BASE, reader=new), name
    old_parsed, new_parsed = parse_schema(BASE), parse_schema(new)
    data = [{"id": "x", "n": 1, "kind": kind} for kind in ("A", "B")]
    failures = 0
    for datum in data:
        buf = BytesIO()
        schemaless_writer(buf, old_parsed, datum)
        buf.seek(0)
        try:
            schemaless_reader(buf, old_parsed, new_parsed)
        except Exception:
            failures += 1
    assert failures, f"fastavro read {name} although the checker refuses it"


def test_nested_unions_arrays_maps_and_enum_defaults() -> None:
    line = record(f("sku", "string"), f("qty", "int"), name="Line")
    old = record(
        f("lines", {"type": "array", "items": line}), f("m", {"type": "map", "values": "int"})
    )
    line2 = copy.deepcopy(line)
    line2["fields"][1]["type"] = "long"
    new = record(
        f("lines", {"type": "array", "items": line2}), f("m", {"type": "map", "values": "double"})
    )
    assert check_pair(writer=old, reader=new) == []
    line3 = copy.deepcopy(line)
    line3["fields"].append(f("price", "bytes"))
    bad = record(
        f("lines", {"type": "array", "items": line3}), f("m", {"type": "map", "values": "string"})
    )
    paths = sorted(p.path for p in check_pair(writer=old, reader=bad))
    assert paths == [".lines[].price", ".m{}"]
    # an enum default lets the reader take symbols it does not know
    w = {"type": "enum", "name": "E", "symbols": ["A", "NEW"]}
    r = {"type": "enum", "name": "E", "symbols": ["A", "UNKNOWN"], "default": "UNKNOWN"}
    assert check_pair(writer=w, reader=r) == []
    assert check_pair(writer=w, reader={"type": "enum", "name": "E", "symbols": ["A"]}) != []
    # writer union: every branch must be readable
    assert check_pair(writer=["null", "string"], reader="string") != []
    assert check_pair(writer=["int", "string"], reader=["string", "long"]) == []
    # named reference to an earlier definition
    ref = record(f("a", line), f("b", "Line"))
    assert check_pair(writer=ref, reader=ref) == []


def test_decimal_scale_change_is_incompatible() -> None:
    dec = {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 2}
    assert check_pair(writer=dec, reader=dec) == []
    assert check_pair(writer=dec, reader={**dec, "scale": 3}) != []


def test_repository_schemas_are_compatible_with_their_history() -> None:
    """Fails when someone makes an incompatible change to a released schema."""
    errors = [p for p in compatibility.check_all() if p.severity == "error"]
    assert errors == [], "\n".join(map(str, errors))


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the schema and history folders the catalog reads instead of the repo's."""
    shutil.copytree(catalog.SCHEMA_DIR, tmp_path / "avro")
    shutil.copytree(catalog.HISTORY_DIR, tmp_path / "history")
    monkeypatch.setattr(catalog, "SCHEMA_DIR", tmp_path / "avro")
    monkeypatch.setattr(catalog, "HISTORY_DIR", tmp_path / "history")
    catalog.reload()
    yield tmp_path
    catalog.reload()


def _edit_iot(sandbox: Path, new_field: dict[str, Any]) -> None:
    path = sandbox / "avro" / "events" / "iot_telemetry.avsc"
    raw = json.loads(path.read_text())
    raw["fields"].append(new_field)
    path.write_text(json.dumps(raw))
    catalog.reload()


def test_unfrozen_change_warns_and_freeze_releases_it(sandbox: Path) -> None:
    _edit_iot(sandbox, f("battery", ["null", "double"], default=None, doc="Battery level."))
    found = compatibility.check_all()
    assert [(p.subject, p.severity) for p in found] == [("dealstream.IotTelemetryEvent", "warning")]
    assert catalog.event_type("iot.telemetry").version == 2
    path = compatibility.freeze("iot.telemetry")
    assert path == sandbox / "history" / "dealstream.IotTelemetryEvent" / "v2.avsc"
    assert compatibility.check_all() == []
    et = catalog.event_type("iot.telemetry")
    assert (et.version, et.frozen, len(et.history)) == (2, True, 2)
    assert compatibility.freeze("dealstream.IotTelemetryEvent") == path  # idempotent


def test_incompatible_change_is_reported_and_cannot_be_frozen(sandbox: Path) -> None:
    _edit_iot(sandbox, f("battery", "double", doc="Battery level."))
    errors = [p for p in compatibility.check_all() if p.severity == "error"]
    assert [p.path for p in errors] == ["v1:.payload.battery"]
    with pytest.raises(ValueError, match="incompatible"):
        compatibility.freeze("iot.telemetry")
