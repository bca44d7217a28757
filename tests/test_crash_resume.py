"""
`evolink-async batch` killed (SIGKILL) or interrupted (SIGINT) mid-run, then resumed.

The kill matrix runs on both journals: the SQLite file, and a PostgreSQL
journal whose resume takes the killed run's jobs over once its lease lapses.

The mock runs in the test's own event loop and outlives the CLI, which runs as
a subprocess against it (`--base-url`). Each kill point is reached
deterministically from the outside: a fault holds the request that defines
the point open (a create, a poll, a download) while the test watches the
journal (SQLite, read-only) and the mock's counters, and kills once they show
the point is reached. After the resume, the server must hold exactly one task
per job, and every job exactly one outcome.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import shlex
import signal
import sqlite3
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import attrs
import pytest

from evolink_async.testing import Fault, MockEvoLink

pytestmark = pytest.mark.anyio

CREATE = "POST /v1/videos/generations"
POLL = "GET /v1/tasks/{id}"
BATCH_POLL = "POST /v1/tasks/batch"
DOWNLOAD = "GET /files/videos/{name}"
#: The mock's clock: a 120 s task takes 0.12 s.
TIME_SCALE = 0.001
#: Long enough that a held request is still held when the test kills the CLI.
HOLD = 30.0
#: The longest the test waits for a kill point or a run to end.
DEADLINE = 20.0
FAILING = "failing-05"
#: The lease of the PostgreSQL runs, seconds: a resume takes a killed run's jobs after it.
PG_LEASE = 1.0


def make_jobs(count: int = 8) -> list[dict[str, Any]]:
    """Jobs on two models, one of which fails on the server."""
    jobs: list[dict[str, Any]] = []
    for n in range(count):
        job_id = f"clip-{n:02d}"
        prompt = f"A paper boat drifts, take {n}"
        if n == 5:
            job_id, prompt = FAILING, "mock:fail=content_policy_violation a refused prompt"
        if n % 2:
            jobs.append(
                {
                    "id": job_id,
                    "model": "seedance-2.0-fast-image-to-video",
                    "prompt": prompt,
                    "image_urls": ["https://example.com/boat.jpg"],
                    "duration": 4,
                }
            )
        else:
            jobs.append(
                {
                    "id": job_id,
                    "model": "wan2.5-image-to-video",
                    "prompt": prompt,
                    "image_urls": ["https://example.com/boat.png"],
                }
            )
    return jobs


@attrs.define
class Run:
    """One CLI run's files."""

    tmp: Path
    jobs: list[dict[str, Any]]
    #: A PostgreSQL journal (and its run) instead of the SQLite file.
    pg_url: str | None = None
    run_id: str | None = None

    @property
    def jobs_file(self) -> Path:
        return self.tmp / "jobs.jsonl"

    @property
    def journal(self) -> Path:
        return self.tmp / "run.journal"

    @property
    def out(self) -> Path:
        return self.tmp / "results.jsonl"

    @property
    def videos(self) -> Path:
        return self.tmp / "videos"

    def write_jobs(self) -> None:
        self.jobs_file.write_text("".join(json.dumps(job) + "\n" for job in self.jobs))

    def args(self, mock: MockEvoLink, *extra: str) -> list[str]:
        journal = [str(self.journal)]
        if self.pg_url is not None:
            assert self.run_id is not None
            # A killed process holds its jobs for the lease: keep the resume quick.
            journal = [self.pg_url, "--run-id", self.run_id, "--lease", str(PG_LEASE)]
        return [
            str(self.jobs_file),
            "--journal",
            *journal,
            "--out",
            str(self.out),
            "--download",
            str(self.videos),
            "--base-url",
            mock.url,
            "--time-scale",
            str(TIME_SCALE),
            "--progress-every",
            "0.5",
            *extra,
        ]


def cli_env(mock: MockEvoLink) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVOLINK_")}
    env["EVOLINK_API_KEY"] = mock.api_key
    return env


async def start_cli(
    mock: MockEvoLink, args: list[str], logs: Path, name: str
) -> tuple[asyncio.subprocess.Process, Path, Path]:
    """`evolink-async batch ARGS` as a subprocess; (process, stdout file, stderr file)."""
    stdout, stderr = logs / f"{name}.out", logs / f"{name}.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "evolink_async",
            "batch",
            *args,
            stdout=out,
            stderr=err,
            env=cli_env(mock),
        )
    return process, stdout, stderr


