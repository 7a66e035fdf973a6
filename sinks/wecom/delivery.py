"""Sends newly raised store tasks to their store's staff as WeCom app messages, off the hot path.

The engine hands over task events as it publishes them (:class:`EventRouter` listener); they go
to a bounded queue and one thread sends them, so a slow or failing WeCom never stalls the
engine. A task is sent once per process (ids are remembered, so a replayed batch does not send
again); a task whose store has no recipients and no default is counted as ``unrouted``. When the
queue is full the task is counted as ``dropped`` and logged: its event is on ``tasks.store.v1``
either way, so no task is lost, only its push message.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter

from dealstream.sinks.wecom.client import WecomClient, WecomError
from dealstream.sinks.wecom.settings import WecomSendSettings

log = logging.getLogger(__name__)

MESSAGES = Counter(
    "dealstream_wecom_task_messages_total",
    "Store tasks handed to WeCom delivery, by outcome",
    ["outcome"],  # sent, failed, unrouted, dropped, duplicate
)
REMEMBERED = 100_000  # task ids kept to avoid sending a replayed task twice
_STOP = object()


class TaskDelivery:
    """Listener for task events; call :meth:`close` (or let ``atexit``) to drain the queue."""

    def __init__(self, settings: WecomSendSettings, *, client: WecomClient | None = None) -> None:
        self.settings = settings
        self.client = client or WecomClient(settings)
        self._queue: queue.Queue[Any] = queue.Queue(settings.queue_size)
        self._sent: OrderedDict[str, None] = OrderedDict()
        self._thread = threading.Thread(target=self._run, name="wecom-delivery", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def __call__(self, events: Sequence[dict[str, Any]]) -> None:
        for event in events:
            task = event["payload"]
            if task.get("status") != "OPEN":
                continue
            touser = self.recipients(task.get("store_id"))
            if not touser:
                MESSAGES.labels("unrouted").inc()
                continue
            try:
                self._queue.put_nowait((touser, task))
            except queue.Full:
                MESSAGES.labels("dropped").inc()
                log.warning("WeCom queue full: task %s not pushed", task["task_id"])

    def recipients(self, store_id: str | None) -> str:
        users = self.settings.store_users.get(store_id or "", "")
        return users or self.settings.default_users

    def close(self, timeout_s: float = 10.0) -> None:
        """Send what is queued (up to ``timeout_s``), then stop the thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            touser, task = item
            task_id = task["task_id"]
            if task_id in self._sent:
                MESSAGES.labels("duplicate").inc()
                continue
            try:
                self._send(touser, task)
            except WecomError as error:
                MESSAGES.labels("failed").inc()
                log.warning("WeCom message for task %s failed: %s", task_id, error)
                continue
            except Exception:  # never let one task end delivery for all later ones
                MESSAGES.labels("failed").inc()
                log.exception("WeCom message for task %s failed", task_id)
                continue
            MESSAGES.labels("sent").inc()
            self._sent[task_id] = None
            while len(self._sent) > REMEMBERED:
                self._sent.popitem(last=False)

    def _send(self, touser: str, task: dict[str, Any]) -> None:
        subject = task.get("series") or task.get("sku") or ""
        store = task.get("store_id") or "未知门店"
        stock = task.get("stock_on_hand")
        facts = f"近期浏览{task['views']}次" + ("" if stock is None else f" · 库存{stock}")
        if self.settings.msgtype == "text":
            content = f"【到店跟进】{store} · {subject}\n{facts}\n{task['script']}"
            self.client.send_text(touser, content)
            return
        self.client.send_textcard(
            touser,
            title=f"到店跟进：{subject}",
            description=(
                f'<div class="gray">{store}</div><div class="normal">{task["script"]}</div>'
                f'<div class="highlight">{facts}</div>'
            ),
            url=self.settings.task_url.replace("{task_id}", str(task["task_id"])),
        )


def delivery_listeners(settings: WecomSendSettings | None = None) -> list[TaskDelivery]:
    """Task delivery when WeCom is configured (``DEALSTREAM_WECOM_SEND_*``), else nothing."""
    s = settings or WecomSendSettings()
    if not s.enabled:
        return []
    log.info("store tasks are sent to WeCom at %s (agent %s)", s.base_url, s.agent_id)
    return [TaskDelivery(s)]
