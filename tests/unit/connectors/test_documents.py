"""Procurement documents: field regexes, text PDFs, scanned pages through Tesseract, cursors."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from dealstream.connectors.documents.connector import DocumentsConnector, DocumentsSettings
from dealstream.connectors.documents.extract import PlanItem, extract_items
from dealstream.connectors.sdk.errors import ConfigError
from dealstream.connectors.sdk.testing import MemoryOutput, run_pull
from tests.procurement_docs import (
    CHINESE_EXPECTED,
    CHINESE_PLAN,
    ENGLISH_PLAN,
    SCANNED_EXPECTED,
    SCANNED_PLAN,
    scan,
    scanned_pdf,
    text_pdf,
)

FIELDS = ("buyer", "region", "item", "category", "quantity", "budget", "planned_date")


def fields(item: PlanItem | dict[str, Any], names: tuple[str, ...] = FIELDS) -> dict[str, Any]:
    get = item.get if isinstance(item, dict) else lambda n: getattr(item, n)
    return {name: get(name) for name in names}


def test_chinese_plan_items_inherit_the_header() -> None:
    items = extract_items([(1, "\n".join(CHINESE_PLAN))])
    assert [fields(i) for i in items] == CHINESE_EXPECTED


def test_english_layout_and_units() -> None:
    (item,) = extract_items([(2, "\n".join(ENGLISH_PLAN))])
    assert fields(item) == {
        "buyer": "Shanghai Water Authority", "region": "Shanghai", "item": "Water purifiers",
        "category": None, "quantity": 1200.0, "budget": 2_400_000.0,
        "planned_date": date(2026, 7, 15),
    }  # fmt: skip
    assert item.page == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("采购项目名称：空调\n预算金额：1.2亿元", {"item": "空调", "budget": 1.2e8}),
        ("项目名称:空调\n采购预算:300,000元", {"item": "空调", "budget": 300000.0}),
        ("采购内容：复印纸\n数量：1,500 箱", {"item": "复印纸", "quantity": 1500.0}),
        ("采购标的：电脑\n预计采购日期：2026/11",
         {"item": "电脑", "planned_date": date(2026, 11, 1)}),
        # what Tesseract makes of some labels: 采→染, I→l, a lost colon
        ("ltem Water heaters\n预计染购时间:2026年9月", {"item": "Water heaters",
                                                    "planned_date": date(2026, 9, 1)}),
        ("Project name: Pumps\nPlanned date: March 2027\nBudget (10k CNY): 12",
         {"item": "Pumps", "planned_date": date(2027, 3, 1), "budget": 120000.0}),
        ("采购品目：办公家具\n采购人：苏州市财政局", {"item": "办公家具", "category": "办公家具",
                                            "buyer": "苏州市财政局", "region": "苏州市"}),
    ],
)  # fmt: skip
def test_labels_and_values(text: str, expected: dict[str, Any]) -> None:
    (item,) = extract_items([(1, text)])
    assert fields(item, tuple(expected)) == expected


def test_text_without_labels_has_no_items() -> None:
    assert extract_items([(1, "本项目采购数量较多，预算充足。\n联系人：张三")]) == []
    assert extract_items([]) == []


def connector(tmp_path: Path, folder: Path, **extra: Any) -> DocumentsConnector:
    settings = DocumentsSettings(
        folders=[folder], cursor_file=tmp_path / "cursor.json", rate_per_s=1000, **extra
    )
    return DocumentsConnector(settings, output=MemoryOutput())


def output(c: DocumentsConnector) -> MemoryOutput:
    assert isinstance(c.output, MemoryOutput)
    return c.output


def test_folder_of_text_pdf_scans_and_junk_once_across_restarts(tmp_path: Path) -> None:
    folder = tmp_path / "inbox"
    folder.mkdir()
    text_pdf(folder / "plan-2026.pdf", CHINESE_PLAN)
    scan(SCANNED_PLAN).save(folder / "scan.png")
    attachment_lines = [
        "政府采购计划",
        "采购人：苏州市财政局",
        "采购项目名称：办公家具",
        "预算金额：20万元",
    ]
    scanned_pdf(folder / "scan-attachment.pdf", attachment_lines)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    text_pdf(folder / "minutes.pdf", ["会议纪要", "与会人员：张三、李四"])
    (folder / "notes.txt").write_text("ignored")
    first = connector(tmp_path, folder, max_documents=2)
    stats = run_pull(first)
    records = output(first).records("procurement_plan")
    by_file: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_file.setdefault(record["payload"]["source_file"], []).append(record["payload"])
    assert [fields(p) for p in by_file["plan-2026.pdf"]] == CHINESE_EXPECTED
    assert {p["extraction"] for p in by_file["plan-2026.pdf"]} == {"text"}
    (scanned,) = by_file["scan.png"]
    assert fields(scanned, tuple(SCANNED_EXPECTED)) == SCANNED_EXPECTED
    assert scanned["extraction"] == "ocr" and scanned["page"] == 1
    (attachment,) = by_file["scan-attachment.pdf"]
    assert (attachment["item"], attachment["budget"], attachment["extraction"]) == (
        "办公家具", 200000.0, "ocr",
    )  # fmt: skip
    assert output(first).dead_letter_codes() == {"bad_pdf": 1, "no_items": 1}
    assert (stats.produced, stats.dead_letters) == (4, 2)
    plan_ids = [p["plan_id"] for p in by_file["plan-2026.pdf"]]
    assert len(set(plan_ids)) == 2 and all(len(i) == 32 for i in plan_ids)
    # restart, plus a renamed copy of a document already handled: nothing is emitted again
    shutil.copy(folder / "plan-2026.pdf", folder / "copy-of-plan.pdf")
    again = connector(tmp_path, folder)
    assert run_pull(again).read == 0
    # a new document is picked up
    text_pdf(folder / "plan-2027.pdf", ["采购人：宁波市卫健委", "采购项目名称：监护仪"])
    third = connector(tmp_path, folder)
    run_pull(third)
    assert [r["payload"]["item"] for r in output(third).records()] == ["监护仪"]


def test_same_document_gives_the_same_plan_ids(tmp_path: Path) -> None:
    folder = tmp_path / "a"
    folder.mkdir()
    text_pdf(folder / "p.pdf", CHINESE_PLAN)
    runs = []
    for name in ("c1.json", "c2.json"):
        c = DocumentsConnector(
            DocumentsSettings(folders=[folder], cursor_file=tmp_path / name),
            output=MemoryOutput(),
        )
        run_pull(c)
        runs.append(output(c).event_ids())
    assert runs[0] == runs[1] and len(runs[0]) == 2


def test_missing_configuration_and_ocr_model_fail_fast(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no documents configured"):
        run_pull(DocumentsConnector(DocumentsSettings(cursor_file=tmp_path / "c"),
                                    output=MemoryOutput()))  # fmt: skip
    bad = DocumentsSettings(paths=[tmp_path], languages="klingon", cursor_file=tmp_path / "c")
    with pytest.raises(ConfigError, match="tesseract-ocr-klingon"):
        run_pull(DocumentsConnector(bad, output=MemoryOutput()))
    assert not DocumentsConnector(bad, output=MemoryOutput()).check().ok
