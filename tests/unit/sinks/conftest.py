"""Shared chDB fixtures: one engine directory per test module, one database per test.

chDB hosts one engine path per process and takes ~1 s to start, so each module keeps one client
open on its directory (the engine stays warm) and each test connects to its own database there.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from dealstream.sinks.clickhouse import ClickHouseSettings, connect, migrate


@pytest.fixture(scope="module")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("chdb")
    keeper = connect(settings=ClickHouseSettings(url=f"chdb://{directory}"))
    yield directory
    keeper.close()


@pytest.fixture
def settings(chdb_dir: Path) -> ClickHouseSettings:
    database = f"t_{uuid.uuid4().hex[:12]}"
    return ClickHouseSettings(url=f"chdb://{chdb_dir}?database={database}", flush_retry_s=0)


@pytest.fixture
def client(settings: ClickHouseSettings) -> Iterator[Client]:
    c = connect(settings=settings)
    migrate(c)
    yield c
    c.command(f"DROP DATABASE IF EXISTS `{c.database}`")
    c.close()
