"""
The PostgreSQL journal: the SQLite journal's guarantees in a shared database,
and the work of one run split between processes by leases.

The journal tests common to both backends run once per backend (the
`journal_target` fixture, in test_batch.py and here); the tests below are
about what only a shared journal does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest

from evolink_async import JournalError, ValidationError
from evolink_async._batch.jobs import fingerprint, read_job
from evolink_async._batch.keys import derive_key
from evolink_async._cli.main import main
from evolink_async._models import request_body
from evolink_async.testing import MockEvoLink

from .conftest import JournalTarget, make_client

# On PostgreSQL: marked slow (make test runs these; CI's extra runs do not).
pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CREATE = "POST /v1/videos/generations"


def wan(job_id: str, prompt: str = "A fox in the snow") -> dict[str, Any]:
    return {
        "id": job_id,
        "model": "wan2.5-image-to-video",
        "prompt": prompt,
        "image_urls": ["https://example.com/fox.png"],
    }


def job_print(job: dict[str, Any]) -> str:
    return fingerprint(request_body(read_job(job).request, paths=True))


def fresh_run() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


async def rows(pg_url: str, run_id: str) -> list[asyncpg.Record]:
    db = await asyncpg.connect(pg_url)
    try:
        return await db.fetch(
            "SELECT * FROM evolink_jobs WHERE run_id = $1 ORDER BY job_id", run_id
        )
    finally:
        await db.close()


async def test_a_postgresql_journal_needs_a_run_id_and_sends_nothing_without(
    mock: MockEvoLink, pg_url: str
) -> None:
    async with make_client(mock) as client:
        with pytest.raises(ValidationError, match="run_id is required"):
            client.batch([wan("a")], journal=pg_url)
    assert mock.stats.requests[CREATE] == 0


async def test_the_three_writes_land_with_their_times_and_never_the_key(
    mock: MockEvoLink, pg_url: str
) -> None:
    run_id = fresh_run()
    jobs = [wan(f"w-{n}") for n in range(3)]
    async with make_client(mock) as client:
        outcomes = await client.batch(jobs, journal=pg_url, run_id=run_id).results()
    assert all(o.ok for o in outcomes)
    found = await rows(pg_url, run_id)
    assert [r["job_id"] for r in found] == ["w-0", "w-1", "w-2"]
    by_task = {o.task.id: o.job.id for o in outcomes if o.task}
    for row, job in zip(found, jobs, strict=True):
        assert row["idempotency_key"] == derive_key(run_id, job["id"], job_print(job))
        assert row["fingerprint"] == job_print(job)
        assert by_task[row["task_id"]] == row["job_id"]
        assert json.loads(row["outcome"])["task"]["status"] == "completed"
        assert row["begun_at"] <= row["created_at"] <= row["finished_at"]
        assert mock.api_key not in json.dumps([str(value) for value in row.values()])
    assert set(mock.stats.creates_per_key) == {r["idempotency_key"] for r in found}


@pytest.mark.slow
async def test_two_runs_of_one_run_id_split_the_work(mock: MockEvoLink, pg_url: str) -> None:
    run_id = fresh_run()
    jobs = [wan(f"s-{n:02d}") for n in range(30)]
    async with make_client(mock) as client:
        one = client.batch(jobs, journal=pg_url, run_id=run_id, concurrency=4)
        two = client.batch(jobs, journal=pg_url, run_id=run_id, concurrency=4)
        first, second = await asyncio.gather(one.results(), two.results())
    ids_one, ids_two = {o.job.id for o in first}, {o.job.id for o in second}
    assert ids_one and ids_two, "both runs took part"
    assert not ids_one & ids_two
    assert ids_one | ids_two == {j["id"] for j in jobs}
    assert all(o.ok for o in first + second)
    assert mock.stats.tasks_created == 30
    assert set(mock.stats.creates_per_key.values()) == {1}


async def test_a_silent_owners_job_is_taken_over_after_its_lease_with_its_key(
    mock: MockEvoLink, pg_url: str
) -> None:
    """A process that journalled a key, then went silent (killed before its create)."""
    run_id, job = fresh_run(), wan("orphan")
    key = derive_key(run_id, "orphan", job_print(job))
    async with make_client(mock) as client:
        # The journal's tables exist once a run has opened it.
        await client.batch([], journal=pg_url, run_id=run_id).results()
        db = await asyncpg.connect(pg_url)
        try:
            await db.execute(
                "INSERT INTO evolink_workers VALUES ($1, 'dead-owner', now(), now(), NULL)",
                run_id,
            )
            await db.execute(
                "INSERT INTO evolink_jobs (run_id, job_id, idempotency_key, fingerprint,"
                " owner, begun_at) VALUES ($1, 'orphan', $2, $3, 'dead-owner', now())",
                run_id,
                key,
                job_print(job),
            )
        finally:
            await db.close()
        started = time.monotonic()
        outcomes = await client.batch([job], journal=pg_url, run_id=run_id, lease=0.5).results()
        waited = time.monotonic() - started
    assert [o.ok for o in outcomes] == [True]
    # Held while the owner's lease ran, then re-sent under the journalled key.
    assert waited >= 0.4
    assert mock.stats.creates_per_key == {key: 1}
    (row,) = await rows(pg_url, run_id)
    assert row["owner"] != "dead-owner" and row["outcome"] is not None


async def test_an_unreachable_database_is_a_journal_error_without_the_password(
    mock: MockEvoLink,
) -> None:
    url = "postgresql://user:hunter2-secret@127.0.0.1:9/evolink"
    async with make_client(mock) as client:
        with pytest.raises(JournalError) as caught:
            await client.batch([wan("a")], journal=url, run_id="r").results()
    assert "hunter2-secret" not in str(caught.value)
    assert "127.0.0.1" in str(caught.value)
    assert mock.stats.requests[CREATE] == 0


@pytest.mark.parametrize("command", ["status", "export"])
def test_a_url_the_driver_cannot_read_is_one_line_without_the_password(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql://user:hunter2-secret@127.0.0.1:not-a-port/evolink"
    extra = ["--out", str(tmp_path / "out.jsonl")] if command == "export" else []
    assert main(["journal", command, url, "--run-id", "r", *extra]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "not a usable PostgreSQL URL" in lines[0]
    assert "hunter2-secret" not in captured.err


async def test_journal_status_and_export_read_either_journal(
    mock: MockEvoLink,
    journal_target: JournalTarget,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    jobs = [wan(f"e-{n}") for n in range(4)]
    jobs[2] = wan("e-2", "mock:fail=content_policy_violation")
    async with make_client(mock) as client:
        outcomes = await client.batch(jobs, **journal_target.batch_options()).results()
    expected = {o.job.id: o.to_record() for o in outcomes}
    args = [str(journal_target.journal)] + (
        ["--run-id", journal_target.run_id] if journal_target.run_id else []
    )
    out = tmp_path / "export.jsonl"
    assert (
        await anyio.to_thread.run_sync(main, ["journal", "export", *args, "--out", str(out)]) == 0
    )
    records = {r["job_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert set(records) == set(expected)
    for job_id, record in records.items():
        want = expected[job_id]
        for field in ("task_id", "status", "ok", "video_url", "error_code", "credits_used"):
            assert record[field] == want[field], (job_id, field)
    assert records["e-2"]["status"] == "failed"
    assert list(records["e-0"]) == list(want)
    capsys.readouterr()
    assert await anyio.to_thread.run_sync(main, ["journal", "status", *args]) == 0
    status = capsys.readouterr().out
    assert "jobs: 4: 0 begun (no task yet), 0 created (no outcome yet), 4 finished" in status
    assert ("stalled leases: 0" in status) == (journal_target.backend == "postgresql")


@pytest.fixture
async def own_database(pg_url: str) -> Any:
    """A database of this test's own (a test that breaks tables breaks only its own)."""
    name = f"evl_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield pg_url.rsplit("/", 1)[0] + f"/{name}"
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def damage(url: str, how: str) -> None:
    db = await asyncpg.connect(url)
    try:
        if how == "no table":
            await db.execute("DROP TABLE evolink_jobs")
        else:
            await db.execute("UPDATE evolink_jobs SET outcome = '{not json', uploads = '[['")
    finally:
        await db.close()


