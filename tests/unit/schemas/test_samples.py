from __future__ import annotations

from decimal import Decimal

import pytest

from dealstream.schemas import catalog
from dealstream.schemas.samples import sample_event
from dealstream.schemas.validation import validate


@pytest.mark.parametrize("et", catalog.all_types(), ids=lambda et: et.name)
def test_samples_are_valid(et: catalog.EventType) -> None:
    record = sample_event(et.name)
    assert validate(et, record) == []
    assert sample_event(et.name) == record  # deterministic, fresh copy
    assert sample_event(et.name) is not record


def test_overrides_reach_envelope_and_payload() -> None:
    rec = sample_event("pos.transaction", customer_ref=None, sku="X-1", payload={"store_id": "S9"})
    assert rec["customer_ref"] is None
    assert rec["payload"]["sku"] == "X-1"
    assert rec["payload"]["store_id"] == "S9"
    # the event id follows the natural key, so different lines get different ids
    assert sample_event("pos.transaction", line_no=2)["event_id"] != rec["event_id"]
    assert sample_event("alert", severity="CRITICAL")["severity"] == "CRITICAL"
    assert sample_event("pos.transaction", amount=Decimal("1.00"))["payload"]["amount"] == Decimal(
        "1.00"
    )


def test_unknown_override_is_an_error() -> None:
    with pytest.raises(KeyError):
        sample_event("pos.transaction", quantiy=2)
    with pytest.raises(KeyError):
        sample_event("alert", nope=1)
