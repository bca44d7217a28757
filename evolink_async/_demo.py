"""
`evolink-async demo`: generations against the embedded mock server.

No key and no network: a `MockEvoLink` runs on loopback with time scaled down,
so minutes of generation take seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any, TextIO

from ._client import EvoLinkClient
from ._errors import EvoLinkError, TaskFailedError
from ._poll import PollPolicy
from ._results import Task

__all__ = ["main"]

#: The mock runs this much faster than real time: a 165 s task takes 3.3 s.
DEMO_TIME_SCALE = 0.02

DEMO_JOBS: list[tuple[str, dict[str, Any]]] = [
    (
        "seedance-2.0-image-to-video",
        {
            "prompt": "The camera slowly pushes in and the grass sways in the wind",
            "image_urls": ["https://example.com/meadow.jpg"],
            "duration": 5,
        },
    ),
    (
        "seedance-2.0-fast-image-to-video",
        {
            "prompt": "A smooth transition from sunrise to sunset over the ocean",
            "image_urls": ["https://example.com/sunrise.jpg", "https://example.com/sunset.jpg"],
            "aspect_ratio": "adaptive",
        },
    ),
    (
        "happyhorse-1.0-image-to-video",
        {"prompt": "Make the cat run on the grass", "image_urls": ["https://example.com/cat.png"]},
    ),
    (
        "wan2.7-image-to-video",
        {
            "prompt": "A cat playing piano",
            "image_start": "https://example.com/first_frame.jpg",
            "generation_mode": "first_frame",
        },
    ),
    (
        "wan2.5-image-to-video",
        {
            "prompt": "A paper boat drifts down a rainy street",
            "image_urls": ["https://example.com/boat.png"],
        },
    ),
    (
        "seedance-2.0-image-to-video",
        {
            "prompt": "mock:fail=content_policy_violation a request the provider refuses",
            "image_urls": ["https://example.com/refused.jpg"],
        },
    ),
]


def main(args: argparse.Namespace | None = None) -> int:
    """Run the demo; the exit code is 0 when it ran (failed jobs are part of it)."""
    return asyncio.run(run_demo(sys.stdout))


async def run_demo(out: TextIO) -> int:
    """Generate the demo jobs against an embedded mock and report each one."""
    from .testing import MockEvoLink

    started = time.monotonic()
    async with MockEvoLink(time_scale=DEMO_TIME_SCALE, seed=7) as mock:
        poll = PollPolicy(
            min_interval=2.0 * DEMO_TIME_SCALE,
            max_interval=60.0 * DEMO_TIME_SCALE,
            default_estimate=120.0 * DEMO_TIME_SCALE,
        )
        print(f"EvoLink mock server on {mock.url} (time x{1 / DEMO_TIME_SCALE:g})", file=out)
        async with EvoLinkClient(
            mock.api_key, base_url=mock.url, files_base_url=mock.url, poll=poll
        ) as client:
            results = await asyncio.gather(
                *(
                    _one(client, n, model, params, out)
                    for n, (model, params) in enumerate(DEMO_JOBS)
                )
            )
        ok = sum(results)
        polls = mock.stats.requests["GET /v1/tasks/{id}"]
        elapsed = time.monotonic() - started
        print(
            f"\n{ok} of {len(results)} generations completed, {len(results) - ok} failed; "
            f"{polls} status polls for {len(results)} tasks in {elapsed:.1f}s",
            file=out,
        )
    return 0


async def _one(
    client: EvoLinkClient, n: int, model: str, params: dict[str, Any], out: TextIO
) -> bool:
    label = f"[{n + 1}] {model:<34}"

    def progress(task: Task) -> None:
        print(f"{label} {task.status.value:<10} {task.progress:>3}%", file=out)

    try:
        task = await client.generate(model, on_progress=progress, **params)
    except TaskFailedError as exc:
        print(f"{label} failed     [{exc.code}] {exc.message}", file=out)
        return False
    except EvoLinkError as exc:
        print(f"{label} error      {exc}", file=out)
        return False
    print(f"{label} completed  -> {task.video_url}", file=out)
    return True
