"""What the request path and the settles hand to the background loops: queues, never callbacks.

- `Handoff.dispatched`: staged tasks a settle (in its own script) or the dispatcher reserved,
  to be sent, and staged children that can never run, to be failed. Whoever puts them there
  owns nothing more; `gateway.tasks.loops` drains the queue into `Sender.send_staged` and
  `Tracker.drop`. A settle that may have freed more than it handed over asks for a dispatch
  pass (`dispatch_soon`).
- `Handoff.changed`: records whose client-visible state changed, for the client webhook
  outbox (only tasks with a webhook are put there).
- `Handoff.news_backlog`: task webhooks from GoAPI that arrived while Redis was unreachable.
  GoAPI does not retry a refused webhook, so the news is kept here (bounded) and applied by the
  completion tracker as soon as Redis answers again.

One Handoff per process, created by the app factory and given to every stage that puts work in
it and to the loops that take it out: data flows one way.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from gateway.taskrecord import TaskRecord
from routing.results import Dropped, Reservation

NEWS_BACKLOG = 10_000  # webhook bodies kept while Redis is down (oldest dropped first)


class Handoff:
    def __init__(self) -> None:
        self.dispatched: asyncio.Queue[Reservation | Dropped] = asyncio.Queue()
        self.changed: asyncio.Queue[TaskRecord] = asyncio.Queue()
        self.dispatch_wanted = asyncio.Event()
        self._news: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def hand_over(self, items: Iterable[Reservation | Dropped]) -> None:
        for item in items:
            self.dispatched.put_nowait(item)

    def dispatch_soon(self) -> None:
        self.dispatch_wanted.set()

    def change(self, record: TaskRecord) -> None:
        if record.webhook:  # most tasks have none: nothing to deliver
            self.changed.put_nowait(record)

    # -- webhook news that could not be applied ------------------------------------------
    def keep_news(self, task: dict[str, Any]) -> None:
        """Keep the latest news of one upstream task (by its upstream id)."""
        upstream_id = str(task.get("task_id"))
        self._news.pop(upstream_id, None)
        self._news[upstream_id] = task
        while len(self._news) > NEWS_BACKLOG:
            self._news.popitem(last=False)

    def take_news(self) -> list[dict[str, Any]]:
        news = list(self._news.values())
        self._news.clear()
        return news

    @property
    def news_waiting(self) -> int:
        return len(self._news)
