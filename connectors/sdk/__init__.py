"""Connector SDK: pull and push source base classes, registry, settings and a test kit.

See ``docs/adding-a-connector.md``. A connector returns :class:`Emit`/:class:`Reject` items
and never touches Kafka, so the SDK owns delivery, cursors, retries, rate limits and metrics.
"""

from __future__ import annotations

from dealstream.connectors.sdk.errors import ConfigError, RecordError, TransientError
from dealstream.connectors.sdk.items import Emit, Item, Reject
from dealstream.connectors.sdk.output import KafkaOutput, Output
from dealstream.connectors.sdk.pull import Batch, PullConnector
from dealstream.connectors.sdk.push import PushConnector, error_response
from dealstream.connectors.sdk.settings import PullSettings, PushSettings, load_settings
from dealstream.connectors.sdk.source import SourceConnector

__all__ = [
    "Batch",
    "ConfigError",
    "Emit",
    "Item",
    "KafkaOutput",
    "Output",
    "PullConnector",
    "PullSettings",
    "PushConnector",
    "PushSettings",
    "RecordError",
    "Reject",
    "SourceConnector",
    "TransientError",
    "error_response",
    "load_settings",
]
