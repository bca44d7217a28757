"""
The PostgreSQL journal: one run's jobs shared by every process that runs it.

The same three durable writes as the SQLite journal (`begin` before the
create, `created` with the task id, `finished` with the outcome), group
committed, in tables made on first use and scoped by `run_id`:

- `evolink_jobs`: one row per (run, job): key, fingerprint, uploads, task
  id, outcome, the process that owns it, and when each write landed;
- `evolink_workers`: one row per process of a run, its heartbeat;
- `evolink_polls`: samples of the polls each process has sent (`PollSamples`),
  which `evolink-async report` sums over the run's processes.

A database made by an earlier version gets the new table and columns when a
process opens it (under the same lock as the first `CREATE TABLE`).

Sharing the work: a job is claimed with `INSERT ... ON CONFLICT DO NOTHING`
(one writer wins the row) or taken over with a guarded `UPDATE` (PostgreSQL
locks the row, and the second writer re-checks the guard after the first
commits, so again one wins). A process's claims last while its heartbeat
does: a task renews its worker row every third of `lease`; a job whose
owner has not been seen for `lease` seconds (a process killed, a machine
gone) is taken over by the next process that looks, which re-attaches to its
task or re-sends its create with the same derived key (the server replays
it). A job finished by a process seen running since this one started is
that process's outcome; one finished by a process that ended (or whose
lease lapsed) before is a resume.

Nothing here holds the API key: job ids, keys, task ids, fingerprints,
upload URLs and outcomes only. A password in the URL is never shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

from .._errors import JournalError, ValidationError
from .._watch.calibration import dump_snapshot, parse_snapshot
from .commits import Committed, GroupCommit, Statement
from .journal import Claim, JournalEntry
from .keys import check_run_id
from .polls import PollSample, PollSamples

if TYPE_CHECKING:
    import asyncpg

__all__ = ["PgJournal", "safe_url"]

logger = logging.getLogger("evolink_async")

_FORMAT: Final = "evolink-async journal 1"
_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS evolink_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS evolink_jobs (
    run_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    idempotency_key TEXT,
    fingerprint TEXT NOT NULL,
    task_id TEXT,
    outcome TEXT,
    uploads TEXT,
    owner TEXT,
    begun_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    polls INTEGER,
    PRIMARY KEY (run_id, job_id)
)""",
    """CREATE TABLE IF NOT EXISTS evolink_workers (
    run_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    seen_at TIMESTAMPTZ NOT NULL,
    ended_at TIMESTAMPTZ,
    PRIMARY KEY (run_id, owner)
)""",
    """CREATE TABLE IF NOT EXISTS evolink_polls (
    run_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    sent BIGINT NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS evolink_polls_run ON evolink_polls (run_id, owner, at)",
)
#: Columns added after the first journals: an older database gets them (empty).
_ADDED_COLUMNS: Final = (("polls", "INTEGER"),)
#: Serialises the first `CREATE TABLE IF NOT EXISTS` of processes starting
#: together (PostgreSQL's own check is not safe against a concurrent create).
_SCHEMA_LOCK: Final = 0x65766C6B
_COLUMNS: Final = (
    "job_id, idempotency_key, fingerprint, task_id, outcome, uploads,"
    " begun_at, created_at, finished_at, polls"
)
#: Whether the owner of row `j` is running and was seen within the lease.
_LIVE: Final = (
    "EXISTS (SELECT 1 FROM evolink_workers w WHERE w.run_id = j.run_id AND w.owner = j.owner"
    " AND w.ended_at IS NULL AND w.seen_at > now() - make_interval(secs => {lease}))"
)
#: Whether the owner of row `j` was seen running since this process started.
_ALONGSIDE: Final = (
    "EXISTS (SELECT 1 FROM evolink_workers w WHERE w.run_id = j.run_id AND w.owner = j.owner"
    " AND coalesce(w.ended_at, w.seen_at) >= {started})"
)
#: Pages of `entries()`: few round trips, little memory.
_PAGE: Final = 500
#: Connections: claims, group commits and the heartbeat each get one.
_POOL_SIZE: Final = 4


def safe_url(url: str) -> str:
    """`url` without its password, for messages."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return "postgresql://(unreadable URL)"


