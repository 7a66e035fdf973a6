"""Confluent wire format through the real confluent-kafka registry client.

No Schema Registry server is available here, so the test serves the two REST endpoints the
client uses (register a version, fetch by id) from a local HTTP server that stores schemas.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dealstream.schemas import codec, registry
from dealstream.schemas.samples import sample_event


class _Registry(BaseHTTPRequestHandler):
    schemas: list[str] = []  # noqa: RUF012 - class-level store shared by handler instances
    requests: list[str] = []  # noqa: RUF012

    def _reply(self, body: dict[str, Any], status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.requests.append(f"POST {self.path}")
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path.startswith("/subjects/") and "/versions" in self.path:
            if body["schema"] not in self.schemas:
                self.schemas.append(body["schema"])
            self._reply({"id": self.schemas.index(body["schema"]) + 1})
        else:
            self._reply({"error_code": 404, "message": "not found"}, 404)

    def do_GET(self) -> None:
        self.requests.append(f"GET {self.path}")
        if self.path.startswith("/schemas/ids/"):
            schema_id = int(self.path.split("/")[3].split("?")[0])
            if 0 < schema_id <= len(self.schemas):
                self._reply({"schema": self.schemas[schema_id - 1], "schemaType": "AVRO"})
                return
        self._reply({"error_code": 40403, "message": "Schema not found"}, 404)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def registry_url() -> Iterator[str]:
    _Registry.schemas, _Registry.requests = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_without_a_url_values_carry_schema_headers() -> None:
    assert registry.encoder(registry.SchemaRegistrySettings()) is codec.encode
    assert registry.resolver(registry.SchemaRegistrySettings()) is None


def test_registry_framed_values_round_trip(registry_url: str) -> None:
    settings = registry.SchemaRegistrySettings(url=registry_url)
    encode = registry.encoder(settings)
    record = sample_event("iot.telemetry")
    value, headers = encode("iot.telemetry", record)
    schema_id, _ = codec.unframe_confluent(value)
    assert schema_id == 1
    assert [name for name, _ in headers] == [codec.HEADER_SCHEMA]
    encode("iot.telemetry", record)  # the id is cached: one registration per subject
    assert sum(r.startswith("POST") for r in _Registry.requests) == 1

    decoder = codec.decoder_for("iot.telemetry.v1", resolver=registry.resolver(settings))
    decoded = decoder.decode(value, headers)
    assert decoded["payload"]["device_id"] == record["payload"]["device_id"]
    # A value framed with an id the registry does not know is a typed decode error.
    with pytest.raises(codec.DecodeError) as unknown:
        decoder.decode(codec.frame_confluent(99, value[5:]), headers)
    assert unknown.value.code == "unknown_schema"
