"""The sink against a real ClickHouse server over HTTP.

Runs when DEALSTREAM_CLICKHOUSE_TEST_URL names a server (``http://user:pass@host:8123``); each
test uses its own database and drops it afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

import pytest
from clickhouse_connect.driver.client import Client

from dealstream.sinks.clickhouse import BatchingSink, ClickHouseSettings, connect, migrate
from dealstream.sinks.clickhouse.tables import POS_TRANSACTIONS, POS_TRANSACTIONS_COLUMNS

pytestmark = pytest.mark.integration

SERVER_URL = os.environ.get("DEALSTREAM_CLICKHOUSE_TEST_URL", "")


@pytest.fixture
def settings() -> ClickHouseSettings:
    if not SERVER_URL.startswith(("http://", "https://")):
        pytest.skip("set DEALSTREAM_CLICKHOUSE_TEST_URL=http://user:pass@host:8123 to run")
    parts = urlsplit(SERVER_URL)
    url = urlunsplit(parts._replace(path=f"/it_{uuid.uuid4().hex[:12]}"))
    return ClickHouseSettings(url=url, batch_rows=3, flush_retry_s=0)


@pytest.fixture
def client(settings: ClickHouseSettings) -> Iterator[Client]:
    c = connect(settings=settings)
    yield c
    c.command(f"DROP DATABASE IF EXISTS `{c.database}`")
    c.close()


def test_migrate_and_write_through_the_sink(client: Client, settings: ClickHouseSettings) -> None:
    assert [m.version for m in migrate(client)] == [1]
    assert migrate(client) == []
    sink = BatchingSink(client, settings=settings, name=f"it-{client.database}")
    sink.register(POS_TRANSACTIONS, POS_TRANSACTIONS_COLUMNS)
    t = datetime(2025, 3, 1, tzinfo=UTC)
    price = Decimal("1.50")
    # fmt: off
    row = ("e1", "pos", "pos.line", t, t, None, "tx", 1, "s1", "east", "SKU", "bev", 1, price,
           Decimal(0), price, "CNY", "cash", None, None, False, "pos.transactions.v1", 0, 7)
    # fmt: on
    sink.add(POS_TRANSACTIONS, [row, row])
    assert sink.flush_all().rows == {POS_TRANSACTIONS: 2}
    assert client.command("SELECT count() FROM pos_transactions_dedup") == 1
