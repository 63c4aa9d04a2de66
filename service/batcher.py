"""Group commit for ingest: concurrent requests of one worker share one tagging call and one
transaction.

Tagging a batch costs far less per appeal than tagging appeals one by one (the models
score a matrix at once), and one commit costs the same for one appeal or a hundred. So
while a group is being tagged and committed, requests that arrive queue up, and the next
group takes them all (up to ``max_appeals``). Each request is answered only after the
transaction holding its appeals committed. When the group cannot be stored as one (an
id conflict, the same id in two requests, a concurrent writer), its requests are stored
one by one, so each gets its own answer exactly as if it had come alone.

Clients that were just answered tend to send again at once (a hotline system posting
appeals one after another, the benchmark's clients). Taking whatever is queued the moment
a group ends then makes groups alternate between one request — the first to come back —
and all the others (sizes 1, 7, 1, 7 … with 8 clients per worker), and every group of one
pays a whole tagging call and commit. So with ``linger`` the next group waits, at most
that long, for as many requests as the last group answered plus those already queued.
A lone request after a lone request does not wait; nor does a full queue.
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
    order. At most one group is in flight per committer, so tagging never competes with
    itself for the interpreter. ``linger`` (seconds) is the longest a group waits for the
    requests the last one answered to come back (see the module docstring). Should
    ``process`` itself raise, every request of the group gets a fresh exception made by
    ``failure(err)`` (default: a RuntimeError naming the error's type).

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

    def __init__(self, process: Callable[[list[Any]], list[Outcome]], *, max_appeals: int = 1000,
                 linger: float = 0.0, failure: Callable[[Exception], Exception] | None = None):
        self.process = process
        self.failure = failure or _failure
        self.max_appeals = max_appeals
        self.linger = linger
        self._pending: deque[tuple[Any, int, asyncio.Future]] = deque()
        self._draining = False
        self._queued = 0  # appeals in the queue
        self._expect = 0  # requests the next group waits for (at most ``linger`` seconds)
        self._enough: asyncio.Future | None = None

    def _full(self) -> bool:
        return len(self._pending) >= self._expect or self._queued >= self.max_appeals

    async def submit(self, item: Any, size: int) -> Outcome:
        fut = asyncio.get_running_loop().create_future()
        self._pending.append((item, size, fut))
        self._queued += size
        if self._enough is not None and self._full() and not self._enough.done():
            self._enough.set_result(None)
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
        self._queued -= n
        return group

    async def _drain(self):
        try:
            while self._pending:
                if self.linger and not self._full():
                    self._enough = asyncio.get_running_loop().create_future()
                    try:
                        await asyncio.wait_for(self._enough, self.linger)
                    except TimeoutError:
                        pass
                    self._enough = None
                group = self._take()
                try:
                    outcomes = await run_in_threadpool(self.process, [item for item, _, _ in group])
                except Exception as err:  # an unexpected failure answers every request in the group
                    log.exception("ingest group of %d requests failed", len(group))
                    # each request its own exception: one raised in many places grows its
                    # traceback at every raise
                    outcomes = [Outcome(error=self.failure(err)) for _ in group]
                for (_, _, fut), outcome in zip(group, outcomes):
                    if not fut.done():  # the client may have gone away
                        fut.set_result(outcome)
                self._expect = len(group) + len(self._pending)
        finally:
            self._draining = False


def _failure(err: Exception) -> Exception:
    return RuntimeError(f"the group this request was in failed ({type(err).__name__})")
