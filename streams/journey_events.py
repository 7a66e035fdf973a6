"""What one decoded event says about a customer's journey: identifiers, steps and channel.

Pure mapping, one function per event type, so the rules of the journey can be read in one
place and tested with plain records:

========================  ==========================================  ======================
event                     steps                                       identifiers linked
========================  ==========================================  ======================
mini-program              ``miniprogram_view`` (``store_visit`` on    ``customer_ref``,
                          the store check-in page), ``_cart``,        ``phone_ref``
                          ``_search``, ``_share``; ORDER: ``purchase``
WeCom message             ``wecom_added`` (add_external_contact),     ``customer_ref``,
                          ``wecom_message`` (customer speaking)       ``unionid_ref``
POS line                  ``store_visit`` (line 1) and ``purchase``;  ``customer_ref``,
                          ``refund``                                  ``member_id``
ERP order                 ``purchase`` (through the dealer);          ``erp_customer:<id>``,
                          cancelled or returned: ``refund``           ``customer_ref``
========================  ==========================================  ======================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REFUND_STATUSES = frozenset({"CANCELLED", "RETURNED"})
ADDED = "add_external_contact"


@dataclass(slots=True)  # not frozen: one per event, and a frozen __init__ costs ~1 µs more
class Observation:
    identifiers: tuple[str, ...]
    steps: tuple[str, ...]
    channel: str | None = None  # the store or dealer the event names
    channel_kind: str = ""  # store | dealer
    region: str | None = None
    purchase: str | None = None  # ticket or order id of a purchase
    intent: bool = False  # a mini-program cart or order: the customer wants to buy (again)
    amount: float | None = None


def _ids(a: Any, b: Any) -> tuple[str, ...]:
    """The non-empty string identifiers among ``a`` and ``b``, without repeats."""
    a = a if isinstance(a, str) and a else None
    b = b if isinstance(b, str) and b else None
    if a is None:
        return () if b is None else (b,)
    return (a,) if b is None or b == a else (a, b)


def _amount(value: Any) -> float | None:
    return None if value is None else float(value)


def miniprogram(record: dict[str, Any], *, checkin_page: str) -> Observation:
    p = record["payload"]
    action = p["action"]
    step = {
        "PAGE_VIEW": "miniprogram_view",
        "ADD_TO_CART": "miniprogram_cart",
        "ORDER": "purchase",
        "SEARCH": "miniprogram_search",
        "SHARE": "miniprogram_share",
    }.get(action, "miniprogram_other")
    if action == "PAGE_VIEW" and checkin_page and p["page"].startswith(checkin_page):
        step = "store_visit"
    store = p.get("store_id")
    return Observation(
        _ids(record.get("customer_ref"), p.get("phone_ref")),
        (step,),
        store,
        "store" if store else "",
        purchase=record["event_id"] if action == "ORDER" else None,
        intent=action in ("ADD_TO_CART", "ORDER"),
        amount=_amount(p.get("amount")),
    )


def wecom(record: dict[str, Any]) -> Observation:
    p = record["payload"]
    if p.get("msg_type") == ADDED:
        steps: tuple[str, ...] = ("wecom_added",)
    elif p["speaker_role"] == "CUSTOMER":
        steps = ("wecom_message",)
    else:
        steps = ()
    store = p.get("store_id")
    return Observation(
        _ids(record.get("customer_ref"), p.get("unionid_ref")),
        steps,
        store,
        "store" if store else "",
    )


def pos(record: dict[str, Any]) -> Observation:
    p = record["payload"]
    if p["is_refund"]:
        steps: tuple[str, ...] = ("refund",)
    elif p["line_no"] == 1:
        steps = ("store_visit", "purchase")
    else:
        steps = ("purchase",)
    return Observation(
        _ids(record.get("customer_ref"), p.get("member_id")),
        steps,
        p["store_id"],
        "store",
        p["region"],
        purchase=None if p["is_refund"] else p["transaction_id"],
        amount=_amount(p["amount"]),
    )


def erp_order(record: dict[str, Any]) -> Observation:
    p = record["payload"]
    refund = p["status"] in REFUND_STATUSES
    dealer = p.get("dealer_id")
    return Observation(
        _ids(f"erp_customer:{p['customer_id']}", record.get("customer_ref")),
        ("refund",) if refund else ("purchase",),
        dealer,
        "dealer" if dealer else "",
        p["region"],
        purchase=None if refund else p["order_id"],
        amount=_amount(p["total_amount"]),
    )
