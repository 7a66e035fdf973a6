"""Bad configuration fails at startup with exit 2 and a message naming the setting to fix.

No broker is needed: the point is what happens when none answers. Every command runs in its own
process (a worker hosts faust and chDB); ``timeout`` only guards against the hang being tested.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dealstream.cli.main import app
from dealstream.streams.business import BUNDLED_RULES
from dealstream.streams.compliance import DEFAULT_RULES as COMPLIANCE_RULES

CLOSED = "127.0.0.1:1"  # nothing listens on port 1 (and connecting is refused at once)
HANG_GUARD_S = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dealstream(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "DEALSTREAM_KAFKA_BOOTSTRAP": CLOSED,
        "DEALSTREAM_KAFKA_CONNECT_TIMEOUT_S": "2",
        "DEALSTREAM_CLICKHOUSE_URL": f"chdb://{tmp_path / 'chdb'}",
        "DEALSTREAM_POS_FILE_CURSOR_FILE": str(tmp_path / "cursor.json"),
        "DEALSTREAM_WORKER_WEB_PORT": str(free_port()),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "dealstream.cli.main", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        check=False,
        cwd=tmp_path,
    )


@pytest.mark.parametrize(
    "args",
    [["topics", "create"], ["worker"], ["connectors", "pos-file", "export.csv"]],
    ids=["topics-create", "worker", "pos-file-connector"],
)
def test_unreachable_broker_exits_2_naming_the_bootstrap_setting(
    tmp_path: Path, args: list[str]
) -> None:
    (tmp_path / "export.csv").write_text("transaction_id,line_no\n", encoding="utf-8")
    result = dealstream(tmp_path, *args)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "DEALSTREAM_KAFKA_BOOTSTRAP" in result.stderr and CLOSED in result.stderr
    assert "Traceback" not in result.stderr


def test_incomplete_sasl_settings_are_named(tmp_path: Path) -> None:
    result = dealstream(tmp_path, "topics", "create", DEALSTREAM_KAFKA_SECURITY_PROTOCOL="SASL_SSL")
    assert result.returncode == 2
    assert "DEALSTREAM_KAFKA_SASL_MECHANISM" in result.stderr


def test_unsupported_clickhouse_scheme_exits_2_before_connecting(tmp_path: Path) -> None:
    result = dealstream(tmp_path, "worker", DEALSTREAM_CLICKHOUSE_URL="clickhouse://ch:9000/db")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "unsupported URL scheme" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("bundled", "name"),
    [(BUNDLED_RULES, "business"), (COMPLIANCE_RULES, "compliance")],
    ids=["business", "compliance"],
)
def test_unknown_rule_field_is_named_with_the_allowed_ones(
    tmp_path: Path, bundled: Path, name: str
) -> None:
    text = bundled.read_text(encoding="utf-8")
    first_id = re.search(r"^(\s*)- id: ", text, flags=re.MULTILINE)
    assert first_id is not None
    indent = first_id.group(1) + "  "
    misspelt = text.replace("\n" + indent + "severity:", "\n" + indent + "severty:", 1)
    assert misspelt != text
    broken = tmp_path / "rules.yaml"
    broken.write_text(misspelt, encoding="utf-8")
    result = CliRunner().invoke(app, ["rules", "validate", str(broken), "--name", name])
    assert result.exit_code == 1, result.output
    assert "unknown field 'severty'" in result.output and "allowed:" in result.output
    assert str(broken) in result.output
