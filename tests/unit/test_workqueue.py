"""The work queue: each key once, never to two workers at once, earliest timer wins."""

from __future__ import annotations

import asyncio

from gitmoor.workqueue import WorkQueue


async def test_a_key_added_twice_is_queued_once() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.add("b")
    queue.add("a")
    assert len(queue) == 2
    assert [await queue.get(), await queue.get()] == ["a", "b"]


async def test_a_key_added_while_processed_comes_back_after_done() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    key = await queue.get()
    queue.add("a")
    assert len(queue) == 0  # not handed to a second worker meanwhile
    queue.done(key)
    assert len(queue) == 1
    assert await queue.get() == "a"


async def test_the_earliest_schedule_wins() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("a", 60)
    queue.add_after("a", 0.01)
    queue.add_after("a", 30)
    assert queue.scheduled("a")
    assert await asyncio.wait_for(queue.get(), 5) == "a"
    assert not queue.scheduled("a")
    queue.close()


async def test_backoff_doubles_up_to_the_ceiling_and_forget_resets() -> None:
    queue: WorkQueue[str] = WorkQueue(base_delay=1)
    delays = [queue.backoff("a", 10) for _ in range(6)]
    assert delays == [1, 2, 4, 8, 10, 10]
    queue.forget("a")
    assert queue.backoff("a", 10) == 1
