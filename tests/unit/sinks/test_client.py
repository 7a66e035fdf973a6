"""The client factory against a real embedded chDB (no shared engine: each test opens its own)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import clickhouse_connect
import pytest

from dealstream.sinks.clickhouse import (
    ChdbDirectoryLocked,
    ChdbPathMismatch,
    ClickHouseSettings,
    SinkConfigError,
    connect,
    locking,
)
from dealstream.sinks.clickhouse.client import verify_chdb_path

_CONNECT_IN_CHILD = """
import sys
from dealstream.sinks.clickhouse import ClickHouseSettings, connect
connect(settings=ClickHouseSettings(url=sys.argv[1])).close()
"""


def _settings(directory: Path, database: str = "dealstream") -> ClickHouseSettings:
    return ClickHouseSettings(url=f"chdb://{directory}?database={database}")


def test_ignored_chdb_path_keyword_is_caught(tmp_path: Path) -> None:
    # clickhouse-connect 1.12 logs "Ignoring arguments ... chdb_path" and opens an in-memory engine.
    raw = clickhouse_connect.get_client(interface="chdb", chdb_path=str(tmp_path))
    try:
        with pytest.raises(ChdbPathMismatch, match="ignores chdb_path"):
            verify_chdb_path(raw, tmp_path)
    finally:
        raw.close()
    assert list(tmp_path.iterdir()) == []


def test_data_outlives_the_client_that_wrote_it(tmp_path: Path) -> None:
    first = connect(settings=_settings(tmp_path, "sales"))
    first.command("CREATE TABLE t (x UInt32) ENGINE = MergeTree ORDER BY x")
    first.insert("t", [[1], [2], [3]], column_names=["x"])
    first.close()
    assert locking.holders() == {}
    assert (tmp_path / "metadata").is_dir()

    second = connect(settings=_settings(tmp_path, "sales"))
    try:
        assert second.command("SELECT sum(x) FROM t") == 6
        assert second.command("SELECT database FROM system.tables WHERE name = 't'") == "sales"
    finally:
        second.close()


def test_clients_of_one_process_share_the_directory(tmp_path: Path) -> None:
    a = connect(settings=_settings(tmp_path))
    b = connect(settings=_settings(tmp_path))
    assert locking.holders() == {tmp_path.resolve(): 2}
    a.close()
    a.close()  # closing twice must not release b's reference
    assert locking.holders() == {tmp_path.resolve(): 1}
    assert b.command("SELECT currentDatabase()") == "dealstream"
    b.close()
    assert locking.holders() == {}


def test_second_process_is_refused_while_the_first_holds_the_directory(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path}"
    owner = connect(settings=ClickHouseSettings(url=url))
    try:
        child = subprocess.run(
            [sys.executable, "-c", _CONNECT_IN_CHILD, url],
            capture_output=True,
            text=True,
            check=False,
        )
        assert child.returncode != 0
        assert "ChdbDirectoryLocked" in child.stderr
        assert f"in use by process {os.getpid()}" in child.stderr
    finally:
        owner.close()
    # Released on close: another process may take over now (lock only, no second engine).
    free = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, pathlib; from dealstream.sinks.clickhouse import locking;"
            "locking.acquire(pathlib.Path(sys.argv[1]))",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert free.returncode == 0, free.stderr


def test_lock_error_names_the_fix(tmp_path: Path) -> None:
    held = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, pathlib; from dealstream.sinks.clickhouse import locking;"
            "locking.acquire(pathlib.Path(sys.argv[1])); print('ok', flush=True); sys.stdin.read()",
            str(tmp_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert held.stdout is not None
        assert held.stdout.readline().strip() == "ok"
        with pytest.raises(ChdbDirectoryLocked, match="DEALSTREAM_CLICKHOUSE_URL"):
            connect(settings=_settings(tmp_path))
        assert locking.holders() == {}
    finally:
        held.communicate("")


def test_another_directory_in_the_same_process_is_a_config_error(tmp_path: Path) -> None:
    first = connect(settings=_settings(tmp_path / "a"))
    try:
        with pytest.raises(SinkConfigError, match="One process hosts one chDB directory"):
            connect(settings=_settings(tmp_path / "b"))
        assert locking.holders() == {(tmp_path / "a").resolve(): 1}
    finally:
        first.close()
