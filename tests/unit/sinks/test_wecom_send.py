"""The WeCom message client and task delivery against a local fake of the HTTP API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from dealstream.schemas.samples import sample_event
from dealstream.sinks.wecom.client import WecomClient, WecomError, WecomResponseError
from dealstream.sinks.wecom.delivery import TaskDelivery, delivery_listeners
from dealstream.sinks.wecom.settings import WecomSendSettings
from dealstream.sinks.wecom.testing import FakeWecom, running


@pytest.fixture
def fake() -> Iterator[FakeWecom]:
    with running(corp_id="ww-corp", secret="s3cr3t") as f:
        yield f


def settings(fake: FakeWecom, **overrides: Any) -> WecomSendSettings:
    base: dict[str, Any] = {
        "base_url": fake.base_url, "corp_id": "ww-corp", "corp_secret": SecretStr("s3cr3t"),
        "agent_id": 1000002, "backoff_s": 0, "max_attempts": 3,
    }  # fmt: skip
    return WecomSendSettings(**(base | overrides))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_text_message_is_sent_with_one_token_reused_until_it_expires(fake: FakeWecom) -> None:
    clock = Clock()
    client = WecomClient(settings(fake, token_margin_s=300), clock=clock)
    sent = client.send_text("u1|u2", "你好")
    client.send_text("u1", "again")
    assert sent.msgid == "m1" and sent.attempts == 1 and sent.invalid_users == ()
    assert fake.token_requests == 1
    assert fake.messages[0] == {
        "touser": "u1|u2", "msgtype": "text", "text": {"content": "你好"}, "agentid": 1000002,
    }  # fmt: skip
    clock.now = 7200 - 300 - 1  # still inside the token's life (minus the margin)
    client.send_text("u1", "x")
    assert fake.token_requests == 1
    clock.now = 7200 - 300
    client.send_text("u1", "y")
    assert fake.token_requests == 2 and len(fake.messages) == 4


def test_an_expired_token_is_refreshed_and_the_message_resent_once(fake: FakeWecom) -> None:
    client = WecomClient(settings(fake))
    client.send_text("u1", "first")
    fake.expire_next()
    sent = client.send_textcard("u1", title="t", description="d", url="https://x/1")
    assert sent.attempts == 2
    assert fake.token_requests == 2  # 42001 → a new token
    assert [m["msgtype"] for m in fake.messages] == ["text", "textcard"]
    assert fake.messages[1]["textcard"]["url"] == "https://x/1"


def test_a_busy_server_is_retried_but_not_forever(fake: FakeWecom) -> None:
    client = WecomClient(settings(fake, max_attempts=3))
    fake.busy_next(2)
    assert client.send_text("u1", "x").attempts == 3
    fake.busy_next(3)
    with pytest.raises(WecomError) as caught:
        client.send_text("u1", "y")
    assert caught.value.errcode == -1
    assert len(fake.messages) == 1


def test_wrong_credentials_are_final(fake: FakeWecom) -> None:
    client = WecomClient(settings(fake, corp_secret=SecretStr("wrong")))
    with pytest.raises(WecomError) as caught:
        client.send_text("u1", "x")
    assert caught.value.errcode == 40001 and fake.token_requests == 1
    assert fake.messages == []


@pytest.mark.parametrize(
    "body",
    [
        b"<html>gateway</html>",
        b"[1, 2]",
        b'{"errmsg": "ok"}',
        b'{"errcode": "0", "errmsg": "ok"}',
        b'{"errcode": true}',
    ],
)
def test_a_forged_or_invalid_answer_is_never_taken_for_success(
    fake: FakeWecom, body: bytes
) -> None:
    client = WecomClient(settings(fake))
    fake.forge_next(body)
    with pytest.raises(WecomResponseError):
        client.send_text("u1", "x")
    assert fake.messages == []


@pytest.mark.parametrize(
    "body",
    [
        b'{"errcode": 0, "errmsg": "ok", "expires_in": 7200}',
        b'{"errcode": 0, "access_token": "", "expires_in": 7200}',
        b'{"errcode": 0, "access_token": "t", "expires_in": -5}',
        b"not json",
    ],
)
def test_a_token_answer_without_a_usable_token_is_refused(fake: FakeWecom, body: bytes) -> None:
    client = WecomClient(settings(fake))
    fake.forge_token_next(body)
    with pytest.raises(WecomResponseError):
        client.send_text("u1", "x")
    assert fake.messages == []
    assert client.send_text("u1", "x").attempts == 1  # the next call fetches a real token


def test_an_unreachable_server_fails_after_the_attempts() -> None:
    with running() as gone:
        url = gone.base_url
    s = WecomSendSettings(base_url=url, corp_id="c", corp_secret=SecretStr("s"), agent_id=1,
                          backoff_s=0, max_attempts=2, timeout_s=1)  # fmt: skip
    with pytest.raises(WecomError, match="gave up after 2 attempts"):
        WecomClient(s).send_text("u1", "x")


def test_delivery_is_off_without_credentials() -> None:
    assert delivery_listeners(WecomSendSettings(corp_id="c")) == []
    with pytest.raises(ValueError, match="CORP_ID"):
        WecomClient(WecomSendSettings())


def test_tasks_go_to_their_stores_staff_once(fake: FakeWecom) -> None:
    delivery = TaskDelivery(
        settings(fake, store_users={"SH001": "zhang|li"}, task_url="https://crm/t/{task_id}")
    )
    open_task = sample_event("store.task")
    other = sample_event("store.task", task_id="t-2", store_id="GZ009")  # no recipients
    converted = sample_event("store.task", status="CONVERTED")
    delivery([open_task, other, converted, open_task])  # the repeat is a replay
    delivery.close()
    assert len(fake.messages) == 1
    message = fake.messages[0]
    assert message["touser"] == "zhang|li" and message["msgtype"] == "textcard"
    card = message["textcard"]
    assert card["url"] == "https://crm/t/" + open_task["payload"]["task_id"]
    assert open_task["payload"]["script"] in card["description"] and "净水器" in card["title"]


def test_delivery_keeps_going_after_a_failure(fake: FakeWecom) -> None:
    delivery = TaskDelivery(settings(fake, default_users="@all", msgtype="text", max_attempts=1))
    fake.forge_next(b"nonsense")
    delivery([sample_event("store.task", task_id="a"), sample_event("store.task", task_id="b")])
    delivery.close()
    lines = [m["text"]["content"].splitlines()[0] for m in fake.messages]
    assert lines == ["【到店跟进】SH001 · 净水器"]  # task a failed (forged answer), b was sent
    assert fake.send_requests == 2
