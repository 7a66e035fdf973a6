"""WeCom callbacks end to end: encrypted, signed POSTs to the receiver land on the real broker."""

from __future__ import annotations

import time
import uuid

import httpx
from pydantic import SecretStr

from dealstream.broker.clients import make_consumer
from dealstream.broker.settings import KafkaSettings
from dealstream.connectors.sdk.testing import serving
from dealstream.connectors.wecom.connector import WecomConnector, WecomSettings
from dealstream.connectors.wecom.testing import WecomServer
from dealstream.schemas.codec import decoder_for

TOKEN, KEY, CORP = "it-token", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wwITCORP0001"


def test_encrypted_callbacks_reach_kafka(kafka: KafkaSettings) -> None:
    settings = WecomSettings(port=0, token=SecretStr(TOKEN), encoding_aes_key=SecretStr(KEY),
                             corp_id=CORP)  # fmt: skip
    server = WecomServer(TOKEN, KEY, CORP)
    with (
        serving(WecomConnector(settings, kafka=kafka)) as connector,
        httpx.Client(base_url=connector.url, timeout=10) as client,
    ):
        for n in range(20):
            fields: dict[str, str | int] = {
                "ToUserName": CORP, "FromUserName": f"wmCUSTOMER{n % 4}",
                "CreateTime": int(time.time()), "MsgType": "text", "MsgId": f"m{n}",
                "Content": f"第{n}条：请问净水器什么时候有货？", "UserID": "EMP-7",
            }  # fmt: skip
            callback = server.message(fields)
            answer = client.post("/wecom/callback", params=callback.params, content=callback.body)
            assert answer.text == "success"
        replay = client.post("/wecom/callback", params=callback.params, content=callback.body)
        assert replay.status_code == 403
    consumer = make_consumer(kafka, group_id=f"it-{uuid.uuid4().hex[:6]}", client_id="it")
    consumer.subscribe([kafka.topic("wecom.messages.v1")])
    decoder = decoder_for("wecom.messages.v1")
    records = {}
    try:
        deadline = time.monotonic() + 20
        while len(records) < 20 and time.monotonic() < deadline:
            for message in consumer.consume(100, timeout=0.5):
                if message.error() is None:
                    record = decoder.decode(message.value(), message.headers())
                    records[record["payload"]["message_id"]] = record
    finally:
        consumer.close()
    assert set(records) == {f"m{n}" for n in range(20)}
    assert len({r["payload"]["conversation_id"] for r in records.values()}) == 4
    assert not any("wmCUSTOMER" in str(r) for r in records.values())
