"""`evolink-async batch` and `evolink-async demo` end to end: output, --out, exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from evolink_async import MODELS
from evolink_async._cli import main
from evolink_async._cli.demo import EMBEDDED_JOBS, EXAMPLE_JOBS
from evolink_async.testing import MockEvoLink

CREATE = "POST /v1/videos/generations"
#: The mocks' clock in these tests: a 120 s task takes 0.12 s.
TIME_SCALE = 0.001
#: A plain progress line, as printed when stdout is not a terminal.
PROGRESS_LINE = re.compile(
    r"^\[\d+(\.\d)?s\] \d+ of \d+ read, \d+ created, \d+ completed, \d+ failed, .*"
    r"\d+ pending, credits [\d,.]+ reserved/[\d,.]+ used",
    re.MULTILINE,
)


def wan(job_id: str, prompt: str = "A paper boat drifts down a rainy street") -> dict[str, Any]:
    return {
        "id": job_id,
        "model": "wan2.5-image-to-video",
        "prompt": prompt,
        "image_urls": ["https://example.com/boat.png"],
    }


def seedance(job_id: str) -> dict[str, Any]:
    return {
        "id": job_id,
        "model": "seedance-2.0-image-to-video",
        "prompt": "The camera pushes in slowly",
        "image_urls": ["https://example.com/meadow.jpg"],
        "duration": 4,
        "metadata": {"shot": job_id},
    }


#: Line by line: (line text, what --out must say of it).
MIXED: list[tuple[str, dict[str, Any] | None]] = [
    ("# a comment", None),
    (json.dumps(wan("boat-01")), {"status": "completed"}),
    (json.dumps(seedance("meadow-02")), {"status": "completed"}),
    ("", None),
    ("{not json", {"status": "invalid", "line": 5}),
    (
        json.dumps(wan("refused-03", "mock:fail=content_policy_violation x")),
        {"status": "failed", "error_code": "content_policy_violation"},
    ),
    (json.dumps({**wan("bad-duration-04"), "duration": 7}), {"status": "invalid", "line": 7}),
    (json.dumps(wan("cancel-05", "mock:cancel x")), {"status": "cancelled"}),
    (json.dumps(wan("boat-01")), {"status": "invalid", "line": 9}),  # duplicate id
    (json.dumps(seedance("meadow-06")), {"status": "completed"}),
]


def write_jobs(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def read_out(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m evolink_async ARGS` (stdout is a pipe: plain progress lines)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("EVOLINK_")}
    return subprocess.run(
        [sys.executable, "-m", "evolink_async", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, **(env or {})},
        cwd=cwd,
        check=False,
    )


async def cli_async(mock: MockEvoLink, *args: str) -> subprocess.CompletedProcess[str]:
    """`cli(...)` in a thread, so `mock` keeps serving in this loop meanwhile."""
    return await asyncio.to_thread(cli, *args, env={"EVOLINK_API_KEY": mock.api_key})


# ---------------------------------------------------------------- against a mock the test runs


@pytest.mark.anyio
async def test_out_lines_match_the_jobs_and_what_the_server_made(tmp_path: Path) -> None:
    jobs = write_jobs(tmp_path / "jobs.jsonl", [text for text, _ in MIXED])
    out, videos = tmp_path / "results.jsonl", tmp_path / "videos"
    async with MockEvoLink(time_scale=TIME_SCALE) as mock:
        result = await cli_async(
            mock,
            "batch",
            str(jobs),
            "--out",
            str(out),
            "--download",
            str(videos),
            "--base-url",
            mock.url,
            "--time-scale",
            str(TIME_SCALE),
            "--progress-every",
            "0.05",
        )
        assert result.returncode == 1, result.stderr  # a job failed, lines were skipped
        # The server saw one create per valid job, nothing for the bad lines.
        assert mock.stats.tasks_created == 5
        assert mock.stats.requests[CREATE] == 5
        assert set(mock.stats.creates_per_key.values()) == {1}

        lines = read_out(out)
        expected = [(text, want) for text, want in MIXED if want is not None]
        assert len(lines) == len(expected)
        by_line = {line["line"]: line for line in lines if "line" in line}
        by_id = {line["job_id"]: line for line in lines if "line" not in line}
        for text, want in expected:
            if want["status"] == "invalid":
                line = by_line[want["line"]]
                assert line["error_code"] == "invalid_job" and not line["ok"]
                assert line["task_id"] is None
                continue
            job = json.loads(text)
            line = by_id[job["id"]]
            assert line["status"] == want["status"], line
            assert line["model"] == job["model"]
            assert line["metadata"] == job.get("metadata")
            assert line["resumed"] is False
            task = mock.tasks[line["task_id"]]
            assert task.body["prompt"] == job["prompt"]
            assert line["credits_reserved"] == task.credits_reserved
            if want["status"] == "completed":
                assert line["ok"] and line["error_code"] is None
                path = Path(line["path"])
                assert path == videos / f"{job['id']}.mp4"
                assert path.read_bytes() == mock.video_bytes(task.id)
                assert line["video_url"].startswith(mock.url)
                assert line["credits_used"] == task.credits_reserved
            else:
                assert not line["ok"] and line["path"] is None
                assert line["error_code"] == want.get("error_code", "cancelled")
                assert line["credits_used"] == 0
    assert sorted(p.name for p in videos.iterdir()) == [
        "boat-01.mp4",
        "meadow-02.mp4",
        "meadow-06.mp4",
    ]

    # Bad lines: reported on stderr with their numbers, no traceback.
    err = result.stderr
    assert f"{jobs}:5: invalid JSON" in err
    assert f"{jobs}:7: id=bad-duration-04: duration=7" in err
    assert f"{jobs}:9: id=boat-01: duplicate id 'boat-01' (first used on line 2)" in err
    assert "Traceback" not in err + result.stdout
    assert mock.api_key not in err + result.stdout + out.read_text()
    # stdout is a pipe: plain progress lines, failures listed, a summary.
    assert PROGRESS_LINE.search(result.stdout), result.stdout
    assert "refused-03" in result.stdout and "[content_policy_violation]" in result.stdout
    assert "3 completed, 1 failed, 1 cancelled, 3 bad lines skipped" in result.stdout
    # The closing lines say how to draw the run; that command works.
    picture = re.search(r"^a picture of the run: (evolink-async report .*)$", result.stdout, re.M)
    assert picture is not None, result.stdout
    command = shlex.split(picture.group(1))
    assert command[2:] == [
        str(tmp_path / "jobs.jsonl.journal"),
        "--html",
        str(tmp_path / "report.html"),
    ]
    assert main(command[1:]) == 0
    assert "Timeline of jobs" in (tmp_path / "report.html").read_text()
    # The default journal sits beside the jobs file and holds every job.
    journal = sqlite3.connect(tmp_path / "jobs.jsonl.journal")
    try:
        count = journal.execute("SELECT COUNT(*) FROM jobs WHERE outcome IS NOT NULL").fetchone()
    finally:
        journal.close()
    assert count == (5,)


@pytest.mark.anyio
async def test_strict_refuses_a_file_with_bad_lines_before_sending_anything(
    tmp_path: Path,
) -> None:
    jobs = write_jobs(tmp_path / "jobs.jsonl", [text for text, _ in MIXED])
    out = tmp_path / "results.jsonl"
    async with MockEvoLink(time_scale=TIME_SCALE) as mock:
        args = ["batch", str(jobs), "--strict", "--out", str(out), "--base-url", mock.url]
        result = await cli_async(mock, *args)
        assert result.returncode == 2
        assert sum(mock.stats.requests.values()) == 0
    assert not out.exists()
    assert not (tmp_path / "jobs.jsonl.journal").exists()
    lines = [line for line in result.stderr.splitlines() if line.startswith(str(jobs))]
    assert [line.split(":")[1] for line in lines] == ["5", "7", "9"]
    assert "3 of 8 jobs have problems; nothing was sent (--strict)" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.anyio
async def test_a_refused_key_stops_the_run_and_is_never_printed(tmp_path: Path) -> None:
    jobs = write_jobs(tmp_path / "jobs.jsonl", [json.dumps(wan(f"k-{n}")) for n in range(40)])
    out = tmp_path / "results.jsonl"
    secret = "sk-wrong-key-0123456789abcdef"
    async with MockEvoLink(time_scale=TIME_SCALE) as mock:
        result = await cli_async(
            mock,
            "batch",
            str(jobs),
            "--out",
            str(out),
            "--api-key",
            secret,
            "--base-url",
            mock.url,
            "--concurrency",
            "2",
        )
        # Stopped after the first refusals instead of trying all 40 jobs.
        assert mock.stats.requests[CREATE] < 10
        assert mock.stats.tasks_created == 0
    assert result.returncode == 1
    assert "refused the key" in result.stdout
    everything = result.stdout + result.stderr + out.read_text()
    everything += "".join(p.read_bytes().decode("latin-1") for p in tmp_path.glob("jobs.*"))
    assert secret not in everything
    assert {line["error_code"] for line in read_out(out)} <= {"unauthorized", "not_submitted"}


# ---------------------------------------------------------------- --mock, in process


def test_mock_flag_runs_every_job_and_exits_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EVOLINK_API_KEY", raising=False)
    jobs = write_jobs(
        tmp_path / "jobs.jsonl",
        [json.dumps(wan("boat-01")), json.dumps(seedance("meadow-02"))],
    )
    out, videos = tmp_path / "out" / "results.jsonl", tmp_path / "videos"
    code = main(
        [
            "batch",
            str(jobs),
            "--mock",
            "--time-scale",
            str(TIME_SCALE),
            "--out",
            str(out),
            "--download",
            str(videos),
            "-v",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = read_out(out)
    assert [line["status"] for line in lines] == ["completed", "completed"]
    assert {line["job_id"] for line in lines} == {"boat-01", "meadow-02"}
    # The embedded mock serves a task's video as `video_bytes(task id)`.
    bytes_of = MockEvoLink().video_bytes
    for line in lines:
        assert Path(line["path"]).read_bytes() == bytes_of(line["task_id"])
    assert "Embedded mock API on http://127.0.0.1:" in captured.out
    assert "boat-01" in captured.out and "meadow-02" in captured.out  # -v: every job listed
    assert "2 jobs in" in captured.out
    # No journal by default with --mock: the embedded mock's tasks end with the run.
    assert not (tmp_path / "jobs.jsonl.journal").exists()
    assert captured.err == ""


def test_stale_partial_downloads_are_removed(tmp_path: Path) -> None:
    jobs = write_jobs(tmp_path / "jobs.jsonl", [json.dumps(wan("boat-01"))])
    videos = tmp_path / "videos"
    videos.mkdir()
    stale = videos / ".boat-01.mp4.0123abcd.part"
    stale.write_bytes(b"half a video")
    mine = videos / "notes.part"  # not a name the downloader uses: left alone
    mine.write_text("keep")
    args = ["batch", str(jobs), "--mock", "--time-scale", str(TIME_SCALE)]
    assert main([*args, "--download", str(videos)]) == 0
    assert not stale.exists() and mine.exists()
    assert (videos / "boat-01.mp4").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jsonl", "--mock"], "cannot read missing.jsonl: no such file"),
        (["{jobs}"], "no API key: set EVOLINK_API_KEY or pass --api-key-file PATH"),
        (["{jobs}", "--api-key-file", "nokey"], "--api-key-file nokey: cannot read"),
        (["{jobs}", "--mock", "--concurrency", "0"], "--concurrency 0: must be at least 1"),
        (["{jobs}", "--mock", "--time-scale", "0"], "--time-scale 0.0: must be > 0"),
        (["{jobs}", "--mock", "--base-url", "http://x"], "leave out --base-url"),
        (["{jobs}", "--mock", "--download", "{jobs}"], "exists and is not a directory"),
        (["-", "--mock"], "must be a file, not stdin"),
        (["{jobs}", "--mock", "--out", "{jobs}"], "--out {jobs}: the same file as JOBS.jsonl"),
        (
            ["{jobs}", "--journal", "{jobs}", "--api-key-file", "{key}"],
            "the same file as JOBS.jsonl",
        ),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    args: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("EVOLINK_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    jobs = write_jobs(tmp_path / "jobs.jsonl", [json.dumps(wan("boat-01"))])
    key = tmp_path / "key"
    key.write_text("sk-test-0123456789")
    assert main(["batch", *(arg.format(jobs=jobs, key=key) for arg in args)]) == 2
    err = capsys.readouterr().err
    assert message.format(jobs=jobs) in err
    assert err.count("\n") == 1
    assert jobs.read_text().count("\n") == 1  # the jobs file is untouched


def test_metadata_must_be_an_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = {**wan("boat-01"), "metadata": ["not", "an", "object"]}
    jobs = write_jobs(tmp_path / "jobs.jsonl", [json.dumps(bad)])
    assert main(["batch", str(jobs), "--mock", "--strict"]) == 2
    err = capsys.readouterr().err
    assert f"{jobs}:1: id=boat-01: metadata=['not', 'an', 'object']: must be a JSON object" in err


# ---------------------------------------------------------------- the demo


def test_example_jobs_cover_every_model_and_validate(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(EXAMPLE_JOBS)]) == 0
    assert "24 jobs, 24 valid, 0 invalid" in capsys.readouterr().out
    text = EXAMPLE_JOBS.read_text()
    jobs = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert {job["model"] for job in jobs} == set(MODELS)
    assert len({job["id"] for job in jobs}) == len(jobs) >= 20
    assert sum("mock:fail=" in job.get("prompt", "") for job in jobs) == 2
    # The demo's copy for installs without examples/ is the same file.
    assert text == EMBEDDED_JOBS


@pytest.mark.slow
def test_demo_shows_progress_and_a_summary_per_model(tmp_path: Path) -> None:
    kept = tmp_path / "demo-output"
    (kept / "videos").mkdir(parents=True)
    (kept / "videos" / "old-run.mp4").write_bytes(b"a video of the last demo")
    (kept / "notes.txt").write_text("mine")
    result = cli("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout
    assert "across all 5 models" in out
    assert PROGRESS_LINE.search(out), out
    assert re.search(r"failed\s+refused-prompt-20 .*\[content_policy_violation\]", out)
    assert re.search(r"failed\s+broken-image-21 .*\[image_processing_error\]", out)
    assert re.search(r"cancelled\s+cancelled-22 ", out)
    # The summary table: a row per model, then the totals.
    for model in MODELS:
        assert re.search(rf"^  {re.escape(model)}\s+\d+\s+\d+", out, re.MULTILINE), model
    totals = re.search(r"^  all models\s+24\s+21\s+2\s+1\s+(\d+)\s+[\d.]+\s+([\d,]+)$", out, re.M)
    assert totals, out
    assert "21 of 24 generations completed, 2 failed, 1 cancelled" in out
    assert "Downloads: 21 videos" in out and "identical to what the server sent" in out
    assert "Try next:" in out
    # What the demo made is kept for the user, in the folder it names; the
    # last demo's videos are gone, nothing else of the user's is touched.
    assert "Kept in demo-output/ to open now:" in out
    assert "demo-output/report.html" in out
    videos = sorted(p.name for p in (kept / "videos").iterdir())
    assert len(videos) == 21 and "old-run.mp4" not in videos
    assert len((kept / "results.jsonl").read_text().splitlines()) == 24
    assert "Timeline of jobs" in (kept / "report.html").read_text()
    assert (kept / "demo.journal").is_file() and (kept / "notes.txt").read_text() == "mine"
    assert not list(kept.glob("demo.journal-*"))
