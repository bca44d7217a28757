"""
`evolink-async report URL --run-id R`: the report of a run journalled in PostgreSQL.

The known run of `test_report` (24 jobs: completions, failures with two
codes, a cancellation, a create the API refused) is run twice against the
mock: by two processes sharing one PostgreSQL run, and by one process with
an SQLite journal. The PostgreSQL report (JSON, text and HTML, through the
command) must hold what its mock saw (tasks, credits, every poll request of
both processes, every read of every task) and the same figures as the SQLite
report; a run id that is missing or unknown and a database that cannot be
reached are one line on stderr, exit 2, without the URL's password.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from evolink_async.testing import MockEvoLink

from .conftest import make_client
from .test_report import CREATE, MODELS, POLL_ROUTES, browse, known_jobs

# On PostgreSQL, in subprocesses: marked slow (make test runs these; CI's
# extra runs do not).
pytestmark = pytest.mark.slow

PASSWORD = "hunter2-secret"
#: Figures that depend on when the run happened or how fast it polled.
TIMED = ("started_at", "ended_at", "seconds", "polls_sent", "task_polls", "polls_per_task")


def what_the_mock_saw(mock: MockEvoLink, outcomes: list[Any]) -> dict[str, Any]:
    tasks = {o.job_id: mock.tasks[o.task.id] for o in outcomes if o.task is not None}
    return {
        "creates": mock.stats.requests[CREATE],
        "poll_requests": sum(mock.stats.requests[route] for route in POLL_ROUTES),
        "reads": sum(len(times) for times in mock.stats.polls.values()),
        "tasks": tasks,
        "ok": sum(o.ok for o in outcomes),
    }


def with_password(url: str) -> str:
    """`url` with a password in it (the test cluster trusts loopback, so it is not checked)."""
    parts = urlsplit(url)
    netloc = f"{parts.username or 'postgres'}:{PASSWORD}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture(scope="module")
def runs(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The known run in PostgreSQL (two processes) and in an SQLite file; what each mock saw."""
    pytest.importorskip("asyncpg")
    folder = tmp_path_factory.mktemp("report-pg")
    run_id = f"test-{uuid.uuid4().hex[:12]}"
    journal = folder / "run.journal"

    async def in_postgresql() -> dict[str, Any]:
        async with MockEvoLink(time_scale=0.002, seed=5) as mock:
            jobs = known_jobs()
            # Two processes of one run: each its own client (so its own
            # watcher and poll count) and its own journal connection.
            async with make_client(mock) as first, make_client(mock) as second:
                batches = [
                    client.batch(jobs, concurrency=3, journal=pg_url, run_id=run_id)
                    for client in (first, second)
                ]
                done = await asyncio.gather(*(batch.results() for batch in batches))
                polls = [first._watcher.polls_sent, second._watcher.polls_sent]
            # Each job's outcome, from whichever process finished it.
            outcomes = {o.job_id: o for o in (*done[0], *done[1]) if not o.resumed}
            seen = what_the_mock_saw(mock, list(outcomes.values()))
            return {**seen, "outcomes": len(outcomes), "per_process": polls}

    async def in_sqlite() -> dict[str, Any]:
        async with MockEvoLink(time_scale=0.002, seed=5) as mock:
            async with make_client(mock) as client:
                outcomes = await client.batch(
                    known_jobs(), concurrency=6, journal=journal
                ).results()
            return what_the_mock_saw(mock, outcomes)

    return {
        "url": pg_url,
        "run_id": run_id,
        "pg": asyncio.run(in_postgresql()),
        "journal": journal,
        "sqlite": asyncio.run(in_sqlite()),
    }


