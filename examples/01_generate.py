"""
Generate one video and download it.

Shows the shortest useful program: one client, `generate` (submit, then wait
with adaptive polling), progress reporting and `download`.

    EVOLINK_API_KEY=... python examples/01_generate.py
    python examples/01_generate.py --mock      # against the embedded fake server
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from evolink_async import EvoLinkClient, PollPolicy, Task
from evolink_async.testing import MockEvoLink


@contextlib.asynccontextmanager
async def make_client(use_mock: bool) -> AsyncIterator[EvoLinkClient]:
    """A real client, or one on a MockEvoLink that runs 100x faster than real time."""
    if not use_mock:
        async with EvoLinkClient() as client:
            yield client
        return
    async with MockEvoLink(time_scale=0.01) as mock:
        poll = PollPolicy(min_interval=0.02, max_interval=0.6, default_estimate=1.2)
        async with EvoLinkClient(
            mock.api_key, base_url=mock.url, files_base_url=mock.url, poll=poll
        ) as client:
            yield client


async def main(use_mock: bool) -> None:
    """Generate one seedance video, print progress, download it."""

    def show(task: Task) -> None:
        print(f"{task.id}: {task.status.value} {task.progress}%")

    async with make_client(use_mock) as client:
        task = await client.generate(
            "seedance-2.0-image-to-video",
            prompt="The camera slowly pushes in and the grass sways in the wind",
            image_urls=["https://example.com/first-frame.jpg"],
            duration=5,
            on_progress=show,
        )
        with tempfile.TemporaryDirectory() as folder:
            path = await client.download(task, Path(folder))
            print(f"saved {path.stat().st_size} bytes from {task.video_url}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--mock", action="store_true", help="use the embedded fake server")
    asyncio.run(main(parser.parse_args().mock))
