from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from dealstream.sinks.clickhouse.settings import (
    ChdbTarget,
    ClickHouseSettings,
    HttpTarget,
    parse_url,
)


def test_default_url_is_local_chdb_under_cwd() -> None:
    target = ClickHouseSettings().target()
    assert target == ChdbTarget(path=Path.cwd().resolve() / ".local" / "chdb")


def test_env_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DEALSTREAM_CLICKHOUSE_URL", f"chdb://{tmp_path}?database=bi")
    monkeypatch.setenv("DEALSTREAM_CLICKHOUSE_BATCH_ROWS", "500")
    s = ClickHouseSettings()
    assert s.batch_rows == 500
    assert s.target() == ChdbTarget(path=tmp_path, database="bi")


def test_relative_chdb_path_resolves_against_cwd(tmp_path: Path) -> None:
    assert parse_url("chdb://./data/ch", cwd=tmp_path) == ChdbTarget(path=tmp_path / "data" / "ch")


def test_http_url_keeps_password_secret() -> None:
    target = parse_url("https://bi:p%40ss@ch.example/sales")
    assert isinstance(target, HttpTarget)
    assert (target.host, target.port, target.username, target.database, target.secure) == (
        "ch.example",
        8443,
        "bi",
        "sales",
        True,
    )
    assert target.password.get_secret_value() == "p@ss"
    assert "p@ss" not in repr(target)


def test_password_setting_overrides_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEALSTREAM_CLICKHOUSE_URL", "http://bi@ch:8123/db")
    monkeypatch.setenv("DEALSTREAM_CLICKHOUSE_PASSWORD", "from-env")
    target = ClickHouseSettings().target()
    assert isinstance(target, HttpTarget)
    assert target.password == SecretStr("from-env")
    assert (target.port, target.secure) == (8123, False)


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("chdb://host/data", "three slashes"),
        ("chdb://memory", "durable storage"),
        ("chdb:///data?dir=x", "unknown options"),
        ("chdb:///data?database=a-b", "invalid database name"),
        ("clickhouse://ch:9000", "unsupported URL scheme"),
        ("http://:8123/db", "no host"),
    ],
)
def test_bad_urls_fail_fast_with_a_hint(url: str, hint: str) -> None:
    with pytest.raises(ValidationError, match=hint):
        ClickHouseSettings(url=url)


def test_password_never_appears_in_errors() -> None:
    with pytest.raises(ValidationError) as info:
        ClickHouseSettings(url="http://bi:hunter2@ch/bad-db")
    assert "hunter2" not in str(info.value)


def test_pending_bound_must_hold_a_batch() -> None:
    with pytest.raises(ValidationError, match="max_pending_rows"):
        ClickHouseSettings(batch_rows=100, max_pending_rows=10)
