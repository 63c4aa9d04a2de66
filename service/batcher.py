"""Group commit for ingest: concurrent requests of one worker share one tagging call and one
transaction.

Tagging a batch costs far less per appeal than tagging appeals one by one (the models
score a matrix at once), and one commit costs the same for one appeal or a hundred. So
while a group is being tagged and committed, requests that arrive queue up, and the next
group takes them all (up to ``max_appeals``). Each request is answered only after the
transaction holding its appeals committed. When the group cannot be stored as one (an
id conflict, the same id in two requests, a concurrent writer), its requests are stored
one by one, so each gets its own answer exactly as if it had come alone.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool

log = logging.getLogger(__name__)

__all__ = ["GroupCommitter", "Outcome"]


@dataclass
class Outcome:
    """One request's result: its tags and ``created`` flags, or the error to answer with."""
    tags: list[dict] = field(default_factory=list)
    created: list[bool] = field(default_factory=list)
    error: Exception | None = None


class GroupCommitter:
    """Queue requests and process them in groups.

    ``submit(item, size)`` queues one request (``size`` appeals); ``process(items)`` runs
    in a worker thread with a group of them and returns one :class:`Outcome` per item, in
    order. At most one group is in flight per
    committer, so tagging never competes with itself for the interpreter.

    Examples
    --------
    >>> seen = []
    >>> def process(items):
    ...     seen.append(len(items))
    ...     return [Outcome(tags=[{"id": i}]) for i in items]
    >>> async def main():
    ...     gc = GroupCommitter(process, max_appeals=3)
    ...     return await asyncio.gather(*(gc.submit(i, 1) for i in range(5)))
    >>> [o.tags[0]["id"] for o in asyncio.run(main())]
    [0, 1, 2, 3, 4]
    >>> seen  # all five queued before the first group started: groups of at most 3 appeals
    [3, 2]
    """

    def __init__(self, process: Callable[[list[Any]], list[Outcome]], *, max_appeals: int = 1000):
        self.process = process
        self.max_appeals = max_appeals
        self._pending: deque[tuple[Any, int, asyncio.Future]] = deque()
        self._draining = False

    async def submit(self, item: Any, size: int) -> Outcome:
        fut = asyncio.get_running_loop().create_future()
        self._pending.append((item, size, fut))
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().create_task(self._drain())
        outcome = await fut
        if outcome.error is not None:
            raise outcome.error
        return outcome

    def _take(self) -> list[tuple[Any, int, asyncio.Future]]:
        group, n = [], 0
        while self._pending and (not group or n + self._pending[0][1] <= self.max_appeals):
            group.append(self._pending.popleft())
            n += group[-1][1]
        return group

    async def _drain(self):
        try:
            while self._pending:
                group = self._take()
                try:
                    outcomes = await run_in_threadpool(self.process, [item for item, _, _ in group])
                except Exception as err:  # an unexpected failure answers every request in the group
                    log.exception("ingest group of %d requests failed", len(group))
                    outcomes = [Outcome(error=err)] * len(group)
                for (_, _, fut), outcome in zip(group, outcomes):
                    if not fut.done():  # the client may have gone away
                        fut.set_result(outcome)
        finally:
            self._draining = False
