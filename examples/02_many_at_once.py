"""
Fifty generations at once on one shared client, with `asyncio.gather`.

Shows that one `EvoLinkClient` serves any number of coroutines: its semaphore
(`max_concurrency`) caps the requests in flight and one scheduler plans every
task's polls, so gathering 50 `generate` calls (five models mixed) needs no
throttling of your own. `return_exceptions=True` keeps one failed task from
hiding the others' results.

    EVOLINK_API_KEY=... python examples/02_many_at_once.py           # spends credits
    EVOLINK_API_KEY=... python examples/02_many_at_once.py --count 5
    python examples/02_many_at_once.py --mock      # against the embedded fake server

With `--mock`, every eleventh prompt asks the fake server to fail its task
(`mock:fail=content_policy_violation`), so the summary has failures to show.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from evolink_async import EvoLinkClient, ModelId, PollPolicy, Task, TaskFailedError
from evolink_async.testing import MockEvoLink

IMAGE = "https://example.com/first-frame.jpg"
#: One job per model in turn: (model id, that model's fields).
TEMPLATES: list[tuple[ModelId, dict[str, Any]]] = [
    ("seedance-2.0-image-to-video", {"image_urls": [IMAGE], "duration": 5}),
    ("seedance-2.0-fast-image-to-video", {"image_urls": [IMAGE], "quality": "480p"}),
    ("happyhorse-1.0-image-to-video", {"image_urls": [IMAGE], "duration": 5}),
    ("wan2.7-image-to-video", {"generation_mode": "first_frame", "image_start": IMAGE}),
    ("wan2.5-image-to-video", {"image_urls": [IMAGE], "duration": 5}),
]
#: With --mock, jobs 5, 16, 27, 38 and 49 fail (one of each model).
FAIL_EVERY = 11
FAIL_OFFSET = 5


@contextlib.asynccontextmanager
async def make_client(use_mock: bool) -> AsyncIterator[tuple[EvoLinkClient, MockEvoLink | None]]:
    """A real client, or one on a MockEvoLink that runs 100x faster than real time."""
    if not use_mock:
        async with EvoLinkClient() as client:
            yield client, None
        return
    async with MockEvoLink(time_scale=0.01) as mock:
        # Every duration scaled by the mock's 0.01, the poll budget (20/s) by 1/0.01.
        poll = PollPolicy(
            min_interval=0.02, max_interval=0.6, default_estimate=1.2, max_polls_per_second=2000
        )
        async with EvoLinkClient(
            mock.api_key, base_url=mock.url, files_base_url=mock.url, poll=poll
        ) as client:
            yield client, mock


def make_jobs(count: int, use_mock: bool) -> list[tuple[ModelId, dict[str, Any]]]:
    """`count` jobs cycling through the five models."""
    jobs = []
    for n in range(count):
        model, fields = TEMPLATES[n % len(TEMPLATES)]
        prompt = f"Scene {n}: a paper boat drifts down a rainy street"
        if use_mock and n % FAIL_EVERY == FAIL_OFFSET:
            prompt += " mock:fail=content_policy_violation"
        jobs.append((model, {**fields, "prompt": prompt}))
    return jobs


async def main(use_mock: bool, count: int) -> None:
    """Run `count` generations concurrently on one client and summarise them."""
    jobs = make_jobs(count, use_mock)
    async with make_client(use_mock) as (client, mock):
        started = time.monotonic()
        results = await asyncio.gather(
            *(client.generate(model, **fields) for model, fields in jobs),
            return_exceptions=True,
        )
        elapsed = time.monotonic() - started

    completed = [r for r in results if isinstance(r, Task)]
    failed = [r for r in results if isinstance(r, TaskFailedError)]
    others = [r for r in results if not isinstance(r, Task | TaskFailedError)]
    print(
        f"{len(jobs)} jobs on one client: {len(completed)} completed, {len(failed)} failed, "
        f"{len(others)} other errors in {elapsed:.1f} s"
    )
    by_model = collections.Counter(task.model for task in completed)
    for model, done in sorted(by_model.items()):
        print(f"  {model}: {done} completed")
    codes = collections.Counter((error.code, error.retryable) for error in failed)
    for (code, retryable), times in codes.items():
        advice = "worth resubmitting" if retryable else "resubmitting will not help"
        print(f"  failed with {code}: {times} ({advice})")
    for error in others:
        print(f"  error: {type(error).__name__}: {error}")

    if mock is not None:
        polls = sum(len(reads) for reads in mock.stats.polls.values())
        print(
            f"mock server saw {mock.stats.tasks_created} creates and {polls} polls "
            f"({polls / max(1, mock.stats.tasks_created):.1f} per task)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--mock", action="store_true", help="use the embedded fake server")
    parser.add_argument("--count", type=int, default=50, help="how many jobs (default 50)")
    args = parser.parse_args()
    asyncio.run(main(args.mock, args.count))
