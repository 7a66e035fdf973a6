"""Subscribed MQTT source: devices publish telemetry at QoS 1, we produce it to Kafka.

Neither polled nor an HTTP endpoint, so it sits on :class:`SourceConnector` directly.
At-least-once end to end: a persistent session (``clean_session=False``, fixed client id)
keeps the broker queueing while we are away, and messages are acknowledged (PUBACK) only after
Kafka acknowledged what they became; until then the broker redelivers them. aiomqtt 2.5 has
no manual-ack option, so the paho client under it is switched to manual acks (``_client``,
a private attribute: pinned by the test that kills a connector mid-batch).

Messages are read by one task into a buffer and handled in batches (``max_batch`` or every
``flush_interval_s``); a lost connection is retried with backoff, never ends the connector.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import aiomqtt
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from dealstream.connectors.base import CheckResult
from dealstream.connectors.mqtt_iot.mapping import EVENT_TYPE, TopicPattern, to_records
from dealstream.connectors.sdk import Emit, Item, RecordError, Reject, SourceConnector
from dealstream.connectors.sdk.settings import SourceSettings

log = logging.getLogger(__name__)


class MqttIotSettings(SourceSettings):
    model_config = SettingsConfigDict(env_prefix="DEALSTREAM_MQTT_IOT_", extra="forbid")

    source: str = "mqtt-iot"
    host: str = "127.0.0.1"
    port: int = Field(1883, gt=0, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    client_id: str = "dealstream-mqtt-iot"
    """Fixed, so the broker keeps our session (and queued QoS 1 messages) across restarts."""
    topics: list[str] = Field(default_factory=lambda: ["devices/{device_id}/telemetry"])
    qos: int = Field(1, ge=0, le=2)
    max_batch: int = Field(500, gt=0)
    flush_interval_s: float = Field(0.2, gt=0)
    reconnect_max_s: float = Field(30.0, gt=0)

    @field_validator("topics")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            TopicPattern.parse(pattern)
        return value


class MqttIotConnector(SourceConnector[MqttIotSettings]):
    """Subscribes to device topics over MQTT and produces ``iot.telemetry``."""

    name = "mqtt-iot"
    settings_class = MqttIotSettings
    event_types = (EVENT_TYPE,)

    def __init__(self, settings: MqttIotSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.patterns = [TopicPattern.parse(p) for p in settings.topics]
        self.subscribed = threading.Event()
        self.batches = 0

    def _client(self) -> aiomqtt.Client:
        s = self.settings
        return aiomqtt.Client(
            s.host, s.port, identifier=s.client_id, clean_session=False,
            username=s.username, password=s.password.get_secret_value() if s.password else None,
            timeout=10,
        )  # fmt: skip

    async def acheck(self) -> CheckResult:
        s = self.settings
        try:
            async with aiomqtt.Client(s.host, s.port, identifier=f"{s.client_id}-check"):
                return CheckResult(True, f"connected to MQTT broker {s.host}:{s.port}")
        except aiomqtt.MqttError as error:
            return CheckResult(False, f"cannot connect to {s.host}:{s.port}: {error}")

    def items(self, message: aiomqtt.Message, received_ms: int) -> list[Item]:
        topic = message.topic.value
        payload = (
            message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        )
        position = f"{topic}#{message.mid}"
        levels = next((m for p in self.patterns if (m := p.match(topic)) is not None), None)
        if levels is None:
            return [Reject(EVENT_TYPE, payload, position, "unmatched_topic", topic)]
        try:
            records = to_records(
                topic, payload, levels, source=self.settings.source, received_ms=received_ms
            )
        except RecordError as error:
            return [Reject(EVENT_TYPE, payload, position, error.code, error.message)]
        return [Emit(EVENT_TYPE, record, payload, position) for record in records]

    async def _handle(self, client: aiomqtt.Client, batch: list[aiomqtt.Message]) -> None:
        now_ms = int(time.time() * 1000)
        for message in batch:
            for item in self.items(message, now_ms):
                self.emit(item)
        await self.flush()  # raises on a delivery failure: nothing is acknowledged then
        for message in batch:
            if message.qos > 0:
                client._client.ack(message.mid, message.qos)
        self.batches += 1
        self.metrics.cursor_confirmed()

    async def _session(self) -> None:
        client = self._client()
        client._client.manual_ack_set(True)  # private: see the module docstring
        buffer: list[aiomqtt.Message] = []

        async def read() -> None:
            async for message in client.messages:
                buffer.append(message)

        async with client:
            for pattern in self.patterns:
                await client.subscribe(pattern.subscription, qos=self.settings.qos)
            self.subscribed.set()
            reader = asyncio.create_task(read())
            try:
                while self.running and not reader.done():
                    await asyncio.sleep(self.settings.flush_interval_s if not buffer else 0)
                    if buffer:
                        batch = buffer[: self.settings.max_batch]
                        del buffer[: len(batch)]
                        await self._handle(client, batch)
                if reader.done():
                    reader.result()  # re-raise the disconnect
            finally:
                reader.cancel()
                self.subscribed.clear()

    async def main(self) -> None:
        delay = 0.5
        while self.running:
            try:
                await self._session()
                return
            except aiomqtt.MqttError as error:
                self.metrics.poll_error(type(error).__name__)
                log.warning(
                    "%s: MQTT connection lost, retrying in %.1fs: %s", self.name, delay, error
                )
                await self.sleep(delay)
                delay = min(delay * 2, self.settings.reconnect_max_s)
