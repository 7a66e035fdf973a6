"""Avro encode/decode for Kafka records: the hot path.

Values are schemaless Avro; the writer's schema travels in two headers, its subject and its
8-byte fingerprint, so a consumer can read records written by any released version (schema
resolution into the current schema) and refuses unknown ones instead of misreading them.
Confluent wire format (``0x00`` + schema id + body) is accepted when a resolver is given.

Decoding never raises anything but :class:`DecodeError` (whatever the bytes), and consumes
exactly the buffer: trailing bytes mean the writer and reader disagree about the schema.

>>> from dealstream.schemas.samples import sample_event
>>> value, headers = encode("iot.telemetry", sample_event("iot.telemetry"))
>>> [name for name, _ in headers]
['dealstream-schema', 'dealstream-fingerprint']
>>> decoder_for("iot.telemetry.v1").decode(value, headers)["payload"]["metric"]
'temperature'
>>> decoder_for("iot.telemetry.v1").decode(value + b"x", headers)
Traceback (most recent call last):
...
dealstream.schemas.codec.DecodeError: trailing_bytes: 1 byte(s) left after the record
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from io import BytesIO
from typing import Any, Literal

from fastavro import schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError

from dealstream.schemas.catalog import EventType, Schema, event_type, for_topic, parse
from dealstream.schemas.logical import Converter, compile_converter, strip_logical

HEADER_SCHEMA = "dealstream-schema"
HEADER_FINGERPRINT = "dealstream-fingerprint"

Headers = Sequence[tuple[str, bytes | None]]
DecodeCode = Literal[
    "truncated",
    "bad_bytes",
    "unknown_schema",
    "wrong_subject",
    "missing_schema",
    "incompatible_schema",
    "trailing_bytes",
    "bad_framing",
]
# Given a Confluent schema id, return the writer schema (JSON text or dict).
SchemaResolver = Callable[[int], "Schema | str"]

_CONFLUENT = struct.Struct(">bI")


class DecodeError(Exception):
    """A value that cannot be read; ``code`` is stable and goes into the dead letter."""

    def __init__(self, code: DecodeCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code: DecodeCode = code
        self.message = message


class EncodeError(ValueError):
    """A record that does not fit its schema (missing/extra field, wrong type, bad decimal)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _resolve(et: EventType | str) -> EventType:
    return et if isinstance(et, EventType) else event_type(et)


