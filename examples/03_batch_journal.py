"""
The batch runner with a journal: run a batch, then run it again and resume.

Shows `client.batch(jobs, concurrency=..., journal=..., download_dir=...)`,
`async for outcome in run` (outcomes in completion order), `run.stats`, and
what the journal is for: a second run with the same jobs and the same journal
creates (and pays for) nothing again. Every finished job is resumed from the
journal; had the first run crashed, its created tasks would be re-attached to
instead of re-created.

    EVOLINK_API_KEY=... python examples/03_batch_journal.py --journal jobs.journal --out videos/
    python examples/03_batch_journal.py --mock     # against the embedded fake server

Without `--journal` / `--out`, both go to a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from evolink_async import BatchRun, EvoLinkClient, PollPolicy
from evolink_async.testing import MockEvoLink

JOB_COUNT = 12


@contextlib.asynccontextmanager
async def make_client(use_mock: bool) -> AsyncIterator[tuple[EvoLinkClient, MockEvoLink | None]]:
    """A real client, or one on a MockEvoLink that runs 100x faster than real time."""
    if not use_mock:
        async with EvoLinkClient() as client:
            yield client, None
        return
    async with MockEvoLink(time_scale=0.01) as mock:
        poll = PollPolicy(
            min_interval=0.02, max_interval=0.6, default_estimate=1.2, max_polls_per_second=2000
        )
        async with EvoLinkClient(
            mock.api_key, base_url=mock.url, files_base_url=mock.url, poll=poll
        ) as client:
            yield client, mock


def make_jobs(use_mock: bool) -> Iterator[dict[str, Any]]:
    """
    The jobs, as the dicts a JSON-lines file would hold, produced lazily.

    Ids must be stable across runs: the journal knows jobs by id.
    """
    for n in range(JOB_COUNT):
        prompt = f"Shot {n}: a lighthouse at dusk, waves breaking below"
        if use_mock and n == 4:
            prompt += " mock:fail=content_policy_violation"
        if use_mock and n == 9:
            prompt += " mock:cancel"
        model = "wan2.5-image-to-video" if n % 2 else "seedance-2.0-fast-image-to-video"
        yield {
            "id": f"clip-{n:02d}",
            "model": model,
            "metadata": {"shot": n},
            "prompt": prompt,
            "image_urls": [f"https://example.com/frames/{n}.jpg"],
            "duration": 5,
        }


def print_stats(label: str, run: BatchRun) -> None:
    stats = run.stats
    print(
        f"{label}: submitted {stats.submitted}, completed {stats.completed}, "
        f"failed {stats.failed}, cancelled {stats.cancelled}, resumed {stats.resumed}, "
        f"downloaded {stats.downloaded}; credits reserved {stats.credits_reserved:g}, "
        f"used {stats.credits_used:g}; {stats.elapsed:.1f} s"
    )


async def main(use_mock: bool, journal: Path | None, out: Path | None) -> None:
    """Run the batch twice with one journal; the second run resumes everything."""
    with tempfile.TemporaryDirectory(prefix="evolink-example-") as scratch:
        journal = journal or Path(scratch) / "jobs.journal"
        out = out or Path(scratch) / "videos"
        async with make_client(use_mock) as (client, mock):
            run = client.batch(
                make_jobs(use_mock), concurrency=4, journal=journal, download_dir=out
            )
            async with run:  # stops the run cleanly should this loop be left early
                async for outcome in run:
                    if outcome.ok and outcome.path is not None:
                        print(f"  {outcome.job_id}: completed -> {outcome.path.name}")
                    else:
                        print(
                            f"  {outcome.job_id}: {type(outcome.error).__name__}: {outcome.error}"
                        )
            print_stats("first run", run)

            created_before = mock.stats.tasks_created if mock else 0
            # The same jobs, the same journal: nothing is created again.
            again = client.batch(
                make_jobs(use_mock), concurrency=4, journal=journal, download_dir=out
            )
            outcomes = await again.results()  # every outcome at once, in input order
            print_stats("second run", again)
            resumed = sum(outcome.resumed for outcome in outcomes)
            print(f"second run: resumed {resumed} of {len(outcomes)} jobs from the journal")
            if mock is not None:
                created = mock.stats.tasks_created - created_before
                print(f"second run: tasks created on the server: {created}")
        files = sorted(path.name for path in out.glob("*.mp4"))
        print(f"{len(files)} videos in {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--mock", action="store_true", help="use the embedded fake server")
    parser.add_argument("--journal", type=Path, help="the journal file (default: a temp file)")
    parser.add_argument("--out", type=Path, help="where videos go (default: a temp dir)")
    args = parser.parse_args()
    asyncio.run(main(args.mock, args.journal, args.out))
