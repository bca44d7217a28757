"""
Polls in the journal: each task's reads kept with its outcome, and samples of
the poll requests each process sent, on both backends, checked against what
the mock served; journals from before either was kept open, resume and report.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from evolink_async._batch import polls
from evolink_async._batch.journal import Journal, JournalEntry, read_entries, read_poll_samples
from evolink_async._batch.pgjournal import PgJournal
from evolink_async._batch.polls import PollSample
from evolink_async._cli.report import render_html, summarize
from evolink_async.testing import MockEvoLink

from .conftest import JournalTarget, make_client

pytestmark = pytest.mark.anyio

CREATE = "POST /v1/videos/generations"
POLL_ROUTES = ("GET /v1/tasks/{id}", "POST /v1/tasks/batch")
#: The SQLite journal's tables before poll counts were kept.
OLD_SQLITE_SCHEMA = """
CREATE TABLE jobs (job_id TEXT PRIMARY KEY, idempotency_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL, task_id TEXT, outcome TEXT, uploads TEXT,
    begun_at REAL, created_at REAL, finished_at REAL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
#: The PostgreSQL journal's tables before poll counts were kept.
OLD_PG_SCHEMA = (
    "CREATE TABLE evolink_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE evolink_jobs (run_id TEXT NOT NULL, job_id TEXT NOT NULL,
    idempotency_key TEXT, fingerprint TEXT NOT NULL, task_id TEXT, outcome TEXT,
    uploads TEXT, owner TEXT, begun_at TIMESTAMPTZ, created_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ, PRIMARY KEY (run_id, job_id))""",
    """CREATE TABLE evolink_workers (run_id TEXT NOT NULL, owner TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL, seen_at TIMESTAMPTZ NOT NULL, ended_at TIMESTAMPTZ,
    PRIMARY KEY (run_id, owner))""",
    "INSERT INTO evolink_meta VALUES ('format', 'evolink-async journal 1')",
)


def wan(job_id: str, prompt: str = "A kite over the dunes") -> dict[str, Any]:
    return {
        "id": job_id,
        "model": "wan2.5-image-to-video",
        "prompt": prompt,
        "image_urls": ["https://example.com/kite.png"],
    }


def needs_asyncpg() -> Any:
    """asyncpg, which the PostgreSQL journal needs (an environment without it skips these)."""
    return pytest.importorskip("asyncpg")


def poll_requests(mock: MockEvoLink) -> int:
    return sum(mock.stats.requests[route] for route in POLL_ROUTES)


def reads(mock: MockEvoLink, entries: list[JournalEntry]) -> dict[str, int]:
    """What the mock counted of each journalled job's task."""
    return {e.job_id: len(mock.stats.polls.get(e.task_id, [])) for e in entries if e.task_id}


async def journalled(
    target: JournalTarget | tuple[str, str], *, lease: float = 60.0
) -> tuple[list[JournalEntry], list[PollSample]]:
    """Every entry and poll sample of a journal file, or of a run in PostgreSQL."""
    if isinstance(target, JournalTarget) and target.run_id is None:
        path = Path(target.journal)
        return list(read_entries(path)), list(read_poll_samples(path))
    url, run_id = (
        (str(target.journal), target.run_id) if isinstance(target, JournalTarget) else target
    )
    assert run_id is not None
    journal = PgJournal(url, run_id=run_id, lease=lease)
    await journal.open()
    try:
        return [entry async for entry in journal.entries()], await journal.poll_samples()
    finally:
        await journal.close()


async def test_each_task_s_polls_and_the_polls_sent_are_what_the_mock_served(
    mock: MockEvoLink, journal_target: JournalTarget
) -> None:
    if journal_target.backend == "postgresql":
        needs_asyncpg()
    jobs = [wan(f"p-{n}") for n in range(8)]
    jobs[3] = wan("p-3", "mock:fail=content_policy_violation")
    async with make_client(mock) as client:
        outcomes = await client.batch(jobs, **journal_target.batch_options()).results()
    assert all(o.task is not None for o in outcomes)
    entries, samples = await journalled(journal_target)
    assert {e.job_id: e.polls for e in entries} == reads(mock, entries)
    assert all(count > 0 for count in reads(mock, entries).values())
    assert len({sample.owner for sample in samples}) == 1
    counts = [sample.sent for sample in samples]
    assert counts == sorted(counts) and len(set(counts)) == len(counts)
    assert counts[-1] == poll_requests(mock)
    summary = summarize(entries, samples)
    assert summary.polls_sent == poll_requests(mock)
    assert summary.task_polls == sum(len(times) for times in mock.stats.polls.values())


async def test_the_processes_of_one_postgresql_run_sample_their_own_polls_and_the_report_sums_them(
    mock: MockEvoLink, pg_url: str
) -> None:
    needs_asyncpg()
    run_id = f"test-{uuid.uuid4().hex[:12]}"
    jobs = [wan(f"m-{n:02d}") for n in range(30)]
    # Two processes of one run: each its own client (so its own watcher) and journal.
    async with make_client(mock) as first, make_client(mock) as second:
        runs = [
            c.batch(jobs, journal=pg_url, run_id=run_id, concurrency=4) for c in (first, second)
        ]
        done = await asyncio.gather(*(run.results() for run in runs))
        sent = first._watcher.polls_sent + second._watcher.polls_sent
    assert all(done), "both processes took part"
    entries, samples = await journalled((pg_url, run_id))
    assert len(entries) == 30
    assert sent == poll_requests(mock)
    by_owner: dict[str, int] = {}
    for sample in samples:
        by_owner[sample.owner] = max(by_owner.get(sample.owner, 0), sample.sent)
    assert len(by_owner) == 2 and all(count > 0 for count in by_owner.values())
    summary = summarize(entries, samples)
    assert summary.polls_sent == sum(by_owner.values()) == poll_requests(mock)
    assert sum(count for _, count in summary.polls) == poll_requests(mock)
    assert {e.job_id: e.polls for e in entries} == reads(mock, entries)


async def test_an_old_sqlite_journal_opens_resumes_and_reports_without_poll_data(
    mock: MockEvoLink, tmp_path: Path
) -> None:
    # A run journalled as before: the same rows, in the tables of then.
    new = tmp_path / "new.journal"
    jobs = [wan(f"o-{n}") for n in range(6)]
    async with make_client(mock) as client:
        await client.batch(jobs[:3], journal=new).results()
    old = tmp_path / "old.journal"
    db = sqlite3.connect(old)
    try:
        db.executescript(OLD_SQLITE_SCHEMA)
        db.execute("ATTACH DATABASE ? AS new", (str(new),))
        db.execute("INSERT INTO meta SELECT * FROM new.meta")
        db.execute(
            "INSERT INTO jobs SELECT job_id, idempotency_key, fingerprint, task_id, outcome,"
            " uploads, begun_at, created_at, finished_at FROM new.jobs"
        )
        db.commit()
        db.execute("DETACH DATABASE new")
    finally:
        db.close()

    before = list(read_entries(old))
    assert len(before) == 3 and all(e.polls is None for e in before)
    assert list(read_poll_samples(old)) == []
    summary = summarize(read_entries(old), read_poll_samples(old))
    assert summary.polls_sent is None and summary.polls_per_task is None
    page = render_html(summary, title="old")
    assert "No poll data" in page and "polls sent" not in page

    # Resumed: the three done are not sent again, the three new ones are, and
    # their polls are kept.
    creates = mock.stats.requests[CREATE]
    polled = poll_requests(mock)
    async with make_client(mock) as client:
        outcomes = await client.batch(jobs, journal=old).results()
    assert sorted(o.job_id for o in outcomes if o.resumed) == ["o-0", "o-1", "o-2"]
    assert mock.stats.requests[CREATE] == creates + 3
    after = {e.job_id: e for e in read_entries(old)}
    assert [after[f"o-{n}"].polls for n in range(3)] == [None, None, None]
    fresh = [after[f"o-{n}"] for n in range(3, 6)]
    assert {e.job_id: e.polls for e in fresh} == reads(mock, fresh)
    summary = summarize(read_entries(old), read_poll_samples(old))
    assert summary.polls_sent == poll_requests(mock) - polled
    assert "polls sent" in render_html(summary, title="resumed")


@pytest.fixture
async def old_pg_journal(pg_url: str) -> AsyncIterator[str]:
    """A PostgreSQL journal made before poll counts, in a schema of this test's own."""
    schema = f"evl_old_{uuid.uuid4().hex[:12]}"
    admin = await needs_asyncpg().connect(pg_url)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        await admin.execute(f'SET search_path TO "{schema}"')
        for statement in OLD_PG_SCHEMA:
            await admin.execute(statement)
        # asyncpg passes a URL's unknown parameters on as server settings.
        yield pg_url + ("&" if "?" in pg_url else "?") + f"search_path={schema}"
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await admin.close()


async def test_an_old_postgresql_journal_gets_the_poll_table_and_column(
    mock: MockEvoLink, old_pg_journal: str
) -> None:
    run_id = f"test-{uuid.uuid4().hex[:12]}"
    jobs = [wan(f"g-{n}") for n in range(4)]
    async with make_client(mock) as client:
        outcomes = await client.batch(jobs, journal=old_pg_journal, run_id=run_id).results()
    assert all(o.ok for o in outcomes)
    entries, samples = await journalled((old_pg_journal, run_id))
    assert {e.job_id: e.polls for e in entries} == reads(mock, entries)
    assert summarize(entries, samples).polls_sent == poll_requests(mock)
    db = await needs_asyncpg().connect(old_pg_journal)
    try:
        tables = {
            row[0]
            for row in await db.fetch(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema()"
            )
        }
        columns = {
            row[0]
            for row in await db.fetch(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name = 'evolink_jobs'"
            )
        }
    finally:
        await db.close()
    assert {"evolink_jobs", "evolink_workers", "evolink_polls", "evolink_meta"} == tables
    assert "polls" in columns


async def test_polls_while_nothing_is_written_are_sampled_and_the_last_on_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sampler's period, short for the test (a second in a run).
    monkeypatch.setattr(polls, "POLL_SAMPLE_EVERY", 0.01)
    path = tmp_path / "quiet.journal"
    journal = Journal(path)
    await journal.open()
    sent = [0]
    try:
        await journal.begin("q-1", "k", "f")
        journal.count_polls(lambda: sent[0])
        sent[0] = 5
        with anyio.fail_after(10):
            while [s.sent for s in read_poll_samples(path)] != [5]:
                await anyio.sleep(0.01)
        # A sample alone waited for no fsync; the writes after it do again.
        db = journal._db
        assert db is not None
        mode = await journal._call(lambda: db.execute("PRAGMA synchronous").fetchone())
        assert mode == (2,)  # FULL
        sent[0] = 7
    finally:
        await journal.close()
    assert [s.sent for s in read_poll_samples(path)][-1] == 7
    assert [e.job_id for e in read_entries(path)] == ["q-1"]


async def test_a_postgresql_journal_samples_polls_while_nothing_is_written_too(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs_asyncpg()
    monkeypatch.setattr(polls, "POLL_SAMPLE_EVERY", 0.01)
    run_id = f"test-{uuid.uuid4().hex[:12]}"
    journal = PgJournal(pg_url, run_id=run_id, lease=60.0)
    await journal.open()
    sent = [0]
    try:
        await journal.begin("q-1", "k", "f")
        journal.count_polls(lambda: sent[0])
        sent[0] = 5
        with anyio.fail_after(10):
            while [s.sent for s in await journal.poll_samples()] != [5]:
                await anyio.sleep(0.01)
        sent[0] = 7
    finally:
        await journal.close()
    entries, samples = await journalled((pg_url, run_id))
    assert [s.sent for s in samples] == [5, 7] and len({s.owner for s in samples}) == 1
    assert [e.job_id for e in entries] == ["q-1"]
