"""A work queue with client-go's guarantees, for asyncio.

- a key is queued at most once, however often it is added;
- a key is never handed to two workers at once: added while being processed, it is
  queued again when that worker is done;
- ``add_after`` schedules a key for later; an earlier schedule wins over a later one
  (an ``add`` meanwhile leaves the schedule in place: one extra look is harmless, a
  missed one is not);
- ``failures``/``forget`` keep a per-key failure count for exponential back-off.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(self, *, base_delay: float = 1.0) -> None:
        self._ready: asyncio.Queue[K] = asyncio.Queue()
        self._queued: set[K] = set()
        self._processing: set[K] = set()
        self._dirty: set[K] = set()
        self._timers: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        self._failures: dict[K, int] = {}
        self.base_delay = base_delay

    def __len__(self) -> int:
        return len(self._queued)

    def add(self, key: K) -> None:
        if key in self._processing:
            self._dirty.add(key)
            return
        if key not in self._queued:
            self._queued.add(key)
            self._ready.put_nowait(key)

    def add_after(self, key: K, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        current = self._timers.get(key)
        if current is not None and current[0] <= when:
            return
        if current is not None:
            current[1].cancel()
        self._timers[key] = (when, loop.call_at(when, self._fire, key))

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    async def get(self) -> K:
        key = await self._ready.get()
        self._queued.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def backoff(self, key: K, ceiling: float) -> float:
        """Count a failure of ``key``; the delay before its next try (doubling, capped)."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        return float(min(self.base_delay * 2**failures, ceiling))

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)

    def scheduled(self, key: K) -> bool:
        return key in self._timers

    def close(self) -> None:
        for _, timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
