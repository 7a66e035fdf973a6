"""Real protocol peers for integration tests: a throwaway PostgreSQL from Debian's package.

``.ci/peers.sh`` installs the package; here a server is initialised in a temp dir, started on
a free loopback port (as the ``postgres`` user when we are root: postgres refuses root) and
removed afterwards. Each test gets its own database.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@dataclass(frozen=True)
class PostgresServer:
    port: int
    user: str = "postgres"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={dbname}"


def _as_server_user(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: "
            "run `bash .ci/peers.sh` (installs Debian's postgresql package)"
        )
    root = Path(tempfile.mkdtemp(prefix="dealstream-pg-"))
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    port = free_port()
    run = lambda args: subprocess.run(  # noqa: E731
        _as_server_user(args), check=True, capture_output=True, timeout=120
    )
    try:
        run(
            [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8"]
        )
        options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w",
             "-o", options, "start"])  # fmt: skip
        server = PostgresServer(port)
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(server.dsn(), connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield server
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                _as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w",
                                 "stop"]),
                check=False, capture_output=True, timeout=60,
            )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres(postgres_server: PostgresServer) -> Iterator[str]:
    """DSN of a fresh database, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server.dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield postgres_server.dsn(name)
    with psycopg.connect(postgres_server.dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- Mosquitto (MQTT) -----------------------------------------------------------------------


@dataclass(frozen=True)
class MosquittoServer:
    host: str
    port: int


@pytest.fixture
def mosquitto() -> Iterator[MosquittoServer]:
    """A Mosquitto broker on a free loopback port with a generated config, stopped afterwards.

    Persistence off and anonymous access on: each test gets a fresh broker, so persistent
    sessions live only as long as the test.
    """
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        pytest.skip("mosquitto not found: run `bash .ci/peers.sh` (Debian's mosquitto package)")
    root = Path(tempfile.mkdtemp(prefix="dealstream-mqtt-"))
    port = free_port()
    config = root / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        f"log_dest file {root / 'log'}\nmax_queued_messages 100000\n"
    )
    if os.geteuid() == 0:
        shutil.chown(root, "mosquitto")  # it drops root privileges to this user
    process = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    log = (root / "log").read_text() if (root / "log").exists() else ""
                    raise RuntimeError(f"mosquitto did not start: {log[-2000:]}") from None
                time.sleep(0.05)
        yield MosquittoServer("127.0.0.1", port)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        shutil.rmtree(root, ignore_errors=True)
