"""Dashboard views, parameterised queries and the aiohttp API against a real chDB."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer.main
from aiohttp.test_utils import TestClient, TestServer
from clickhouse_connect.driver.client import Client
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from dealstream.cli.main import app
from dealstream.sinks.clickhouse import ClickHouseSettings, connect, migrate
from dealstream.sinks.dashboard import queries, sample
from dealstream.sinks.dashboard.server import STATIC, BadFilter, create_app, parse_filters
from dealstream.sinks.dashboard.settings import DashboardSettings

NOW = datetime(2025, 6, 30, 12, tzinfo=UTC)
ALL = queries.Filters(start=NOW - timedelta(days=400), end=NOW + timedelta(days=120))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    directory = tmp_path_factory.mktemp("chdb")
    c = connect(settings=ClickHouseSettings(url=f"chdb://{directory}?database=dash"))
    migrate(c)
    sample.seed(c, now=NOW)
    yield c
    c.close()


def test_migration_creates_every_view_the_queries_read(client: Client) -> None:
    views = set(
        client.query("SELECT name FROM system.tables WHERE database = 'dash'").result_columns[0]
    )
    sql = " ".join(v for k, v in vars(queries).items() if k.isupper() and isinstance(v, str))
    read = set(re.findall(r"FROM\s+([a-z_]+)", sql)) - {"customers"}
    assert read <= views, read - views


def test_every_board_has_data_for_the_sample(client: Client) -> None:
    forecast = queries.forecast(client, ALL)
    assert all(forecast[k] for k in ("series", "segments", "factors", "freshness", "accuracy"))
    assert all(r["low"] <= r["forecast"] <= r["high"] for r in forecast["series"])
    assert 0.5 < forecast["accuracy"][0]["coverage"] <= 1.0
    journey = queries.journey(client, ALL)
    funnel = journey["funnel"]
    assert funnel["added"] >= funnel["visited_72h"] >= funnel["purchased_72h"] > 0
    assert 0 < funnel["not_converted_72h_share"] < 1
    assert journey["channels"] and journey["heatmap"] and journey["daily"]
    compliance = queries.compliance(client, ALL)
    assert all(compliance[k] for k in ("by_rule_day", "by_rep", "dead_letters", "channel_health"))


def test_journey_funnel_per_channel_adds_up_and_shows_the_slow_store(client: Client) -> None:
    journey = queries.journey(client, ALL)
    channels = {r["channel"]: r for r in journey["channels"]}
    assert set(channels) == set(sample.STORES)
    for key in ("added", "visited_72h", "purchased_72h", "decided", "not_converted_72h"):
        assert sum(r[key] for r in channels.values()) == journey["funnel"][key], key
    slow = channels.pop(sample.SLOW_STORE)
    assert slow["not_converted_72h_share"] > max(
        r["not_converted_72h_share"] for r in channels.values()
    )
    # merged customers count once, under the surviving id
    added = client.command("SELECT count() FROM journey_steps WHERE step = 'wecom_added'")
    assert journey["funnel"]["added"] == int(added) - 2
    touches = {r["touch"] for r in journey["heatmap"]}
    assert touches == {"WeCom", "mini program", "store till"}
    assert {r["weekday"] for r in journey["heatmap"]} <= set(range(1, 8))
    health = queries.compliance(client, ALL)["channel_health"]
    assert health[0]["channel_id"] == sample.SLOW_STORE and health[0]["alerting"] == 1
    assert [r["score"] for r in health] == sorted(r["score"] for r in health)


def test_filters_narrow_the_results(client: Client) -> None:
    north = queries.Filters(start=ALL.start, end=ALL.end, region="north", product_line="skincare")
    segments = queries.forecast(client, north)["segments"]
    assert {(r["region"], r["product_line"]) for r in segments} == {("north", "skincare")}
    stores = {r["channel"] for r in queries.journey(client, north)["channels"]}
    assert stores and stores < set(sample.STORES)
    assert {r["region"] for r in queries.compliance(client, north)["channel_health"]} == {"north"}
    unknown = queries.Filters(start=ALL.start, end=ALL.end, region="atlantis")
    assert queries.forecast(client, unknown)["series"] == []
    recent = queries.Filters(start=NOW - timedelta(days=7), end=NOW)
    assert len(queries.compliance(client, recent)["by_rule_day"]) < len(
        queries.compliance(client, ALL)["by_rule_day"]
    )


def test_user_input_is_bound_never_formatted(client: Client) -> None:
    hostile = "x' OR 1=1; DROP TABLE pos_transactions; --"
    filters = queries.Filters(start=ALL.start, end=ALL.end, region=hostile, product_line=hostile)
    assert queries.journey(client, filters)["daily"] == []
    assert queries.journey(client, filters)["funnel"]["added"] == 0
    assert queries.compliance(client, filters)["channel_health"] == []
    assert client.command("SELECT count() FROM pos_transactions") > 0


def test_filters_parse_and_refuse_bad_input() -> None:
    parsed = parse_filters(
        {"from": "2025-01-01", "to": "2025-02-01", "horizon": "2"}, default_days=30
    )
    assert parsed.start == datetime(2025, 1, 1, tzinfo=UTC) and parsed.horizon == 2
    default = parse_filters({}, default_days=30, now=NOW)
    assert default.end - default.start == timedelta(days=30)
    for bad in ({"from": "yesterday"}, {"horizon": "x"}, {"horizon": "0"}, {"region": "a" * 65},
                {"from": "2025-02-02", "to": "2025-01-01"}, {"region": "a\nb"}):  # fmt: skip
        with pytest.raises(BadFilter):
            parse_filters(bad, default_days=30)


def _call(
    client: Client, settings: DashboardSettings, *requests: tuple[str, dict[str, str]]
) -> list[Any]:
    async def run() -> list[Any]:
        async with TestClient(TestServer(create_app(client=client, settings=settings))) as http:
            answers = []
            for path, headers in requests:
                response = await http.get(path, headers=headers, allow_redirects=False)
                body = await response.read()
                answers.append((response.status, response.headers, body))
            return answers

    return asyncio.run(run())


def test_api_serves_pages_json_and_security_headers(client: Client) -> None:
    answers = _call(
        client,
        DashboardSettings(),
        ("/", {}),
        ("/journey", {}),
        ("/api/options", {}),
        ("/api/forecast?from=2024-01-01&to=2026-01-01&horizon=2", {}),
        ("/api/compliance?from=nonsense", {}),
        ("/static/vendor/echarts.min.js", {}),
    )
    (root, page, options, forecast, bad, vendor) = answers
    assert root[0] == 302 and root[1]["Location"] == "/forecast"
    assert page[0] == 200 and b'src="/static/app.js"' in page[2]
    assert "script-src 'self'" in page[1]["Content-Security-Policy"]
    assert options[0] == 200 and b'"regions":["east","north","south","west"]' in options[2]
    assert forecast[0] == 200 and b'"horizon":2' in forecast[2]
    assert bad[0] == 400 and b"ISO date" in bad[2]
    assert vendor[0] == 200 and len(vendor[2]) > 500_000


def test_bearer_token_guards_the_api_only(client: Client) -> None:
    settings = DashboardSettings(token=SecretStr("s3cret"))
    answers = _call(
        client,
        settings,
        ("/api/options", {}),
        ("/api/options", {"Authorization": "Bearer wrong"}),
        ("/api/options", {"Authorization": "Bearer s3cret"}),
        ("/forecast", {}),
    )
    assert [a[0] for a in answers] == [401, 401, 200, 200]
    assert "s3cret" not in repr(settings)


def test_vendored_chart_library_is_recorded() -> None:
    vendor = STATIC / "vendor"
    readme = (vendor / "README.md").read_text()
    digest = hashlib.sha256((vendor / "echarts.min.js").read_bytes()).hexdigest()
    assert digest in readme and "5.6.0" in readme and "Apache-2.0" in readme
    assert "Apache License" in (vendor / "LICENSE-echarts.txt").read_text()
    html = (STATIC / "index.html").read_text()
    assert not re.search(r"(src|href)=\"https?://", html), "no CDN at run time"


def test_the_dashboard_command_is_registered() -> None:
    command: Any = typer.main.get_command(app)
    assert "dashboard" in command.commands
    assert Path(STATIC / "app.js").exists()


def test_metrics_count_requests_by_route_template_not_by_path(client: Client) -> None:
    answers = _call(
        client,
        DashboardSettings(),
        ("/api/options", {}),
        ("/api/forecast?from=yesterday", {}),
        ("/no/such/page/1", {}),
        ("/no/such/page/2", {}),
        ("/metrics", {}),
    )
    assert [a[0] for a in answers] == [200, 400, 404, 404, 200]
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answers[-1][2].decode())
        for s in family.samples
    }
    count = "dealstream_dashboard_requests_total"
    assert samples[(count, (("route", "/api/options"), ("status", "200")))] >= 1
    assert samples[(count, (("route", "/api/forecast"), ("status", "400")))] >= 1
    assert samples[(count, (("route", "unmatched"), ("status", "404")))] >= 2
    assert not any("/no/such" in str(labels) for _, labels in samples)
