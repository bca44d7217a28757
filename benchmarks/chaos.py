"""
The chaos run at scale: 10,000 jobs through the batch runner, every fault on.

Against one MockEvoLink in this process: 10% 5xx, 5% 429 with Retry-After, 3%
connections dropped before the reply, 3% dropped after the task was created,
2% replies slower than the client's timeout, 5% of tasks failing on the
server; results downloaded, a journal kept. It checks what the chaos test in
tests/ checks (one outcome per job in the right state, one task per job on the
server, every video on disk with the right bytes) and reports throughput and
how many requests the faults cost.

    .venv/bin/python benchmarks/chaos.py            # 10,000 jobs, about 2-3 minutes
    .venv/bin/python benchmarks/chaos.py --smoke    # 300 jobs, a few seconds
    .venv/bin/python benchmarks/chaos.py --jobs 2000 --seed 5

Prints a table, the checks, and one summary line.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from evolink_async import EvoLinkClient, PollPolicy, RetryPolicy, TaskFailedError
from evolink_async.testing import FaultPlan, MockEvoLink

TIME_SCALE = 0.002
CHAOS = FaultPlan(
    server_error=0.10,
    rate_limit=0.05,
    drop_before=0.03,
    drop_after=0.03,
    slow=0.02,
    slow_delay=0.6,
    retry_after=0.01,
)


def jobs(count: int) -> Iterator[dict[str, Any]]:
    """`count` wan2.5 jobs, read lazily by the runner."""
    for n in range(count):
        yield {
            "id": f"chaos-{n:06d}",
            "model": "wan2.5-image-to-video",
            "prompt": f"Scene {n}: a paper boat on a rainy street",
            "image_urls": [f"https://example.com/{n}.png"],
        }


async def run(count: int, seed: int, folder: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """Run the chaos batch; return the check lines and the table rows."""
    retry = RetryPolicy(max_retries=8, initial_backoff=0.001, max_backoff=0.02)
    poll = PollPolicy(
        min_interval=2.0 * TIME_SCALE,
        max_interval=60.0 * TIME_SCALE,
        default_estimate=120.0 * TIME_SCALE,
        max_polls_per_second=5000.0,
    )
    out = folder / "videos"
    async with MockEvoLink(
        time_scale=TIME_SCALE, seed=seed, failure_rate=0.05, faults=CHAOS
    ) as mock:
        async with EvoLinkClient(
            mock.api_key,
            base_url=mock.url,
            files_base_url=mock.url,
            poll=poll,
            retry=retry,
            timeout=0.3,
            max_concurrency=64,
        ) as client:
            started = time.monotonic()
            batch = client.batch(
                jobs(count), concurrency=64, journal=folder / "j", download_dir=out
            )
            outcomes = await batch.results()
            elapsed = time.monotonic() - started

        checks: list[str] = []

        def check(ok: bool, what: str) -> None:
            checks.append(f"{'PASS' if ok else 'FAIL'}  {what}")

        check(len(outcomes) == count, f"one outcome per job ({len(outcomes)} of {count})")
        check(mock.stats.tasks_created == count, f"one task per job ({mock.stats.tasks_created})")
        check(
            all(n == 1 for n in mock.stats.creates_per_key.values()),
            "no Idempotency-Key created two tasks",
        )
        states: Counter[str] = Counter()
        right = 0
        for outcome in outcomes:
            if outcome.task is None:
                continue
            final = mock.tasks[outcome.task.id].final_status
            states[final] += 1
            if final == "completed":
                path = outcome.path
                good = outcome.ok and path is not None
                good = (
                    good
                    and path is not None
                    and path.read_bytes() == mock.video_bytes(outcome.task.id)
                )
            else:
                good = isinstance(outcome.error, TaskFailedError)
            right += good
        check(right == count, f"every outcome in the server's state, videos byte-exact ({right})")

        faults = mock.stats.faults_injected
        requests = sum(mock.stats.requests.values())
        rows = [
            ("jobs", f"{count}"),
            ("completed / failed", f"{states['completed']} / {states['failed']}"),
            ("seconds", f"{elapsed:.1f}"),
            ("jobs/s", f"{count / elapsed:.0f}"),
            ("HTTP requests", f"{requests}"),
            ("requests per job", f"{requests / count:.2f}"),
            ("creates sent", f"{mock.stats.requests['POST /v1/videos/generations']}"),
            ("replayed creates", f"{mock.stats.replays}"),
            ("faults injected", ", ".join(f"{k} {v}" for k, v in sorted(faults.items()))),
            ("create rate after 429s", f"{batch._pacer.control.rate:.0f}/s"),
        ]
        return checks, rows


def main() -> None:
    """Parse flags, run, print the table, the checks and the summary line."""
    parser = argparse.ArgumentParser(description="10,000 jobs under every fault at once.")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--smoke", action="store_true", help="300 jobs")
    args = parser.parse_args()
    count = 300 if args.smoke else args.jobs
    with tempfile.TemporaryDirectory(prefix="evolink-chaos-") as folder:
        checks, rows = asyncio.run(run(count, args.seed, Path(folder)))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print()
    for line in checks:
        print(line)
    verdict = "PASS" if all(line.startswith("PASS") for line in checks) else "FAIL"
    table = dict(rows)
    print(
        f"summary: {count} jobs under every fault in {table['seconds']}s "
        f"({table['jobs/s']} jobs/s, {table['requests per job']} requests/job), "
        f"{table['replayed creates']} creates replayed, no duplicate task: {verdict}"
    )


if __name__ == "__main__":
    main()
