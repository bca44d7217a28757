"""
The batch journal: what each job has reached, durably, for exact resume.

Storage is one SQLite file (stdlib `sqlite3`): a single file that survives
`kill -9` at any instant (WAL mode, `synchronous=FULL`: a write that returned
is on disk), needs no server, and answers "what do we know of job X" with an
index lookup, so a million-job journal never sits in memory.

Each job goes through up to three writes, each durable before the step it
guards:

1. `begin(job_id, key, fingerprint, uploads)`: *before* the create is sent,
   the job id, its Idempotency-Key and the URLs its local files were uploaded
   to. A crash after this re-sends the create with the same key and the same
   URLs (the same body), which the server replays: no second task.
2. `created(job_id, task_id)`: as soon as the create answered. A crash after
   this re-attaches to the task.
3. `finished(job_id, outcome)`: the final outcome (status, URL, path, error,
   credits). A crash after this leaves the job alone on resume.

Each write also stamps its row with the wall clock (`begun_at`, `created_at`,
`finished_at`, seconds since the epoch) in the same statement, so the
timeline `evolink-async report` draws costs no extra write and no extra fsync.
`finished` also keeps how many times the watcher read the job's task
(`polls`), and every group commit carries a sample of the polls this
process has sent (table `polls`: who, when, how many so far; see
`PollSamples`), so the report draws polls over time exactly, at no extra
fsync either.
`read_entries` reads a journal without taking it (read-only, no lock), so a
report can be made while a run still holds the file.

All SQLite work runs on one dedicated thread, never on the event loop.
Concurrent writes are committed together ("group commit"): every caller
waits for the commit that includes its write, and one fsync serves many jobs.

One run at a time: `open` takes an exclusive `flock` on the file (the
kernel drops it when the file is closed or the process dies, `kill -9`
included), so a second run on the same journal is refused before it sends
anything, instead of failing on the first job both claim. A file that is
not a journal is refused untouched: it is read read-only first, and only a
journal (or an empty file or database) is opened for writing. Every
failure of SQLite is a `JournalError` naming the file.

The journal never holds the API key: only job ids, idempotency keys, task
ids, a fingerprint (a hash) of each job's request, upload URLs, and outcomes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import attrs

from .._errors import JournalError
from .._watch.calibration import dump_snapshot, parse_snapshot
from .commits import Committed, GroupCommit, Statement
from .keys import check_run_id, new_run_id
from .polls import PollSample, PollSamples

__all__ = ["Claim", "Journal", "JournalEntry", "JournalError", "read_entries", "read_poll_samples"]

_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    task_id TEXT,
    outcome TEXT,
    uploads TEXT,
    begun_at REAL,
    created_at REAL,
    finished_at REAL,
    polls INTEGER
)""",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # Made when a run opens a journal from before it, like the added columns.
    "CREATE TABLE IF NOT EXISTS polls"
    " (owner TEXT NOT NULL, at REAL NOT NULL, sent INTEGER NOT NULL)",
)
_FORMAT: Final = "evolink-async journal 1"
#: Columns added after the first journals, each with its type: an older
#: journal gets them (empty) when a run opens it.
_ADDED_COLUMNS: Final = (
    ("uploads", "TEXT"),
    ("begun_at", "REAL"),
    ("created_at", "REAL"),
    ("finished_at", "REAL"),
    ("polls", "INTEGER"),
)
#: What `JournalEntry` is read from, in order.
_ENTRY_COLUMNS: Final = (
    "job_id, idempotency_key, fingerprint, task_id, outcome, uploads,"
    " begun_at, created_at, finished_at, polls"
)
#: The first bytes of every SQLite database file.
_SQLITE_HEADER: Final = b"SQLite format 3\x00"


@attrs.frozen(kw_only=True, slots=True)
class JournalEntry:
    """What the journal knows of one job."""

    job_id: str
    idempotency_key: str
    fingerprint: str
    task_id: str | None
    outcome: Mapping[str, Any] | None
    #: Local file (as given in the job) -> the URL it was uploaded to.
    uploads: Mapping[str, str] | None = None
    #: When each of the three writes reached the journal (None: not yet, or
    #: a journal that does not keep it).
    begun_at: datetime | None = None
    created_at: datetime | None = None
    finished_at: datetime | None = None
    #: How many times the watcher read the job's task (None: not recorded).
    polls: int | None = None


