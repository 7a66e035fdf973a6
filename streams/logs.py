"""Log output of a worker: faust's readable text, or one JSON object per line for log pipelines.

JSON lines go through structlog's formatter on the standard library's records, so faust's,
librdkafka-wrapper and our own messages come out alike (timestamp, level, logger, event). Log
lines carry event ids and topic positions, never customer identifiers: those are desensitised
before Kafka and never logged.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

LogFormat = Literal["text", "json"]


def configure_json(level: str) -> None:
    """Route every standard-library logger to stderr as JSON lines."""
    formatter = structlog.stdlib.ProcessorFormatter(
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS.get(level, level.upper()))


_LEVELS = {"crit": "CRITICAL", "warn": "WARNING"}
