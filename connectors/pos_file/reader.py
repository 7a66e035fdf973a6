"""Line-oriented reading of export files with byte offsets, so a cursor can resume mid-file.

Each line is parsed on its own (CSV with the header's column names, or one JSON object), which
means quoted CSV fields may not contain newlines: POS exports do not use them.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

from dealstream.connectors.base import CheckResult

Format = Literal["csv", "jsonl"]


@dataclass(frozen=True)
class Line:
    number: int  # 1-based line number in the file
    end_offset: int  # byte offset just after this line: where a resumed read starts
    raw: bytes
    fields: dict[str, Any] | None
    error: tuple[str, str] | None  # (code, message) when the line itself is unreadable


def check_files(paths: Sequence[Path]) -> CheckResult:
    """Every export file exists and has a format the reader knows (a connector's ``check``)."""
    problems = []
    for path in paths:
        if not path.is_file():
            problems.append(f"{path} is not a readable file")
            continue
        try:
            detect_format(path)
        except ValueError as error:
            problems.append(str(error))
    if problems:
        return CheckResult(False, "; ".join(problems))
    return CheckResult(True, f"{len(paths)} file(s) readable")


def detect_format(path: Path) -> Format:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in {".jsonl", ".ndjson", ".json"}:
        return "jsonl"
    raise ValueError(f"{path}: unknown export format {suffix!r}; use .csv or .jsonl")


def _csv_header(handle: BinaryIO) -> tuple[list[str], int]:
    first = handle.readline()
    text = first.decode("utf-8-sig").strip()
    return next(csv.reader([text])), len(first)


def read_lines(path: Path, *, start_offset: int = 0) -> Iterator[Line]:
    """Yield the lines after ``start_offset`` (0 = from the top, past any CSV header)."""
    fmt = detect_format(path)
    with path.open("rb") as handle:
        header: list[str] = []
        number = 0
        if fmt == "csv":
            header, header_end = _csv_header(handle)
            number = 1
            start_offset = max(start_offset, header_end)
        if start_offset:
            # Count the lines skipped so positions in dead letters stay true line numbers.
            handle.seek(0)
            number = handle.read(start_offset).count(b"\n")
            handle.seek(start_offset)
        offset = start_offset
        for raw in handle:
            number += 1
            offset += len(raw)
            body = raw.rstrip(b"\r\n")
            if not body.strip():
                continue
            yield _parse(number, offset, body, fmt, header)


def _parse(number: int, offset: int, body: bytes, fmt: Format, header: list[str]) -> Line:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        return Line(number, offset, body, None, ("bad_utf8", str(error)))
    if fmt == "jsonl":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as error:
            return Line(number, offset, body, None, ("bad_json", str(error)))
        if not isinstance(obj, dict):
            return Line(number, offset, body, None, ("bad_json", "line is not a JSON object"))
        return Line(number, offset, body, obj, None)
    values = next(csv.reader([text]))
    if len(values) != len(header):
        return Line(
            number, offset, body, None,
            ("bad_columns", f"{len(values)} column(s), the header has {len(header)}"),
        )  # fmt: skip
    return Line(number, offset, body, dict(zip(header, values, strict=True)), None)
