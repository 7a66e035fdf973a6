"""Decrypted WeCom callback XML -> ``wecom.message`` records, with customer ids desensitised.

Parsed with defusedxml: a callback is attacker-reachable input, so DTDs, entities and external
references are refused outright rather than resolved.

Roles: WeCom external contact ids start with ``wm``/``wo`` (customers), ``sys`` is the
platform; customer-service (微信客服) messages carry ``Origin`` (3 customer, 4 system,
5 servicer). The conversation is ``ConversationId``/``OpenKfId`` when given, else the pair
(agent, external contact); any customer id inside it is replaced by its HMAC reference.

Contact adds: the ``change_external_contact`` event with ``ChangeType`` ``add_external_contact``
(or ``add_half_external_contact``, added without the rep's confirmation) becomes a message with
``msg_type`` ``add_external_contact``, the start of a customer's journey. Its ``State`` is the
``state`` of the channel QR code the customer scanned, which names the store
(:func:`store_from_state`); a ``UnionId`` (from ``externalcontact/get``, when the callback was
enriched with it) is desensitised into ``unionid_ref``, which links the contact to the
mini program. WeCom's chat archive has no add message of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from dealstream.connectors.pii import Desensitizer
from dealstream.connectors.sdk.errors import RecordError
from dealstream.schemas.envelope import derive_event_id

EVENT_TYPE = "wecom.message"
_PHONE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d(?:[- ]?\d{4}){2}(?!\d)")
_ORIGIN_ROLE = {"3": "CUSTOMER", "4": "BOT", "5": "SALES_REP"}
_TEXT_FIELDS = {"text": "Content", "voice": "Recognition", "transcript": "Content"}
ADDED = "add_external_contact"  # msg_type the journeys pipeline starts a journey with
_ADD_CHANGES = frozenset({ADDED, "add_half_external_contact"})
_STORE_ID = re.compile(r"[A-Za-z0-9_-]{1,30}")


def parse_xml(body: bytes) -> Element:
    """Root element of a callback body; raises :class:`RecordError` for hostile or broken XML."""
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ParseError, DefusedXmlException) as error:
        raise RecordError("bad_xml", f"callback body is not acceptable XML: {error}") from None
    if root.tag != "xml":
        raise RecordError("bad_xml", f"root element is <{root.tag}>, expected <xml>")
    return root


def fields(root: Element) -> dict[str, str]:
    """Child elements as text (CDATA included), first occurrence wins."""
    out: dict[str, str] = {}
    for child in root:
        out.setdefault(child.tag, (child.text or "").strip())
    return out


def is_customer(user_id: str) -> bool:
    return user_id.startswith(("wm", "wo"))


def mask_phones(text: str) -> str:
    """Mobile numbers in free text become ``[phone]``: raw PII never enters Kafka.

    >>> mask_phones("加我 138-0013-8000 或 +86 13900139000")
    '加我 [phone] 或 [phone]'
    """
    return _PHONE.sub("[phone]", text)


def store_from_state(state: str, prefix: str = "") -> str | None:
    """The store a channel QR code's ``state`` names: the part after ``prefix``, or None.

    >>> store_from_state("GZ003"), store_from_state("store:GZ003", "store:")
    ('GZ003', 'GZ003')
    >>> store_from_state("campaign-618", "store:"), store_from_state(""), store_from_state("a b")
    (None, None, None)
    """
    if prefix:
        if not state.startswith(prefix):
            return None
        state = state[len(prefix) :]
    return state if _STORE_ID.fullmatch(state) else None


@dataclass(frozen=True)
class Mapped:
    """A message record, or None for callbacks that are not chat messages (events)."""

    record: dict[str, Any] | None
    summary: dict[str, str]
    """The callback's fields with customer ids replaced: safe to dead-letter or log."""


def _role(msg: dict[str, str]) -> str:
    origin = msg.get("Origin", "")
    if origin in _ORIGIN_ROLE:
        return _ORIGIN_ROLE[origin]
    sender = msg.get("FromUserName", "")
    if sender == "sys":
        return "BOT"
    if is_customer(sender) or sender.startswith("o"):  # openid of a WeChat user
        return "CUSTOMER"
    return "SALES_REP" if sender else "UNKNOWN"


