"""MQTT telemetry through a real Mosquitto to the real broker; unacknowledged messages return.

QoS 1 with a persistent session and acks sent only after Kafka acknowledged: a connector that
dies before its flush succeeds leaves the messages with the broker, and the next run gets them.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import paho.mqtt.client as mqtt

from dealstream.broker.clients import make_consumer
from dealstream.broker.settings import KafkaSettings
from dealstream.connectors.mqtt_iot.connector import MqttIotConnector, MqttIotSettings
from dealstream.connectors.sdk.testing import MemoryOutput
from dealstream.schemas.codec import decoder_for
from tests.integration import peers

mosquitto = peers.mosquitto  # fixture
DEVICES = 5
READINGS = 20  # per device, two metrics each


@contextmanager
def running(connector: MqttIotConnector) -> Iterator[list[BaseException]]:
    errors: list[BaseException] = []

    def target() -> None:
        try:
            connector.execute()
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    assert connector.subscribed.wait(15) or errors, "connector did not subscribe"
    try:
        yield errors
    finally:
        connector.stop()
        thread.join(15)


def publish(server: peers.MosquittoServer) -> int:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:6]}")
    client.connect(server.host, server.port)
    client.loop_start()
    infos = []
    for device in range(DEVICES):
        for seq in range(READINGS):
            body = {"ts": 1_767_225_600_000 + seq * 1000, "seq": seq, "store_id": "S001",
                    "metrics": {"power_w": 40.0 + seq, "usage_count": seq}}  # fmt: skip
            if seq == 7:
                body["fault_code"] = "E3"
            infos.append(client.publish(f"devices/D-{device}/telemetry", json.dumps(body), qos=1))
    for info in infos:
        info.wait_for_publish(10)
    client.loop_stop()
    client.disconnect()
    return DEVICES * READINGS * 2 + DEVICES  # two metrics per reading, one fault per device


def settings(server: peers.MosquittoServer, client_id: str) -> MqttIotSettings:
    return MqttIotSettings(host=server.host, port=server.port, client_id=client_id, max_batch=50)


def test_telemetry_reaches_kafka(mosquitto: peers.MosquittoServer, kafka: KafkaSettings) -> None:
    connector = MqttIotConnector(settings(mosquitto, "it-iot"), kafka=kafka)
    with running(connector) as errors:
        expected = publish(mosquitto)
        consumer = make_consumer(kafka, group_id=f"it-{uuid.uuid4().hex[:6]}", client_id="it")
        consumer.subscribe([kafka.topic("iot.telemetry.v1")])
        decoder = decoder_for("iot.telemetry.v1")
        records = {}
        try:
            deadline = time.monotonic() + 30
            while len(records) < expected and time.monotonic() < deadline:
                for message in consumer.consume(500, timeout=0.5):
                    if message.error() is None:
                        record = decoder.decode(message.value(), message.headers())
                        records[record["event_id"]] = record
        finally:
            consumer.close()
    assert not errors
    assert len(records) == expected
    faults = [r for r in records.values() if r["payload"]["metric"] == "fault"]
    assert {r["payload"]["device_id"] for r in faults} == {f"D-{d}" for d in range(DEVICES)}
    assert all(r["payload"]["fault_code"] == "E3" for r in faults)


def test_unacknowledged_messages_are_redelivered(mosquitto: peers.MosquittoServer) -> None:
    failing = MemoryOutput(fail_flushes=10**6)  # Kafka "down": every flush fails
    first = MqttIotConnector(settings(mosquitto, "it-redeliver"), output=failing)
    with running(first) as errors:
        expected = publish(mosquitto)
        deadline = time.monotonic() + 15
        while not errors and time.monotonic() < deadline:
            time.sleep(0.05)
    assert errors, "the failed flush should end the run"
    assert failing.produced == []
    output = MemoryOutput()
    second = MqttIotConnector(settings(mosquitto, "it-redeliver"), output=output)
    with running(second):
        deadline = time.monotonic() + 20
        while len(set(output.event_ids())) < expected and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(set(output.event_ids())) == expected
