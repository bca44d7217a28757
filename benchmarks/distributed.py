"""
Many processes on one key: 1, 2 and 4 worker processes share a `SharedBudget`
in PostgreSQL against a mock limited to `--limit` creates per second per key
(`evolink-async mock-server --creates-per-second`), each running
`client.batch` over its share of the jobs. Reported per row: the creates per
second achieved as a share of the limit, the mock's 429s on creates,
requests per job, and the wall time against the ideal (jobs / budget + one
task's run time). Then the kill test: two processes share one run through a
PostgreSQL journal, one is SIGKILLed mid-run, and the survivor finishes its
jobs: server tasks per job and jobs lost.

Everything is counted by the mock (`GET /_mock/stats`). PostgreSQL comes
from `EVOLINK_TEST_PG` or a throwaway cluster (`tests/pgcluster.py`).

    .venv/bin/python benchmarks/distributed.py            # 240 jobs a row
    .venv/bin/python benchmarks/distributed.py --smoke    # 24 jobs a row
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import pgcluster  # noqa: E402 -- the repository root is put on the path first

CREATE = "POST /v1/videos/generations"
#: The mock's clock: a wan2.5 task (120 s) runs in about 0.6 s.
TIME_SCALE = 0.005
TASK_SECONDS = 120 * TIME_SCALE


def worker_main(argv: list[str]) -> None:
    """One worker process: a batch over `count` jobs named `prefix-N`; prints a JSON line."""
    from evolink_async import EvoLinkClient, PollPolicy, RetryPolicy, SharedBudget

    url, dsn, prefix, count, rate, run_id, journal, first = argv

    async def main() -> None:
        jobs = [
            {
                "id": f"{prefix}-{n}",
                "model": "wan2.5-image-to-video",
                "prompt": "a cat",
                "image_urls": ["https://example.com/cat.png"],
            }
            for n in range(int(first), int(first) + int(count))
        ]
        poll = PollPolicy(min_interval=0.01, max_interval=0.2, default_estimate=TASK_SECONDS)
        retry = RetryPolicy(max_retries=20, initial_backoff=0.01, max_backoff=0.5)
        budget = SharedBudget(dsn, creates_per_second=float(rate), name=f"bench-{run_id}")
        async with budget, EvoLinkClient(base_url=url, poll=poll, retry=retry) as client:
            run = client.batch(
                jobs,
                run_id=run_id,
                budget=budget,
                journal=dsn if journal == "yes" else None,
                # A short lease: the survivor of the kill test takes over soon.
                lease=2.0,
            )
            outcomes = [outcome async for outcome in run]
        print(json.dumps({"ok": sum(o.ok for o in outcomes), "n": len(outcomes)}), flush=True)

    asyncio.run(main())


def stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/_mock/stats", timeout=5) as reply:  # noqa: S310
        data: dict[str, Any] = json.load(reply)
        return data


def start_mock(limit: float) -> tuple[subprocess.Popen[str], str, str]:
    command = [
        sys.executable, "-m", "evolink_async", "mock-server", "--time-scale", str(TIME_SCALE),
        "--creates-per-second", str(limit),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603
    assert process.stdout is not None
    first, second = process.stdout.readline(), process.stdout.readline()
    url = re.search(r"on (http://127\.0\.0\.1:\d+)", first)
    key = re.search(r"EVOLINK_API_KEY=(\S+)", second)
    if not (url and key):
        raise RuntimeError(f"mock-server did not start: {first!r} {second!r}")
    return process, url.group(1), key.group(1)


def spawn(url: str, key: str, dsn: str, args: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "EVOLINK_API_KEY": key, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, __file__, "--worker", url, dsn, *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)  # noqa: S603


def watch_creates(url: str, before: int, target: int, deadline: float) -> list[float]:
    """Times (monotonic) at which the mock's task count rose, until `target` more."""
    times: list[float] = []
    seen = before
    while seen - before < target and time.monotonic() < deadline:
        count = stats(url)["tasks_created"]
        times.extend([time.monotonic()] * (count - seen))
        seen = count
        time.sleep(0.02)
    return times


def run_row(url: str, key: str, dsn: str, workers: int, jobs: int, budget: float) -> dict[str, Any]:
    run_id = f"bench-{workers}-{uuid.uuid4().hex[:8]}"
    before = stats(url)
    started = time.monotonic()
    share = jobs // workers
    processes = [
        spawn(url, key, dsn, [f"w{n}", str(share), str(budget), run_id, "no", str(n * share)])
        for n in range(workers)
    ]
    times = watch_creates(url, before["tasks_created"], share * workers, started + 300)
    outs = [
        json.loads((p.communicate(timeout=300)[0] or "{}").strip().splitlines()[-1])
        for p in processes
    ]
    wall = time.monotonic() - started
    after = stats(url)
    created = after["tasks_created"] - before["tasks_created"]
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    rate = (len(times) - 1) / span if span > 0 else 0.0
    requests = sum(after["requests"].values()) - sum(before["requests"].values())
    limited = after["rate_limited"].get(CREATE, 0) - before["rate_limited"].get(CREATE, 0)
    ideal = created / budget + TASK_SECONDS
    return {
        "workers": workers,
        "jobs": share * workers,
        "ok": sum(out.get("ok", 0) for out in outs),
        "created": created,
        "rate": rate,
        "429": limited,
        "requests_per_job": requests / max(1, created),
        "wall": wall,
        "ideal": ideal,
    }


