"""
Many processes, one run: `evolink-async batch` twice on one PostgreSQL journal.

Two CLI processes run the same 200 jobs with the same `--journal
postgresql://...` and `--run-id` against one mock server process; one is
SIGKILLed mid-run. The survivor waits out the dead one's lease, takes its
jobs over (re-attaching to its tasks, re-sending its creates with the same
derived keys) and finishes. The server must have made exactly one task per
job, and the journal must hold one final outcome per job, every video on
disk.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evolink_async._batch.jobs import fingerprint, read_job
from evolink_async._batch.keys import derive_key
from evolink_async._models import request_body

JOBS = 200
#: A 165 s task takes 0.5 s: the run lasts long enough to be killed mid-way.
TIME_SCALE = 0.003
LEASE = 1.5
#: Generous: a loaded machine (another suite beside this one) slows both runs.
DEADLINE = 120.0


@pytest.fixture
def slow_mock_server() -> Iterator[tuple[str, str]]:
    """`evolink-async mock-server` on a slower clock, in a process of its own."""
    process = subprocess.Popen(
        [sys.executable, "-m", "evolink_async", "mock-server", "--time-scale", str(TIME_SCALE)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first, second = process.stdout.readline(), process.stdout.readline()
        url = re.search(r"on (http://127\.0\.0\.1:\d+)", first)
        key = re.search(r"EVOLINK_API_KEY=(\S+)", second)
        assert url and key, (first, second)
        yield url.group(1), key.group(1)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def job(n: int) -> dict[str, Any]:
    return {
        "id": f"clip-{n:03d}",
        "model": "wan2.5-image-to-video",
        "prompt": f"A lighthouse at dusk, take {n}",
        "image_urls": ["https://example.com/lighthouse.png"],
    }


def mock_stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/_mock/stats", timeout=5) as reply:  # noqa: S310 -- loopback
        stats: dict[str, Any] = json.load(reply)
    return stats


def cli(*args: str, key: str, **popen: Any) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVOLINK_")}
    env["EVOLINK_API_KEY"] = key
    return subprocess.Popen([sys.executable, "-m", "evolink_async", *args], env=env, **popen)


def out_ids(path: Path) -> set[str]:
    if not path.exists():
        return set()
    return {
        json.loads(line)["job_id"] for line in path.read_text().splitlines() if line.endswith("}")
    }


@pytest.mark.slow
@pytest.mark.timeout(2 * DEADLINE + 60)
def test_two_processes_share_a_run_and_the_survivor_takes_over_a_killed_one(
    slow_mock_server: tuple[str, str], pg_url: str, tmp_path: Path
) -> None:
    url, key = slow_mock_server
    run_id = f"kill-{uuid.uuid4().hex[:8]}"
    jobs = [job(n) for n in range(JOBS)]
    jobs_file = tmp_path / "jobs.jsonl"
    jobs_file.write_text("".join(json.dumps(j) + "\n" for j in jobs))
    videos = tmp_path / "videos"

    def batch(name: str) -> subprocess.Popen[bytes]:
        with (tmp_path / f"{name}.err").open("wb") as log:
            return cli(
            "batch", str(jobs_file), "--journal", pg_url, "--run-id", run_id,
            "--lease", str(LEASE), "--base-url", url, "--time-scale", str(TIME_SCALE),
            "--download", str(videos), "--out", str(tmp_path / f"{name}.jsonl"),
            "--concurrency", "8", "--progress-every", "0.5",
            key=key, stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip

    doomed, survivor = batch("doomed"), batch("survivor")
    try:
        # Kill once both have work under way: some tasks made, most not finished.
        deadline = time.monotonic() + DEADLINE
        while mock_stats(url)["tasks_created"] < JOBS // 4 or not out_ids(
            tmp_path / "doomed.jsonl"
        ):
            assert doomed.poll() is None and survivor.poll() is None, "a run ended too early"
            assert time.monotonic() < deadline, "the runs did not get going"
            time.sleep(0.02)
        doomed.kill()
        assert doomed.wait() == -signal.SIGKILL
        assert (
            mock_stats(url)["tasks_created"] < JOBS
            or len(out_ids(tmp_path / "doomed.jsonl")) < JOBS
        )
        code = survivor.wait(timeout=DEADLINE)
    finally:
        for process in (doomed, survivor):
            if process.poll() is None:
                process.kill()
                process.wait()
    assert code == 0, (tmp_path / "survivor.err").read_text()

    # The server: one task per job, each under the job's derived key.
    stats = mock_stats(url)
    prints = {j["id"]: fingerprint(request_body(read_job(j).request, paths=True)) for j in jobs}
    expected_keys = {derive_key(run_id, job_id, fp) for job_id, fp in prints.items()}
    assert stats["tasks_created"] == JOBS
    assert set(stats["creates_per_key"]) == expected_keys
    assert set(stats["creates_per_key"].values()) == {1}

    # The journal: one final outcome per job, every video on disk.
    export = tmp_path / "export.jsonl"
    exported = cli(
        "journal", "export", pg_url, "--run-id", run_id, "--out", str(export), key=key
    ).wait(timeout=30)
    assert exported == 0
    records = [json.loads(line) for line in export.read_text().splitlines()]
    assert sorted(r["job_id"] for r in records) == sorted(prints)
    assert len({r["task_id"] for r in records}) == JOBS
    for record in records:
        assert record["status"] == "completed" and record["ok"], record
        assert Path(record["path"]).stat().st_size > 0
    assert sorted(p.name for p in videos.glob("*.mp4")) == sorted(f"{i}.mp4" for i in prints)
    assert not list(videos.glob(".*.part"))

    # Each process yields what it finished: the survivor never repeats the dead one's.
    doomed_ids, survivor_ids = (
        out_ids(tmp_path / "doomed.jsonl"),
        out_ids(tmp_path / "survivor.jsonl"),
    )
    assert doomed_ids and survivor_ids
    assert not doomed_ids & survivor_ids
    assert doomed_ids | survivor_ids <= set(prints)

    status = subprocess.run(
        [sys.executable, "-m", "evolink_async", "journal", "status", pg_url, "--run-id", run_id],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert f"{JOBS} finished" in status.stdout and "stalled leases: 0" in status.stdout
