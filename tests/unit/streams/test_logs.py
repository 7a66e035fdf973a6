"""JSON log lines: one object per line, with level, logger, time and the message."""

from __future__ import annotations

import json
import logging

import pytest

from dealstream.streams.logs import configure_json


def test_worker_logs_as_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        configure_json("warn")
        logging.getLogger("dealstream.streams.engine").warning("paused %s", "pos.transactions.v1")
        logging.getLogger("dealstream.streams.engine").info("not at warn level")
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    (line,) = lines
    record = json.loads(line)
    assert record["event"] == "paused pos.transactions.v1"
    assert record["level"] == "warning" and record["logger"] == "dealstream.streams.engine"
    assert record["timestamp"].endswith("Z")