@attrs.frozen(kw_only=True, slots=True)
class Claim:
    """What claiming a job found: the runner's next step for it."""

    #: False: the job id was already read in this run (a duplicate).
    first: bool
    #: What earlier runs (or other processes) recorded; None for a new job.
    entry: JournalEntry | None
    #: Another live process of the run holds it: check again later.
    held: bool = False
    #: Another live process of the run finished it: its outcome is theirs.
    elsewhere: bool = False


class Journal(Committed):
    """
    A job journal in one SQLite file.

    `durable=False` (for runs without a journal, where it only tracks which
    job ids were seen) skips the fsyncs.
    """

    def __init__(self, path: Path, *, durable: bool = True) -> None:
        self.path = path
        self.where = str(path)
        self._durable = durable
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evolink-journal")
        self._db: sqlite3.Connection | None = None
        self._lock: int | None = None
        self._commits = GroupCommit(self._commit, PollSamples())

    # -- lifecycle (each runs on the journal thread) --------------------------

    async def open(self) -> None:
        """Open (or create) the file; check it is a journal."""
        await self._call(self._open_sync)

    def _open_sync(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = _lock(self.path)
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot open ({exc.strerror or exc})") from None
        try:
            _check_is_journal(self.path)
            self._db = self._connect()
        except BaseException:
            os.close(lock)
            raise
        self._lock = lock

    def _connect(self) -> sqlite3.Connection:
        """The connection to a file `_check_is_journal` let through, set up."""
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: cannot open as a journal ({exc})") from None
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={'FULL' if self._durable else 'OFF'}")
            # One transaction: a new journal has its tables and its format
            # row together, or nothing at all.
            db.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA:
                db.execute(statement)
            columns = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
            for name, kind in _ADDED_COLUMNS:
                if name not in columns:  # a journal from before the column was kept
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")
            db.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (_FORMAT,))
            row = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
            if row is None or row[0] != _FORMAT:
                db.execute("ROLLBACK")
                raise JournalError(f"{self.path}: not an evolink-async journal")
            db.execute("COMMIT")
            # Job ids seen in this run, to refuse duplicates: a temporary
            # table lives in temporary storage, not the journal, and keeps
            # memory flat however many jobs a run reads.
            db.execute("CREATE TEMP TABLE seen (job_id TEXT PRIMARY KEY)")
        except sqlite3.Error as exc:
            db.close()
            raise JournalError(f"{self.path}: cannot use as a journal ({exc})") from None
        except BaseException:
            db.close()
            raise
        return db

    async def close(self) -> None:
        """Flush pending writes and the last poll sample, close the file and release it."""
        try:
            await self._commits.samples.stop()
            if self._db is not None:
                self._commits.kick()
            await self.flush()
        finally:
            if self._db is not None or self._lock is not None:
                await self._call(self._close_sync)
            self._executor.shutdown(wait=False)

    def _close_sync(self) -> None:
        db, self._db = self._db, None
        lock, self._lock = self._lock, None
        try:
            if db is not None:
                db.close()
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: closing failed ({exc})") from exc
        finally:
            if lock is not None:
                os.close(lock)

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: {_failure(exc)}") from exc

    # -- reads ---------------------------------------------------------------

    async def get(self, job_id: str) -> JournalEntry | None:
        """The entry of `job_id`, or None if the journal has never seen it."""
        await self.flush()
        return self._entry(await self._call(self._get_sync, job_id))

    def _get_sync(self, job_id: str) -> tuple[Any, ...] | None:
        assert self._db is not None
        cursor = self._db.execute(
            f"SELECT {_ENTRY_COLUMNS} FROM jobs WHERE job_id = ?",  # noqa: S608 -- constants
            (job_id,),
        )
        row: tuple[Any, ...] | None = cursor.fetchone()
        return row

    async def claim(
        self, job_id: str, fingerprint: str | None = None, *, again: bool = False
    ) -> Claim:
        """
        Mark `job_id` as read in this run; say what earlier runs recorded of it.

        One run holds an SQLite journal at a time, so a job is never held
        elsewhere; `fingerprint` and `again` matter to shared journals only.
        """
        first, row = await self._call(self._claim_sync, job_id)
        return Claim(first=first, entry=self._entry(row))

    def _claim_sync(self, job_id: str) -> tuple[bool, tuple[Any, ...] | None]:
        assert self._db is not None
        cursor = self._db.execute("INSERT OR IGNORE INTO temp.seen VALUES (?)", (job_id,))
        return cursor.rowcount == 1, self._get_sync(job_id)

    async def bind_run(self, run_id: str | None) -> str:
        """
        The run id this journal belongs to: kept on first use, reused on resume.

        Raises:
            JournalError: the journal belongs to another run.
        """
        if run_id is not None:
            check_run_id(run_id)
        stored: str = await self._call(self._bind_run_sync, run_id or new_run_id())
        if run_id is not None and stored != run_id:
            raise JournalError(
                f"{self.path}: the journal of run {stored!r}, not {run_id!r};"
                " a new run needs a new journal"
            )
        return stored

    def _bind_run_sync(self, run_id: str) -> str:
        assert self._db is not None
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('run_id', ?)", (run_id,))
        row = self._db.execute("SELECT value FROM meta WHERE key = 'run_id'").fetchone()
        return str(row[0])

    async def load_calibration(self) -> object:
        """What the watcher learned in an earlier run, or None (unreadable: None too)."""
        return parse_snapshot(await self._call(self._calibration_sync, None))

    async def save_calibration(self, snapshot: Mapping[str, Any]) -> None:
        """Keep what the watcher learned, replacing what an earlier save kept."""
        await self._call(self._calibration_sync, dump_snapshot(snapshot))

    def _calibration_sync(self, text: str | None) -> str | None:
        """Read the kept calibration (`text` None), or keep `text`."""
        assert self._db is not None
        if text is not None:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('calibration', ?)", (text,))
            return text
        row = self._db.execute("SELECT value FROM meta WHERE key = 'calibration'").fetchone()
        return None if row is None else str(row[0])

    async def entries(self) -> AsyncIterator[JournalEntry]:
        """Every job the journal holds, in the order first recorded, a page at a time."""
        await self.flush()
        after = 0
        while True:
            rows: list[tuple[Any, ...]] = await self._call(self._page_sync, after)
            if not rows:
                return
            for row in rows:
                entry = self._entry(row[1:])
                assert entry is not None
                yield entry
            after = rows[-1][0]

    def _page_sync(self, after: int) -> list[tuple[Any, ...]]:
        assert self._db is not None
        return self._db.execute(
            f"SELECT rowid, {_ENTRY_COLUMNS} FROM jobs"  # noqa: S608 -- constants
            " WHERE rowid > ? ORDER BY rowid LIMIT 500",
            (after,),
        ).fetchall()

    async def counts(self) -> dict[str, int]:
        """How many jobs are begun (no task yet), created (no outcome yet) and finished."""
        await self.flush()
        return dict(await self._call(self._counts_sync))

    def _counts_sync(self) -> dict[str, int]:
        assert self._db is not None
        row = self._db.execute(
            "SELECT"
            " SUM(task_id IS NULL AND outcome IS NULL),"
            " SUM(task_id IS NOT NULL AND outcome IS NULL),"
            " SUM(outcome IS NOT NULL)"
            " FROM jobs"
        ).fetchone()
        return {"begun": row[0] or 0, "created": row[1] or 0, "finished": row[2] or 0}

    # -- writes (group-committed) --------------------------------------------

    async def begin(
        self,
        job_id: str,
        key: str,
        fingerprint: str,
        uploads: Mapping[str, str] | None = None,
    ) -> None:
        """Record a job's Idempotency-Key (and upload URLs); returns once it is on disk."""
        await self._write(
            "INSERT INTO jobs (job_id, idempotency_key, fingerprint, uploads, begun_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                job_id,
                key,
                fingerprint,
                json.dumps(dict(uploads), separators=(",", ":")) if uploads else None,
                time.time(),
            ),
        )

    async def created(self, job_id: str, task_id: str) -> None:
        """Record the task a job created; returns once it is on disk."""
        await self._write(
            "UPDATE jobs SET task_id = ?, created_at = ? WHERE job_id = ?",
            (task_id, time.time(), job_id),
        )

    async def finished(
        self, job_id: str, outcome: Mapping[str, Any], *, polls: int | None = None
    ) -> None:
        """
        Record a job's final outcome (and how many polls read its task, if
        known; an earlier count is kept otherwise); returns once it is on disk.
        """
        await self._write(
            "UPDATE jobs SET outcome = ?, finished_at = ?, polls = coalesce(?, polls)"
            " WHERE job_id = ?",
            (json.dumps(outcome, separators=(",", ":")), time.time(), polls, job_id),
        )

    async def _commit(self, statements: list[Statement], sample: int | None) -> None:
        """One group commit on the journal thread (a sample alone: no fsync)."""
        durable = bool(statements)
        if sample is not None:
            statements.append(
                (
                    "INSERT INTO polls (owner, at, sent) VALUES (?, ?, ?)",
                    (self._commits.samples.owner, time.time(), sample),
                )
            )
        await self._call(self._commit_sync, statements, durable)

    def _commit_sync(self, statements: list[tuple[str, tuple[Any, ...]]], durable: bool) -> None:
        assert self._db is not None
        db = self._db
        # A poll sample alone is not worth an fsync: in WAL mode `NORMAL`
        # commits without one, and the next durable commit syncs it too.
        light = self._durable and not durable
        if light:
            db.execute("PRAGMA synchronous=NORMAL")
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in statements:
                    db.execute(sql, params)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            if light:
                db.execute("PRAGMA synchronous=FULL")

    def _entry(self, row: Sequence[Any] | None) -> JournalEntry | None:
        return None if row is None else _entry_of(row, self.path)


