"""Fields of a Chinese procurement notice from its title and text.

Portals publish the same facts in free text with a handful of labels (预算金额, 采购人,
投标截止时间, 中标供应商 ...), so extraction is label-driven regular expressions: amounts in
元/万元/亿元 to exact decimals, dates such as ``2026年11月30日 09:30`` in Beijing time.

>>> parse_amount("预算金额：120.5万元")
Decimal('1205000.00')
>>> parse_amount("￥1,086,500.00元")
Decimal('1086500.00')
>>> parse_datetime("2026年11月30日 09:30").isoformat()
'2026-11-30T01:30:00+00:00'
>>> notice_kind("某医院空调采购项目中标（成交）结果公告")
'AWARD'
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

BEIJING = timezone(timedelta(hours=8))
_CENT = Decimal("0.01")
_UNITS = {"": 1, "元": 1, "万": 10_000, "万元": 10_000, "亿": 100_000_000, "亿元": 100_000_000}
_AMOUNT = re.compile(r"[￥¥]?\s*(\d[\d,，]*(?:\.\d+)?)\s*(亿元|万元|亿|万|元)?")
_DATE = re.compile(
    r"(\d{4})\s*[年\-/.]\s*(\d{1,2})\s*[月\-/.]\s*(\d{1,2})\s*日?"
    r"\s*(?:(上午|下午)?\s*(\d{1,2})\s*[:：时点]\s*(\d{1,2})?\s*分?)?"
)
_SEP = r"\s*(?:[（(](?P<unit>[^）)\n]{0,10})[)）])?\s*[：:]\s*"
_KINDS = (
    ("CANCEL", ("废标", "终止公告", "流标", "取消公告")),
    ("CHANGE", ("更正公告", "变更公告", "澄清公告", "补充公告", "更正")),
    ("AWARD", ("中标", "成交", "结果公告")),
)
LABELS = {
    "budget": ("预算金额", "采购预算", "项目预算", "最高限价", "控制价"),
    "award": ("中标金额", "成交金额", "中标（成交）金额", "中标价", "成交价"),
    "buyer": ("采购人名称", "采购人", "采购单位", "招标人", "建设单位"),
    "winner": (
        "中标供应商名称",
        "中标（成交）供应商",
        "中标供应商",
        "成交供应商",
        "中标人",
        "成交人",
    ),
    "deadline": (
        "投标截止时间",
        "提交投标文件截止时间",
        "响应文件提交截止时间",
        "截止时间",
        "开标时间",
    ),
    "project": ("项目编号", "采购编号", "招标编号"),
}
REGIONS = {
    "CN-EAST": ("上海", "江苏", "浙江", "安徽", "山东", "福建", "江西", "南京", "杭州", "苏州"),
    "CN-SOUTH": ("广东", "广西", "海南", "深圳", "广州"),
    "CN-NORTH": ("北京", "天津", "河北", "山西", "内蒙古"),
    "CN-SOUTHWEST": ("四川", "重庆", "贵州", "云南", "西藏", "成都"),
    "CN-CENTRAL": ("湖北", "湖南", "河南", "武汉", "长沙"),
    "CN-NORTHEAST": ("辽宁", "吉林", "黑龙江", "沈阳"),
    "CN-NORTHWEST": ("陕西", "甘肃", "青海", "宁夏", "新疆", "西安"),
}
CATEGORIES = {
    "WATER_HEATER": ("热水器", "热水系统"),
    "HVAC": ("空调", "暖通", "新风", "中央空调", "多联机"),
    "WATER_PURIFIER": ("净水", "饮水机", "直饮水", "纯水"),
    "AIR_PURIFIER": ("空气净化",),
    "APPLIANCES": ("家电", "电器", "厨电"),
}


def parse_amount(text: str) -> Decimal | None:
    """First amount in ``text`` in yuan (万元 and 亿元 scaled), or None."""
    match = _AMOUNT.search(text)
    if match is None:
        return None
    try:
        number = Decimal(match.group(1).replace(",", "").replace("，", ""))
    except InvalidOperation:
        return None
    return (number * _UNITS[match.group(2) or ""]).quantize(_CENT)


def parse_datetime(text: str) -> datetime | None:
    """First date (and time) in ``text``, read as Beijing time, returned in UTC."""
    match = _DATE.search(text)
    if match is None:
        return None
    year, month, day, half, hour, minute = match.groups()
    h = int(hour or 0)
    if half == "下午" and h < 12:
        h += 12
    try:
        local = datetime(int(year), int(month), int(day), h, int(minute or 0), tzinfo=BEIJING)
    except ValueError:
        return None
    return local.astimezone(UTC)


def labelled(text: str, labels: tuple[str, ...]) -> str | None:
    """The value after the first of ``labels`` found (up to the end of its line or clause).

    A unit in the label (``预算金额（万元）：120``) is appended to the value.
    """
    for label in labels:
        match = re.search(re.escape(label) + _SEP + r"(?P<value>[^\n；;。]+)", text)
        if match:
            value = match.group("value").strip()
            unit = match.group("unit") or ""
            if unit in ("万元", "元", "亿元") and not value.endswith(("元", "万", "亿")):
                value += unit
            return value
    return None


def notice_kind(title: str) -> str:
    for kind, words in _KINDS:
        if any(word in title for word in words):
            return kind
    return "ANNOUNCEMENT"


def classify(text: str, table: dict[str, tuple[str, ...]], default: str) -> str:
    for name, words in table.items():
        if any(word in text for word in words):
            return name
    return default


_NOISE = re.compile(r"[\s\u3000（）()【】\[\]“”\"'、，,。.:：-]+")
_SUFFIX = re.compile(
    r"(中标（成交）结果|中标结果|成交结果|招标|采购|中标|成交|更正|变更|废标|终止)?公告$"
)


def stable_id(title: str, buyer: str, project: str | None) -> str:
    """The notice's id across portals and re-publications.

    The project number (项目编号) when stated; otherwise a hash of the normalised title
    (kind suffix, spaces and punctuation removed) and buyer, so the announcement and its
    award share an id and differ only in ``kind``.
    """
    if project:
        return "PRJ-" + _NOISE.sub("", project).upper()
    core = _SUFFIX.sub("", _NOISE.sub("", title))
    digest = hashlib.sha256(f"{core}\x1f{_NOISE.sub('', buyer)}".encode()).hexdigest()
    return "TN-" + digest[:24]


@dataclass(frozen=True)
class Extracted:
    notice_id: str
    kind: str
    buyer: str
    region: str
    category: str
    budget: Decimal | None
    deadline: datetime | None
    winner: str | None
    award_amount: Decimal | None


def extract(title: str, text: str, *, buyer: str = "", region: str = "") -> Extracted:
    """Everything the notice states; ``buyer``/``region`` from the listing win when given."""
    full = f"{title}\n{text}"
    buyer = buyer or labelled(text, LABELS["buyer"]) or ""
    budget_text = labelled(text, LABELS["budget"])
    award_text = labelled(text, LABELS["award"])
    deadline_text = labelled(text, LABELS["deadline"])
    kind = notice_kind(title)
    return Extracted(
        notice_id=stable_id(title, buyer, labelled(text, LABELS["project"])),
        kind=kind,
        buyer=buyer or "未知采购人",
        region=region or classify(f"{buyer}\n{full}", REGIONS, "CN-UNKNOWN"),
        category=classify(full, CATEGORIES, "OTHER"),
        budget=parse_amount(budget_text) if budget_text else None,
        deadline=parse_datetime(deadline_text) if deadline_text else None,
        winner=labelled(text, LABELS["winner"]) if kind == "AWARD" else None,
        award_amount=parse_amount(award_text) if award_text and kind == "AWARD" else None,
    )
