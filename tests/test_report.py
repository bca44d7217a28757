"""
The journal's timestamps and `evolink-async report`, down to what a browser shows.

A known run (24 jobs against the mock: completions, failures with two codes,
a cancellation, a create the API refused) is journalled by the real batch
runner; the report of that journal is then checked three ways: the figures
in its HTML against what the mock served (polls included: the mock counts
every read of every task), its safety (every journal text
escaped, nothing loaded from outside, no script), and in headless Chromium
(Debian's package; `make test` and `.ci/run` install it): the rendered DOM
holds the figures, the console has no error, and a screenshot is taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from evolink_async import Job, RawRequest
from evolink_async._batch.journal import Journal, JournalEntry, read_entries, read_poll_samples
from evolink_async._cli import main
from evolink_async._cli.report import MAX_TIMELINE, render_html, summarize
from evolink_async.testing import MockEvoLink

from .conftest import make_client

CREATE = "POST /v1/videos/generations"
POLL_ROUTES = ("GET /v1/tasks/{id}", "POST /v1/tasks/batch")
MODELS = ("wan2.5-image-to-video", "happyhorse-1.0-image-to-video", "seedance-2.0-image-to-video")
HOSTILE_ID = '<script>alert("id")</script>\x1b[31m'
HOSTILE_MESSAGE = '<img src=x onerror="alert(1)">\u202eevil'


def job(job_id: str, model: str, prompt: str = "A paper boat drifts") -> dict[str, Any]:
    return {
        "id": job_id,
        "model": model,
        "prompt": prompt,
        "image_urls": ["https://example.com/boat.png"],
    }


def known_jobs() -> list[Any]:
    jobs: list[Any] = [job(f"ok-{n:02d}", MODELS[n % 3]) for n in range(18)]
    jobs.append(job("policy-1", MODELS[0], "mock:fail=content_policy_violation no"))
    jobs.append(job("policy-2", MODELS[1], "mock:fail=content_policy_violation no"))
    jobs.append(job("busy-1", MODELS[2], "mock:fail=resource_exhausted later"))
    jobs.append(job("cancel-1", MODELS[0], "mock:cancel stop"))
    jobs.append(job(HOSTILE_ID, MODELS[1], "mock:fail=resource_exhausted odd"))
    # Sent as given (no validation), refused by the mock (wan2.5 takes 5 or 10
    # seconds): a job with no task.
    fields = {"prompt": "x", "image_urls": ["https://example.com/boat.png"], "duration": 7}
    refused = RawRequest(MODELS[0], fields)
    jobs.append(Job(refused, id="refused-1"))
    return jobs


@pytest.fixture(scope="module")
def run_journal(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The known run, journalled; (journal, what the mock saw)."""
    folder = tmp_path_factory.mktemp("report")
    journal = folder / "run.journal"

    async def go() -> dict[str, Any]:
        async with MockEvoLink(time_scale=0.002, seed=5) as mock:
            jobs = known_jobs()
            started = time.time()
            async with make_client(mock) as client:
                outcomes = await client.batch(jobs, concurrency=6, journal=journal).results()
            ended = time.time()
            return {
                "started": started,
                "ended": ended,
                "creates": mock.stats.requests[CREATE],
                "poll_requests": sum(mock.stats.requests[route] for route in POLL_ROUTES),
                "reads": {
                    o.job_id: len(mock.stats.polls.get(o.task.id, []))
                    for o in outcomes
                    if o.task is not None
                },
                "tasks": {o.job_id: mock.tasks[o.task.id] for o in outcomes if o.task is not None},
                "ok": sum(o.ok for o in outcomes),
                "key": mock.api_key,
            }

    return journal, asyncio.run(go())


# ---------------------------------------------------------------- journal timestamps


def test_every_write_stamps_its_time(run_journal: tuple[Path, dict[str, Any]]) -> None:
    journal, seen = run_journal
    entries = list(read_entries(journal))
    assert len(entries) == 24
    slack = 1.0  # the clock read before the write, the test's after the run
    for entry in entries:
        assert entry.begun_at is not None and entry.finished_at is not None
        begun, finished = entry.begun_at.timestamp(), entry.finished_at.timestamp()
        assert seen["started"] - slack <= begun <= finished <= seen["ended"] + slack
        if entry.job_id == "refused-1":
            assert entry.task_id is None and entry.created_at is None
            continue
        assert entry.created_at is not None
        assert begun <= entry.created_at.timestamp() <= finished