def to_record(
    msg: dict[str, str],
    *,
    pii: Desensitizer,
    source: str,
    ingested_at_ms: int,
    state_prefix: str = "",
) -> Mapped:
    """Map one decrypted callback; raises :class:`RecordError` when a message is unusable."""
    role = _role(msg)
    sender, receiver = msg.get("FromUserName", ""), msg.get("ToUserName", "")
    customer = msg.get("ExternalUserID") or (sender if role == "CUSTOMER" else "")
    customer_ref = pii.ref("wecom_external", customer) if customer else None
    summary = {k: v for k, v in msg.items() if k not in ("Content", "Recognition")}
    for key in ("FromUserName", "ExternalUserID", "ToUserName"):
        value = summary.get(key, "")
        if value and (is_customer(value) or (key == "FromUserName" and role == "CUSTOMER")):
            summary[key] = pii.ref("wecom_external", value)
    unionid = msg.get("UnionId") or msg.get("UnionID") or ""
    for key in ("UnionId", "UnionID"):
        if summary.get(key):
            summary[key] = pii.ref("unionid", summary[key])
    msg_type = msg.get("MsgType", "")
    if msg_type == "event" and msg.get("ChangeType") in _ADD_CHANGES:
        added = _contact_added(msg, customer_ref, unionid, pii=pii, state_prefix=state_prefix)
        return Mapped(_envelope(source, added, msg, customer_ref, ingested_at_ms), summary)
    if msg_type == "event" or not msg_type:
        return Mapped(None, summary)
    rep = msg.get("UserID") or (sender if role == "SALES_REP" else receiver)
    conversation = msg.get("ConversationId") or msg.get("OpenKfId")
    if not conversation:
        agent = msg.get("AgentID") or receiver
        conversation = f"{agent}:{customer_ref or rep}"
    elif customer and customer in conversation:
        conversation = conversation.replace(customer, customer_ref or "")
    message_id = msg.get("MsgId", "")
    if not message_id:
        raise RecordError("missing_msgid", "message callback without MsgId")
    text = msg.get(_TEXT_FIELDS.get(msg_type, "Content"), "")
    if not text:
        text = f"[{msg_type}]"  # media: the compliance rules see that something was sent
    payload = {
        "conversation_id": conversation,
        "message_id": message_id,
        "channel": "WECOM",
        "speaker_role": role,
        "rep_id": rep if rep and not is_customer(rep) and rep != "sys" else None,
        "product_line": msg.get("ProductLine") or None,
        "text": mask_phones(text),
        "msg_type": msg_type,
        "unionid_ref": pii.ref("unionid", unionid) if unionid else None,
        "store_id": None,
    }
    return Mapped(_envelope(source, payload, msg, customer_ref, ingested_at_ms), summary)


def _contact_added(
    msg: dict[str, str],
    customer_ref: str | None,
    unionid: str,
    *,
    pii: Desensitizer,
    state_prefix: str,
) -> dict[str, Any]:
    """Payload of a contact add; the conversation is the one the pair's chat messages use."""
    if customer_ref is None:
        raise RecordError("missing_external_user", "contact add without ExternalUserID")
    rep = msg.get("UserID", "")
    agent = msg.get("AgentID") or msg.get("ToUserName", "")
    return {
        "conversation_id": f"{agent}:{customer_ref}",
        "message_id": f"{ADDED}:{rep}:{msg.get('CreateTime', '')}",
        "channel": "WECOM",
        "speaker_role": "BOT",
        "rep_id": rep or None,
        "product_line": None,
        "text": f"[{ADDED}]",
        "msg_type": ADDED,
        "unionid_ref": pii.ref("unionid", unionid) if unionid else None,
        "store_id": store_from_state(msg.get("State", ""), state_prefix),
    }


def _envelope(
    source: str,
    payload: dict[str, Any],
    msg: dict[str, str],
    customer_ref: str | None,
    ingested_at_ms: int,
) -> dict[str, Any]:
    try:
        occurred_ms = int(msg.get("CreateTime", "")) * 1000
    except ValueError:
        raise RecordError("bad_create_time", "CreateTime is not epoch seconds") from None
    return {
        "event_id": derive_event_id(source, payload["conversation_id"], payload["message_id"]),
        "source": source,
        "event_type": EVENT_TYPE,
        "occurred_at": occurred_ms,
        "ingested_at": ingested_at_ms,
        "customer_ref": customer_ref,
        "payload": payload,
    }
