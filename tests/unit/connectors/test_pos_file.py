from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr

from dealstream.connectors.cursor import CursorStore
from dealstream.connectors.pii import Desensitizer
from dealstream.connectors.pos_file.parse import COLUMNS, RowError, event_id, to_event
from dealstream.connectors.pos_file.reader import read_lines
from dealstream.connectors.simulator.pos import write_export
from dealstream.schemas import validation

PII = Desensitizer(SecretStr("test-key"))
NOW_MS = int(datetime(2026, 9, 2, tzinfo=UTC).timestamp() * 1000)
ROW = {
    "transaction_id": "T1", "line_no": "2", "store_id": "S001", "region": "华东", "sku": "WP-100",
    "product_line": "净水器", "quantity": "2", "unit_price": "1299.00", "discount": "10",
    "amount": "2588.00", "currency": "", "payment_method": "ALIPAY",
    "member_phone": "+86 138 0013 8000", "cashier_id": "C01",
    "occurred_at": "2026-09-01T09:00:00+08:00", "is_refund": "false",
}  # fmt: skip


def event(**overrides: str) -> dict:
    return to_event({**ROW, **overrides}, pii=PII, source="pos-file", ingested_at_ms=NOW_MS)


def test_row_becomes_a_valid_event_with_desensitised_member() -> None:
    record = event()
    payload = record["payload"]
    assert record["event_id"] == event_id("T1", 2)
    assert record["occurred_at"] == datetime(2026, 9, 1, 1, 0, tzinfo=UTC).timestamp() * 1000
    assert payload["quantity"] == 2 and payload["discount"] == Decimal("10.00")
    assert payload["currency"] == "CNY"
    assert payload["member_id"] == record["customer_ref"] == PII.phone("13800138000")
    assert "13800138000" not in json.dumps(record, default=str)
    assert validation.validate("pos.transaction", record, now_ms=NOW_MS) == []


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"quantity": "two"}, "bad_integer"),
        ({"unit_price": "12,99"}, "bad_decimal"),
        ({"amount": "NaN"}, "not_finite"),
        ({"store_id": " "}, "missing_field"),
        ({"occurred_at": "yesterday"}, "bad_timestamp"),
        ({"occurred_at": "2026-09-01T09:00:00"}, "naive_timestamp"),
        ({"is_refund": "maybe"}, "bad_boolean"),
    ],
)
def test_unreadable_values_are_typed_row_errors(overrides: dict[str, str], code: str) -> None:
    with pytest.raises(RowError) as raised:
        event(**overrides)
    assert raised.value.code == code


def test_negative_quantity_passes_parsing_but_fails_validation() -> None:
    problems = validation.validate("pos.transaction", event(quantity="-1"), now_ms=NOW_MS)
    assert problems and problems[0].code == "negative"


def test_reader_resumes_at_a_byte_offset_with_true_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(
        (",".join(COLUMNS) + "\n").encode()
        + b"a\n"
        + (",".join(str(ROW[c]) for c in COLUMNS) + "\n").encode()
        + b"\xff\xfe\n"
    )
    lines = list(read_lines(path))
    assert [line.number for line in lines] == [2, 3, 4]
    assert lines[0].error is not None and lines[0].error[0] == "bad_columns"
    assert lines[1].fields is not None and lines[1].fields["sku"] == "WP-100"
    assert lines[2].error is not None and lines[2].error[0] == "bad_utf8"
    resumed = list(read_lines(path, start_offset=lines[0].end_offset))
    assert [line.number for line in resumed] == [3, 4]
    assert resumed[0].raw == lines[1].raw


def test_jsonl_lines_and_bad_json(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    path.write_text(json.dumps(ROW, ensure_ascii=False) + "\n[1]\n{not json\n", encoding="utf-8")
    lines = list(read_lines(path))
    assert lines[0].fields == ROW
    assert [line.error[0] for line in lines[1:] if line.error] == ["bad_json", "bad_json"]


def test_simulated_export_is_reproducible_and_spoils_some_rows(tmp_path: Path) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    spoiled = write_export(first, rows=500, seed=3, bad_rate=0.1)
    assert write_export(second, rows=500, seed=3, bad_rate=0.1) == spoiled
    assert first.read_bytes() == second.read_bytes()
    good = bad = 0
    for line in read_lines(first):
        try:
            if line.fields is None:
                raise RowError("unreadable", "")
            record = to_event(line.fields, pii=PII, source="t", ingested_at_ms=NOW_MS)
            ok = not validation.validate("pos.transaction", record, now_ms=NOW_MS)
        except RowError:
            ok = False
        good, bad = good + ok, bad + (not ok)
    assert good + bad == 500
    assert bad == spoiled > 0


def test_cursor_survives_reopen_and_rejects_garbage(tmp_path: Path) -> None:
    store = CursorStore(tmp_path / "c.json")
    store.set("f", {"offset": 42})
    assert CursorStore(tmp_path / "c.json").get("f") == {"offset": 42}
    (tmp_path / "bad.json").write_text("[1]")
    with pytest.raises(ValueError, match="remove it"):
        CursorStore(tmp_path / "bad.json")


def test_pii_refs_differ_by_kind_and_key() -> None:
    assert PII.member("123") != PII.ref("phone", "123")
    assert Desensitizer(SecretStr("other")).phone("13800138000") != PII.phone("13800138000")
