"""
The batch journal under misuse: one run at a time, other files untouched,
every SQLite failure a `JournalError`, `--out` kept when a run is refused,
stale `.part` files removed even beside a finished video.

The lock is shown released by the kernel: a real `evolink-async batch`
process holds the journal (its create held open by the mock), a second one
is refused before it sends anything, then the first is SIGKILLed and a third
run resumes on the same journal.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evolink_async import EvoLinkError, JournalError
from evolink_async._batch.journal import Journal
from evolink_async._cli import main
from evolink_async.testing import Fault, MockEvoLink

from .conftest import make_client

CREATE = "POST /v1/videos/generations"
IMAGE = "https://example.com/boat.png"
#: Long enough that a held create is still held when the test is done with it.
HOLD = 30.0
DEADLINE = 20.0


def wan(job_id: str) -> dict[str, Any]:
    return {
        "id": job_id,
        "model": "wan2.5-image-to-video",
        "prompt": f"A paper boat, {job_id}",
        "image_urls": [IMAGE],
    }


def write_jobs(path: Path, count: int) -> Path:
    path.write_text("".join(json.dumps(wan(f"clip-{n}")) + "\n" for n in range(count)))
    return path


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    """
    Every file of `directory`: its bytes and modification time. A `-shm`
    counts by its name only: it is SQLite's index of a -wal, which any reader
    marks, and which SQLite rebuilds from the -wal when it has to.
    """
    return {
        path.name: (b"", 0)
        if path.name.endswith("-shm")
        else (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(directory.iterdir())
    }


# ---------------------------------------------------------------- one run at a time


@pytest.mark.anyio
async def test_a_journal_in_use_is_refused_until_it_is_closed(tmp_path: Path) -> None:
    path = tmp_path / "run.journal"
    first = Journal(path)
    await first.open()
    await first.begin("a", "key-a", "print-a")
    for _ in range(3):  # each refusal leaves the lock with its holder
        second = Journal(path)
        with pytest.raises(JournalError, match="in use by another run"):
            await second.open()
        await second.close()
    await first.close()
    third = Journal(path)
    await third.open()
    entry = await third.get("a")
    await third.close()
    assert entry is not None and entry.idempotency_key == "key-a"


@pytest.mark.anyio
async def test_client_batch_on_a_journal_in_use_sends_nothing(
    mock: MockEvoLink, tmp_path: Path
) -> None:
    path = tmp_path / "run.journal"
    holder = Journal(path)
    await holder.open()
    try:
        async with make_client(mock) as client:
            with pytest.raises(JournalError, match="in use by another run"):
                await asyncio.wait_for(client.batch([wan("a")], journal=path).results(), 10)
    finally:
        await holder.close()
    assert mock.stats.requests[CREATE] == 0


def cli_env(mock: MockEvoLink) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVOLINK_")}
    env["EVOLINK_API_KEY"] = mock.api_key
    return env


def batch_args(mock: MockEvoLink, jobs: Path, journal: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "evolink_async",
        "batch",
        str(jobs),
        "--journal",
        str(journal),
        "--out",
        str(out),
        "--base-url",
        mock.url,
        "--time-scale",
        "0.001",
    ]


async def wait_for(condition: Callable[[], bool], process: asyncio.subprocess.Process) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not condition():
        assert process.returncode is None, "the holder exited first"
        assert loop.time() < deadline, "the holder never reached its create"
        await asyncio.sleep(0.01)


@pytest.mark.anyio
async def test_a_second_process_is_refused_and_a_sigkill_releases_the_journal(
    tmp_path: Path,
) -> None:
    jobs = write_jobs(tmp_path / "jobs.jsonl", 3)
    journal = tmp_path / "run.journal"
    async with MockEvoLink(time_scale=0.001) as mock:
        mock.inject(Fault.SLOW, route=CREATE, times=3, delay=HOLD)
        logs = tmp_path / "holder.err"
        with logs.open("wb") as err:
            holder = await asyncio.create_subprocess_exec(
                *batch_args(mock, jobs, journal, tmp_path / "first.jsonl"),
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=cli_env(mock),
            )
        try:
            await wait_for(lambda: mock.stats.requests[CREATE] >= 3, holder)
            held = mock.stats.requests[CREATE]

            # A second run on the same journal: refused, nothing sent, --out kept.
            previous = tmp_path / "second.jsonl"
            previous.write_text('{"job_id": "from the last run"}\n')
            second = await asyncio.to_thread(
                subprocess.run,
                batch_args(mock, jobs, journal, previous),
                capture_output=True,
                text=True,
                timeout=60,
                env=cli_env(mock),
                check=False,
            )
            assert second.returncode == 2, second.stderr
            assert "in use by another run" in second.stderr
            assert "Traceback" not in second.stderr
            assert mock.stats.requests[CREATE] == held
            assert previous.read_text() == '{"job_id": "from the last run"}\n'
        finally:
            if holder.returncode is None:
                holder.send_signal(signal.SIGKILL)
            await holder.wait()
        assert holder.returncode == -signal.SIGKILL

        # The kernel dropped the lock with the process: the next run resumes.
        mock.clear_injections()
        third = await asyncio.to_thread(
            subprocess.run,
            batch_args(mock, jobs, journal, tmp_path / "third.jsonl"),
            capture_output=True,
            text=True,
            timeout=60,
            env=cli_env(mock),
            check=False,
        )
        assert third.returncode == 0, third.stderr
        records = [json.loads(line) for line in (tmp_path / "third.jsonl").read_text().splitlines()]
        assert sorted(r["job_id"] for r in records) == ["clip-0", "clip-1", "clip-2"]
        assert all(r["status"] == "completed" for r in records)
        # One task per job: the held creates and the resume's share their keys.
        assert mock.stats.tasks_created == 3


# ---------------------------------------------------------------- other programs' files


def rollback_db(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    db.execute("INSERT INTO notes (text) VALUES ('keep me')")
    db.commit()
    db.close()


def wal_db_with_our_table_names(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE jobs (job_id TEXT PRIMARY KEY, state TEXT)")
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO meta VALUES ('format', 'some scheduler 3')")
    db.commit()
    db.close()


def meta_without_format(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO meta VALUES ('owner', 'someone else')")
    db.commit()
    db.close()


def meta_of_other_shape(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE meta (id INTEGER, data BLOB)")
    db.commit()
    db.close()


def only_our_jobs_table(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE jobs (job_id TEXT PRIMARY KEY, idempotency_key TEXT)")
    db.commit()
    db.close()


def wal_db_left_open(path: Path) -> None:
    """A WAL database whose writer died: its -wal and -shm are still there."""
    code = (
        "import os, sqlite3, sys\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute('PRAGMA journal_mode=WAL')\n"
        "db.execute('CREATE TABLE events (at REAL, what TEXT)')\n"
        "db.execute(\"INSERT INTO events VALUES (1.0, 'boot')\")\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=30)


def text_file(path: Path) -> None:
    path.write_text("these are my notes, not a journal\n" * 100)


def sqlite_header_then_garbage(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 8)


def truncated_journal(path: Path) -> None:
    async def make() -> None:
        journal = Journal(path)
        await journal.open()
        await journal.begin("a", "k", "f")
        await journal.close()

    asyncio.run(make())
    path.write_bytes(path.read_bytes()[:1500])


OTHER_FILES: dict[str, Callable[[Path], None]] = {
    "a rollback-journal database": rollback_db,
    "a WAL database with tables named like ours": wal_db_with_our_table_names,
    "a meta table without a format row": meta_without_format,
    "a meta table of another shape": meta_of_other_shape,
    "a jobs table and no meta": only_our_jobs_table,
    "a WAL database whose writer died": wal_db_left_open,
    "a text file": text_file,
    "an SQLite header and garbage": sqlite_header_then_garbage,
    "a truncated journal": truncated_journal,
}


@pytest.mark.parametrize("kind", sorted(OTHER_FILES))
def test_another_programs_file_is_refused_untouched(kind: str, tmp_path: Path) -> None:
    directory = tmp_path / "theirs"
    directory.mkdir()
    path = directory / "data.db"
    OTHER_FILES[kind](path)
    before = snapshot(directory)

    async def open_it() -> None:
        journal = Journal(path)
        try:
            await journal.open()
        finally:
            await journal.close()

    with pytest.raises(JournalError) as caught:
        asyncio.run(open_it())
    assert str(path) in str(caught.value)
    assert snapshot(directory) == before


@given(data=st.binary(min_size=1, max_size=4096), with_header=st.booleans())
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_non_journal_bytes_are_refused_untouched(
    data: bytes, with_header: bool, tmp_path: Path
) -> None:
    directory = tmp_path / f"bytes-{os.urandom(6).hex()}"
    directory.mkdir()
    path = directory / "data.db"
    path.write_bytes((b"SQLite format 3\x00" if with_header else b"") + data)
    before = snapshot(directory)

    async def open_it() -> None:
        journal = Journal(path)
        try:
            await journal.open()
        finally:
            await journal.close()

    with pytest.raises(JournalError):
        asyncio.run(open_it())
    assert snapshot(directory) == before


@pytest.mark.parametrize("kind", ["a rollback-journal database", "a text file"])
def test_the_cli_refuses_another_programs_file_and_keeps_out(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = write_jobs(tmp_path / "jobs.jsonl", 2)
    theirs = tmp_path / "theirs.db"
    OTHER_FILES[kind](theirs)
    before = theirs.read_bytes()
    out = tmp_path / "results.jsonl"
    out.write_text('{"job_id": "kept"}\n')
    code = main(["batch", str(jobs), "--mock", "--journal", str(theirs), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "not an evolink-async journal" in err
    assert "Traceback" not in err
    assert theirs.read_bytes() == before
    assert out.read_text() == '{"job_id": "kept"}\n'


# ---------------------------------------------------------------- SQLite failures: JournalError


def break_table(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("DROP TABLE jobs")
    db.commit()
    db.close()


def damage_entry(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("UPDATE jobs SET outcome = '{not json', uploads = '[['")
    db.commit()
    db.close()


CALLS: dict[str, Callable[[Journal], Any]] = {
    "begin": lambda j: j.begin("b", "key-b", "print-b"),
    "created": lambda j: j.created("a", "task-1"),
    "finished": lambda j: j.finished("a", {"task": None}),
    "get": lambda j: j.get("a"),
    "claim": lambda j: j.claim("a"),
    "counts": lambda j: j.counts(),
}


@pytest.mark.anyio
@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("damage", [break_table, damage_entry], ids=["no table", "bad json"])
async def test_a_failing_journal_raises_journal_error(
    call: str, damage: Callable[[Path], None], tmp_path: Path
) -> None:
    path = tmp_path / "run.journal"
    journal = Journal(path)
    await journal.open()
    try:
        await journal.begin("a", "key-a", "print-a")
        await journal.finished("a", {"task": None})
        damage(path)
        if damage is damage_entry and call not in {"get", "claim"}:
            await CALLS[call](journal)  # a damaged entry breaks only what reads it
            return
        with pytest.raises(JournalError) as caught:
            await CALLS[call](journal)
        assert str(path) in str(caught.value)
        assert isinstance(caught.value, EvoLinkError)
    finally:
        await journal.close()


@pytest.mark.anyio
async def test_a_journal_failing_mid_run_ends_the_run_with_journal_error(
    mock: MockEvoLink, tmp_path: Path
) -> None:
    path = tmp_path / "run.journal"

    async def jobs() -> Any:
        yield wan("first")
        while mock.stats.tasks_created < 1:
            await asyncio.sleep(0.005)
        break_table(path)
        yield wan("second")

    async with make_client(mock) as client:
        with pytest.raises(JournalError, match="no such table"):
            await asyncio.wait_for(client.batch(jobs(), concurrency=1, journal=path).results(), 10)
    assert mock.stats.requests[CREATE] == 1


# ---------------------------------------------------------------- stale partial downloads


@pytest.mark.anyio
@pytest.mark.parametrize("stale_per_video", [1, 3])
async def test_stale_parts_go_even_when_the_video_is_already_there(
    stale_per_video: int, mock: MockEvoLink, tmp_path: Path
) -> None:
    path = tmp_path / "run.journal"
    videos = tmp_path / "videos"
    jobs = [wan(f"v-{n}") for n in range(4)]
    async with make_client(mock) as client:
        first = await client.batch(jobs, journal=path, download_dir=videos).results()
    assert all(outcome.ok for outcome in first)
    finished = sorted(videos.glob("*.mp4"))
    assert len(finished) == len(jobs)
    # A kill after each video was published, before its outcome was journalled
    # and its temporary files removed.
    db = sqlite3.connect(path)
    db.execute("UPDATE jobs SET outcome = NULL")
    db.commit()
    db.close()
    for video in finished:
        for n in range(stale_per_video):
            (videos / f".{video.name}.{n:08x}.part").write_bytes(b"half a video")
    contents = {video.name: video.read_bytes() for video in finished}

    async with make_client(mock) as client:
        second = await client.batch(jobs, journal=path, download_dir=videos).results()
    assert all(outcome.ok for outcome in second)
    assert [p.name for p in videos.iterdir() if p.name.endswith(".part")] == []
    assert {video.name: video.read_bytes() for video in videos.glob("*.mp4")} == contents
    assert mock.stats.tasks_created == len(jobs)
