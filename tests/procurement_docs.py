"""Procurement documents rendered in the test run, so the expected fields are known exactly.

Text PDFs with fpdf2 and a CJK TrueType collection from Debian (fonts-wqy-zenhei); scanned
pages as Pillow images of the same text (no text layer), saved as PNG/JPEG or wrapped in a PDF.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont

FONT = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")

CHINESE_PLAN = [
    "2026年度政府采购意向公开",
    "采购单位：杭州市第一人民医院",
    "所属地区：浙江省杭州市",
    "预计采购时间：2026年3月",
    "1. 采购项目名称：医用空调设备",
    "采购品目：暖通设备",
    "采购数量：40台",
    "预算金额：85.5万元",
    "2. 采购项目名称：燃气热水器",
    "采购数量：120",
    "预算金额（万元）：36",
    "预计采购时间：2026年5月",
]
CHINESE_EXPECTED = [
    {"buyer": "杭州市第一人民医院", "region": "浙江省杭州市", "item": "医用空调设备",
     "category": "暖通设备", "quantity": 40.0, "budget": 855000.0,
     "planned_date": date(2026, 3, 1)},
    {"buyer": "杭州市第一人民医院", "region": "浙江省杭州市", "item": "燃气热水器",
     "category": None, "quantity": 120.0, "budget": 360000.0,
     "planned_date": date(2026, 5, 1)},
]  # fmt: skip

SCANNED_PLAN = [
    "政府采购计划",
    "采购人：南京市教育局",
    "采购项目名称：净水器",
    "采购数量：300",
    "预算金额：60万元",
    "预计采购时间：2026年9月",
]
SCANNED_EXPECTED = {
    "buyer": "南京市教育局", "region": "南京市", "item": "净水器", "quantity": 300.0,
    "budget": 600000.0, "planned_date": date(2026, 9, 1),
}  # fmt: skip

ENGLISH_PLAN = [
    "Procurement Plan 2026",
    "Buyer: Shanghai Water Authority",
    "Region: Shanghai",
    "Item: Water purifiers",
    "Quantity: 1,200 units",
    "Budget: CNY 2,400,000",
    "Planned purchase date: 2026-07-15",
]


def text_pdf(path: Path, lines: list[str]) -> Path:
    """A PDF whose text layer holds ``lines`` (one page)."""
    pdf = FPDF()
    pdf.add_font("zenhei", fname=str(FONT), collection_font_number=0)
    pdf.add_page()
    pdf.set_font("zenhei", size=13)
    for line in lines:
        pdf.cell(0, 9, line, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path


def scan(lines: list[str], *, size: int = 40) -> Image.Image:
    """A clean grey-scale "scan" of ``lines`` (what a flatbed gives at about 300 dpi)."""
    font = ImageFont.truetype(str(FONT), size)
    image = Image.new("L", (1400, 140 + len(lines) * int(size * 2)), 255)
    draw = ImageDraw.Draw(image)
    for index, line in enumerate(lines):
        draw.text((90, 70 + index * int(size * 2)), line, font=font, fill=0)
    return image


def scanned_pdf(path: Path, lines: list[str]) -> Path:
    """A PDF with one image-only page (no text layer)."""
    scan(lines).convert("RGB").save(path, "PDF", resolution=200.0)
    return path
