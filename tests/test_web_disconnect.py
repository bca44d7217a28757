"""
A web client that disconnects cancels only its own wait, on a real server.

Both web backends (04: aiohttp, 07: FastAPI on uvicorn) are started on
loopback with one shared `EvoLinkClient` on a `MockEvoLink`. A request that
waits on a long task is sent over a raw socket, which is closed mid-wait;
meanwhile other requests wait on the same client. What the mock saw proves
the rest: the departed request's task is no longer polled (its wait ended
and nobody else waits on it), while the task another request still waits
on goes on being polled and that request gets its answer.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest

from evolink_async import EvoLinkClient, PollPolicy
from evolink_async.testing import MockEvoLink

from .conftest import FAST_RETRY

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
#: Mock time against real time: the long task takes 40 s, the short one 1 s.
TIME_SCALE = 0.01
LONG_MODEL = "wan2.5-image-to-video"
SHORT_MODEL = "happyhorse-1.0-image-to-video"
ESTIMATES = {LONG_MODEL: 4000.0, SHORT_MODEL: 100.0}
#: Polls at least every 0.1 s while a task is waited on, so a wait that runs
#: on shows up in the mock's counts within a fraction of a second.
POLL = PollPolicy(
    min_interval=0.02,
    max_interval=0.1,
    default_estimate=1.0,
    max_polls_per_second=2000,
    batch_endpoint=False,
)
#: How long a task left alone must see no poll: several `max_interval`s.
QUIET = 0.6


def load_example(name: str) -> ModuleType:
    module_name = f"disconnect_{Path(name).stem}"
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def job(model: str) -> dict[str, Any]:
    return {
        "model": model,
        "prompt": "A cat playing piano",
        "image_urls": ["https://example.com/cat.png"],
    }


def polls(mock: MockEvoLink, task_id: str) -> int:
    return len(mock.stats.polls.get(task_id, ()))


async def until(condition: Any, what: str, timeout: float = 10.0) -> None:
    """Wait for `condition()` to hold (the server works on its own schedule)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def raw_request(port: int, method: str, path: str, body: bytes = b"") -> asyncio.StreamWriter:
    """Send one HTTP/1.1 request on a fresh connection; the writer, to close it mid-wait."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    return writer


async def hang_up(writer: asyncio.StreamWriter) -> None:
    writer.close()
    await writer.wait_closed()


async def assert_no_more_polls(mock: MockEvoLink, task_id: str) -> None:
    """`task_id` stops being polled: nothing for QUIET seconds (after a grace period)."""
    await asyncio.sleep(0.2)  # a poll already in flight may still land
    seen = polls(mock, task_id)
    await asyncio.sleep(QUIET)
    assert polls(mock, task_id) == seen, "the departed request's task is still polled"
    assert not mock.tasks[task_id].finishes_at <= mock.clock()  # it is still running


@pytest.fixture
async def mock() -> AsyncIterator[MockEvoLink]:
    async with MockEvoLink(
        time_scale=TIME_SCALE, duration_sigma=0.0, estimated_times=ESTIMATES, seed=3
    ) as server:
        yield server


def client_on(mock: MockEvoLink) -> EvoLinkClient:
    return EvoLinkClient(
        mock.api_key, base_url=mock.url, files_base_url=mock.url, poll=POLL, retry=FAST_RETRY
    )


@pytest.mark.anyio
async def test_aiohttp_backend_disconnect_ends_only_that_wait(mock: MockEvoLink) -> None:
    backend = load_example("04_web_backend.py")
    app = backend.make_app(lambda: client_on(mock), max_wait=30.0)
    runner, url = await backend.start(app, "127.0.0.1", 0)
    port = int(url.rsplit(":", 1)[1])
    try:
        async with aiohttp.ClientSession(url) as http:
            submitted = []
            for model in (LONG_MODEL, SHORT_MODEL):
                async with http.post("/submit", json=job(model)) as response:
                    assert response.status == 202
                    submitted.append((await response.json())["task_id"])
            alone, shared = submitted

            # Two raw requests wait, one on each task; an aiohttp request
            # waits on the short task too.
            gone_alone = await raw_request(port, "GET", f"/tasks/{alone}?wait=60")
            gone_shared = await raw_request(port, "GET", f"/tasks/{shared}?wait=60")
            staying = asyncio.ensure_future(http.get(f"/tasks/{shared}?wait=60"))
            await until(lambda: polls(mock, alone) >= 2, "polls of the long task")
            await until(lambda: polls(mock, shared) >= 2, "polls of the short task")

            await hang_up(gone_alone)
            await hang_up(gone_shared)
            shared_before = polls(mock, shared)
            await assert_no_more_polls(mock, alone)

            async with await staying as response:
                assert response.status == 200
                answer = await response.json()
        assert answer["status"] == "completed" and answer["task_id"] == shared
        # The short task was polled on after the hang-ups, for the request
        # that stayed, up to its end.
        assert polls(mock, shared) > shared_before
        assert mock.stats.polls[shared][-1] >= mock.tasks[shared].finishes_at
        assert mock.stats.tasks_created == 2
    finally:
        await runner.cleanup()


@pytest.mark.anyio
async def test_fastapi_backend_disconnect_ends_only_that_wait(mock: MockEvoLink) -> None:
    backend = load_example("07_fastapi_backend.py")
    app = backend.make_app(lambda: client_on(mock), max_wait=30.0)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server, running = await backend.serve(app, sock)
    try:
        gone = await raw_request(port, "POST", "/generate", json.dumps(job(LONG_MODEL)).encode())
        await until(lambda: mock.stats.tasks_created == 1, "the long task")
        alone = next(iter(mock.tasks))
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            staying = asyncio.ensure_future(http.post("/generate", json=job(SHORT_MODEL)))
            await until(lambda: mock.stats.tasks_created == 2, "the short task")
            short = list(mock.tasks)[1]
            await until(lambda: polls(mock, alone) >= 2, "polls of the long task")

            await hang_up(gone)
            await assert_no_more_polls(mock, alone)

            async with await staying as response:
                assert response.status == 200
                answer = await response.json()
        assert answer["status"] == "completed" and answer["task_id"] == short
        assert mock.stats.polls[short][-1] >= mock.tasks[short].finishes_at
    finally:
        server.should_exit = True
        await running
