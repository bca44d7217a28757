"""
Poll samples: the polls one process sends for a run, counted into its journal.

`evolink-async report` draws polls over time from them. Both journals carry
a sample with their group commits (`PollSamples`), and commit one alone,
without an fsync, while polls go on and nothing else is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Final

import attrs

__all__ = ["POLL_SAMPLE_EVERY", "PollSample", "PollSamples"]

#: Seconds between two samples of the poll count while no write commits one.
POLL_SAMPLE_EVERY: Final = 1.0


class PollSamples:
    """
    The polls one process has sent for a run, sampled into its journal.

    The runner hands over a count (`start`); every group commit then carries
    a sample (this process, the time, the count so far) when the count moved
    since the last sample. While polls go on and no write comes for
    `POLL_SAMPLE_EVERY` seconds, the journal commits a sample alone, without
    waiting for the disk (`synchronous=NORMAL` in SQLite, `synchronous_commit
    = off` in PostgreSQL): the next durable commit takes it to disk, and a
    sample lost to a crash costs resolution only, the counts being
    cumulative. So the journal's fsyncs stay one per group commit.
    """

    def __init__(self, owner: str | None = None) -> None:
        #: Names this process's samples: a run's processes each count their own.
        self.owner = owner or secrets.token_hex(8)
        self._count: Callable[[], int] | None = None
        self._written: int | None = None
        self._ticker: asyncio.Task[None] | None = None

    def start(self, count: Callable[[], int], kick: Callable[[], None]) -> None:
        """Sample `count()` from now on; `kick` commits a sample alone when one is due."""
        self._count = count
        if self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(
                self._tick(kick), name="evolink-async poll samples"
            )

    async def _tick(self, kick: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(POLL_SAMPLE_EVERY)
            if self.due() is not None:
                kick()

    def due(self) -> int | None:
        """The count to sample now, or None: nothing new since the last sample."""
        if self._count is None:
            return None
        count = self._count()
        return None if count == self._written else count

    def wrote(self, count: int) -> None:
        """`count` was committed."""
        self._written = count

    async def stop(self) -> None:
        """Stop the sampler; the final sample goes with the journal's last flush."""
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker


@attrs.frozen(kw_only=True, slots=True)
class PollSample:
    """One sample of the polls a process sent: who, when, how many so far."""

    owner: str
    at: datetime
    sent: int
