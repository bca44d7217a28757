"""
The journal interface the runner uses, and opening one from `journal=`.

`JobJournal` is what both journals do: SQLite (`journal.py`, one file, one
run at a time) and PostgreSQL (`pgjournal.py`, one database shared by every
process of a run). The runner sees only this protocol; `open_journal` picks
the journal from the `journal` argument (a `postgresql://` URL, else a file
path), binds it to its run id and opens it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any, Final, Protocol

from .._errors import ValidationError
from .._numbers import finite_number
from .journal import Claim, Journal, JournalEntry

__all__ = [
    "DEFAULT_LEASE",
    "JobJournal",
    "check_lease",
    "is_database_url",
    "journal_name",
    "make_journal",
    "open_journal",
]

#: Seconds a process's claim on its jobs lasts without a heartbeat: long
#: enough to ride out a pause or a slow database, short enough that a dead
#: process's jobs are taken over within a minute.
DEFAULT_LEASE: Final = 60.0
_SCHEMES: Final = ("postgresql://", "postgres://")


class JobJournal(Protocol):
    """
    A durable record of every job of a run: three writes, each before the step it guards.

    `begin` (key, fingerprint and upload URLs, before the create is sent),
    `created` (the task id, as soon as it is known), `finished` (the final
    outcome, with the task's poll count). Writes are group-committed: each
    returns once it is durable; the commits also carry samples of the polls
    sent (`count_polls`).
    """

    #: Where the journal lives, for messages (never a password).
    where: str

    async def open(self) -> None:
        """Open (or create) the journal; refuse one that is not a journal."""

    async def close(self) -> None:
        """Flush pending writes and release what the journal holds."""

    async def flush(self) -> None:
        """Wait until every write made so far is durable."""

    async def bind_run(self, run_id: str | None) -> str:
        """The run id this journal records (given, kept, or made now)."""
        ...

    async def claim(self, job_id: str, fingerprint: str, *, again: bool = False) -> Claim:
        """
        Take `job_id` for this process, and say what is known of it.

        `again` re-checks a job an earlier claim found held by another
        process (so it is not a duplicate of this run).
        """
        ...

    async def get(self, job_id: str) -> JournalEntry | None:
        """The entry of `job_id`, or None."""

    async def counts(self) -> dict[str, int]:
        """Jobs `begun` (no task yet), `created` (no outcome yet) and `finished`."""
        ...

    def entries(self) -> AsyncIterator[JournalEntry]:
        """Every job of the run, a page at a time."""
        ...

    async def begin(
        self,
        job_id: str,
        key: str,
        fingerprint: str,
        uploads: Mapping[str, str] | None = None,
    ) -> None:
        """Record a job's Idempotency-Key (and upload URLs) before its create."""

    async def created(self, job_id: str, task_id: str) -> None:
        """Record the task a job created."""

    async def finished(
        self, job_id: str, outcome: Mapping[str, Any], *, polls: int | None = None
    ) -> None:
        """Record a job's final outcome, and how many polls read its task (if known)."""

    async def load_calibration(self) -> object:
        """What the watcher learned in an earlier run (`save_calibration`), or None."""

    async def save_calibration(self, snapshot: Mapping[str, Any]) -> None:
        """Keep what the watcher learned (JSON-ready), for the next run to start from."""

    def count_polls(self, sent: Callable[[], int]) -> None:
        """
        Sample `sent()`, the polls this process has sent for the run, from now on.

        Each group commit carries a sample when the count moved; while polls go
        on and nothing else is written, a sample is committed alone (at most one
        per `POLL_SAMPLE_EVERY` seconds) without an fsync of its own.
        """


def is_database_url(journal: object) -> bool:
    """Whether `journal` names a PostgreSQL database rather than a file."""
    return isinstance(journal, str) and journal.lower().startswith(_SCHEMES)


def journal_name(journal: str | os.PathLike[str] | None) -> str | Path | None:
    """`journal` as the runner takes it: a database URL kept as text, else a `Path`."""
    if journal is None:
        return None
    if is_database_url(journal):
        return str(journal)
    return Path(journal)


def check_lease(lease: object) -> float:
    """
    The lease, if it is a number of seconds > 0.

    Raises:
        ValidationError: not a finite number > 0.
    """
    value = finite_number(lease)
    if value is None or value <= 0:
        raise ValidationError(f"lease={lease!r}: must be a number of seconds > 0")
    return value


def make_journal(
    journal: str | Path,
    *,
    run_id: str | None,
    lease: float = DEFAULT_LEASE,
    durable: bool = True,
) -> JobJournal:
    """
    The journal `journal` names, not yet open.

    Raises:
        ValidationError: a PostgreSQL journal without a `run_id`.
    """
    if is_database_url(journal):
        if run_id is None:
            raise ValidationError(
                "run_id is required with a PostgreSQL journal: every process of"
                " one run names it (run_id='...', or --run-id on the command line)"
            )
        from .pgjournal import PgJournal

        return PgJournal(str(journal), run_id=run_id, lease=lease)
    return Journal(Path(journal), durable=durable)


async def open_journal(
    name: str | Path | None, *, run_id: str | None, lease: float
) -> tuple[JobJournal, str, tempfile.TemporaryDirectory[str] | None]:
    """
    Open the journal `name` names (None: a throwaway one), bound to its run.

    Returns:
        The open journal, the run id, and the temporary directory holding a
        throwaway journal (the caller removes it after closing the journal).

    Raises:
        JournalError: refused (another run holds it, it is not a journal):
            nothing was sent.
    """
    tempdir = None
    if name is not None:
        journal = make_journal(name, run_id=run_id, lease=lease)
    else:
        tempdir = tempfile.TemporaryDirectory(prefix="evolink-batch-")
        journal = make_journal(Path(tempdir.name) / "run.journal", run_id=None, durable=False)
    try:
        await journal.open()
        bound = await journal.bind_run(run_id)
    except BaseException:
        try:
            await journal.close()
        finally:
            if tempdir is not None:
                tempdir.cleanup()
        raise
    return journal, bound, tempdir
