"""
1,000 jobs through the batch runner with every fault on at once.

10% 5xx, 5% 429 with Retry-After, 3% connections dropped before the reply, 3%
dropped after the task was created, 2% replies slower than the client's
timeout, and 5% of tasks failing on the server. Every job must end with
exactly one outcome in the right state, the server must hold exactly one task
per job (no double billing), every completed video must be on disk with the
right bytes, and nothing may be left running.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import pytest

from evolink_async import RetryPolicy, TaskFailedError, TaskStatus
from evolink_async.testing import FaultPlan, MockEvoLink

from .conftest import FAST_POLL, make_client

pytestmark = pytest.mark.anyio

JOBS = 1000
#: Every fault at once, on every API route (creates, polls, credits).
CHAOS = FaultPlan(
    server_error=0.10,
    rate_limit=0.05,
    drop_before=0.03,
    drop_after=0.03,
    slow=0.02,
    slow_delay=0.6,
    retry_after=0.01,
)


def job(n: int) -> dict[str, Any]:
    return {
        "id": f"chaos-{n:04d}",
        "model": "wan2.5-image-to-video",
        "prompt": f"Scene {n}: a paper boat on a rainy street",
        "image_urls": [f"https://example.com/{n}.png"],
    }


@pytest.mark.slow
# About 100 s on a quiet machine: the create pacer takes the injected 429s
# for a rate limit and creates at the rate it measured; room for a busy one.
@pytest.mark.timeout(300)
async def test_a_thousand_jobs_under_every_fault(tmp_path: Path) -> None:
    out = tmp_path / "videos"
    # Enough retries that a create survives several faults in a row (0.23^9 is
    # about 2e-6 per create); the poll budget is generous, the timeout short.
    retry = RetryPolicy(max_retries=8, initial_backoff=0.001, max_backoff=0.02)
    poll = attrs.evolve(FAST_POLL, max_polls_per_second=5000.0)
    async with MockEvoLink(time_scale=0.002, seed=11, failure_rate=0.05, faults=CHAOS) as mock:
        async with make_client(
            mock, retry=retry, poll=poll, timeout=0.3, max_concurrency=64
        ) as client:
            run = client.batch(
                (job(n) for n in range(JOBS)),
                concurrency=64,
                journal=tmp_path / "j",
                download_dir=out,
            )
            outcomes = await run.results()
            leftover = {t.get_name() for t in asyncio.all_tasks()} & {
                "evolink-async batch",
                "evolink-async watcher",
            }
            assert client._watcher.watched == 0
        # The client closed its session: no connection left open.
        assert client.closed

    faults = mock.stats.faults_injected
    for kind in ("server_error", "rate_limit", "drop_before", "drop_after", "slow"):
        assert faults[kind] > 0, f"no {kind} fault was injected"

    # Exactly one outcome per job, in input order.
    assert [o.job.id for o in outcomes] == [f"chaos-{n:04d}" for n in range(JOBS)]
    # Exactly one task per job on the server: nothing paid twice.
    assert mock.stats.tasks_created == JOBS
    assert all(count == 1 for count in mock.stats.creates_per_key.values())
    assert len({o.task.id for o in outcomes if o.task}) == JOBS

    states: Counter[str] = Counter()
    for outcome in outcomes:
        assert outcome.task is not None, outcome.error
        server = mock.tasks[outcome.task.id]
        states[server.final_status] += 1
        if server.final_status == "completed":
            assert outcome.ok, outcome.error
            assert outcome.task.status is TaskStatus.COMPLETED
            assert outcome.path is not None
            assert outcome.path.read_bytes() == mock.video_bytes(outcome.task.id)
        else:
            assert server.final_status == "failed"
            assert isinstance(outcome.error, TaskFailedError)
            assert outcome.path is None
    assert states["failed"] > 0 and states["completed"] > 0
    assert run.stats.completed == states["completed"]
    assert run.stats.failed == states["failed"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"chaos-{n:04d}.mp4" for n, o in enumerate(outcomes) if o.ok
    )
    assert not leftover
