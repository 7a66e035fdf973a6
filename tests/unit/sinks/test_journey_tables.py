"""Migration 0007 against chDB: the journeys pipeline's rows fit, and the funnel views answer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from clickhouse_connect.driver.client import Client

from dealstream.sinks.clickhouse import ClickHouseSettings, connect, migrate
from dealstream.streams.journeys import CHANNEL_HEALTH, CUSTOMER_MERGES, JOURNEY_STEPS
from dealstream.streams.pipeline import TableSpec
from tests.unit.streams.test_journeys_pipeline import T0, DictChangelog, Feed, H, chat, pipeline


@pytest.fixture
def client(settings: ClickHouseSettings) -> Iterator[Client]:
    c = connect(settings=settings)
    migrate(c)
    yield c
    c.command(f"DROP DATABASE IF EXISTS `{c.database}`")
    c.close()


@pytest.mark.parametrize("spec", [JOURNEY_STEPS, CUSTOMER_MERGES, CHANNEL_HEALTH])
def test_column_constants_match_the_migrated_tables(client: Client, spec: TableSpec) -> None:
    name, columns = spec.name, spec.columns
    described = client.query(
        "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = "
        "{t:String} ORDER BY position",
        parameters={"t": name},
    ).result_rows
    assert tuple(r[0] for r in described) == columns


def test_funnel_views_answer_on_the_resolved_customer(client: Client) -> None:
    f, p = Feed(), pipeline(DictChangelog())
    batches = [
        # A: added (under its WeCom contact), visits and buys within 72 h (under its phone).
        [f.added(T0, "a", "wecom_external:a", "unionid:a", "SH001")],
        [f.sale(T0 + 20 * H, "phone:a", "T-a")],
        [f.view(T0 + 21 * H, "unionid:a", "phone:a")],  # links the two: a merge
        # B: added, buys only after 72 h; C: added last, still within its 72 h.
        [f.added(T0 + H, "b", "wecom_external:b", "unionid:b", "SH001")],
        [f.view(T0 + 2 * H, "unionid:b", "phone:b"), f.sale(T0 + 80 * H, "phone:b", "T-b")],
        chat(f, 3 * H, "c", "GZ003", T0 + 100 * H, part=2),
    ]
    for batch in batches:
        result = p.process(batch)
        for table, rows in result.rows.items():
            if rows:
                cols = next(t.columns for t in p.tables if t.name == table)
                client.insert(table, rows, column_names=list(cols))
    funnel = client.query(
        "SELECT channel, added, visited_72h, purchased_72h, decided, not_converted_72h "
        "FROM journey_funnel ORDER BY channel"
    ).result_rows
    assert funnel == [("GZ003", 1, 0, 0, 0, 0), ("SH001", 2, 1, 1, 2, 1)]
    ((share,),) = client.query(
        "SELECT not_converted_72h_share FROM journey_conversion_72h"
    ).result_rows
    assert share == 0.5
    ((customers,),) = client.query(
        "SELECT uniqExact(customer_id) FROM journey_steps_resolved"
    ).result_rows
    assert customers == 3
    latest = dict(
        client.query("SELECT channel_id, alerting FROM channel_health_latest").result_rows
    )
    assert latest == {"SH001": 0, "GZ003": 1}