@pytest.mark.anyio
async def test_an_older_journal_gets_the_columns_and_reads_without_them(tmp_path: Path) -> None:
    path = tmp_path / "old.journal"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE jobs (job_id TEXT PRIMARY KEY, idempotency_key TEXT NOT NULL,
                           fingerprint TEXT NOT NULL, task_id TEXT, outcome TEXT);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('format', 'evolink-async journal 1');
        INSERT INTO jobs VALUES ('old-1', 'k1', 'f1', 'task-unified-1-abcdefgh', NULL);
        """
    )
    db.commit()
    db.close()
    # Read as it is: no column added, the times missing.
    (old,) = read_entries(path)
    assert old.job_id == "old-1" and old.begun_at is None and old.finished_at is None
    assert old.polls is None and list(read_poll_samples(path)) == []
    page = render_html(summarize(read_entries(path), read_poll_samples(path)), title="old")
    assert "No poll data" in page and "polls sent" not in page
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert "begun_at" not in {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
    # A run opening it adds the columns; its writes then stamp them.
    journal = Journal(path)
    await journal.open()
    try:
        await journal.finished("old-1", {"task": None}, polls=4)
        await journal.begin("new-1", "k2", "f2")
    finally:
        await journal.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert {"uploads", "begun_at", "created_at", "finished_at", "polls"} <= columns
    assert "polls" in tables
    by_id = {entry.job_id: entry for entry in read_entries(path)}
    assert by_id["old-1"].begun_at is None and by_id["old-1"].finished_at is not None
    assert by_id["old-1"].polls == 4 and by_id["new-1"].polls is None
    assert by_id["new-1"].begun_at is not None and by_id["new-1"].finished_at is None


@pytest.mark.anyio
async def test_a_report_reads_a_journal_a_run_holds_and_leaves_no_files(tmp_path: Path) -> None:
    path = tmp_path / "live.journal"
    journal = Journal(path)
    await journal.open()  # holds the lock, as a running batch does
    try:
        await journal.begin("sent", "k1", "f1")
        await journal.begin("running", "k2", "f2")
        await journal.created("running", "task-unified-1-abcdefgh")
        summary = summarize(read_entries(path))
        assert dict(summary.outcomes) == {"creating": 1, "running": 1}
        page = render_html(summary, title="live")
        assert "create unanswered" in page and "hatched: no outcome yet" in page
    finally:
        await journal.close()
    assert not list(tmp_path.glob("live.journal-*"))
    assert [entry.job_id for entry in read_entries(path)] == ["sent", "running"]
    # Reading a closed journal leaves no -wal or -shm beside it.
    assert not list(tmp_path.glob("live.journal-*"))


# ---------------------------------------------------------------- the page


def test_summary_figures_match_the_run(run_journal: tuple[Path, dict[str, Any]]) -> None:
    journal, seen = run_journal
    summary = summarize(read_entries(journal))
    assert summary.jobs == 24
    assert dict(summary.outcomes) == {"completed": 18, "failed": 4, "cancelled": 1, "error": 1}
    assert summary.outcomes["completed"] == seen["ok"]
    assert summary.failure_codes["content_policy_violation"] == 2
    assert summary.failure_codes["resource_exhausted"] == 2
    assert summary.failure_codes["invalid_request"] == 1
    assert summary.failure_codes["cancelled"] == 1
    tasks = seen["tasks"]
    completed = [t for t in tasks.values() if t.final_status == "completed"]
    assert summary.credits_used == pytest.approx(sum(t.credits_reserved for t in completed))
    assert summary.credits_reserved == pytest.approx(
        sum(t.credits_reserved for t in tasks.values())
    )
    for model in MODELS:
        assert summary.models[model].completed == 6
        assert len(summary.models[model].latencies) == 6
    assert summary.span <= seen["ended"] - seen["started"] + 1.0


def test_polls_in_the_report_are_what_the_mock_counted(
    run_journal: tuple[Path, dict[str, Any]],
) -> None:
    journal, seen = run_journal
    assert seen["poll_requests"] > 24  # the mock's tasks take several polls each
    # Each job's outcome keeps how many times its task was read.
    kept = {entry.job_id: entry.polls for entry in read_entries(journal)}
    assert {job_id: kept[job_id] for job_id in seen["reads"]} == seen["reads"]
    assert kept["refused-1"] is None  # no task, nothing polled
    samples = list(read_poll_samples(journal))
    assert len({sample.owner for sample in samples}) == 1
    assert [s.sent for s in samples] == sorted(s.sent for s in samples)
    summary = summarize(read_entries(journal), read_poll_samples(journal))
    assert summary.polls_sent == seen["poll_requests"]
    assert sum(count for _, count in summary.polls) == seen["poll_requests"]
    assert summary.task_polls == sum(seen["reads"].values())
    assert summary.polled_tasks == len(seen["reads"])
    assert summary.first is not None and summary.last is not None
    # Sampled as the run went: with the commits, inside the run's span.
    assert len(summary.polls) > 3
    assert all(summary.first <= at <= summary.last + 1.0 for at, _ in summary.polls)
    figures = summary.to_json()
    assert figures["polls_sent"] == seen["poll_requests"]
    assert figures["polls_per_task"] == pytest.approx(
        sum(seen["reads"].values()) / len(seen["reads"]), abs=1e-3
    )


def test_the_page_escapes_journal_text_and_loads_nothing(
    run_journal: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    journal, seen = run_journal
    copy = tmp_path / "run.journal"
    shutil.copy(journal, copy)
    # An outcome whose server-sent error is markup (and a bidi override).
    error = {"type": "APIError", "message": HOSTILE_MESSAGE, "status": 400, "code": "<b>x</b>"}
    with contextlib.closing(sqlite3.connect(copy)) as db, db:
        db.execute(
            "UPDATE jobs SET outcome = ? WHERE job_id = 'refused-1'",
            (json.dumps({"task": None, "error": error}),),
        )
    page = render_html(summarize(read_entries(copy)), title="run <1>")
    assert "<script" not in page.lower() and "<img" not in page and "<b>x" not in page
    assert HOSTILE_ID not in page
    assert "&lt;script&gt;alert(&quot;id&quot;)&lt;/script&gt;\\x1b[31m" in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;\\u202eevil" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page
    assert "<title>run &lt;1&gt;</title>" in page
    # Self-contained: no reference to anything outside the page.
    assert not re.search(r"""<[^>]*\s(?:src|href)\s*=|<link|@import|url\((?!#)""", page, re.I)
    assert seen["key"] not in page


def test_the_timeline_draws_a_bounded_even_sample(tmp_path: Path) -> None:
    path = tmp_path / "big.journal"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE jobs (job_id TEXT PRIMARY KEY, idempotency_key TEXT NOT NULL,
            fingerprint TEXT NOT NULL, task_id TEXT, outcome TEXT, uploads TEXT,
            begun_at REAL, created_at REAL, finished_at REAL);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('format', 'evolink-async journal 1');
        """
    )
    outcome = json.dumps({"task": {"id": "t", "status": "completed", "model": "m", "results": []}})
    db.executemany(
        "INSERT INTO jobs VALUES (?, 'k', 'f', 't', ?, NULL, ?, ?, ?)",
        [(f"j{n}", outcome, 1000.0 + n, 1000.5 + n, 1010.0 + n) for n in range(3000)],
    )
    db.commit()
    db.close()
    summary = summarize(read_entries(path))
    assert summary.jobs == 3000 and len(summary.sample) == MAX_TIMELINE
    starts = sorted(item[2] or 0 for item in summary.sample)
    # Drawn from the whole run, not its first jobs.
    assert starts[0] < 1000 + 300 and starts[-1] > 1000 + 2700
    page = render_html(summary, title="big")
    assert f"{MAX_TIMELINE} of 3000 jobs" in page
    assert page.count("<rect") < 3 * MAX_TIMELINE + 100


def test_the_figures_and_the_page_do_not_depend_on_the_order_of_the_entries() -> None:
    # A file lists jobs as first recorded, PostgreSQL by job id: the same run
    # must give the same report either way, sample and lists included.
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ok = {"task": {"id": "t", "status": "completed", "model": "m", "results": []}}

    def failed(code: str, n: int) -> dict[str, Any]:
        error = {"type": "APIError", "message": f"{code} #{n}", "status": 400, "code": code}
        return {"task": None, "error": error}

    entries = [
        JournalEntry(
            job_id=f"j{n:04d}",
            idempotency_key="k",
            fingerprint="f",
            task_id="t",
            outcome=failed(("busy", "policy")[n % 2], n) if n % 25 == 0 else ok,
            begun_at=start + timedelta(seconds=n),
            created_at=start + timedelta(seconds=n + 0.5),
            finished_at=start + timedelta(seconds=n + 10),
        )
        for n in range(3000)
    ]
    forward, backward = summarize(entries), summarize(reversed(entries))
    assert len(forward.sample) == MAX_TIMELINE and forward.failure_codes["busy"] == 60
    assert sorted(forward.sample) == sorted(backward.sample)
    assert forward.failures == backward.failures and len(forward.failures) == 50
    assert [f.job_id for f in forward.failures] == sorted(f.job_id for f in forward.failures)
    assert forward.failure_examples == {"busy": "busy #0", "policy": "policy #25"}
    assert backward.failure_examples == forward.failure_examples
    assert forward.to_json() == backward.to_json()
    assert render_html(forward, title="t") == render_html(backward, title="t")
    # Still drawn from the whole run.
    starts = sorted(item[2] or 0 for item in forward.sample)
    assert starts[0] < start.timestamp() + 300 and starts[-1] > start.timestamp() + 2700


def test_report_command_text_json_and_html(
    run_journal: tuple[Path, dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal, seen = run_journal
    html_path = tmp_path / "pages" / "report.html"
    assert main(["report", str(journal), "--html", str(html_path)]) == 0
    out = capsys.readouterr().out
    assert out == f"wrote {html_path}: 24 jobs, 18 completed; open it in a browser\n"
    assert html_path.read_text().startswith("<!DOCTYPE html>")

    assert main(["report", str(journal), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["jobs"] == 24 and figures["outcomes"]["completed"] == 18
    assert figures["polls_sent"] == seen["poll_requests"]
    assert figures["failures_by_code"]["content_policy_violation"] == 2

    assert main(["report", str(journal)]) == 0
    text = capsys.readouterr().out
    assert "24 jobs" in text and "content_policy_violation" in text
    assert f"polls: {seen['poll_requests']} sent" in text
    assert "\x1b" not in text and "resource_exhausted" in text

    assert main(["journal", "status", str(journal), "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["jobs"] == counts["finished"] == 24 and counts["journal"] == str(journal)

    assert main(["report", str(tmp_path / "missing.journal"), "--html", "x.html"]) == 2
    assert "no such journal" in capsys.readouterr().err
    assert main(["report", str(journal), "--html", str(journal)]) == 2
    assert "the journal itself" in capsys.readouterr().err
    not_journal = tmp_path / "notes.txt"
    not_journal.write_text("hello")
    assert main(["report", str(not_journal)]) == 2
    assert "not an evolink-async journal" in capsys.readouterr().err
    assert not_journal.read_text() == "hello"


# ---------------------------------------------------------------- in a real browser


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail(
            "chromium is not installed: `make test` installs it "
            "(apt-get install -y chromium); the report's browser test needs it"
        )
    return path


def browse(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_page_renders_in_chromium(
    run_journal: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    journal, seen = run_journal
    page = tmp_path / "report.html"
    assert main(["report", str(journal), "--html", str(page)]) == 0

    dom = browse(page, tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0, dom.stderr
    rendered = dom.stdout
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
    polls, reads = seen["poll_requests"], sum(seen["reads"].values())
    assert re.search(rf"<b>{polls:,}</b><span>polls sent</span>", rendered)
    per_task = f"{reads / len(seen['reads']):.1f}"
    assert re.search(rf"<b>{re.escape(per_task)}</b><span>polls per task</span>", rendered)
    assert f"Tasks were read {reads:,} times, {per_task} per task" in rendered
    # The chart's points (each one's tooltip) add up to the polls the mock served.
    chart = rendered.split('aria-label="polls over time"', 1)[1].split("</svg>", 1)[0]
    points = [int(n) for n in re.findall(r"<title>polls sent: (\d+) in", chart)]
    assert len(points) == 40 and sum(points) == polls
    assert "<script" not in rendered.lower()
    errors = [
        line
        for line in dom.stderr.splitlines()
        if "Uncaught" in line or re.search(r"CONSOLE|console", line)
    ]
    assert errors == []

    shot = tmp_path / "report.png"
    taken = browse(page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1000,2600")
    assert taken.returncode == 0, taken.stderr
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    keep = Path(__file__).resolve().parent.parent / "out" / "report-screenshot.png"
    keep.parent.mkdir(exist_ok=True)
    keep.write_bytes(data)
