"""
Group commit, for both journal backends.

Writers queue a statement and wait; one commit at a time takes everything
queued so far (and, when one is due, a sample of the polls sent), so one
fsync serves many jobs. Every writer waits for the commit that holds its
write and learns how it went: done, or the error that ended it (a
cancellation reaches it as a `JournalError`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeAlias

from .._errors import JournalError
from .polls import PollSamples

__all__ = ["Commit", "Committed", "GroupCommit", "Statement"]

#: One statement of a commit: SQL and its parameters.
Statement: TypeAlias = tuple[str, tuple[Any, ...]]
#: A backend's commit: the statements (possibly none) and the poll sample
#: to record with them (None: no sample due), in one transaction.
Commit: TypeAlias = Callable[[list[Statement], int | None], Awaitable[None]]


class GroupCommit:
    """The queue of a journal's writes and the one commit loop that empties it."""

    def __init__(self, commit: Commit, samples: PollSamples) -> None:
        self._commit = commit
        self.samples = samples
        self._pending: list[tuple[str, tuple[Any, ...], asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def write(self, sql: str, params: tuple[Any, ...]) -> None:
        """Queue one statement; return once the commit that holds it is done."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((sql, params, done))
        self.kick()
        await asyncio.shield(done)

    def kick(self) -> None:
        """Start a commit unless one is under way (it takes what is pending)."""
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._loop())

    async def flush(self) -> None:
        """Wait until every write made so far is committed."""
        while self._flushing is not None and not self._flushing.done():
            await asyncio.shield(self._flushing)

    async def _loop(self) -> None:
        while True:
            batch, self._pending = self._pending, []
            sample = self.samples.due()
            if not batch and sample is None:
                return
            try:
                await self._commit([(sql, params) for sql, params, _ in batch], sample)
            except BaseException as exc:
                settle(batch, exc)
                if not isinstance(exc, Exception):
                    raise
            else:
                if sample is not None:
                    self.samples.wrote(sample)
                settle(batch, None)
            if not self._pending:
                return


class Committed:
    """
    What a journal's writes share: each goes through its `GroupCommit`
    (`_commits`, made by the journal with its own commit).
    """

    _commits: GroupCommit

    def count_polls(self, sent: Callable[[], int]) -> None:
        """Sample `sent()`, the polls this process has sent for the run, into the journal."""
        self._commits.samples.start(sent, self._commits.kick)

    async def flush(self) -> None:
        """Wait until every write made so far is committed."""
        await self._commits.flush()

    async def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        await self._commits.write(sql, params)


def settle(
    batch: Sequence[tuple[str, Any, asyncio.Future[None]]], error: BaseException | None
) -> None:
    """
    Tell every writer in a group commit how it went: its write is on disk, or
    the error (a cancellation reaches them as a `JournalError`).
    """
    for _, _, done in batch:
        if done.done():
            continue
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error if isinstance(error, Exception) else JournalError(str(error)))
