"""
`SharedBudget`: one key's creates and polls per second shared through
PostgreSQL, checked against a real database and a rate-limited mock in
other processes (counted through the mock's `GET /_mock/stats`).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from evolink_async import SharedBudget, ValidationError

# On PostgreSQL: marked slow (make test runs these; CI's extra runs do not).
pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
CREATE = "POST /v1/videos/generations"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def limited_mock() -> Iterator[tuple[str, str]]:
    """`mock-server` limited to 20 creates/s and 60 reads/s per key; yields (url, key)."""
    command = [
        sys.executable, "-m", "evolink_async", "mock-server", "--time-scale", "0.001",
        "--creates-per-second", "20", "--reads-per-second", "60",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first, second = process.stdout.readline(), process.stdout.readline()
        url = re.search(r"on (http://127\.0\.0\.1:\d+)", first)
        key = re.search(r"EVOLINK_API_KEY=(\S+)", second)
        assert url and key, (first, second)
        yield url.group(1), key.group(1)
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        if process.stdout is not None:
            process.stdout.close()


#: One worker process: a batch of `count` jobs named `prefix-N`, with or
#: without the shared budget; prints its outcomes' summary as JSON.
WORKER = """
import asyncio, json, sys
from evolink_async import EvoLinkClient, PollPolicy, RetryPolicy, SharedBudget

url, key, dsn, prefix, count = sys.argv[1:6]
POLL = PollPolicy(min_interval=0.01, max_interval=0.1, default_estimate=0.2)

async def main():
    jobs = [
        {"id": f"{prefix}-{n}", "model": "wan2.5-image-to-video", "prompt": "a cat",
         "image_urls": ["https://example.com/cat.png"]}
        for n in range(int(count))
    ]
    budget = (
        SharedBudget(dsn, creates_per_second=18, polls_per_second=50, name="test-key")
        if dsn != "-" else None
    )
    client = EvoLinkClient(key, base_url=url, files_base_url=url, poll=POLL,
                           retry=RetryPolicy(max_retries=20, initial_backoff=0.01))
    async with client:
        run = client.batch(jobs, run_id="budget-test", budget=budget)
        outcomes = await run.results()
    if budget is not None:
        await budget.aclose()
    print(json.dumps({"ok": sum(o.ok for o in outcomes), "n": len(outcomes),
                      "fallbacks": budget.fallbacks if budget else 0}))

asyncio.run(main())
"""


async def mock_stats(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/_mock/stats") as reply:
        stats: dict[str, Any] = await reply.json()
        return stats


def run_workers(url: str, key: str, dsn: str, prefix: str, count: int) -> list[dict[str, Any]]:
    """Two worker processes at once over different jobs; their summaries."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, key, dsn, f"{prefix}{n}", str(count)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for n in range(2)
    ]
    summaries = []
    for worker in workers:
        out, _ = worker.communicate(timeout=40)
        assert worker.returncode == 0
        summaries.append(json.loads(out.strip().splitlines()[-1]))
    return summaries


@pytest.mark.slow
async def test_two_processes_within_the_shared_budget_meet_no_429(
    pg_url: str, limited_mock: tuple[str, str]
) -> None:
    url, key = limited_mock
    started = time.monotonic()
    summaries = await asyncio.to_thread(run_workers, url, key, pg_url, "shared", 30)
    elapsed = time.monotonic() - started
    assert summaries == [{"ok": 30, "n": 30, "fallbacks": 0}] * 2
    stats = await mock_stats(url)
    assert stats["tasks_created"] == 60
    assert stats["requests"][CREATE] == 60
    assert stats["rate_limited"] == {}
    # 60 creates at 18/s from a bucket of 1.8: paced, not sent at once.
    assert elapsed >= (60 - 2) / 18

    # The same load with no budget goes past the mock's limit: the check
    # above is one that can fail.
    summaries = await asyncio.to_thread(run_workers, url, key, "-", "unbudgeted", 30)
    assert summaries == [{"ok": 30, "n": 30, "fallbacks": 0}] * 2
    after = await mock_stats(url)
    assert after["tasks_created"] == 120
    assert after["rate_limited"].get(CREATE, 0) > 0


async def test_processes_share_one_bucket_in_the_database(pg_url: str) -> None:
    first = SharedBudget(pg_url, creates_per_second=40, name="one-bucket")
    second = SharedBudget(pg_url, creates_per_second=40, name="one-bucket")
    other = SharedBudget(pg_url, creates_per_second=40, name="another-key")
    async with first, second, other:
        await asyncio.gather(first.take_create(), second.take_create(), other.take_create())
        started = time.monotonic()
        await asyncio.gather(*(b.take_create() for b in (first, second) for _ in range(10)))
        paced = time.monotonic() - started
        started = time.monotonic()
        await other.take_create()
        unshared = time.monotonic() - started
    # 20 tokens at 40/s from one bucket of 4 (some left from the first round).
    assert paced >= (20 - 4) / 40
    assert unshared < 0.2  # another name is another bucket
    assert first.fallbacks == second.fallbacks == other.fallbacks == 0


async def test_poll_tokens_come_in_blocks_at_the_shared_rate(pg_url: str) -> None:
    async with SharedBudget(
        pg_url, creates_per_second=1, polls_per_second=100, name="polls"
    ) as budget:
        used = 0
        started = time.monotonic()
        while used < 60:
            if budget.take_poll():
                used += 1
            else:
                await budget.refill_polls()
        elapsed = time.monotonic() - started
    assert elapsed >= (60 - 10 - 8) / 100
    assert budget.fallbacks == 0


async def test_an_unreachable_database_falls_back_to_the_local_share(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dsn = f"postgresql://nobody:hunter2secret@127.0.0.1:{free_port()}/none"
    async with SharedBudget(dsn, creates_per_second=10) as budget:
        started = time.monotonic()
        for _ in range(4):
            await budget.take_create()
        elapsed = time.monotonic() - started
    assert budget.fallbacks == 4
    assert elapsed >= 0.25  # the whole rate (10/s, one token saved), locally
    assert "database unreachable" in caplog.text
    assert "hunter2secret" not in caplog.text


def test_the_repr_never_shows_the_url() -> None:
    budget = SharedBudget("postgresql://u:hunter2secret@db/x", creates_per_second=5)
    assert "hunter2secret" not in repr(budget)
    assert "db/x" not in repr(budget)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("sqlite:///x",), {"creates_per_second": 5}),
        (("postgresql://db/x",), {"creates_per_second": 0}),
        (("postgresql://db/x",), {"creates_per_second": True}),
        (("postgresql://db/x",), {"creates_per_second": 5, "polls_per_second": -1}),
        (("postgresql://db/x",), {"creates_per_second": 5, "name": "a key with spaces"}),
        ((b"postgresql://db/x",), {"creates_per_second": 5}),
    ],
)
def test_bad_arguments_are_refused(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SharedBudget(*args, **kwargs)


async def test_batch_refuses_a_budget_that_is_not_one() -> None:
    from evolink_async import EvoLinkClient

    async with EvoLinkClient("sk-test-0000000000000000", base_url="http://127.0.0.1:9") as client:
        with pytest.raises(ValidationError, match="budget"):
            client.batch([], budget=18)  # type: ignore[arg-type]
