"""Confluent Schema Registry support: the wire format (magic byte + schema id) on request.

Without ``DEALSTREAM_SCHEMA_REGISTRY_URL`` dealstream writes schemaless Avro with schema headers
(no extra service to run). With it, producers register each subject's schema and frame values
as ``0x00 + id + body`` so any Confluent-compatible consumer can read them, and decoders resolve
ids they have not seen through the registry.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka.schema_registry import Schema as RegistrySchema
from confluent_kafka.schema_registry import SchemaRegistryClient
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from dealstream.schemas import codec
from dealstream.schemas.catalog import EventType, event_type

Encoded = tuple[bytes, list[tuple[str, bytes]]]
Encoder = Callable[[EventType | str, Mapping[str, Any]], Encoded]


class SchemaRegistrySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DEALSTREAM_SCHEMA_REGISTRY_", extra="forbid")

    url: str | None = None
    username: str | None = None
    password: SecretStr | None = None

    def client(self) -> SchemaRegistryClient | None:
        if not self.url:
            return None
        conf: dict[str, Any] = {"url": self.url}
        if self.username and self.password:
            conf["basic.auth.user.info"] = f"{self.username}:{self.password.get_secret_value()}"
        return SchemaRegistryClient(conf)


class RegistryEncoder:
    """Registers each subject once (cached id) and frames values in the Confluent format."""

    def __init__(self, client: SchemaRegistryClient) -> None:
        self._client = client
        self._ids: dict[str, int] = {}

    def schema_id(self, et: EventType) -> int:
        found = self._ids.get(et.subject)
        if found is None:
            schema = RegistrySchema(json.dumps(et.raw), schema_type="AVRO")
            found = self._client.register_schema(et.subject, schema)
            self._ids[et.subject] = found
        return found

    def encode(self, kind: EventType | str, record: Mapping[str, Any]) -> Encoded:
        et = kind if isinstance(kind, EventType) else event_type(kind)
        body, _ = codec.encode(et, record)
        # Only the subject header: a fingerprint header would make readers skip the frame.
        return codec.frame_confluent(self.schema_id(et), body), [
            (codec.HEADER_SCHEMA, et.subject.encode())
        ]


def encoder(settings: SchemaRegistrySettings | None = None) -> Encoder:
    """``codec.encode`` (headers) or a registry encoder, as configured."""
    client = (settings or SchemaRegistrySettings()).client()
    return codec.encode if client is None else RegistryEncoder(client).encode


def resolver(settings: SchemaRegistrySettings | None = None) -> codec.SchemaResolver | None:
    """Schema-id lookups for decoders, or None when no registry is configured."""
    client = (settings or SchemaRegistrySettings()).client()
    if client is None:
        return None
    return lambda schema_id: str(client.get_schema(schema_id).schema_str)
