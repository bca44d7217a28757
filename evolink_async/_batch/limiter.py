"""
`AIMDLimiter`: how many creates a batch run keeps in flight.

A 429 on a create halves the limit (multiplicative decrease); each create
that goes through without one wins a little back, one slot per `limit`
successes (additive increase), up to the ceiling the run was given. The
limit can shrink while slots are in use: holders keep their slot, and new
ones wait until the count is under the new limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["AIMDLimiter"]


class AIMDLimiter:
    """A concurrency limit that shrinks and grows while in use (AIMD)."""

    def __init__(self, limit: int) -> None:
        self.ceiling = limit
        self.limit = limit
        self.lowest = limit
        self.in_use = 0
        self._successes = 0
        self._changed = asyncio.Event()

    async def acquire(self, stopped: Callable[[], bool]) -> bool:
        """Take a slot; False (and no slot) if `stopped()` turns true first."""
        while self.in_use >= self.limit:
            if stopped():
                return False
            self._changed.clear()
            await self._changed.wait()
        self.in_use += 1
        return True

    def wake(self) -> None:
        """Make waiting `acquire` calls look at `stopped()` again."""
        self._changed.set()

    def release(self) -> None:
        """Give a slot back."""
        self.in_use -= 1
        self._changed.set()

    def decrease(self) -> None:
        """A create met a 429: halve the limit."""
        self.limit = max(1, self.limit // 2)
        self.lowest = min(self.lowest, self.limit)
        self._successes = 0

    def increase(self) -> None:
        """A create went through: one more slot per `limit` of these."""
        if self.limit >= self.ceiling:
            return
        self._successes += 1
        if self._successes >= self.limit:
            self._successes = 0
            self.limit += 1
            self._changed.set()