def kill_test(url: str, key: str, dsn: str, jobs: int, budget: float) -> dict[str, Any]:
    """Two processes share one run (PostgreSQL journal); one is SIGKILLed mid-run."""
    run_id = f"bench-kill-{uuid.uuid4().hex[:8]}"
    before = stats(url)
    started = time.monotonic()
    processes = [
        spawn(url, key, dsn, ["k", str(jobs), str(budget), run_id, "yes", "0"]) for _ in range(2)
    ]
    watch_creates(url, before["tasks_created"], max(2, jobs // 4), started + 120)
    processes[0].send_signal(signal.SIGKILL)
    processes[0].wait()
    out = json.loads(processes[1].communicate(timeout=300)[0].strip().splitlines()[-1])
    wall = time.monotonic() - started
    after = stats(url)
    created = after["tasks_created"] - before["tasks_created"]
    per_key = list(after["creates_per_key"].values())
    # The whole run's outcomes, the killed process's finished jobs included.
    with tempfile.TemporaryDirectory(prefix="evolink-bench-export-") as scratch:
        export = Path(scratch) / "all.jsonl"
        command = [sys.executable, "-m", "evolink_async", "journal", "export", dsn]
        command += ["--run-id", run_id, "--out", str(export)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)  # noqa: S603
        records = [json.loads(line) for line in export.read_text().splitlines() if line]
    return {
        "jobs": jobs,
        "created": created,
        "survivor_ok": out["ok"],
        "run_ok": sum(1 for record in records if record.get("ok")),
        "max_per_key": max(per_key) if per_key else 0,
        "wall": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--jobs", type=int, default=240, help="jobs per row (default 240)")
    parser.add_argument("--limit", type=float, default=20.0, help="mock creates/s per key")
    parser.add_argument("--budget", type=float, default=18.0, help="SharedBudget creates/s")
    parser.add_argument("--smoke", action="store_true", help="24 jobs a row")
    args = parser.parse_args()
    jobs = 24 if args.smoke else args.jobs

    with tempfile.TemporaryDirectory(prefix="evolink-bench-pg-") as scratch:
        # The cluster's own (unprivileged) user must reach its directory inside.
        os.chmod(scratch, 0o755)  # noqa: S103
        dsn = os.environ.get("EVOLINK_TEST_PG") or pgcluster.start(Path(scratch) / "pg")
        mock, url, key = start_mock(args.limit)
        try:
            rows = [run_row(url, key, dsn, n, jobs, args.budget) for n in (1, 2, 4)]
            kill = kill_test(url, key, dsn, jobs, args.budget)
        finally:
            mock.send_signal(signal.SIGINT)
            mock.wait(timeout=10)
            if not os.environ.get("EVOLINK_TEST_PG"):
                pgcluster.stop(Path(scratch) / "pg")

    print(f"mock limit {args.limit:g} creates/s per key, SharedBudget {args.budget:g}/s, "
          f"task ~{TASK_SECONDS:.1f} s")  # fmt: skip
    print(f"{'workers':>7} {'jobs':>5} {'ok':>5} {'creates/s':>9} {'of limit':>8} "
          f"{'429s':>5} {'req/job':>7} {'wall s':>7} {'ideal s':>7}")  # fmt: skip
    for row in rows:
        print(
            f"{row['workers']:>7} {row['jobs']:>5} {row['ok']:>5} {row['rate']:>9.1f} "
            f"{row['rate'] / args.limit:>8.0%} {row['429']:>5} {row['requests_per_job']:>7.2f} "
            f"{row['wall']:>7.2f} {row['ideal']:>7.2f}"
        )
    print(
        f"kill test: {kill['jobs']} jobs, 2 processes, one SIGKILLed: {kill['created']} tasks "
        f"created, at most {kill['max_per_key']} per key; the survivor finished "
        f"{kill['survivor_ok']}, the run (journal export) {kill['run_ok']} ok, "
        f"{kill['wall']:.2f} s"
    )
    worst = max(row["429"] for row in rows)
    share = min(row["rate"] / args.limit for row in rows)
    lost = kill["jobs"] - kill["run_ok"]
    print(
        f"summary: 1/2/4 processes reach >= {share:.0%} of the limit with at most {worst} "
        f"429s on creates; kill test: {kill['created']} tasks for {kill['jobs']} jobs, "
        f"{lost} lost"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2:])
    else:
        main()
