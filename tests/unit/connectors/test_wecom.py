"""WeCom callback receiver: crypto known answers, served for real, posted with httpx."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from dealstream.connectors.pii import Desensitizer, PiiSettings
from dealstream.connectors.sdk.testing import MemoryOutput, serving
from dealstream.connectors.wecom.connector import WecomConnector, WecomSettings
from dealstream.connectors.wecom.crypto import CryptoError, WecomCrypto, signature
from dealstream.connectors.wecom.messages import to_record
from dealstream.connectors.wecom.testing import WecomServer, message_xml
from dealstream.streams import journey_events

# The worked example of WeCom's published sample code (WXBizMsgCrypt).
SAMPLE_TOKEN = "QDG6eK"
SAMPLE_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
SAMPLE_CORP = "wx5823bf96d3bd56c7"
SAMPLE_ECHO = (
    "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
)
CUSTOMER = "wmAbCdEf0123456789customer"
MESSAGE: dict[str, str | int] = {
    "ToUserName": SAMPLE_CORP, "FromUserName": CUSTOMER, "CreateTime": 1_750_213_815,
    "MsgType": "text", "Content": "你好，我想了解净水器，电话13800138000", "MsgId": "7409",
    "AgentID": "1000002", "UserID": "EMP-1024",
}  # fmt: skip


def test_published_example_verifies_and_decrypts() -> None:
    crypto = WecomCrypto(SAMPLE_TOKEN, SAMPLE_KEY, SAMPLE_CORP)
    crypto.verify(
        "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "1409659589", "263014780", SAMPLE_ECHO
    )
    assert crypto.decrypt(SAMPLE_ECHO) == b"1616140317555161061"
    with pytest.raises(CryptoError, match="wrong_receiver"):
        WecomCrypto(SAMPLE_TOKEN, SAMPLE_KEY, "wwOTHERCORP").decrypt(SAMPLE_ECHO)
    with pytest.raises(CryptoError, match="bad_signature"):
        crypto.verify("0" * 40, "1409659589", "263014780", SAMPLE_ECHO)


def test_independent_encrypt_side_round_trips() -> None:
    server = WecomServer(SAMPLE_TOKEN, SAMPLE_KEY, SAMPLE_CORP)
    crypto = WecomCrypto(SAMPLE_TOKEN, SAMPLE_KEY, SAMPLE_CORP)
    for size in (0, 1, 11, 12, 31, 32, 1000):  # every padding length around the 32-byte block
        plain = b"x" * size
        assert crypto.decrypt(server.encrypt(plain)) == plain
        assert server.sign("1", "n", "e") == signature(SAMPLE_TOKEN, "1", "n", "e")


@pytest.fixture
def served() -> Iterator[tuple[WecomConnector, MemoryOutput, httpx.Client, WecomServer]]:
    output = MemoryOutput()
    settings = WecomSettings(
        port=0, token=SecretStr(SAMPLE_TOKEN), encoding_aes_key=SecretStr(SAMPLE_KEY),
        corp_id=SAMPLE_CORP, replay_window_s=300,
    )  # fmt: skip
    with (
        serving(WecomConnector(settings, output=output)) as connector,
        httpx.Client(base_url=connector.url, timeout=5) as client,
    ):
        yield connector, output, client, WecomServer(SAMPLE_TOKEN, SAMPLE_KEY, SAMPLE_CORP)


def post(client: httpx.Client, callback: Any) -> httpx.Response:
    return client.post("/wecom/callback", params=callback.params, content=callback.body)


def test_url_verification_returns_plaintext_echo(served: Any) -> None:
    _, _, client, server = served
    callback = server.verification("7731846650112")
    answer = client.get("/wecom/callback", params=callback.params)
    assert answer.status_code == 200 and answer.text == "7731846650112"
    forged = {**callback.params, "nonce": "other"}
    assert client.get("/wecom/callback", params=forged).status_code == 401


def test_message_becomes_desensitised_event(served: Any) -> None:
    _, output, client, server = served
    answer = post(client, server.message(MESSAGE))
    assert answer.status_code == 200 and answer.text == "success"
    (record,) = output.records("wecom.message")
    payload = record["payload"]
    assert payload["speaker_role"] == "CUSTOMER" and payload["rep_id"] == "EMP-1024"
    assert payload["text"] == "你好，我想了解净水器，电话[phone]"
    assert record["customer_ref"].startswith("wecom_external:")
    assert record["occurred_at"] == 1_750_213_815_000
    everything = json.dumps(record, default=str) + "".join(str(p.position) for p in output.produced)
    assert CUSTOMER not in everything and "13800138000" not in everything


def test_rep_reply_in_same_conversation(served: Any) -> None:
    _, output, client, server = served
    post(client, server.message(MESSAGE))
    reply = {**MESSAGE, "FromUserName": "EMP-1024", "ExternalUserID": CUSTOMER,
             "Content": "您好，这款本周有补贴。", "MsgId": "7410"}  # fmt: skip
    assert post(client, server.message(reply)).status_code == 200
    first, second = output.records("wecom.message")
    assert second["payload"]["speaker_role"] == "SALES_REP"
    assert first["payload"]["conversation_id"] == second["payload"]["conversation_id"]
    assert first["customer_ref"] == second["customer_ref"]


def test_forged_stale_and_replayed_callbacks_are_refused(served: Any) -> None:
    _, output, client, server = served
    callback = server.message(MESSAGE)
    forged = {**callback.params, "msg_signature": "0" * 40}
    assert post(client, type(callback)(forged, callback.body)).status_code == 401
    tampered = callback.body.replace(b"<AgentID>", b"<Extra>1</Extra><AgentID>")
    assert post(client, type(callback)(callback.params, tampered)).status_code == 200
    assert post(client, callback).status_code == 403  # same nonce again: replay
    stale = server.message(MESSAGE, timestamp=int(time.time()) - 301)
    assert post(client, stale).status_code == 403
    other_corp = WecomServer(SAMPLE_TOKEN, SAMPLE_KEY, "wwINTRUDER").message(MESSAGE)
    assert post(client, other_corp).status_code == 400
    assert len(output.records()) == 1  # only the first (validly signed) delivery


def test_hostile_xml_and_events(served: Any) -> None:
    connector, output, client, server = served
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml><Encrypt>&a;</Encrypt></xml>'
    )
    assert client.post("/wecom/callback", params={"msg_signature": "x", "timestamp": "1",
                        "nonce": "n"}, content=bomb).status_code == 400  # fmt: skip
    event = {"ToUserName": SAMPLE_CORP, "FromUserName": "sys", "CreateTime": 1_750_213_815,
             "MsgType": "event", "Event": "kf_msg_or_event"}  # fmt: skip
    assert post(client, server.message(event)).text == "success"
    no_id = {k: v for k, v in MESSAGE.items() if k != "MsgId"}
    assert post(client, server.message(no_id)).text == "success"
    assert connector.ignored_events == 1 and output.records() == []
    assert output.dead_letter_codes() == {"missing_msgid": 1}
    assert CUSTOMER.encode() not in output.dead_letters[0].raw


def test_message_xml_helper() -> None:
    assert message_xml({"A": "x", "B": 2}) == b"<xml><A><![CDATA[x]]></A><B>2</B></xml>"


UNIONID = "oU_f3c1a9d2b7e84460"
ADDED: dict[str, str | int] = {
    "ToUserName": SAMPLE_CORP, "FromUserName": "sys", "CreateTime": 1_750_213_700,
    "MsgType": "event", "Event": "change_external_contact", "ChangeType": "add_external_contact",
    "UserID": "EMP-1024", "ExternalUserID": CUSTOMER, "State": "GZ003",
    "WelcomeCode": "WELCOMECODE", "UnionId": UNIONID,
}  # fmt: skip


def test_contact_add_starts_a_journey(served: Any) -> None:
    connector, output, client, server = served
    assert post(client, server.message(ADDED)).text == "success"
    assert post(client, server.message(MESSAGE)).text == "success"
    added, message = output.records("wecom.message")
    pii = Desensitizer(PiiSettings().key)
    assert added["payload"] == {
        "conversation_id": f"{SAMPLE_CORP}:{pii.ref('wecom_external', CUSTOMER)}",
        "message_id": "add_external_contact:EMP-1024:1750213700", "channel": "WECOM",
        "speaker_role": "BOT", "rep_id": "EMP-1024", "product_line": None,
        "text": "[add_external_contact]", "msg_type": "add_external_contact",
        "unionid_ref": pii.ref("unionid", UNIONID), "store_id": "GZ003",
    }  # fmt: skip
    assert added["customer_ref"] == message["customer_ref"]  # the chat joins the journey
    assert added["occurred_at"] == 1_750_213_700_000 and connector.ignored_events == 0
    assert message["payload"]["store_id"] is None and message["payload"]["unionid_ref"] is None
    everything = json.dumps(output.records(), default=str) + str(output.produced)
    assert CUSTOMER not in everything and UNIONID not in everything
    # what the journeys pipeline reads from it: the step, both ids and the store
    seen = journey_events.wecom(added)
    assert seen.steps == ("wecom_added",) and seen.channel == "GZ003"
    assert seen.identifiers == (added["customer_ref"], pii.ref("unionid", UNIONID))


def test_contact_add_without_store_or_unionid_and_retries(served: Any) -> None:
    connector, output, client, server = served
    plain = {k: v for k, v in ADDED.items() if k not in ("State", "UnionId")}
    half = {**plain, "ChangeType": "add_half_external_contact", "State": "campaign 618"}
    deleted = {**plain, "ChangeType": "del_external_contact"}
    for callback in (plain, plain, half, deleted):  # WeCom retries a callback as it was
        assert post(client, server.message(callback)).text == "success"
    first, retry, second = output.records("wecom.message")
    assert first["event_id"] == retry["event_id"] == second["event_id"]
    assert first["payload"]["store_id"] is None and first["payload"]["unionid_ref"] is None
    assert second["payload"]["store_id"] is None  # a state that is no store id
    assert connector.ignored_events == 1  # the delete
    no_contact = {k: v for k, v in plain.items() if k != "ExternalUserID"}
    assert post(client, server.message(no_contact)).text == "success"
    assert output.dead_letter_codes() == {"missing_external_user": 1}


def test_state_prefix_names_the_store() -> None:
    pii = Desensitizer(PiiSettings().key)
    fields = {k: str(v) for k, v in ADDED.items()}
    mapped = to_record(
        {**fields, "State": "store:SH001"}, pii=pii, source="wecom", ingested_at_ms=0,
        state_prefix="store:",
    )  # fmt: skip
    assert mapped.record is not None and mapped.record["payload"]["store_id"] == "SH001"
    assert UNIONID not in json.dumps(mapped.summary)
    other = to_record(
        {**fields, "State": "GZ003"}, pii=pii, source="wecom", ingested_at_ms=0,
        state_prefix="store:",
    )  # fmt: skip
    assert other.record is not None and other.record["payload"]["store_id"] is None
