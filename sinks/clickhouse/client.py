"""Open a clickhouse-connect client for the URL in the settings: embedded chDB or a server.

chDB traps this guards against (clickhouse-connect 1.12, chdb 4.4):

- ``get_client(interface="chdb", chdb_path=...)`` only logs "Ignoring arguments" and opens an
  in-memory engine whose data vanishes on exit; the keyword is ``path``. We check afterwards
  that the engine's ``default`` disk really is our directory.
- A second process on the same directory fails with a bare "Error initializing EmbeddedServer",
  so we take an ``flock`` first (see ``locking``) and say who holds it.
- One process hosts one engine path: clients on the same directory share data; opening another
  directory while a client is open raises ``ProgrammingError``.
"""

from __future__ import annotations

import functools
import weakref
from pathlib import Path

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError, ProgrammingError

from dealstream.sinks.clickhouse import locking
from dealstream.sinks.clickhouse.errors import ChdbPathMismatch, SinkConfigError
from dealstream.sinks.clickhouse.settings import ChdbTarget, ClickHouseSettings, HttpTarget


def connect(*, settings: ClickHouseSettings) -> Client:
    """Return a client whose default database exists and is selected.

    For chDB the directory lock is held until the client is closed (or garbage collected).
    """
    target = settings.target()
    if isinstance(target, ChdbTarget):
        return _connect_chdb(target)
    return _connect_http(target)


def _connect_http(target: HttpTarget) -> Client:
    try:
        client = clickhouse_connect.get_client(
            host=target.host,
            port=target.port,
            username=target.username,
            password=target.password.get_secret_value(),
            secure=target.secure,
        )
    except ClickHouseError as exc:  # at startup any failure is reachability or credentials
        raise _unreachable(target, exc) from None
    try:
        _use_database(client, target.database)
    except ClickHouseError as exc:
        client.close()
        raise _unreachable(target, exc) from None
    except BaseException:
        client.close()
        raise
    return client


def _unreachable(target: HttpTarget, exc: ClickHouseError) -> SinkConfigError:
    scheme = "https" if target.secure else "http"
    first = (str(exc).strip().splitlines() or ["no detail"])[0][:300]
    return SinkConfigError(
        f"cannot use ClickHouse at {scheme}://{target.host}:{target.port} as "
        f"{target.username!r}: {first}. Check DEALSTREAM_CLICKHOUSE_URL (host, port, user) "
        "and DEALSTREAM_CLICKHOUSE_PASSWORD"
    )


def _connect_chdb(target: ChdbTarget) -> Client:
    try:
        key = locking.acquire(target.path)
    except OSError as exc:
        raise SinkConfigError(
            f"cannot use {target.path} as the chDB directory ({exc.strerror or exc}): point "
            "DEALSTREAM_CLICKHOUSE_URL at a writable directory (chdb:///absolute/path)"
        ) from None
    try:
        client = clickhouse_connect.get_client(interface="chdb", path=str(key))
    except ProgrammingError as exc:
        locking.release(key)
        raise SinkConfigError(
            f"cannot open chDB at {key}: {exc}. One process hosts one chDB directory; close "
            "the other clients first or run this component in its own process"
        ) from exc
    except BaseException:
        locking.release(key)
        raise
    _release_with(client, key)
    try:
        verify_chdb_path(client, key)
        _use_database(client, target.database)
    except BaseException:
        client.close()
        raise
    return client


def verify_chdb_path(client: Client, directory: Path) -> None:
    """Fail unless the engine stores its data in ``directory`` (not in a temporary one)."""
    disk = client.command("SELECT path FROM system.disks WHERE name = 'default'")
    actual = Path(str(disk)).resolve()
    if actual != directory.resolve():
        raise ChdbPathMismatch(
            f"chDB stores data in {actual}, not in {directory}: the engine was opened without "
            "our path (clickhouse-connect needs path=..., it ignores chdb_path=), or another "
            "directory is already open in this process"
        )


def _use_database(client: Client, database: str) -> None:
    # The name was validated as an identifier by the settings, so quoting is enough here.
    client.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    client.database = database


def _release_with(client: Client, key: Path) -> None:
    """Release the directory lock exactly once, when the client closes or is collected."""
    finalizer = weakref.finalize(client, locking.release, key)
    original = client.close

    @functools.wraps(original)
    def close() -> None:
        try:
            original()
        finally:
            finalizer()  # runs locking.release at most once

    # Instance attribute on purpose: the public close() must also drop the lock.
    client.close = close  # type: ignore[method-assign]
