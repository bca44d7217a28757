"""
Closing the client at any stage of a batch (issue item 5): every outcome is
done or a `ClientClosedError`, nothing else escapes, and the journal is
closed (another opener gets it); a second run finishes every job without a
second task for any. Each stage is reached by watching the mock,
not by sleeping, so each case is the same every run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from evolink_async import ClientClosedError
from evolink_async.testing import MockEvoLink

from .conftest import journal_counts, make_client

pytestmark = pytest.mark.anyio

JOBS = 12
VIDEO = "GET /files/videos/{name}"

STAGES: dict[str, Callable[[MockEvoLink], bool]] = {
    "before any create": lambda mock: True,
    "after the first create": lambda mock: mock.stats.tasks_created >= 1,
    "creates half done": lambda mock: mock.stats.tasks_created >= JOBS // 2,
    "every task created": lambda mock: mock.stats.tasks_created >= JOBS,
    "downloading": lambda mock: mock.stats.requests.get(VIDEO, 0) >= 1,
}


def wan(job_id: str) -> dict[str, object]:
    return {
        "id": job_id,
        "model": "wan2.5-image-to-video",
        "prompt": "A cat playing piano",
        "image_urls": ["https://example.com/cat.png"],
    }


@pytest.mark.parametrize("stage", list(STAGES))
async def test_closing_the_client_at_any_stage_ends_the_run_cleanly(
    mock: MockEvoLink, tmp_path: Path, stage: str
) -> None:
    journal = tmp_path / "run.journal"
    client = make_client(mock)
    run = client.batch(
        [wan(f"c-{n}") for n in range(JOBS)],
        concurrency=4,
        journal=journal,
        download_dir=tmp_path / "videos",
    )
    consumer = asyncio.create_task(run.results())
    reached = STAGES[stage]
    while not reached(mock) and not consumer.done():
        await asyncio.sleep(0.001)
    await client.aclose()
    outcomes = await asyncio.wait_for(consumer, 20)
    assert len(outcomes) == JOBS
    for outcome in outcomes:
        assert outcome.ok or isinstance(outcome.error, ClientClosedError), outcome
    # The journal is closed (another opener gets it) and holds every job the
    # server may have made a task for: created, finished, or begun with its key.
    counts = await journal_counts(journal)
    assert counts["begun"] + counts["created"] + counts["finished"] >= mock.stats.tasks_created
    # Running again finishes every job and pays for none twice.
    async with make_client(mock) as again:
        second = await again.batch(
            [wan(f"c-{n}") for n in range(JOBS)], journal=journal, download_dir=tmp_path / "videos"
        ).results()
    assert all(outcome.ok for outcome in second)
    assert mock.stats.tasks_created == JOBS