def report(*args: str) -> subprocess.CompletedProcess[str]:
    """`evolink-async report ARGS` in a process of its own, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "evolink_async", "report", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_postgresql_report_holds_what_the_mock_saw(runs: dict[str, Any]) -> None:
    seen = runs["pg"]
    assert seen["outcomes"] == 24 and seen["ok"] == 18
    assert all(count > 0 for count in seen["per_process"]), "both processes polled"
    done = report(runs["url"], "--run-id", runs["run_id"], "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    figures = json.loads(done.stdout)
    assert figures["jobs"] == 24
    assert figures["outcomes"] == {"completed": 18, "failed": 4, "cancelled": 1, "error": 1}
    assert figures["failures_by_code"] == {
        "content_policy_violation": 2,
        "resource_exhausted": 2,
        "invalid_request": 1,
        "cancelled": 1,
    }
    tasks = seen["tasks"]
    assert len(tasks) == 23  # every job but the refused create made one task, once
    completed = [t for t in tasks.values() if t.final_status == "completed"]
    assert figures["credits_used"] == pytest.approx(sum(t.credits_reserved for t in completed))
    assert figures["credits_reserved"] == pytest.approx(
        sum(t.credits_reserved for t in tasks.values())
    )
    # Polls: every request of both processes, and every read of every task.
    assert figures["polls_sent"] == seen["poll_requests"] == sum(seen["per_process"])
    assert figures["task_polls"] == seen["reads"]
    assert figures["polls_per_task"] == pytest.approx(seen["reads"] / 23, abs=1e-3)
    for model in MODELS:
        assert figures["models"][model]["completed"] == 6
        assert figures["models"][model]["latency_median"] is not None
    assert figures["html"] is None


def test_the_postgresql_report_equals_the_sqlite_report_of_the_same_run(
    runs: dict[str, Any],
) -> None:
    in_pg = report(runs["url"], "--run-id", runs["run_id"], "--json")
    in_file = report(str(runs["journal"]), "--json")
    assert in_pg.returncode == in_file.returncode == 0, (in_pg.stderr, in_file.stderr)
    pg, sqlite = json.loads(in_pg.stdout), json.loads(in_file.stdout)
    assert list(pg) == list(sqlite)
    assert sqlite["polls_sent"] == runs["sqlite"]["poll_requests"]
    assert sqlite["task_polls"] == runs["sqlite"]["reads"]

    def untimed(figures: dict[str, Any]) -> dict[str, Any]:
        kept = {key: value for key, value in figures.items() if key not in TIMED}
        kept["models"] = {
            model: {k: v for k, v in row.items() if not k.startswith("latency_")}
            for model, row in figures["models"].items()
        }
        return kept

    assert untimed(pg) == untimed(sqlite)

    # The text: the same lines but the first (which names the journal) and the
    # polls line (how often each run polled is its own).
    text_pg = report(runs["url"], "--run-id", runs["run_id"])
    text_file = report(str(runs["journal"]))
    assert text_pg.returncode == text_file.returncode == 0
    lines_pg, lines_file = text_pg.stdout.splitlines(), text_file.stdout.splitlines()
    assert lines_pg[0].startswith(f"{runs['url']} run {runs['run_id']}: 24 jobs, "), lines_pg[0]
    polls = runs["pg"]["poll_requests"]
    assert f"polls: {polls} sent, {runs['pg']['reads'] / 23:.1f} per task" in lines_pg

    def steady(lines: list[str]) -> list[str]:
        # The model table holds latencies (timing: its JSON is compared above).
        return [line for line in lines[1:] if not line.startswith(("polls:", "model", *MODELS))]

    assert steady(lines_pg) == steady(lines_file)


def test_the_postgresql_report_page_renders_in_chromium(
    runs: dict[str, Any], tmp_path: Path
) -> None:
    page = tmp_path / "report.html"
    done = report(runs["url"], "--run-id", runs["run_id"], "--html", str(page))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"wrote {page}: 24 jobs, 18 completed; open it in a browser\n"
    dom = browse(page, tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0, dom.stderr
    rendered = dom.stdout
    assert f"<title>evolink-async run: {runs['run_id']}</title>" in rendered
    for figure in (
        "Timeline of jobs",
        "Throughput over time",
        "Polls over time",
        "Latency per model",
        "Failures by code",
        "content_policy_violation",
        "resource_exhausted",
        "refused (no task)",
        *MODELS,
    ):
        assert figure in rendered, figure
    assert re.search(r"<b>24</b><span>jobs</span>", rendered)
    assert re.search(r"<b>18</b><span>completed</span>", rendered)
    assert rendered.count("<svg") == 6
    polls = runs["pg"]["poll_requests"]
    assert re.search(rf"<b>{polls:,}</b><span>polls sent</span>", rendered)
    assert f"{polls:,} poll requests in all (every process of the run, summed)" in rendered
    # The chart's points add up to the polls both processes sent.
    chart = rendered.split('aria-label="polls over time"', 1)[1].split("</svg>", 1)[0]
    points = [int(n) for n in re.findall(r"<title>polls sent: (\d+) in", chart)]
    assert len(points) == 40 and sum(points) == polls
    assert "<script" not in rendered.lower()


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert PASSWORD not in done.stderr
    return lines[0]


def test_a_wrong_or_missing_run_id_is_one_line_without_the_password(
    runs: dict[str, Any], tmp_path: Path
) -> None:
    url = with_password(runs["url"])
    masked = url.replace(PASSWORD, "***")
    page = tmp_path / "report.html"
    line = one_line_error(report(url, "--run-id", "no-such-run", "--html", str(page)))
    assert line == (
        f"evolink-async report: {masked}: no job of run 'no-such-run' in this journal"
        " (is the run id right?)"
    )
    assert not page.exists()
    line = one_line_error(report(url, "--json"))
    assert line == "evolink-async report: a PostgreSQL journal needs --run-id R"
    # The right run through the URL with a password: read, and the password shown nowhere.
    done = report(url, "--run-id", runs["run_id"])
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout and done.stdout.startswith(f"{masked} run ")
    # A journal file names its run too: another run's id is refused.
    line = one_line_error(report(str(runs["journal"]), "--run-id", runs["run_id"]))
    assert line.startswith(f"evolink-async report: {runs['journal']}: the journal of run ")
    assert line.endswith(f", not {runs['run_id']!r}")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (f"postgresql://evolink:{PASSWORD}@127.0.0.1:9/evolink", "cannot open ("),
        (f"postgresql://evolink:{PASSWORD}@127.0.0.1:port/evolink", "not a usable"),
    ],
    ids=["unreachable", "unreadable"],
)
def test_a_database_out_of_reach_is_one_line_without_the_password(
    url: str, reason: str, tmp_path: Path
) -> None:
    pytest.importorskip("asyncpg")
    page = tmp_path / "report.html"
    line = one_line_error(report(url, "--run-id", "r", "--html", str(page)))
    assert line.startswith("evolink-async report: postgresql://")
    assert reason in line
    assert not page.exists()
    # The same words and exit code as `journal status` for a database it cannot reach.
    if reason == "cannot open (":
        status = subprocess.run(
            [sys.executable, "-m", "evolink_async", "journal", "status", url, "--run-id", "r"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert status.returncode == 2
        assert status.stderr.replace("journal status", "report") == line + "\n"
