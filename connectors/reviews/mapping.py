"""A platform's review record (API item or export line) to a ``review`` event.

Platforms name fields differently, so each field is looked up under a few common names
(``review_id``/``id``, ``text``/``content``/``comment``, ``rating``/``score``/``stars``). The
reviewer's id is personal data: it becomes a keyed HMAC (``customer_ref``) and never enters Kafka
raw. The event id is derived from platform and review id, so a review read from the API and again
from an export is one event.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from dealstream.connectors.pii import Desensitizer
from dealstream.connectors.sdk.errors import RecordError
from dealstream.schemas.envelope import derive_event_id, to_millis

EVENT_TYPE = "review"

_NAMES: dict[str, tuple[str, ...]] = {
    "review_id": ("review_id", "id", "comment_id"),
    "store_id": ("store_id", "shop_id", "poi_id"),
    "region": ("region",),
    "sku": ("sku",),
    "product": ("product", "product_name", "item_name", "dish"),
    "rating": ("rating", "score", "stars", "star"),
    "text": ("text", "content", "comment", "body"),
    "posted_at": ("posted_at", "created_at", "time", "comment_time"),
    "reviewer": ("reviewer_id", "user_id", "buyer_id", "reviewer"),
    "platform": ("platform",),
}


def raw_bytes(item: Mapping[str, Any]) -> bytes:
    """The source record as JSON, kept in dead letters."""
    return json.dumps(item, default=str, ensure_ascii=False, sort_keys=True).encode()


def _get(item: Mapping[str, Any], name: str) -> Any:
    for key in _NAMES[name]:
        value = item.get(key)
        if value is not None and value != "":
            return value
    return None


def _text(item: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = _get(item, name)
    text = "" if value is None else str(value).strip()
    if not text:
        if required:
            raise RecordError("missing_field", f"{name} is empty")
        return None
    return text


def rating(value: Any) -> int | None:
    """Stars 1-5 from an int or numeric string; 0/empty means "no rating".

    >>> rating("4"), rating(None), rating(5.0), rating("")
    (4, None, 5, None)
    """
    if value is None or value in {"", 0}:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RecordError("bad_rating", f"rating={value!r} is not a number") from None
    if number != int(number) or not 1 <= number <= 5:
        raise RecordError("bad_rating", f"rating={value!r} is not 1-5 stars")
    return int(number)


def posted_at(value: Any) -> int:
    """Epoch milliseconds from ISO-8601 text with an offset, or epoch seconds/milliseconds.

    >>> posted_at("2026-03-01T08:00:00+08:00"), posted_at(1772323200), posted_at(1772323200000)
    (1772323200000, 1772323200000, 1772323200000)
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = int(value)
        return number * 1000 if number < 10_000_000_000 else number
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if text.isdigit():
            return posted_at(int(text))
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                raise RecordError("naive_timestamp", f"posted_at={value!r} has no UTC offset")
            return to_millis(moment.astimezone(UTC))
    raise RecordError("bad_timestamp", f"posted_at={value!r} is not a time")


def review_event(
    item: Mapping[str, Any],
    *,
    platform: str,
    source: str,
    pii: Desensitizer,
    ingested_at_ms: int,
    default_region: str = "",
) -> dict[str, Any]:
    """The ``review`` event of one platform record; :class:`RecordError` when unusable."""
    platform = _text(item, "platform", required=False) or platform
    review_id = _text(item, "review_id")
    assert review_id is not None
    posted = posted_at(_get(item, "posted_at"))
    reviewer = _text(item, "reviewer", required=False)
    return {
        "event_id": derive_event_id("review", platform, review_id),
        "source": source,
        "event_type": EVENT_TYPE,
        "occurred_at": posted,
        "ingested_at": ingested_at_ms,
        "customer_ref": pii.ref("reviewer", f"{platform}:{reviewer}") if reviewer else None,
        "payload": {
            "platform": platform,
            "review_id": review_id,
            "store_id": _text(item, "store_id"),
            "region": _text(item, "region", required=False) or default_region,
            "sku": _text(item, "sku", required=False),
            "product": _text(item, "product", required=False),
            "rating": rating(_get(item, "rating")),
            "text": _text(item, "text", required=False) or "",
            "posted_at": posted,
        },
    }
