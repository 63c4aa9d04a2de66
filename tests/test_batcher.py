"""Group formation: a group waits (at most ``linger``) for the clients the last one answered."""
import asyncio
import time

from service.batcher import GroupCommitter, Outcome


def _committer(linger, max_appeals=1000):
    seen = []

    def process(items):
        seen.append(list(items))
        return [Outcome(tags=[{"id": i}]) for i in items]

    return GroupCommitter(process, max_appeals=max_appeals, linger=linger), seen


def test_the_next_group_waits_for_the_requests_the_last_one_answered():
    async def main():
        gc, seen = _committer(linger=30.0)
        await asyncio.gather(*(gc.submit(i, 1) for i in range(3)))  # nothing to wait for: at once
        assert seen == [[0, 1, 2]]
        first = asyncio.ensure_future(gc.submit(3, 1))
        await asyncio.sleep(0.2)
        assert seen == [[0, 1, 2]]  # one back of three answered: the group waits
        t = time.monotonic()
        await asyncio.gather(first, gc.submit(4, 1), gc.submit(5, 1))
        assert seen == [[0, 1, 2], [3, 4, 5]] and time.monotonic() - t < 10  # the third came: it went
    asyncio.run(main())


def test_a_group_goes_after_linger_with_what_came_and_then_stops_waiting():
    async def main():
        gc, seen = _committer(linger=1.0)
        await asyncio.gather(*(gc.submit(i, 1) for i in range(3)))
        t = time.monotonic()
        await gc.submit(3, 1)  # the other two never come back
        assert time.monotonic() - t >= 1.0 and seen[-1] == [3]
        t = time.monotonic()
        await gc.submit(4, 1)  # a lone request after a lone one does not wait
        assert seen[-1] == [4] and time.monotonic() - t < 0.5
    asyncio.run(main())


def test_a_full_queue_does_not_wait():
    async def main():
        gc, seen = _committer(linger=30.0, max_appeals=100)
        await asyncio.gather(*(gc.submit(i, 1) for i in range(3)))
        t = time.monotonic()
        await gc.submit("batch", 100)  # as many appeals as a group may hold
        assert seen[-1] == ["batch"] and time.monotonic() - t < 10
    asyncio.run(main())
