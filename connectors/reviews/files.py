"""Review exports (JSON Lines or CSV, one review a line) to ``review`` events, resumable.

Each file is a stream of the pull SDK whose cursor is the byte offset after the last line Kafka
acknowledged (saved by the SDK after each batch), so a restarted connector resumes mid-file with
no gap; re-sent lines keep their deterministic event ids. A file is keyed by path and inode, so
a replaced export is read from the top.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from dealstream.connectors.base import CheckResult
from dealstream.connectors.pos_file.reader import check_files, read_lines
from dealstream.connectors.reviews.mapping import EVENT_TYPE, review_event
from dealstream.connectors.sdk import Batch, Emit, Item, PullConnector, PullSettings, RecordError
from dealstream.connectors.sdk import Reject as RejectItem


class ReviewsFileSettings(PullSettings):
    model_config = SettingsConfigDict(env_prefix="DEALSTREAM_REVIEWS_FILE_", extra="forbid")

    source: str = "reviews-file"
    paths: list[Path] = Field(default_factory=list)
    platform: str = "export"
    """Platform of lines that do not name one (a ``platform`` column wins)."""
    default_region: str = ""
    cursor_file: Path = Path(".local/cursors/reviews-file.json")
    max_batch: int = Field(default=2_000, gt=0)
    stop_when_idle: bool = True
    """An export is read once; set False to follow files that are appended to."""


class ReviewsFileConnector(PullConnector[ReviewsFileSettings]):
    """Review exports (JSON Lines / CSV) to reviews.posts.v1, resumable by byte offset."""

    name = "reviews-file"
    settings_class = ReviewsFileSettings
    event_types = (EVENT_TYPE,)

    def streams(self) -> Sequence[str]:
        return [str(path.resolve()) for path in self.settings.paths]

    async def acheck(self) -> CheckResult:
        return check_files(self.settings.paths)

    async def fetch(self, stream: str, cursor: Any, limit: int) -> Batch:
        path = Path(stream)
        identity = f"{path.stat().st_ino}"
        state = cursor if isinstance(cursor, dict) and cursor.get("inode") == identity else {}
        start = int(state.get("offset", 0))
        if start >= os.path.getsize(path):
            return Batch([], {"inode": identity, "offset": start})
        now_ms = int(time.time() * 1000)
        items: list[Item] = []
        offset = start
        more = False
        for line in read_lines(path, start_offset=start):
            if len(items) >= limit:
                more = True
                break
            position = f"{path}:{line.number}"
            offset = line.end_offset
            if line.error is not None:
                code, message = line.error
                items.append(RejectItem(EVENT_TYPE, line.raw, position, code, message))
                continue
            assert line.fields is not None
            try:
                record = review_event(
                    line.fields, platform=self.settings.platform, source=self.settings.source,
                    pii=self.pii, ingested_at_ms=now_ms,
                    default_region=self.settings.default_region,
                )  # fmt: skip
            except RecordError as error:
                items.append(RejectItem(EVENT_TYPE, line.raw, position, error.code, error.message))
                continue
            items.append(Emit(EVENT_TYPE, record, line.raw, position))
        return Batch(items, {"inode": identity, "offset": offset}, more=more)
