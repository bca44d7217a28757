"""
How fast a batch run creates: `CreateSlots` (creates in flight) and
`CreatePacer` (creates per second).

`CreateSlots` is the run's `concurrency`: jobs being claimed, uploaded or
created at once. It can shrink while in use: holders keep their slot, and
new ones wait until the count is under the new limit.

`CreatePacer` spaces the create attempts at the rate the server allows,
found from its 429s by `RateControl` (`_watch/rate.py`): it starts at
`START_CREATE_RATE` (or the ceiling given), grows while creates wait for
it, and on a 429 sits just under the rate the server was measured to let
through, probing upward now and then. Halving the creates in flight on a
429 (as this module once did) leaves the rate to chance: a key's limit is
a rate, so it is paced as one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

from .._watch.budget import TokenBucket
from .._watch.rate import RateControl
from .shared_budget import Budget

__all__ = ["START_CREATE_RATE", "CreatePacer", "CreateSlots"]

#: Creates per second a run starts at (doubling each second they wait for
#: it, until the server's first 429): a run of a few jobs barely waits, a
#: large one reaches its key's limit in a few seconds.
START_CREATE_RATE: Final = 50.0


class CreateSlots:
    """A concurrency limit that may change while in use."""

    def __init__(self, limit: int) -> None:
        self.ceiling = limit
        self.limit = limit
        self.in_use = 0
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


class CreatePacer:
    """
    Creates per second, at the rate the server allows (`RateControl`).

    A `Pacer` for the transport (`Transport.pace`): it paces every create
    attempt, retries included, and hears every reply, a 429 the moment it
    comes (not once the create is through after retries).
    """

    def __init__(self, *, start: float = START_CREATE_RATE, ceiling: float | None = None) -> None:
        self.control = RateControl(start=start, ceiling=ceiling, what="creates")
        self._bucket: TokenBucket | None = None
        #: Attempts sent and not yet answered.
        self.in_flight = 0
        #: Budgets shared with other processes, told of every create 429.
        self.gates: list[Budget] = []

    async def take(self) -> None:
        """Wait until the next create may go out (the rate, and any Retry-After)."""
        loop = asyncio.get_running_loop()
        control = self.control
        while True:
            now = loop.time()
            if self._bucket is None:
                self._bucket = TokenBucket(control.rate, now)
            delay = control.blocked - now
            if delay <= 0:
                delay = self._bucket.delay(now, control.rate)
            if delay <= 0:
                break
            control.waited(now)
            await asyncio.sleep(delay)
        control.sent(now)
        self.in_flight += 1

    def answered(self, *, rate_limited: bool, retry_after: float | None) -> None:
        """An attempt got a reply: a 429 (with its Retry-After) or another."""
        self.in_flight -= 1
        now = asyncio.get_running_loop().time()
        if rate_limited:
            self.control.rate_limited(now, in_flight=self.in_flight, retry_after=retry_after)
            for gate in self.gates:
                gate.rate_limited("create")
        else:
            self.control.accepted(now)

    def lost(self) -> None:
        """An attempt got no reply."""
        self.in_flight -= 1