class PgJournal(Committed):
    """
    A job journal in a PostgreSQL database, shared by the processes of one run.

    `run_id` scopes every row; `lease` is how long a silent process keeps
    its jobs.
    """

    def __init__(self, url: str, *, run_id: str, lease: float) -> None:
        self._url = url
        self.where = safe_url(url)
        self.run_id = check_run_id(run_id)
        self.lease = lease
        #: This process in the run: owns the jobs it claims.
        self.owner = secrets.token_hex(8)
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._started: datetime | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._commits = GroupCommit(self._commit, PollSamples(self.owner))

    # -- lifecycle -----------------------------------------------------------

    async def open(self) -> None:
        """Connect, make the tables if missing, and join the run."""
        try:
            import asyncpg
        except ImportError:
            raise JournalError(
                f"{self.where}: a PostgreSQL journal needs asyncpg:"
                " pip install 'evolink-async[postgres]'"
            ) from None
        async with self._errors("cannot open"):
            try:
                self._pool = await asyncpg.create_pool(
                    self._url, min_size=1, max_size=_POOL_SIZE, command_timeout=60
                )
            except ValueError:
                # The driver's own words may quote the URL, password and all.
                raise JournalError(f"{self.where}: not a usable PostgreSQL URL") from None
            async with self._pool.acquire() as db, db.transaction():
                await db.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
                for statement in _SCHEMA:
                    await db.execute(statement)
                present = {
                    row["column_name"]
                    for row in await db.fetch(
                        "SELECT column_name FROM information_schema.columns"
                        " WHERE table_name = 'evolink_jobs' AND table_schema = current_schema()"
                    )
                }
                for name, kind in _ADDED_COLUMNS:
                    if name not in present:  # a database from before the column was kept
                        await db.execute(f"ALTER TABLE evolink_jobs ADD COLUMN {name} {kind}")
                await db.execute(
                    "INSERT INTO evolink_meta VALUES ('format', $1) ON CONFLICT DO NOTHING",
                    _FORMAT,
                )
                found = await db.fetchval("SELECT value FROM evolink_meta WHERE key = 'format'")
                if found != _FORMAT:
                    raise JournalError(f"{self.where}: not an evolink-async journal ({found!r})")
                self._started = await db.fetchval(
                    "INSERT INTO evolink_workers VALUES ($1, $2, now(), now(), NULL)"
                    " RETURNING started_at",
                    self.run_id,
                    self.owner,
                )
        self._heartbeat = asyncio.get_running_loop().create_task(
            self._beat(), name="evolink-async journal heartbeat"
        )

    async def close(self) -> None:
        """Flush, give back the jobs left unfinished (others take them at once), disconnect."""
        try:
            await self._commits.samples.stop()
            if self._pool is not None:
                self._commits.kick()
            await self.flush()
        finally:
            heartbeat, self._heartbeat = self._heartbeat, None
            if heartbeat is not None:
                heartbeat.cancel()
                with contextlib.suppress(asyncio.CancelledError, JournalError):
                    await heartbeat
            pool, self._pool = self._pool, None
            if pool is not None:
                try:
                    async with self._errors("closing failed"):
                        await pool.execute(
                            "UPDATE evolink_jobs SET owner = NULL"
                            " WHERE run_id = $1 AND owner = $2 AND outcome IS NULL",
                            self.run_id,
                            self.owner,
                        )
                        await pool.execute(
                            "UPDATE evolink_workers SET seen_at = now(), ended_at = now()"
                            " WHERE run_id = $1 AND owner = $2",
                            self.run_id,
                            self.owner,
                        )
                finally:
                    await pool.close()

    async def _beat(self) -> None:
        """Renew this process's lease every third of it, until cancelled."""
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                await self._db().execute(
                    "UPDATE evolink_workers SET seen_at = now()"
                    " WHERE run_id = $1 AND owner = $2 AND ended_at IS NULL",
                    self.run_id,
                    self.owner,
                )
            except Exception as exc:  # a missed beat is retried; the lease has slack
                logger.warning("journal heartbeat failed: %s", type(exc).__name__)

    def _db(self) -> asyncpg.Pool[asyncpg.Record]:
        if self._pool is None:
            raise JournalError(f"{self.where}: the journal is closed")
        return self._pool

    @contextlib.asynccontextmanager
    async def _errors(self, doing: str) -> AsyncIterator[None]:
        """asyncpg's and the network's failures, as a JournalError naming the database."""
        import asyncpg

        try:
            yield
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            reason = str(exc).replace(self._url, self.where) or type(exc).__name__
            raise JournalError(f"{self.where}: {doing} ({reason})") from None

    # -- reads and claims ----------------------------------------------------

    async def bind_run(self, run_id: str | None) -> str:
        """The journal's run id; another one is refused."""
        if run_id is not None and run_id != self.run_id:
            raise ValidationError(f"run_id={run_id!r}: this journal was opened for {self.run_id!r}")
        return self.run_id

    async def load_calibration(self) -> object:
        """What the watchers of this run learned (the last to keep it), or None."""
        async with self._errors("reading the calibration failed"), self._db().acquire() as db:
            value = await db.fetchval(
                "SELECT value FROM evolink_meta WHERE key = $1", f"calibration:{self.run_id}"
            )
        return parse_snapshot(value if isinstance(value, str) else None)

    async def save_calibration(self, snapshot: Mapping[str, Any]) -> None:
        """Keep what the watcher learned, for this run's processes to start from."""
        async with self._errors("keeping the calibration failed"), self._db().acquire() as db:
            await db.execute(
                "INSERT INTO evolink_meta VALUES ($1, $2)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                f"calibration:{self.run_id}",
                dump_snapshot(snapshot),
            )

    async def claim(self, job_id: str, fingerprint: str, *, again: bool = False) -> Claim:
        """
        Take `job_id` for this process if no live process holds it.

        A new job's row is inserted (one process wins); a job whose owner's
        lease lapsed, or that an earlier run finished, is taken over.
        """
        async with self._errors("claim failed"), self._db().acquire() as db:
            won = await db.fetchval(
                "INSERT INTO evolink_jobs (run_id, job_id, fingerprint, owner)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
                self.run_id,
                job_id,
                fingerprint,
                self.owner,
            )
            if won:
                return Claim(first=True, entry=None)
            lease = self.lease
            # Taken: a job nobody holds, or whose owner's lease lapsed; if it is
            # finished, only when that owner did not run alongside this process
            # (then the outcome is an earlier run's, and this one resumes it).
            taken = await db.fetchrow(
                f"UPDATE evolink_jobs j SET owner = $3 WHERE run_id = $1 AND job_id = $2"  # noqa: S608 -- fixed text
                f" AND fingerprint = $4 AND owner IS DISTINCT FROM $3 AND (owner IS NULL OR"
                f" (NOT {_LIVE.format(lease='$5')} AND"
                f" (outcome IS NULL OR NOT {_ALONGSIDE.format(started='$6')})))"
                f" RETURNING {_COLUMNS}",
                self.run_id,
                job_id,
                self.owner,
                fingerprint,
                lease,
                self._started,
            )
            if taken is not None:
                # A row claimed but never begun is a new job to its new owner.
                entry = self._entry(taken) if taken["idempotency_key"] else None
                return Claim(first=True, entry=entry)
            row = await db.fetchrow(
                f"SELECT {_COLUMNS}, owner = $3 AS mine,"  # noqa: S608 -- fixed text
                f" {_ALONGSIDE.format(started='$4')} AS alongside"
                " FROM evolink_jobs j WHERE run_id = $1 AND job_id = $2",
                self.run_id,
                job_id,
                self.owner,
                self._started,
            )
        if row is None:  # gone between the two statements: someone reset the run
            raise JournalError(f"{self.where}: job {job_id!r} vanished while being claimed")
        entry = self._entry(row)
        if row["mine"]:
            return Claim(first=again, entry=entry)
        if row["fingerprint"] != fingerprint:
            return Claim(first=True, entry=entry)
        if row["outcome"] is not None and row["alongside"]:
            return Claim(first=True, entry=entry, elsewhere=True)
        # Unfinished under a live lease; or finished by an owner not seen since
        # this process started, which may be running yet (its next beat says
        # so) or dead (its lease lapses, and the outcome is resumed here).
        return Claim(first=True, entry=entry, held=True)

    async def get(self, job_id: str) -> JournalEntry | None:
        """The entry of `job_id` in this run, or None."""
        await self.flush()
        async with self._errors("read failed"):
            row = await self._db().fetchrow(
                f"SELECT {_COLUMNS} FROM evolink_jobs WHERE run_id = $1 AND job_id = $2",  # noqa: S608 -- fixed text
                self.run_id,
                job_id,
            )
        return self._entry(row) if row is not None else None

    async def counts(self) -> dict[str, int]:
        """Jobs begun, created and finished in this run; `stalled`: unfinished, owner silent."""
        await self.flush()
        async with self._errors("read failed"):
            row = await self._db().fetchrow(
                "SELECT"  # noqa: S608 -- fixed text
                " count(*) FILTER (WHERE task_id IS NULL AND outcome IS NULL),"
                " count(*) FILTER (WHERE task_id IS NOT NULL AND outcome IS NULL),"
                " count(*) FILTER (WHERE outcome IS NOT NULL),"
                " count(*) FILTER (WHERE outcome IS NULL AND owner IS NOT NULL"
                f" AND NOT {_LIVE.format(lease='$2')}),"
                " count(*) FILTER (WHERE outcome IS NULL AND owner IS NULL)"
                " FROM evolink_jobs j WHERE run_id = $1",
                self.run_id,
                self.lease,
            )
        assert row is not None
        return {
            "begun": row[0],
            "created": row[1],
            "finished": row[2],
            "stalled": row[3],
            "released": row[4],
        }

    async def entries(self) -> AsyncIterator[JournalEntry]:
        """Every job of the run, by job id, a page at a time."""
        await self.flush()
        after = ""
        while True:
            async with self._errors("read failed"):
                rows = await self._db().fetch(
                    f"SELECT {_COLUMNS} FROM evolink_jobs"  # noqa: S608 -- fixed text
                    " WHERE run_id = $1 AND job_id > $2 ORDER BY job_id LIMIT $3",
                    self.run_id,
                    after,
                    _PAGE,
                )
            if not rows:
                return
            for row in rows:
                yield self._entry(row)
            after = rows[-1]["job_id"]

    async def poll_samples(self) -> list[PollSample]:
        """Every poll sample of the run, by process, oldest first."""
        await self.flush()
        async with self._errors("read failed"):
            rows = await self._db().fetch(
                "SELECT owner, at, sent FROM evolink_polls WHERE run_id = $1 ORDER BY owner, at",
                self.run_id,
            )
        return [PollSample(owner=row["owner"], at=row["at"], sent=row["sent"]) for row in rows]

    # -- writes (group-committed) --------------------------------------------

    async def begin(
        self,
        job_id: str,
        key: str,
        fingerprint: str,
        uploads: Mapping[str, str] | None = None,
    ) -> None:
        """Record a job's Idempotency-Key (and upload URLs); returns once committed."""
        await self._write(
            "INSERT INTO evolink_jobs"
            " (run_id, job_id, idempotency_key, fingerprint, uploads, owner, begun_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, now()) ON CONFLICT (run_id, job_id) DO UPDATE"
            " SET idempotency_key = EXCLUDED.idempotency_key, uploads = EXCLUDED.uploads,"
            " begun_at = EXCLUDED.begun_at",
            (
                self.run_id,
                job_id,
                key,
                fingerprint,
                json.dumps(dict(uploads), separators=(",", ":")) if uploads else None,
                self.owner,
            ),
        )

    async def created(self, job_id: str, task_id: str) -> None:
        """Record the task a job created; returns once committed."""
        await self._write(
            "UPDATE evolink_jobs SET task_id = $3, created_at = now()"
            " WHERE run_id = $1 AND job_id = $2",
            (self.run_id, job_id, task_id),
        )

    async def finished(
        self, job_id: str, outcome: Mapping[str, Any], *, polls: int | None = None
    ) -> None:
        """Record a job's final outcome (and its task's poll count, if known); once committed."""
        await self._write(
            "UPDATE evolink_jobs SET outcome = $3, finished_at = now(),"
            " polls = coalesce($4, polls) WHERE run_id = $1 AND job_id = $2",
            (self.run_id, job_id, json.dumps(outcome, separators=(",", ":")), polls),
        )

    async def _commit(self, statements: list[Statement], sample: int | None) -> None:
        """One group commit in one transaction (a sample alone: no wait for the disk)."""
        async with (
            self._errors("write failed"),
            self._db().acquire() as db,
            db.transaction(),
        ):
            for sql, params in statements:
                await db.execute(sql, *params)
            if sample is not None:
                await db.execute(
                    "INSERT INTO evolink_polls VALUES ($1, $2, now(), $3)",
                    self.run_id,
                    self.owner,
                    sample,
                )
            if statements:
                # Every commit is a heartbeat too: an outcome is never
                # seen before its owner is seen at least as late.
                await db.execute(
                    "UPDATE evolink_workers SET seen_at = now()"
                    " WHERE run_id = $1 AND owner = $2 AND ended_at IS NULL",
                    self.run_id,
                    self.owner,
                )
            else:
                # A poll sample alone does not wait for the disk; the
                # next durable commit takes it along.
                await db.execute("SET LOCAL synchronous_commit = off")

    def _entry(self, row: asyncpg.Record) -> JournalEntry:
        try:
            outcome = json.loads(row["outcome"]) if row["outcome"] else None
            uploads = json.loads(row["uploads"]) if row["uploads"] else None
        except (ValueError, RecursionError):
            raise JournalError(f"{self.where}: job {row['job_id']!r} has a damaged entry") from None
        return JournalEntry(
            job_id=row["job_id"],
            idempotency_key=row["idempotency_key"] or "",
            fingerprint=row["fingerprint"],
            task_id=row["task_id"],
            outcome=outcome,
            uploads=uploads,
            begun_at=row["begun_at"],
            created_at=row["created_at"],
            finished_at=row["finished_at"],
            polls=row["polls"],
        )
