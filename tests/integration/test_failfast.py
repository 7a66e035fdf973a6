"""A worker whose ClickHouse URL is wrong stops at startup with exit 2 and a hint (the broker is
fine, so the failure is ClickHouse's alone); credentials in the URL are never printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from dealstream.broker.settings import KafkaSettings
from tests.unit.test_cli_failfast import dealstream


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("http://bi:hunter2@127.0.0.1:1/db", "cannot use ClickHouse at http://127.0.0.1:1"),
        ("chdb:///proc/dealstream-not-writable", "writable directory"),
    ],
    ids=["unreachable-http", "chdb-not-writable"],
)
def test_wrong_clickhouse_url_exits_2_with_a_hint(
    tmp_path: Path, kafka: KafkaSettings, url: str, hint: str
) -> None:
    result = dealstream(
        tmp_path,
        "worker",
        DEALSTREAM_KAFKA_BOOTSTRAP=kafka.bootstrap,
        DEALSTREAM_KAFKA_TOPIC_PREFIX=kafka.topic_prefix,
        DEALSTREAM_CLICKHOUSE_URL=url,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert hint in result.stderr and "DEALSTREAM_CLICKHOUSE_URL" in result.stderr
    assert "hunter2" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