PG_CALLS: dict[str, Any] = {
    "begin": lambda j: j.begin("b", "key-b", "print-b"),
    "created": lambda j: j.created("a", "task-1"),
    "finished": lambda j: j.finished("a", {"task": None}),
    "get": lambda j: j.get("a"),
    "claim": lambda j: j.claim("a", "print-a", again=True),
    "counts": lambda j: j.counts(),
}


@pytest.mark.parametrize("call", sorted(PG_CALLS))
@pytest.mark.parametrize("how", ["no table", "bad json"])
async def test_a_failing_postgresql_journal_raises_journal_error(
    call: str, how: str, own_database: str
) -> None:
    from evolink_async._batch.store import open_journal

    journal, _, _ = await open_journal(own_database, run_id="r", lease=60.0)
    try:
        await journal.begin("a", "key-a", "print-a")
        await journal.finished("a", {"task": None})
        await damage(own_database, how)
        if how == "bad json" and call not in {"get", "claim"}:
            await PG_CALLS[call](journal)  # a damaged entry breaks only what reads it
            return
        with pytest.raises(JournalError) as caught:
            await PG_CALLS[call](journal)
        assert own_database.rsplit("/", 1)[1] in str(caught.value)
    finally:
        with contextlib.suppress(JournalError):
            await journal.close()


