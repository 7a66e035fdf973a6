"""POS file export connector: CSV / JSON Lines files → ``pos.transactions.v1``.

The cursor per file is the byte offset after the last line Kafka acknowledged, saved every
``checkpoint_every`` lines and at the end, so a killed connector resumes with no gap; the few
lines re-sent after a crash keep their deterministic event ids.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from dealstream.broker.clients import make_producer
from dealstream.broker.settings import KafkaSettings
from dealstream.connectors.base import CheckResult, Connector, RunStats
from dealstream.connectors.cursor import CursorStore
from dealstream.connectors.output import EventWriter
from dealstream.connectors.pii import Desensitizer, PiiSettings
from dealstream.connectors.pos_file.parse import EVENT_TYPE, RowError, to_event
from dealstream.connectors.pos_file.reader import check_files, read_lines
from dealstream.connectors.sdk.metrics import ConnectorMetrics
from dealstream.schemas import registry


class PosFileSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DEALSTREAM_POS_FILE_", extra="forbid")

    paths: list[Path] = Field(default_factory=list)
    cursor_file: Path = Field(
        default_factory=lambda: Path.cwd() / ".local" / "cursors" / "pos-file.json"
    )
    source: str = "pos-file"
    checkpoint_every: int = 5_000


class PosFileConnector(Connector):
    """POS export files (CSV / JSON Lines) to pos.transactions.v1, resumable by byte offset."""

    name = "pos-file"
    settings_class = PosFileSettings

    def __init__(
        self,
        settings: PosFileSettings,
        *,
        kafka: KafkaSettings,
        pii: PiiSettings | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.kafka = kafka
        self._pii = Desensitizer((pii or PiiSettings()).key)
        self._writer: EventWriter | None = None
        self._cursors: CursorStore | None = None
        self.metrics = ConnectorMetrics(settings.source)  # the SDK connectors' series

    def check(self) -> CheckResult:
        return check_files(self.settings.paths)

    def setup(self) -> None:
        result = self.check()
        if not result.ok:
            raise ValueError(result.message)
        producer = make_producer(self.kafka, client_id=f"dealstream-{self.name}")
        self._writer = EventWriter(
            producer,
            event_type=EVENT_TYPE,
            source=self.settings.source,
            topic_prefix=self.kafka.topic_prefix,
            encode=registry.encoder(),
        )
        self._cursors = CursorStore(self.settings.cursor_file)

    def run(self) -> RunStats:
        assert self._writer is not None and self._cursors is not None, "call setup() first"
        for path in self.settings.paths:
            if not self.running:
                break
            self._run_file(path.resolve(), self._writer, self._cursors)
        return self.stats

    def _cursor_key(self, path: Path) -> str:
        stat = path.stat()
        return f"{path}#{stat.st_ino}"

    def _run_file(self, path: Path, writer: EventWriter, cursors: CursorStore) -> None:
        key = self._cursor_key(path)
        saved = cursors.get(key) or {}
        start = int(saved.get("offset", 0))
        if start >= os.path.getsize(path):
            return
        pending_offset = start
        since_checkpoint = 0
        for line in read_lines(path, start_offset=start):
            if not self.running:
                break
            self.stats.read += 1
            self.metrics.read()
            position = f"{path}:{line.number}"
            if line.error is not None:
                writer.reject(
                    raw=line.raw, position=position, code=line.error[0], message=line.error[1]
                )
                self._dead_lettered()
            else:
                assert line.fields is not None
                try:
                    record = to_event(
                        line.fields,
                        pii=self._pii,
                        source=self.settings.source,
                        ingested_at_ms=int(time.time() * 1000),
                    )
                except RowError as error:
                    writer.reject(
                        raw=line.raw, position=position, code=error.code, message=error.message
                    )
                    self._dead_lettered()
                else:
                    if writer.write(record, raw=line.raw, position=position):
                        self.stats.produced += 1
                        self.metrics.produced(EVENT_TYPE)
                    else:
                        self._dead_lettered()
            pending_offset = line.end_offset
            since_checkpoint += 1
            if since_checkpoint >= self.settings.checkpoint_every:
                writer.flush()
                cursors.set(key, {"offset": pending_offset})
                self.metrics.cursor_confirmed()
                since_checkpoint = 0
        writer.flush()
        cursors.set(key, {"offset": pending_offset})
        self.metrics.cursor_confirmed()

    def _dead_lettered(self) -> None:
        self.stats.dead_letters += 1
        self.metrics.dead_lettered(EVENT_TYPE)

    def cleanup(self, failed: bool) -> None:
        if self._writer is not None:
            # The cursor never moved past unacknowledged lines: a failure here loses nothing.
            with contextlib.suppress(Exception):
                self._writer.flush(10.0)