def encode(
    event_type: EventType | str, record: Mapping[str, Any]
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """Schemaless Avro body and the headers that identify its schema."""
    et = _resolve(event_type)
    buf = BytesIO()
    try:
        schemaless_writer(buf, et.schema, record, strict_allow_default=True)
    except Exception as exc:  # fastavro raises ValueError/TypeError/KeyError/AttributeError
        raise EncodeError("bad_record", f"{et.name}: {type(exc).__name__}: {exc}") from exc
    return buf.getvalue(), [
        (HEADER_SCHEMA, et.subject.encode()),
        (HEADER_FINGERPRINT, et.fingerprint),
    ]


def frame_confluent(schema_id: int, body: bytes) -> bytes:
    """Confluent wire format: magic byte 0, 4-byte big-endian schema id, Avro body.

    >>> frame_confluent(7, b"ab")
    b'\\x00\\x00\\x00\\x00\\x07ab'
    """
    if not 0 <= schema_id <= 0xFFFFFFFF:
        raise ValueError(f"schema id {schema_id} does not fit 4 bytes")
    return _CONFLUENT.pack(0, schema_id) + body


def unframe_confluent(value: bytes) -> tuple[int, bytes]:
    """Inverse of :func:`frame_confluent`; DecodeError ``bad_framing`` if not framed.

    >>> unframe_confluent(b"\\x00\\x00\\x00\\x00\\x07ab")
    (7, b'ab')
    """
    if len(value) < 5 or value[0] != 0:
        raise DecodeError("bad_framing", "not Confluent wire format (magic 0 + 4-byte id)")
    return int.from_bytes(value[1:5], "big"), bytes(value[5:])


class Decoder:
    """Reads the values of one topic into dicts shaped by the current schema.

    ``require_fingerprint=False`` reads header-less values as the current schema (for
    producers outside dealstream); set it to refuse them instead.
    """

    __slots__ = (
        "_by_fp",
        "_confluent",
        "_convert",
        "_prepare",
        "_reader",
        "_require",
        "_resolver",
        "_subject",
        "event_type",
    )

    def __init__(
        self,
        event_type: EventType | str,
        *,
        resolver: SchemaResolver | None = None,
        require_fingerprint: bool = False,
    ) -> None:
        et = _resolve(event_type)
        self.event_type = et
        self._subject = et.subject.encode()
        self._resolver = resolver
        self._require = require_fingerprint
        # Read with logical types stripped and convert afterwards (see logical.py) when the
        # schema allows it; otherwise fastavro converts as usual.
        fast = compile_converter(et.raw)
        self._convert: Converter | None = fast
        self._prepare: Callable[[Any], Schema] = (
            (lambda raw: parse(strip_logical(raw))) if fast else parse
        )
        self._reader = self._prepare(et.raw)
        # fingerprint -> (writer schema, reader schema or None when they are the same)
        self._by_fp: dict[bytes, tuple[Schema, Schema | None]] = {
            v.fingerprint: (self._prepare(v.raw), self._reader) for v in et.history
        }
        self._by_fp[et.fingerprint] = (self._reader, None)
        self._confluent: dict[int, Schema] = {}

    def _writer_for(self, headers: Headers | None) -> tuple[Schema, Schema | None] | None:
        fp: bytes | None = None
        subject: bytes | None = None
        if headers:
            try:
                for name, hvalue in headers:
                    if name == HEADER_FINGERPRINT:
                        fp = hvalue
                    elif name == HEADER_SCHEMA:
                        subject = hvalue
            except (TypeError, ValueError) as exc:
                raise DecodeError("bad_bytes", f"malformed headers: {exc}") from None
        if subject is not None and subject != self._subject:
            raise DecodeError(
                "wrong_subject",
                f"record is {subject!r}, topic expects {self.event_type.subject!r}",
            )
        if fp is None:
            return None
        found = self._by_fp.get(bytes(fp))
        if found is None:
            raise DecodeError(
                "unknown_schema", f"fingerprint {bytes(fp).hex()} is no released version"
            )
        return found

    def _confluent_writer(self, schema_id: int) -> Schema:
        writer = self._confluent.get(schema_id)
        if writer is None:
            assert self._resolver is not None
            try:
                raw = self._resolver(schema_id)
                writer = self._prepare(json.loads(raw) if isinstance(raw, str) else raw)
            except Exception as exc:
                raise DecodeError(
                    "unknown_schema", f"schema id {schema_id}: {type(exc).__name__}: {exc}"
                ) from None
            self._confluent[schema_id] = writer
        return writer

    def decode(self, value: bytes, headers: Headers | None = None) -> dict[str, Any]:
        """One Kafka value to a record; only ever raises :class:`DecodeError`."""
        found = self._writer_for(headers)
        if found is None:
            if self._resolver is not None and value[:1] == b"\x00":
                schema_id, value = unframe_confluent(value)
                found = (self._confluent_writer(schema_id), self._reader)
            elif self._require:
                raise DecodeError("missing_schema", f"no {HEADER_FINGERPRINT} header")
            else:
                found = (self._reader, None)
        return _read(value, found[0], found[1], self._convert)

    def decode_many(
        self, values: Iterable[tuple[bytes, Headers | None]]
    ) -> list[dict[str, Any] | DecodeError]:
        """Decode a batch; failures come back as DecodeError values in place (errors are data)."""
        out: list[dict[str, Any] | DecodeError] = []
        append = out.append
        decode = self.decode
        for value, headers in values:
            try:
                append(decode(value, headers))
            except DecodeError as exc:
                append(exc)
        return out


def _read(
    value: bytes, writer: Schema, reader: Schema | None, convert: Converter | None
) -> dict[str, Any]:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise DecodeError("bad_bytes", f"value is {type(value).__name__}, not bytes")
    buf = BytesIO(value)
    try:
        record = schemaless_reader(buf, writer, reader)
        if convert is not None and isinstance(record, dict):
            record = convert(record)
    except EOFError as exc:
        raise DecodeError("truncated", str(exc) or "value ended inside the record") from None
    except SchemaResolutionError as exc:
        raise DecodeError("incompatible_schema", str(exc)) from None
    except Exception as exc:  # random bytes: bad utf-8, enum/union index, timestamp overflow
        raise DecodeError("bad_bytes", f"{type(exc).__name__}: {exc}") from None
    left = len(value) - buf.tell()
    if left:
        raise DecodeError("trailing_bytes", f"{left} byte(s) left after the record")
    if not isinstance(record, dict):
        raise DecodeError("bad_bytes", "value is not a record")
    return record


def decoder_for(
    topic: str, *, resolver: SchemaResolver | None = None, require_fingerprint: bool = False
) -> Decoder:
    """A decoder for the records on ``topic`` (see :func:`catalog.for_topic`)."""
    return Decoder(for_topic(topic), resolver=resolver, require_fingerprint=require_fingerprint)