async def test_a_postgresql_journal_failing_mid_run_ends_the_run_with_journal_error(
    mock: MockEvoLink, own_database: str
) -> None:
    async def jobs() -> Any:
        yield wan("first")
        while mock.stats.tasks_created < 1:
            await asyncio.sleep(0.005)
        await damage(own_database, "no table")
        yield wan("second")

    async with make_client(mock) as client:
        run = client.batch(jobs(), concurrency=1, journal=own_database, run_id="r")
        with pytest.raises(JournalError, match="evolink_jobs"):
            await asyncio.wait_for(run.results(), 10)
    assert mock.stats.requests[CREATE] == 1


@pytest.mark.slow
async def test_batch_takes_a_shared_creates_budget_from_the_command_line(
    mock: MockEvoLink, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("".join(json.dumps(wan(f"b-{n}")) + "\n" for n in range(12)))
    monkeypatch.setenv("EVOLINK_API_KEY", mock.api_key)
    run_id = f"budget-{uuid.uuid4().hex[:8]}"
    args = ["batch", str(jobs), "--journal", pg_url, "--run-id", run_id]
    args += ["--base-url", mock.url, "--creates-per-second", "4", "--out", str(tmp_path / "o")]
    started = time.monotonic()
    assert await anyio.to_thread.run_sync(main, args) == 0
    elapsed = time.monotonic() - started
    assert mock.stats.tasks_created == 12
    # 12 creates at 4/s (a bucket's first second of burst at most): over a second.
    assert elapsed > 1.5
    db = await asyncpg.connect(pg_url)
    try:
        budgets = await db.fetch("SELECT * FROM evolink_budget")
    finally:
        await db.close()
    assert budgets, "the budget lives in the journal's database"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--creates-per-second", "0"], "must be a number > 0"),
        (["--creates-per-second", "5"], "needs --journal postgresql://"),
        (["--polls-per-second", "5"], "needs --journal postgresql://"),
    ],
)
def test_budget_flags_are_checked_before_anything_is_sent(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    extra: list[str],
    message: str,
) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps(wan("x")) + "\n")
    monkeypatch.setenv("EVOLINK_API_KEY", "sk-test-0000000000000000")
    assert main(["batch", str(jobs), "--base-url", "http://127.0.0.1:9", *extra]) == 2
    assert message in capsys.readouterr().err