async def finish(process: asyncio.subprocess.Process, stderr: Path) -> int:
    try:
        return await asyncio.wait_for(process.wait(), DEADLINE)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"the CLI did not finish; stderr:\n{stderr.read_text()}")


async def wait_until(
    condition: Callable[[], bool], process: asyncio.subprocess.Process, stderr: Path
) -> None:
    """Poll `condition` until true; fail if the CLI exits or time runs out first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not condition():
        if process.returncode is not None:
            pytest.fail(f"the CLI exited ({process.returncode}) first:\n{stderr.read_text()}")
        if loop.time() > deadline:
            process.kill()
            await process.wait()
            pytest.fail(f"kill point not reached; stderr:\n{stderr.read_text()}")
        await asyncio.sleep(0.01)


def journal_rows(run: Run | Path) -> list[tuple[str, str | None, str | None]]:
    """(job id, task id, outcome) of every journalled job; [] before the file exists."""
    if isinstance(run, Run) and run.pg_url is not None:
        return _pg_rows(run.pg_url, run.run_id)
    path = run.journal if isinstance(run, Run) else run
    if not path.exists():
        return []
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows: list[tuple[str, str | None, str | None]] = db.execute(
                "SELECT job_id, task_id, outcome FROM jobs"
            ).fetchall()
        finally:
            db.close()
    except sqlite3.Error:  # not created yet
        return []
    return rows


def _pg_rows(url: str, run_id: str | None) -> list[tuple[str, str | None, str | None]]:
    """
    `journal_rows` of a PostgreSQL journal, read on a thread of its own: the
    test's own loop serves the mock, and a wait on it there would stall it.
    """

    async def read() -> list[tuple[str, str | None, str | None]]:
        db = await asyncpg.connect(url)
        try:
            found = await db.fetch(
                "SELECT job_id, task_id, outcome FROM evolink_jobs WHERE run_id = $1", run_id
            )
        except asyncpg.UndefinedTableError:  # no run has opened the journal yet
            return []
        finally:
            await db.close()
        return [(row[0], row[1], row[2]) for row in found]

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, read()).result()


def out_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def partial_files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.name.endswith(".part")]


# ---------------------------------------------------------------- the kill points


@attrs.frozen
class KillPoint:
    """How to hold the run at one point, how to see it is there, what must hold then."""

    hold: Callable[[MockEvoLink], None]
    reached: Callable[[MockEvoLink, Run], bool]
    at_kill: Callable[[MockEvoLink, Run], None]
    after: Callable[[MockEvoLink, Run, dict[str, Any]], None]


def _hold(fault: Fault, *routes: str, times: int = 1000) -> Callable[[MockEvoLink], None]:
    def hold(mock: MockEvoLink) -> None:
        for route in routes:
            mock.inject(fault, route=route, times=times, delay=HOLD)

    return hold


def _begun_reached(mock: MockEvoLink, run: Run) -> bool:
    return bool(journal_rows(run)) and mock.stats.requests[CREATE] >= 1


def _begun_at_kill(mock: MockEvoLink, run: Run) -> None:
    rows = journal_rows(run)
    assert rows and all(task_id is None for _, task_id, _ in rows)
    assert mock.stats.tasks_created == 0


def _begun_after(mock: MockEvoLink, run: Run, at_kill: dict[str, Any]) -> None:
    # The held creates never reached the handler: the resume's are the first.
    assert mock.stats.replays == 0


def _created_reached(mock: MockEvoLink, run: Run) -> bool:
    return mock.stats.tasks_created >= 1


def _created_at_kill(mock: MockEvoLink, run: Run) -> None:
    assert all(task_id is None for _, task_id, _ in journal_rows(run))
    assert mock.stats.tasks_created >= 1


def _created_after(mock: MockEvoLink, run: Run, at_kill: dict[str, Any]) -> None:
    # The resume re-sent those creates with the journalled keys: replayed, not re-created.
    assert mock.stats.replays >= at_kill["tasks_created"]


def _watching_reached(mock: MockEvoLink, run: Run) -> bool:
    rows = journal_rows(run)
    return len(rows) == len(run.jobs) and all(task_id for _, task_id, _ in rows)


def _watching_at_kill(mock: MockEvoLink, run: Run) -> None:
    assert all(outcome is None for _, _, outcome in journal_rows(run))
    assert mock.stats.tasks_created == len(run.jobs)


def _watching_after(mock: MockEvoLink, run: Run, at_kill: dict[str, Any]) -> None:
    # Re-attached to every task: not one create sent by the resume.
    assert mock.stats.requests[CREATE] == at_kill["create_requests"]


def _downloading_reached(mock: MockEvoLink, run: Run) -> bool:
    return bool(partial_files(run.videos)) and sum(mock.stats.downloads.values()) >= 1


def _downloading_at_kill(mock: MockEvoLink, run: Run) -> None:
    assert partial_files(run.videos)
    assert not list(run.videos.glob("*.mp4"))


def _downloading_after(mock: MockEvoLink, run: Run, at_kill: dict[str, Any]) -> None:
    assert sum(mock.stats.downloads.values()) > at_kill["downloads"]


def _written_reached(mock: MockEvoLink, run: Run) -> bool:
    return len(out_lines(run.out)) >= 3


def _written_at_kill(mock: MockEvoLink, run: Run) -> None:
    finished = [job_id for job_id, _, outcome in journal_rows(run) if outcome]
    # The two held downloads keep at least two jobs unfinished.
    assert 3 <= len(finished) <= len(run.jobs) - 2


def _written_after(mock: MockEvoLink, run: Run, at_kill: dict[str, Any]) -> None:
    resumed = {line["job_id"] for line in out_lines(run.out) if line["resumed"]}
    assert resumed == at_kill["finished"]


KILL_POINTS = {
    # The Idempotency-Key is journalled; the create never reaches the handler.
    "begun-before-create": KillPoint(
        _hold(Fault.DROP_BEFORE, CREATE), _begun_reached, _begun_at_kill, _begun_after
    ),
    # The server created the task; its reply (the task id) never arrives.
    "created-not-journalled": KillPoint(
        _hold(Fault.SLOW, CREATE), _created_reached, _created_at_kill, _created_after
    ),
    # Every task created and journalled; every poll held.
    "watching": KillPoint(
        _hold(Fault.SLOW, POLL, BATCH_POLL), _watching_reached, _watching_at_kill, _watching_after
    ),
    # Tasks completed; their downloads half-way (a .part file on disk).
    "downloading": KillPoint(
        _hold(Fault.SLOW, DOWNLOAD),
        _downloading_reached,
        _downloading_at_kill,
        _downloading_after,
    ),
    # Some outcomes journalled and in --out; two downloads held.
    "outcomes-written": KillPoint(
        _hold(Fault.SLOW, DOWNLOAD, times=2), _written_reached, _written_at_kill, _written_after
    ),
}


def assert_complete(mock: MockEvoLink, run: Run) -> None:
    """One task per job on the server, one outcome per job, every video whole."""
    ids = [job["id"] for job in run.jobs]
    assert mock.stats.tasks_created == len(ids)
    assert len(mock.stats.creates_per_key) == len(ids)
    assert set(mock.stats.creates_per_key.values()) == {1}
    prompts = {job["id"]: job["prompt"] for job in run.jobs}
    lines = out_lines(run.out)
    assert sorted(line["job_id"] for line in lines) == sorted(ids)
    assert len({line["task_id"] for line in lines}) == len(ids)
    for line in lines:
        # The task the line names is the one created for that job.
        assert mock.tasks[line["task_id"]].body["prompt"] == prompts[line["job_id"]]
        if line["job_id"] == FAILING:
            assert (line["status"], line["error_code"]) == ("failed", "content_policy_violation")
            assert line["path"] is None
            continue
        assert line["status"] == "completed" and line["ok"], line
        assert Path(line["path"]).read_bytes() == mock.video_bytes(line["task_id"])
    assert partial_files(run.videos) == []
    rows = journal_rows(run)
    assert len(rows) == len(ids) and all(outcome for _, _, outcome in rows)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
@pytest.mark.parametrize("point", list(KILL_POINTS))
async def test_killed_batch_resumes_without_duplicates_or_lost_outcomes(
    point: str, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    kill_point = KILL_POINTS[point]
    run = Run(tmp_path, make_jobs())
    if backend == "postgresql":
        run.pg_url = request.getfixturevalue("pg_url")
        run.run_id = f"crash-{uuid.uuid4().hex[:12]}"
    run.write_jobs()
    async with MockEvoLink(time_scale=TIME_SCALE, seed=3) as mock:
        kill_point.hold(mock)
        process, _, stderr = await start_cli(mock, run.args(mock), tmp_path, "first")
        await wait_until(lambda: kill_point.reached(mock, run), process, stderr)
        process.kill()
        assert await process.wait() == -signal.SIGKILL
        kill_point.at_kill(mock, run)
        at_kill = {
            "tasks_created": mock.stats.tasks_created,
            "create_requests": mock.stats.requests[CREATE],
            "downloads": sum(mock.stats.downloads.values()),
            "finished": {job_id for job_id, _, outcome in journal_rows(run) if outcome},
        }
        mock.clear_injections()

        process, _, stderr = await start_cli(mock, run.args(mock), tmp_path, "resume")
        # One job fails on the server by design: exit 1, every other job completed.
        assert await finish(process, stderr) == 1, stderr.read_text()
        assert_complete(mock, run)
        kill_point.after(mock, run, at_kill)


async def test_ctrl_c_journals_creates_in_flight_and_says_how_to_resume(tmp_path: Path) -> None:
    run = Run(tmp_path, make_jobs(12))
    run.write_jobs()
    async with MockEvoLink(time_scale=TIME_SCALE, seed=4) as mock:
        # Creates answer after 0.5 s: four are in flight when Ctrl-C comes.
        mock.inject(Fault.SLOW, route=CREATE, times=1000, delay=0.5)
        args = [
            str(run.jobs_file),
            "--out",
            str(run.out),
            "--download",
            str(run.videos),
            "--concurrency",
            "4",
            "--base-url",
            mock.url,
            "--time-scale",
            str(TIME_SCALE),
        ]
        process, stdout, stderr = await start_cli(mock, args, tmp_path, "first")
        await wait_until(lambda: mock.stats.tasks_created >= 4, process, stderr)
        process.send_signal(signal.SIGINT)
        assert await finish(process, stderr) == 130, stderr.read_text()
        # Stopped starting jobs; the four creates in flight finished and were journalled.
        assert mock.stats.tasks_created == 4
        default_journal = tmp_path / "jobs.jsonl.journal"
        journalled = {task_id for _, task_id, _ in journal_rows(default_journal) if task_id}
        assert journalled == set(mock.tasks)
        messages = stderr.read_text()
        assert "Traceback" not in messages + stdout.read_text()
        assert mock.api_key not in messages
        hint = [line for line in messages.splitlines() if line.startswith("  evolink-async batch")]
        assert len(hint) == 1, messages
        command = shlex.split(hint[0])
        assert command[command.index("--journal") + 1] == str(default_journal)

        mock.clear_injections()
        process, _, stderr = await start_cli(mock, command[2:], tmp_path, "resume")
        assert await finish(process, stderr) == 1, stderr.read_text()
    assert mock.stats.tasks_created == 12
    assert set(mock.stats.creates_per_key.values()) == {1}
    lines = out_lines(run.out)
    assert sorted(line["job_id"] for line in lines) == sorted(job["id"] for job in run.jobs)
    resumed_tasks = {line["task_id"] for line in lines if line["task_id"] in journalled}
    assert resumed_tasks == journalled
    assert partial_files(run.videos) == []


async def test_second_ctrl_c_quits_at_once_and_the_resume_replays(tmp_path: Path) -> None:
    run = Run(tmp_path, make_jobs(6))
    run.write_jobs()
    async with MockEvoLink(time_scale=TIME_SCALE, seed=5) as mock:
        # Every create is made on the server, then its reply held for 30 s.
        mock.inject(Fault.SLOW, route=CREATE, times=1000, delay=HOLD)
        process, _, stderr = await start_cli(
            mock, run.args(mock, "--concurrency", "3"), tmp_path, "first"
        )
        await wait_until(lambda: mock.stats.tasks_created >= 3, process, stderr)
        process.send_signal(signal.SIGINT)
        await asyncio.sleep(0.3)
        assert process.returncode is None  # the first waits for the creates in flight
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 5) == 130
        messages = stderr.read_text()
        assert "interrupted again; quitting now" in messages
        assert "3 creates unanswered" in messages
        assert "Traceback" not in messages
        # The keys were journalled before the creates went out.
        assert len(journal_rows(run)) == 3

        mock.clear_injections()
        process, _, stderr = await start_cli(mock, run.args(mock), tmp_path, "resume")
        assert await finish(process, stderr) == 1, stderr.read_text()
        assert mock.stats.replays == 3
        assert_complete(mock, run)