def _entry_of(row: Sequence[Any], path: Path) -> JournalEntry:
    """The entry of a `_ENTRY_COLUMNS` row of the journal at `path`."""
    try:
        outcome = json.loads(row[4]) if row[4] else None
        uploads = json.loads(row[5]) if len(row) > 5 and row[5] else None
    except (ValueError, RecursionError):
        raise JournalError(f"{path}: job {row[0]!r} has a damaged entry") from None
    return JournalEntry(
        job_id=row[0],
        idempotency_key=row[1],
        fingerprint=row[2],
        task_id=row[3],
        outcome=outcome,
        uploads=uploads,
        begun_at=_moment(row[6]) if len(row) > 6 else None,
        created_at=_moment(row[7]) if len(row) > 7 else None,
        finished_at=_moment(row[8]) if len(row) > 8 else None,
        polls=_count(row[9]) if len(row) > 9 else None,
    )


def _count(value: object) -> int | None:
    """A stored count, or None for anything but a whole number >= 0."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def read_entries(path: Path) -> Iterator[JournalEntry]:
    """
    Every job of the journal at `path`, in the order first recorded, read-only.

    No lock is taken and nothing is written, so a run may hold the journal
    meanwhile (the entries are those of its last commit). Rows are read a
    page at a time; a journal from before a column was kept reads as if the
    column were empty.

    Raises:
        JournalError: the file is missing, not SQLite, or not a journal.
    """
    with _reading(path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if "jobs" not in tables:
            return
        present = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
        wanted = [name.strip() for name in _ENTRY_COLUMNS.split(",")]
        columns = ", ".join(name if name in present else "NULL" for name in wanted)
        for row in _pages(db, f"SELECT rowid, {columns} FROM jobs"):  # noqa: S608 -- our names
            yield _entry_of(row, path)


def read_poll_samples(path: Path) -> Iterator[PollSample]:
    """
    Every poll sample of the journal at `path`, in the order committed, read-only.

    Each process's samples come in its own order (its counts only grow); a
    journal from before samples were kept has none.

    Raises:
        JournalError: the file is missing, not SQLite, or not a journal.
    """
    with _reading(path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if "polls" not in tables:
            return
        for owner, at, sent in _pages(db, "SELECT rowid, owner, at, sent FROM polls"):
            moment, count = _moment(at), _count(sent)
            if isinstance(owner, str) and moment is not None and count is not None:
                yield PollSample(owner=owner, at=moment, sent=count)


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the journal at `path`; SQLite's failures as `JournalError`."""
    if not path.is_file():
        raise JournalError(f"{path}: no such journal")
    _check_is_journal(path)
    # With no -wal beside it, everything is in the file itself: `immutable`
    # reads it alone and leaves no -wal or -shm behind. With one (a run holds
    # the journal, or was killed), only a plain read-only look sees its commits.
    wal = path.with_name(path.name + "-wal")
    query = "mode=ro" if wal.exists() else "mode=ro&immutable=1"
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?{query}", uri=True)
    except sqlite3.Error as exc:
        raise JournalError(f"{path}: cannot read ({_failure(exc)})") from None
    try:
        yield db
    except sqlite3.Error as exc:
        raise JournalError(f"{path}: cannot read ({_failure(exc)})") from None
    finally:
        db.close()


