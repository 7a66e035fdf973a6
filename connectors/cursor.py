"""Durable connector cursors in a local JSON state file, replaced atomically on every save.

A cursor is saved only after Kafka acknowledged every record before it, so a restarted
connector resumes with no gap; deterministic event ids make the few re-sent records harmless.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


class CursorStore:
    """Named cursors (JSON values) for one connector instance.

    >>> import tempfile, pathlib
    >>> store = CursorStore(pathlib.Path(tempfile.mkdtemp()) / "pos.json")
    >>> store.get("a.csv") is None
    True
    >>> store.set("a.csv", {"offset": 120}); CursorStore(store.path).get("a.csv")
    {'offset': 120}
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._values: dict[str, Any] = self._load()

    def _load(self) -> dict[str, Any]:
        try:
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        if not isinstance(loaded, dict):
            raise ValueError(f"cursor file {self.path} does not hold a JSON object; remove it")
        return loaded

    def get(self, name: str) -> Any:
        return self._values.get(name)

    def set(self, name: str, value: Any) -> None:
        self._values[name] = value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(self._values, handle, ensure_ascii=False, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
