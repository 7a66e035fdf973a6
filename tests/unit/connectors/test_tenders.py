"""Tender portals: Chinese field extraction, and the connector over recorded sample pages
(RSS, JSON list, two HTML list pages with detail pages) served from a local HTTP server."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from dealstream.connectors.sdk.testing import MemoryOutput, run_pull
from dealstream.connectors.tenders.connector import TendersConnector, TendersSettings
from dealstream.connectors.tenders.extract import extract, parse_amount, parse_datetime, stable_id
from dealstream.connectors.tenders.sources import TenderSource

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "tenders"


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("预算金额：120.5万元", "1205000.00"),
        ("¥1,086,500.00元", "1086500.00"),
        ("0.12亿元", "12000000.00"),
        ("356800", "356800.00"),
        ("人民币 98.76 万元", "987600.00"),
    ],
)
def test_amounts(text: str, amount: str) -> None:
    assert parse_amount(text) == Decimal(amount)


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026年11月30日 09:30", datetime(2026, 11, 30, 1, 30, tzinfo=UTC)),
        ("2026年11月18日上午9时30分", datetime(2026, 11, 18, 1, 30, tzinfo=UTC)),
        ("2026年12月7日 下午2时30分", datetime(2026, 12, 7, 6, 30, tzinfo=UTC)),
        ("2026-12-05 14:00", datetime(2026, 12, 5, 6, 0, tzinfo=UTC)),
        ("2026年11月30日", datetime(2026, 11, 29, 16, 0, tzinfo=UTC)),
    ],
)
def test_dates_are_beijing_time(text: str, utc: datetime) -> None:
    assert parse_datetime(text) == utc


def test_award_notice_fields() -> None:
    text = "采购人名称：苏州市第三中学\n预算金额（万元）：40\n中标供应商名称：苏州清源环保科技有限公司\n中标金额：¥356,800.00元"  # noqa: E501
    found = extract("苏州市第三中学直饮水设备采购项目中标公告", text)
    assert (found.kind, found.buyer, found.region, found.category) == (
        "AWARD", "苏州市第三中学", "CN-EAST", "WATER_PURIFIER")  # fmt: skip
    assert (found.budget, found.award_amount) == (Decimal("400000.00"), Decimal("356800.00"))
    assert found.winner == "苏州清源环保科技有限公司"


def test_stable_id_ignores_kind_suffix_spacing_and_portal() -> None:
    a = stable_id("广州市越秀区养老服务中心热水器采购成交公告", "广州市越秀区养老服务中心", None)
    b = stable_id("广州市越秀区养老服务中心 热水器采购 成交公告", "广州市越秀区养老服务中心", None)
    assert a == b and a.startswith("TN-")
    assert stable_id("x", "y", "SHXM-2026-0931") == stable_id("z", "w", "SHXM 2026 0931")


class Portal(SimpleHTTPRequestHandler):
    """Serves the fixtures with ETags (304 on a match); ``fail`` 503s before the first N."""

    fail: ClassVar[dict[str, int]] = {}
    hits: ClassVar[list[str]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, directory=str(FIXTURES), **kwargs)

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        if self.fail.get(self.path, 0) > 0:
            self.fail[self.path] -= 1
            self.send_error(503)
            return
        file = FIXTURES / self.path.lstrip("/")
        if file.is_file():
            etag = '"' + hashlib.md5(file.read_bytes()).hexdigest() + '"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.end_headers()
                return
            body = file.read_bytes()
            self.send_response(200)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_error(404)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def portal() -> Iterator[str]:
    Portal.fail, Portal.hits = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Portal)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def sources(base: str) -> list[TenderSource]:
    return [
        TenderSource(name="ccgp-rss", kind="rss", urls=[f"{base}/feed.xml"]),
        TenderSource(
            name="sc-json",
            kind="json",
            urls=[f"{base}/list.json"],
            items_path="data.list",
            fields={
                "id": "noticeId",
                "title": "noticeTitle",
                "url": "detailUrl",
                "published": "publishTime",
                "buyer": "purchaser",
            },
        ),
        TenderSource(
            name="province-html",
            kind="html",
            urls=[f"{base}/list_1.html", f"{base}/list_2.html"],
            detail_selector=".notice-content",
        ),
    ]


def connector(tmp_path: Path, base: str, output: MemoryOutput) -> TendersConnector:
    settings = TendersSettings(
        cursor_file=tmp_path / "cursor.json", sources=sources(base), rate_per_s=1000,
        retry_initial_s=0.01, retry_max_wait_s=0.05,
    )  # fmt: skip
    return TendersConnector(settings, output=output)


def test_portals_end_to_end_with_dedup(tmp_path: Path, portal: str) -> None:
    output = MemoryOutput()
    run_pull(connector(tmp_path, portal, output))
    assert output.dead_letters == []
    notices = {
        (r["payload"]["notice_id"], r["payload"]["kind"]): r["payload"] for r in output.records()
    }
    assert len(output.records()) == len(notices) == 8  # 11 listings, 3 repeats
    assert len(set(output.event_ids())) == 8
    shanghai = notices["PRJ-SHXM20260931", "ANNOUNCEMENT"]
    assert shanghai["budget"] == Decimal("1205000.00") and shanghai["region"] == "CN-EAST"
    assert shanghai["deadline"] == datetime(2026, 11, 30, 1, 30, tzinfo=UTC)
    assert shanghai["category"] == "HVAC"
    assert ("PRJ-SHXM20260931", "CHANGE") in notices
    wuhan = notices["PRJ-WHZX20260088", "AWARD"]
    assert (wuhan["winner"], wuhan["award_amount"]) == (
        "湖北楚天暖通工程有限公司",
        Decimal("987600.00"),
    )
    assert wuhan["region"] == "CN-CENTRAL"
    beijing = notices["PRJ-BJCY20260456", "ANNOUNCEMENT"]
    assert beijing["budget"] == Decimal("12000000.00") and beijing["category"] == "AIR_PURIFIER"
    assert notices["PRJ-XAYT2026031", "CANCEL"]["region"] == "CN-NORTHWEST"
    awards = [
        p
        for p in notices.values()
        if p["kind"] == "AWARD" and p["winner"] == "广东暖家电器有限公司"
    ]
    assert len(awards) == 1 and awards[0]["award_amount"] == Decimal("482000.00")
    chengdu = next(p for p in notices.values() if p["buyer"] == "成都市第七人民医院")
    assert chengdu["budget"] == Decimal("3600000.00") and chengdu["region"] == "CN-SOUTHWEST"
    # a second run: unchanged listings answer 304, nothing new is produced
    again = MemoryOutput()
    Portal.hits = []
    run_pull(connector(tmp_path, portal, again))
    assert again.records() == [] and not any(h.startswith("/notice/") for h in Portal.hits)


def test_outage_keeps_cursor_then_recovers(tmp_path: Path, portal: str) -> None:
    Portal.fail = {"/feed.xml": 2}
    output = MemoryOutput()
    run_pull(connector(tmp_path, portal, output))
    assert Portal.hits.count("/feed.xml") == 3  # two 503s retried
    assert len(output.records()) == 8


def test_delivery_failure_does_not_lose_notices(tmp_path: Path, portal: str) -> None:
    output = MemoryOutput(fail_flushes=1)
    with pytest.raises(Exception, match="simulated"):
        run_pull(connector(tmp_path, portal, output))
    retry = MemoryOutput()
    run_pull(connector(tmp_path, portal, retry))
    assert len(retry.records()) == 8
