"""Reviews connectors: API polling with cursors and retries, file exports, mapping and PII."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from dealstream.connectors.reviews.api import ReviewsApiConnector, ReviewsApiSettings
from dealstream.connectors.reviews.files import ReviewsFileConnector, ReviewsFileSettings
from dealstream.connectors.sdk.errors import ConfigError
from dealstream.connectors.sdk.testing import MemoryOutput, run_pull
from dealstream.connectors.simulator.reviews import reviews, write_jsonl


class Platform:
    """A fake review API: opaque cursor = index, scripted failures first."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        self.failures: list[int] = []
        self.requests: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(str(request.url))
        if self.failures:
            status = self.failures.pop(0)
            return httpx.Response(status, json={"error": "scripted"}, headers={"Retry-After": "0"})
        limit = int(request.url.params["limit"])
        start = int(request.url.params.get("cursor", "0"))
        page = self.items[start : start + limit]
        nxt = str(start + len(page)) if page else None
        return httpx.Response(200, json={"data": page, "next_cursor": nxt})


def api(platform: Platform, tmp_path: Path, **extra: Any) -> ReviewsApiConnector:
    settings = ReviewsApiSettings(
        **{
            "base_url": "http://reviews.test/api",
            "platforms": ["meituan"],
            "max_batch": 7,
            "cursor_file": tmp_path / "cursor.json",
            "rate_per_s": 1000,
            "retry_initial_s": 0.01,
            "retry_max_wait_s": 0.02,
            **extra,
        }
    )
    return ReviewsApiConnector(
        settings, transport=httpx.MockTransport(platform.handle), output=MemoryOutput()
    )


def produced(connector: ReviewsApiConnector | ReviewsFileConnector) -> MemoryOutput:
    output = connector.output
    assert isinstance(output, MemoryOutput)
    return output


def test_api_pages_retries_and_resumes_without_resending(tmp_path: Path) -> None:
    items = [r.item for r in reviews(1, 20)]
    platform = Platform(items)
    platform.failures = [503, 429]
    first = api(platform, tmp_path)
    stats = run_pull(first)
    assert stats.produced == 20 and stats.dead_letters == 0
    records = produced(first).records("review")
    assert [r["payload"]["review_id"] for r in records] == [i["review_id"] for i in items]
    # restart: nothing new, nothing re-sent; then two new reviews arrive
    platform.items = items + [r.item for r in reviews(2, 2)]
    second = api(platform, tmp_path)
    run_pull(second)
    assert len(produced(second).records()) == 2
    assert "cursor=20" in platform.requests[-2]


def test_reviewer_ids_are_desensitised_and_bad_records_dead_lettered(tmp_path: Path) -> None:
    items = [r.item for r in reviews(3, 3)]
    items[1] = {**items[1], "rating": 9}
    items[2] = {**items[2], "posted_at": "yesterday"}
    connector = api(Platform(items), tmp_path)
    run_pull(connector)
    out = produced(connector)
    (record,) = out.records()
    assert record["customer_ref"].startswith("reviewer:")
    assert items[0]["user_id"] not in json.dumps(record, default=str)
    assert out.dead_letter_codes() == {"bad_rating": 1, "bad_timestamp": 1}


def test_api_wrong_path_fails_fast(tmp_path: Path) -> None:
    platform = Platform([])
    platform.failures = [404]
    with pytest.raises(ConfigError, match="answered 404"):
        run_pull(api(platform, tmp_path))


def test_file_exports_jsonl_and_csv_resume_by_offset(tmp_path: Path) -> None:
    data = list(reviews(4, 9))
    jsonl = write_jsonl(tmp_path / "reviews.jsonl", data[:6])
    csv_file = tmp_path / "reviews.csv"
    csv_file.write_text(
        "platform,review_id,store_id,region,rating,text,posted_at\n"
        + "".join(
            f"jd,{r.item['review_id']},{r.item['store_id']},CN-EAST,"
            f"{r.item['rating'] or ''},{r.item['text'].replace(',', ' ')},{r.item['posted_at']}\n"
            for r in data[6:]
        )
        + "jd,,ST001,CN-EAST,5,no id,2026-03-01T00:00:00+00:00\n",
        encoding="utf-8",
    )

    def connector() -> ReviewsFileConnector:
        settings = ReviewsFileSettings(
            paths=[jsonl, csv_file], cursor_file=tmp_path / "c.json", max_batch=4
        )
        return ReviewsFileConnector(settings, output=MemoryOutput())

    first = connector()
    stats = run_pull(first)
    assert (stats.produced, stats.dead_letters) == (9, 1)
    assert produced(first).dead_letter_codes() == {"missing_field": 1}
    with jsonl.open("a", encoding="utf-8") as handle:  # the export grows
        handle.write(json.dumps({**data[0].item, "review_id": "NEW-1"}, ensure_ascii=False) + "\n")
    again = connector()
    run_pull(again)
    assert [r["payload"]["review_id"] for r in produced(again).records()] == ["NEW-1"]


def test_same_review_from_api_and_export_has_one_event_id(tmp_path: Path) -> None:
    data = list(reviews(6, 3))
    from_api = api(Platform([r.item for r in data]), tmp_path)
    run_pull(from_api)
    export = write_jsonl(tmp_path / "r.jsonl", data)
    from_file = ReviewsFileConnector(
        ReviewsFileSettings(paths=[export], cursor_file=tmp_path / "f.json"),
        output=MemoryOutput(),
    )
    run_pull(from_file)
    assert produced(from_api).event_ids() == produced(from_file).event_ids()
