"""Negative-review runs per store: N negative reviews within a window raise one alert.

Event time throughout (``posted_at``), so a replay or a backlog alerts the same way as live
traffic. After an alert the run starts over and the store stays quiet for ``cooldown_ms``: a
store that keeps getting bad reviews alerts again after the cooldown, not on every review.

>>> run = StoreRun()
>>> [run.add(t, f"e{t}", threshold=3, window_ms=100, cooldown_ms=1000) for t in (0, 10, 20, 30)]
[None, None, ['e0', 'e10', 'e20'], None]
>>> run.add(150, "e150", threshold=1, window_ms=100, cooldown_ms=1000) is None  # cooling down
True
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class StoreRun:
    """The negative reviews of one store still inside the window, and when it last alerted."""

    negatives: deque[tuple[int, str]] = field(default_factory=deque)
    watermark_ms: int | None = None
    last_alert_ms: int | None = None

    def add(
        self, posted_ms: int, event_id: str, *, threshold: int, window_ms: int, cooldown_ms: int
    ) -> list[str] | None:
        """Count one negative review; the event ids of the run when it alerts, else None."""
        self.watermark_ms = max(posted_ms, self.watermark_ms or posted_ms)
        horizon = self.watermark_ms - window_ms
        if posted_ms < horizon:
            return None  # too old to be part of any current run
        self.negatives.append((posted_ms, event_id))
        while self.negatives and self.negatives[0][0] < horizon:
            self.negatives.popleft()
        if len(self.negatives) < threshold:
            return None
        if self.last_alert_ms is not None and posted_ms - self.last_alert_ms < cooldown_ms:
            return None
        run = sorted(self.negatives)
        self.negatives.clear()
        self.last_alert_ms = posted_ms
        return [event for _, event in run]
