"""Faster logical-type conversion for the decoder.

fastavro converts each decimal and timestamp through a generic per-value dispatch that
costs about as much as decoding the rest of a POS record. The decoder instead reads with
logical types stripped (same wire format: they are annotations on ``bytes``/``long``) and
converts the known fields with a converter compiled once per schema. Schemas this cannot
handle (unions of several typed branches, recursive types) return None and the decoder
keeps fastavro's own conversion. One difference: a decimal with more digits than its
declared precision (a bad writer) is kept exact, where fastavro rounds it.

>>> conv = compile_converter({"type": "record", "name": "R", "fields": [
...     {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
...     {"name": "p", "type": ["null", {"type": "bytes", "logicalType": "decimal",
...                                     "precision": 18, "scale": 2}]}]})
>>> conv({"at": 946684800000, "p": (-5900).to_bytes(2, "big", signed=True)})
{'at': datetime.datetime(2000, 1, 1, 0, 0, tzinfo=datetime.timezone.utc), 'p': Decimal('-59.00')}
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

Converter = Callable[[Any], Any]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HANDLED = {("long", "timestamp-millis"), ("bytes", "decimal")}
_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


class _Unsupported(Exception):
    pass


_FAST_MS = 2**42  # year 2109: below it value / 1000 as a float still rounds to the exact ms


def _timestamp_millis(value: int) -> datetime:
    if 0 <= value < _FAST_MS:
        return datetime.fromtimestamp(value / 1000, UTC)  # 3x faster than the timedelta
    return _EPOCH + timedelta(milliseconds=value)


_DECIMAL_CACHE_SIZE = 4096


def _decimal(scale: int) -> Converter:
    suffix = f"e-{scale}"
    # Prices repeat a lot and Decimal is immutable: a bounded cache halves the cost.
    cache: dict[bytes, Decimal] = {}

    def convert(value: bytes) -> Decimal:
        found = cache.get(value)
        if found is None:
            found = Decimal(f"{int.from_bytes(value, 'big', signed=True)}{suffix}")
            if len(cache) >= _DECIMAL_CACHE_SIZE:
                cache.clear()
            cache[value] = found
        return found

    return convert


def strip_logical(schema: Any) -> Any:
    """Copy of ``schema`` without the logical types this module converts."""
    if isinstance(schema, list):
        return [strip_logical(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if (schema.get("type"), schema.get("logicalType")) in _HANDLED:
        return schema["type"]
    out = dict(schema)
    if "fields" in out:
        out["fields"] = [{**f, "type": strip_logical(f["type"])} for f in out["fields"]]
    for key in ("items", "values"):
        if key in out:
            out[key] = strip_logical(out[key])
    return out


def _compile(schema: Any, names: dict[str, Converter | None]) -> Converter | None:
    if isinstance(schema, str):
        return _compile_name(schema, names)
    if isinstance(schema, list):
        return _compile_union(schema, names)
    kind = schema.get("type")
    logical = schema.get("logicalType")
    if (kind, logical) == ("long", "timestamp-millis"):
        return _timestamp_millis
    if (kind, logical) == ("bytes", "decimal"):
        return _decimal(int(schema.get("scale", 0)))
    if kind in ("record", "array", "map", "enum", "fixed"):
        return _compile_complex(schema, names)
    return _compile(kind, names)


def _compile_name(name: str, names: dict[str, Converter | None]) -> Converter | None:
    if name in _PRIMITIVES:
        return None
    if name not in names:
        raise _Unsupported(f"reference to {name} before or inside its definition")
    return names[name]


def _compile_union(schema: list[Any], names: dict[str, Converter | None]) -> Converter | None:
    branches = [_compile(s, names) for s in schema]
    if not any(branches):
        return None
    if len(schema) != 2 or "null" not in schema:  # only [null, X] is handled
        raise _Unsupported("union with several typed branches")
    inner = next(b for b in branches if b is not None)
    return lambda v: None if v is None else inner(v)


def _compile_complex(
    schema: dict[str, Any], names: dict[str, Converter | None]
) -> Converter | None:
    kind = schema["type"]
    result: Converter | None = None
    if kind == "record":
        result = _compile_record(schema, names)
    elif kind == "array":
        item = _compile(schema["items"], names)
        if item is not None:
            result = lambda v: [item(x) for x in v]  # noqa: E731
    elif kind == "map":
        val = _compile(schema["values"], names)
        if val is not None:
            result = lambda v: {k: val(x) for k, x in v.items()}  # noqa: E731
    else:  # enum, fixed: nothing to convert, but later references may name them
        names[_full_name(schema)] = None
        names[schema["name"]] = None
    return result


def _full_name(schema: dict[str, Any]) -> str:
    name = str(schema["name"])
    namespace = schema.get("namespace")
    return f"{namespace}.{name}" if namespace and "." not in name else name


def _compile_record(schema: dict[str, Any], names: dict[str, Converter | None]) -> Converter | None:
    fields: list[tuple[str, Converter]] = []
    for f in schema["fields"]:
        conv = _compile(f["type"], names)
        if conv is not None:
            fields.append((f["name"], conv))
    result: Converter | None = None
    if fields:

        def convert(record: dict[str, Any]) -> dict[str, Any]:
            for name, conv in fields:
                record[name] = conv(record[name])
            return record

        result = convert
    names[_full_name(schema)] = result
    names[schema["name"]] = result
    return result


def compile_converter(schema: Any) -> Converter | None:
    """A function converting a record read with ``strip_logical(schema)`` into what fastavro
    would have returned with logical types; None when this schema is not supported."""
    try:
        conv = _compile(schema, {})
    except _Unsupported:
        return None
    return conv if conv is not None else (lambda v: v)
