"""Fields of procurement-plan items from page text, Chinese and English "label: value" layouts.

Government procurement-intention notices (采购意向公开) and plan attachments list each item as
labelled lines. One line per field, the label, a colon (``:`` or ``：``) and the value:

==============  ======================================================  =======================
field           labels (Chinese / English)                              value
==============  ======================================================  =======================
buyer           采购人, 采购单位, 采购人名称, 预算单位 / Buyer, Purchaser     rest of the line
region          所属地区, 地区, 行政区划, 区域 / Region                     rest of the line
item            采购项目名称, 项目名称, 采购项目, 采购内容, 采购标的 /        rest of the line
                Item, Project name, Project
category        采购品目, 品目, 品目名称 / Category                          rest of the line
quantity        采购数量, 数量 / Quantity                                  first number (1,200 ok)
budget          预算金额, 采购预算, 预算 / Budget                           number and unit: 万元
                                                                        ×10,000, 亿元 ×10^8,
                                                                        元/CNY/RMB ×1; a unit in
                                                                        the label (预算金额（万元）)
                                                                        counts too
planned_date    预计采购时间, 预计采购日期, 采购时间 / Planned date,          2026年3月(15日),
                Planned purchase date                                   2026-03(-15), 2026/3,
                                                                        March 2026
==============  ======================================================  =======================

Labels tolerate the few characters Tesseract confuses in them (采→染, I→l) and a missing
colon. Every item label starts an item; the lines up to the next item label are its fields. Fields
found before the first item (buyer, region, date in a document header) apply to every item
that does not state its own. When no region is given, the buyer's leading place name
(``杭州市第一人民医院`` → ``杭州市``) stands in. Tables without labels on each line are not read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Literal

Field = Literal["buyer", "region", "item", "category", "quantity", "budget", "planned_date"]

_COLON = r"(?:\s*[:：;；]\s*|\s+)"  # OCR drops a colon now and then; a space must remain
# Characters Tesseract confuses in these labels at ~300 dpi (seen in the tests' renders).
_CONFUSABLE = {"采": "[采染彩]", "购": "[购胸]", "I": "[Il1|]"}
_UNIT_IN_LABEL = r"(?:\s*[（(](?P<label_unit>万元|元|亿元|CNY|RMB|yuan|10k CNY)[)）])?"

LABELS: dict[Field, str] = {
    "buyer": r"采购人名称|采购人|采购单位|预算单位|Purchaser|Buyer|Procuring entity",
    "region": r"所属地区|行政区划|地区|区域|Region",
    "item": r"采购项目名称|项目名称|采购项目|采购内容|采购标的|Project name|Item|Project",
    "category": r"采购品目|品目名称|品目|Category",
    "quantity": r"采购数量|数量|Quantity",
    "budget": r"预算金额|采购预算|预算|Budget(?: amount)?",
    "planned_date": (
        r"预计采购时间|预计采购日期|采购时间|Planned purchase date|Planned date|Expected date"
    ),
}


def _tolerant(pattern: str) -> str:
    return "".join(_CONFUSABLE.get(char, char) for char in pattern)


_LINE = re.compile(
    r"^\s*(?:\d+[.、)]\s*)?(?P<label>"
    + "|".join(f"(?P<{name}>{_tolerant(pattern)})" for name, pattern in LABELS.items())
    + r")"
    + _UNIT_IN_LABEL
    + _COLON
    + r"(?P<value>.*?)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_NUMBER = re.compile(r"\d[\d,，]*(?:\.\d+)?")
_UNIT = re.compile(r"(万元|亿元|元|CNY|RMB|yuan|万)", re.IGNORECASE)
_SCALE = {"万元": 10_000.0, "万": 10_000.0, "亿元": 100_000_000.0}
_DATE_CN = re.compile(r"(?P<y>\d{4})\s*年\s*(?P<m>\d{1,2})\s*月(?:\s*(?P<d>\d{1,2})\s*日)?")
_DATE_ISO = re.compile(r"(?P<y>\d{4})[-/.](?P<m>\d{1,2})(?:[-/.](?P<d>\d{1,2}))?")
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
    )
}
_DATE_EN = re.compile(r"(?P<mon>[A-Za-z]{3})[a-z]*\.?\s+(?:(?P<d>\d{1,2}),?\s+)?(?P<y>\d{4})")
_PLACE = re.compile(r"^(?P<place>[\u4e00-\u9fff]{2,9}?(?:自治区|省|市|自治州|县|区))")


@dataclass(frozen=True)
class PlanItem:
    """One procured item as written in the document (None where a field is missing)."""

    page: int
    buyer: str | None = None
    region: str | None = None
    item: str | None = None
    category: str | None = None
    quantity: float | None = None
    budget: float | None = None
    planned_date: date | None = None


def number(text: str) -> float | None:
    """First number in ``text``, thousands separators allowed.

    >>> number("1,200 台"), number("约 85.5"), number("若干")
    (1200.0, 85.5, None)
    """
    found = _NUMBER.search(text)
    return float(found.group().replace(",", "").replace("，", "")) if found else None


def money(text: str, label_unit: str | None = None) -> float | None:
    """Amount in yuan: the unit after the number (or in the label) scales it.

    >>> money("85.5万元"), money("1,200,000 元"), money("3.2", "万元"), money("CNY 50,000")
    (855000.0, 1200000.0, 32000.0, 50000.0)
    """
    value = number(text)
    if value is None:
        return None
    unit = _UNIT.search(text)
    name = unit.group(1) if unit else (label_unit or "")
    if name.lower() == "10k cny":
        return value * 10_000
    return value * _SCALE.get(name, 1.0)


def planned(text: str) -> date | None:
    """A date, or the first day of the month when only a month is written.

    >>> planned("2026年3月"), planned("2026-04-15"), planned("March 2026"), planned("尽快")
    (datetime.date(2026, 3, 1), datetime.date(2026, 4, 15), datetime.date(2026, 3, 1), None)
    """
    for pattern in (_DATE_CN, _DATE_ISO):
        found = pattern.search(text)
        if found:
            return _date(int(found["y"]), int(found["m"]), int(found["d"] or 1))
    found = _DATE_EN.search(text)
    if found and found["mon"].lower()[:3] in _MONTHS:
        return _date(int(found["y"]), _MONTHS[found["mon"].lower()[:3]], int(found["d"] or 1))
    return None


def _date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def place_of(buyer: str | None) -> str | None:
    """The leading place name of a Chinese organisation name.

    >>> place_of("杭州市第一人民医院"), place_of("浙江省人民医院"), place_of("City Hospital")
    ('杭州市', '浙江省', None)
    """
    found = _PLACE.match(buyer or "")
    return found["place"] if found else None


def _field(match: re.Match[str]) -> Field:
    for name in LABELS:
        if match.group(name) is not None:
            return name
    raise AssertionError("a label matched without a named group")


def _parse(name: Field, value: str, label_unit: str | None) -> Any:
    if name == "quantity":
        return number(value)
    if name == "budget":
        return money(value, label_unit)
    if name == "planned_date":
        return planned(value)
    return value


def _apply(item: PlanItem, name: Field, value: str, label_unit: str | None) -> PlanItem:
    if not value:
        return item
    changes: dict[str, Any] = {name: _parse(name, value, label_unit)}
    return replace(item, **changes)


def extract_items(pages: list[tuple[int, str]]) -> list[PlanItem]:
    """The items of a document given as ``(page number, text)`` pairs, in reading order."""
    header = PlanItem(page=pages[0][0] if pages else 1)
    items: list[PlanItem] = []
    current: PlanItem | None = None
    for page, text in pages:
        for match in _LINE.finditer(text):
            name = _field(match)
            value = match["value"].strip()
            if name == "item":
                if current is not None:
                    items.append(current)
                current = PlanItem(page=page)
            if current is None:
                header = _apply(header, name, value, match["label_unit"])
            else:
                current = _apply(current, name, value, match["label_unit"])
    if current is not None:
        items.append(current)
    if not items and header.category:  # a one-item plan labelled only with its 品目
        items.append(replace(header, item=header.category))
    return [_complete(item, header) for item in items]


def _complete(item: PlanItem, header: PlanItem) -> PlanItem:
    buyer = item.buyer or header.buyer
    return replace(
        item,
        buyer=buyer,
        region=item.region or header.region or place_of(buyer),
        item=item.item or item.category,
        category=item.category or header.category,
        planned_date=item.planned_date or header.planned_date,
    )