def _pages(db: sqlite3.Connection, select: str) -> Iterator[tuple[Any, ...]]:
    """The rows of `select` (our own text, rowid first), by rowid, a page at a time, without it."""
    after = 0
    while True:
        rows = db.execute(
            f"{select} WHERE rowid > ? ORDER BY rowid LIMIT 500",  # our own text
            (after,),
        ).fetchall()
        if not rows:
            return
        for row in rows:
            yield row[1:]
        after = rows[-1][0]


def _moment(value: object) -> datetime | None:
    """A stored wall-clock time (seconds since the epoch) as an aware datetime."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):  # a value no datetime holds
        return None


def _lock(path: Path) -> int:
    """
    A descriptor of `path` (created empty if missing) holding its exclusive lock.

    Raises:
        JournalError: another run holds the lock.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    if sys.platform == "win32":  # pragma: no cover -- no flock there: one run at a time is on you
        return fd
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise JournalError(
            f"{path}: in use by another run (another `evolink-async batch` or "
            "`client.batch` with this journal); let it end, or use another journal"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check_is_journal(path: Path) -> None:
    """
    Refuse any file but a journal, an empty file or an empty database,
    reading it only.

    Raises:
        JournalError: the file is not an SQLite database, or is another
            program's database; it is left as it was.
    """
    if path.stat().st_size == 0:
        return
    with path.open("rb") as stream:
        header = stream.read(len(_SQLITE_HEADER))
    if header != _SQLITE_HEADER:
        # SQLite itself takes a file shorter than its header for an empty
        # database, and would write over it.
        raise JournalError(
            f"{path}: not an evolink-async journal (not SQLite); it was left untouched"
        )
    # `immutable` reads the file alone: SQLite makes no -wal or -shm beside
    # it and takes no lock. When that shows no table but a -wal is there (a
    # writer killed before its first checkpoint: our own journal after an
    # early `kill -9`, say), the tables are in the -wal, and only a plain
    # read-only look sees them; it writes nothing but a reader's mark in the
    # -shm index that SQLite itself rebuilds.
    tables, row = _probe(path, "mode=ro&immutable=1")
    wal = path.with_name(path.name + "-wal")
    if not tables and wal.exists() and wal.stat().st_size > 0:
        tables, row = _probe(path, "mode=ro")
    if not tables:
        return
    if row is None or row[0] != _FORMAT:
        shown = f" (its format: {row[0]!r})" if row is not None else ""
        raise JournalError(f"{path}: not an evolink-async journal{shown}; it was left untouched")


def _probe(path: Path, query: str) -> tuple[set[str], tuple[Any, ...] | None]:
    """The tables of the database at `path`, and its `meta` format row if any."""
    try:
        probe = sqlite3.connect(f"{path.resolve().as_uri()}?{query}", uri=True)
    except sqlite3.Error as exc:
        raise JournalError(f"{path}: cannot read ({exc})") from None
    try:
        tables = {
            row[0] for row in probe.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        row = None
        if "meta" in tables:
            row = probe.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
    except sqlite3.Error as exc:
        raise JournalError(
            f"{path}: not an evolink-async journal ({_failure(exc)}); it was left untouched"
        ) from None
    finally:
        probe.close()
    return tables, row


def _failure(exc: sqlite3.Error) -> str:
    """SQLite's reason, in words a user can act on."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, sqlite3.OperationalError) and "locked" in text:
        return f"{text} (another program holds the file)"
    return text
