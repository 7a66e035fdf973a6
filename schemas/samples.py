"""Valid, realistic sample records for every record type, for tests and the simulator.

Overrides name envelope fields, payload fields (for enveloped events) or top-level fields
(alert, dead letter); ``payload={...}`` merges into the payload. Unknown names are an error,
so a typo cannot silently produce the default record.

>>> rec = sample_event("pos.transaction", quantity=-1, amount=Decimal("-59.00"), is_refund=True)
>>> rec["event_type"], rec["payload"]["quantity"], rec["payload"]["is_refund"]
('pos.transaction', -1, True)
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from dealstream.schemas.catalog import event_type
from dealstream.schemas.envelope import derive_event_id

OCCURRED = datetime(2025, 6, 18, 2, 30, 15, 123000, tzinfo=UTC)  # 10:30 Beijing time
INGESTED = OCCURRED + timedelta(seconds=2)

_ENVELOPE_SOURCE = {
    "erp.order": "erp-kingdee",
    "erp.inventory": "erp-kingdee",
    "tender.notice": "tender-ccgp",
    "pos.transaction": "pos-file",
    "wecom.message": "wecom-archive",
    "miniprogram.event": "miniprogram-tracker",
    "iot.telemetry": "iot-mqtt",
    "market.competitor_price": "price-monitor",
    "review": "reviews-api",
    "procurement_plan": "documents",
    "store.task": "dealstream-tasks",
}

_CUSTOMER = "c1f0a6e2b3d44c5e8f9a0b1c2d3e4f50"  # an HMAC, never a raw phone or union id

_PAYLOADS: dict[str, dict[str, Any]] = {
    "erp.order": {
        "order_id": "SO-2025-061800042",
        "customer_id": "CUST-SH-0093",
        "dealer_id": "DLR-华东-007",
        "sales_rep_id": "EMP-1024",
        "region": "CN-EAST",
        "status": "CONFIRMED",
        "currency": "CNY",
        "total_amount": Decimal("25980.00"),
        "lines": [
            {
                "line_no": 1,
                "sku": "AC-KFR-35GW",
                "quantity": 4,
                "unit_price": Decimal("3999.00"),
                "amount": Decimal("15996.00"),
            },
            {
                "line_no": 2,
                "sku": "WH-JSQ30-16",
                "quantity": 2,
                "unit_price": Decimal("4992.00"),
                "amount": Decimal("9984.00"),
            },
        ],
        "created_at": OCCURRED - timedelta(hours=3),
        "updated_at": OCCURRED,
    },
    "erp.inventory": {
        "sku": "AC-KFR-35GW",
        "warehouse_id": "WH-SH-01",
        "region": "CN-EAST",
        "on_hand": 380,
        "reserved": 42,
        "reorder_point": 120,
        "unit_cost": Decimal("2650.50"),
        "turnover_days": 17.5,
        "snapshot_at": OCCURRED,
    },
    "tender.notice": {
        "notice_id": "CCGP-20250618-0031",
        "kind": "AWARD",
        "title": "上海市第一人民医院空调设备采购项目中标公告",
        "buyer": "上海市第一人民医院",
        "region": "CN-EAST",
        "category": "HVAC",
        "currency": "CNY",
        "budget": Decimal("1200000.00"),
        "deadline": OCCURRED - timedelta(days=20),
        "winner": "某某暖通工程有限公司",
        "award_amount": Decimal("1086500.00"),
        "url": "https://www.ccgp.gov.cn/cggg/dfgg/zbgg/202506/t20250618_0031.htm",
        "published_at": OCCURRED,
    },
    "pos.transaction": {
        "transaction_id": "POS-SH0012-20250618-000731",
        "line_no": 1,
        "store_id": "SH0012",
        "region": "CN-EAST",
        "sku": "WH-JSQ30-16",
        "product_line": "热水器",
        "quantity": 1,
        "unit_price": Decimal("4999.00"),
        "discount": Decimal("300.00"),
        "amount": Decimal("4699.00"),
        "currency": "CNY",
        "payment_method": "WECHAT_PAY",
        "member_id": "9b2e4c1d0a8f7e6d5c4b3a2910fedcba",
        "cashier_id": "EMP-3381",
        "is_refund": False,
    },
    "wecom.message": {
        "conversation_id": "wrOgQhDgAAcwMTB7YmDkbeBsgT_KAAAA",
        "message_id": "msg-1750213815123-0001",
        "channel": "WECOM",
        "speaker_role": "SALES_REP",
        "rep_id": "EMP-1024",
        "product_line": "空调",
        "text": "您好，这款变频空调现在下单可以享受以旧换新补贴，安装是免费的。",
        "msg_type": "text",
        "unionid_ref": None,
        "store_id": None,
    },
    "miniprogram.event": {
        "session_id": "sess-7f3a9c21",
        "action": "ADD_TO_CART",
        "page": "/pages/product/detail?sku=AC-KFR-35GW",
        "sku": "AC-KFR-35GW",
        "series": "静悦系列",
        "store_id": "SH0012",
        "amount": Decimal("3999.00"),
        "query": None,
        "phone_ref": None,
    },
    "iot.telemetry": {
        "device_id": "DEV-AC-00017342",
        "sku": "AC-KFR-35GW",
        "store_id": "SH0012",
        "metric": "temperature",
        "value": 24.5,
        "unit": "C",
        "fault_code": None,
    },
    "market.competitor_price": {
        "sku": "AC-KFR-35GW",
        "region": "CN-EAST",
        "competitor": "格力",
        "competitor_product": "KFR-35GW/NhGc1B",
        "price": Decimal("3699.00"),
        "previous_price": Decimal("3999.00"),
        "change_pct": -7.5,
        "currency": "CNY",
        "channel": "ONLINE",
        "source_url": None,
    },
    "review": {
        "platform": "meituan",
        "review_id": "MT-R-88120031",
        "store_id": "SH0012",
        "region": "CN-EAST",
        "sku": "WH-JSQ30-16",
        "product": "16升燃气热水器",
        "rating": 2,
        "text": "安装师傅迟到两个小时，态度也很差。",
        "posted_at": OCCURRED,
    },
    "procurement_plan": {
        "plan_id": "3f0c9a1b2d4e5f60718293a4b5c6d7e8",
        "document_id": "9a8b7c6d5e4f30211223344556677889",
        "buyer": "上海市第一人民医院",
        "region": "上海市",
        "item": "空调设备",
        "category": "HVAC",
        "quantity": 40.0,
        "budget": 1200000.0,
        "currency": "CNY",
        "planned_date": OCCURRED.date(),
        "source_file": "2025年采购意向.pdf",
        "page": 1,
        "extraction": "text",
    },
    "store.task": {
        "task_id": "5d0c4f3e2b1a09f8e7d6c5b4a3928170",
        "status": "OPEN",
        "rule_id": "repeat_series_views",
        "rule_version": 1,
        "store_id": "SH001",
        "region": "CN-EAST",
        "subject": "series",
        "series": "净水器",
        "sku": "WP-200",
        "views": 4,
        "first_view_at": OCCURRED - timedelta(days=2),
        "expires_at": OCCURRED + timedelta(days=14),
        "stock_on_hand": 12,
        "stock_scope": "STORE",
        "preference_tags": ["净水器", "滤芯"],
        "script": "您好，看到您最近多次浏览净水器，WP-200 门店现货 12 台，欢迎到店体验。",
        "converted_at": None,
        "conversion_store_id": None,
        "conversion_amount": None,
        "input_event_ids": ["0f4c2a9e8b7d6c5e4f3a2b1c0d9e8f7a"],
    },
}

_NATURAL_KEY = {
    "erp.order": ("order_id", "updated_at"),
    "erp.inventory": ("sku", "warehouse_id", "snapshot_at"),
    "tender.notice": ("notice_id", "kind"),
    "pos.transaction": ("transaction_id", "line_no"),
    "wecom.message": ("conversation_id", "message_id"),
    "miniprogram.event": ("session_id", "page", "action"),
    "iot.telemetry": ("device_id", "metric"),
    "market.competitor_price": ("sku", "region", "competitor"),
    "review": ("platform", "review_id"),
    "procurement_plan": ("plan_id",),
    "store.task": ("task_id", "status"),
}

_RECORDS: dict[str, dict[str, Any]] = {
    "alert": {
        "alert_id": derive_event_id("rules", "compliance.promise", "wrOgQhDgAAcwMTB7YmDkbeBsgT"),
        "kind": "compliance",
        "severity": "WARNING",
        "rule_id": "compliance.promise",
        "rule_version": 3,
        "model_name": None,
        "model_version": None,
        "entity_key": "wrOgQhDgAAcwMTB7YmDkbeBsgT_KAAAA",
        "message": "销售承诺了“保证收益”，属于违规用语",
        "input_event_ids": ["0f4c2a9e8b7d6c5e4f3a2b1c0d9e8f7a"],
        "raised_at": INGESTED,
        "attributes": {"matched_phrase": "保证收益", "channel": "WECOM"},
    },
    "dead_letter": {
        "original_topic": "pos.transactions.v1",
        "partition": 3,
        "offset": 1048576,
        "key": b"WH-JSQ30-16|CN-EAST",
        "value": b"\x02\xff\x00garbage",
        "headers": [{"key": "dealstream-schema", "value": b"dealstream.PosTransactionEvent"}],
        "error_code": "truncated",
        "error_message": "Expected 127 bytes, read 6",
        "stage": "DECODE",
        "source": "worker-1:pos.transactions.v1[3]",
        "failed_at": INGESTED,
    },
}


def sample_event(event_type_name: str, **overrides: Any) -> dict[str, Any]:
    """A fresh, valid record of ``event_type_name`` with ``overrides`` applied."""
    et = event_type(event_type_name)
    if not et.enveloped:
        record = copy.deepcopy(_RECORDS[et.name])
        for name, value in overrides.items():
            if name not in record:
                raise KeyError(f"{et.name} has no field {name!r}")
            record[name] = value
        return record
    payload = copy.deepcopy(_PAYLOADS[et.name])
    payload.update(overrides.pop("payload", {}))
    envelope: dict[str, Any] = {
        "event_id": "",
        "source": _ENVELOPE_SOURCE[et.name],
        "event_type": et.name,
        "occurred_at": OCCURRED,
        "ingested_at": INGESTED,
        "customer_ref": _CUSTOMER,
    }
    for name, value in overrides.items():
        if name in envelope:
            envelope[name] = value
        elif name in payload:
            payload[name] = value
        else:
            raise KeyError(f"{et.name} has no envelope or payload field {name!r}")
    if not envelope["event_id"]:
        parts = (payload[f] for f in _NATURAL_KEY[et.name])
        envelope["event_id"] = derive_event_id(envelope["source"], *parts)
    return {**envelope, "payload": payload}
