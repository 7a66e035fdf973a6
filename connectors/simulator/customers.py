"""Simulated customers and the records that tie their channels together (identity, journeys).

A customer's mini-program events carry the union id and, on the first event of a session, the
phone they authorised (three in four do); their WeCom contact-add carries the external contact
id, the union id and the store whose channel QR code they scanned; store purchases carry the
member phone. Only the links planted here let journeys be stitched across channels, so the
identity resolution can be scored against :class:`Customer`. Reps of :data:`SLOW_STORES`
answer hours late, so their channel health falls.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from dealstream.connectors.miniprogram.connector import desensitise
from dealstream.connectors.miniprogram.connector import to_event as tracker_event
from dealstream.connectors.pii import Desensitizer
from dealstream.connectors.simulator.pos import PRICES
from dealstream.schemas.envelope import derive_event_id

SLOW_STORES = frozenset({"GZ003"})
CHECKIN_PAGE = "/pages/store/checkin"  # a mini-program view of it is a store visit


@dataclass
class Customer:
    index: int
    region: str
    phone: str
    openid: str
    unionid: str

    @property
    def external(self) -> str:
        """WeCom external contact id (derived, so the world draws no extra random numbers)."""
        return "wm" + hashlib.sha256(self.unionid.encode()).hexdigest()[:20]

    @property
    def shares_phone(self) -> bool:
        return self.index % 4 != 0


def tracked(
    pii: Desensitizer,
    c: Customer,
    store: str,
    session: str,
    seq: int,
    *,
    action: str,
    page: str,
    sku: str | None,
    line: str,
    ts: int,
) -> dict[str, Any]:
    """A mini-program tracker event through the connector's own mapping."""
    raw = {
        "event_id": f"{session}-{seq}",
        "openid": c.openid,
        "unionid": c.unionid,
        "phone": c.phone if seq == 0 and c.shares_phone else None,
        "session_id": session,
        "action": action,
        "page": page,
        "sku": sku,
        "series": line,
        "store_id": store,
        "amount": PRICES[sku] if sku and action == "add_to_cart" else None,
        "ts": ts,
    }
    return tracker_event(desensitise(raw, pii), source="miniprogram-sim", ingested_at_ms=0)


def contact_added(
    pii: Desensitizer, c: Customer, store: str, conversation: str, ts: int
) -> dict[str, Any]:
    """The customer adds a rep on WeCom through ``store``'s channel QR code."""
    return {
        "event_id": derive_event_id("wecom-sim", "add", c.index),
        "source": "wecom-sim",
        "event_type": "wecom.message",
        "occurred_at": ts,
        "ingested_at": ts,
        "customer_ref": pii.ref("wecom_external", c.external),
        "payload": {
            "conversation_id": conversation,
            "message_id": f"add-{c.index}",
            "channel": "WECOM",
            "speaker_role": "BOT",
            "rep_id": None,
            "product_line": None,
            "text": "[add_external_contact]",
            "msg_type": "add_external_contact",
            "unionid_ref": pii.ref("unionid", c.unionid),
            "store_id": store,
        },
    }
