"""Exclusive ownership of a chDB directory by one process.

chDB has one embedded engine per process and no guard against a second process opening the same
directory (it fails later with an unhelpful "Error initializing EmbeddedServer"). An ``flock`` on
a file inside the directory turns that into an immediate, clear error. Clients of the same process
share the lock through a reference count, so it is released when the last one closes.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path
from typing import IO

from dealstream.sinks.clickhouse.errors import ChdbDirectoryLocked

LOCK_NAME = ".dealstream.lock"

_guard = threading.Lock()
_held: dict[Path, tuple[IO[str], int]] = {}  # process-wide: mirrors the kernel's flock state


def acquire(directory: Path) -> Path:
    """Take (or share, within this process) the lock of ``directory``; return its key."""
    key = directory.resolve()
    with _guard:
        if key in _held:
            handle, count = _held[key]
            _held[key] = (handle, count + 1)
            return key
        key.mkdir(parents=True, exist_ok=True)
        lock_path = key / LOCK_NAME
        handle = lock_path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise ChdbDirectoryLocked(
                f"chDB directory {key} is in use by process {owner} (lock {lock_path}); "
                "stop that process or point DEALSTREAM_CLICKHOUSE_URL at another directory"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        _held[key] = (handle, 1)
        return key


def release(key: Path) -> None:
    """Drop one reference taken by :func:`acquire`; unlock when it was the last."""
    with _guard:
        entry = _held.get(key)
        if entry is None:
            return
        handle, count = entry
        if count > 1:
            _held[key] = (handle, count - 1)
            return
        del _held[key]
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()


def holders() -> dict[Path, int]:
    """Directories this process holds, with their reference counts (for tests and health)."""
    with _guard:
        return {key: count for key, (_, count) in _held.items()}
