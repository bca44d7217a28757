"""
The mock's per-key rate limit (`RateLimit`) and its stats route, spoken to
with plain aiohttp sessions, and the `mock-server` flags that turn both on.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from evolink_async.testing import MockEvoLink, RateLimit

pytestmark = pytest.mark.anyio

CREATE = "POST /v1/videos/generations"
GET_TASK = "GET /v1/tasks/{id}"
BODY = {
    "model": "seedance-2.0-image-to-video",
    "prompt": "a cat",
    "image_urls": ["https://example.com/cat.png"],
}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def create(session: aiohttp.ClientSession, url: str, key: str) -> aiohttp.ClientResponse:
    async with session.post(f"{url}/v1/videos/generations", json=BODY, headers=auth(key)) as reply:
        await reply.read()
        return reply


async def test_creates_past_the_bucket_get_429_with_the_wait_until_a_token(
    session: aiohttp.ClientSession,
) -> None:
    limit = RateLimit(creates_per_second=10, burst_seconds=0.3)  # 3 tokens, one per 0.1 s
    async with MockEvoLink(time_scale=0.01, rate_limit=limit) as mock:
        statuses = [(await create(session, mock.url, mock.api_key)).status for _ in range(5)]
        assert statuses[:3] == [200, 200, 200]
        assert statuses[3:] == [429, 429]

        url = f"{mock.url}/v1/videos/generations"
        async with session.post(url, json=BODY, headers=auth(mock.api_key)) as reply:
            assert reply.status == 429
            wait = float(reply.headers["Retry-After"])
            error = (await reply.json())["error"]
        assert 0 < wait <= 0.1
        assert error["type"] == "rate_limit_error"
        assert error["code"] == "rate_limit_exceeded"
        assert "retry after" in error["message"]
        assert mock.stats.tasks_created == 3
        assert mock.stats.rate_limited[CREATE] == 3

        await asyncio.sleep(wait + 0.01)
        assert (await create(session, mock.url, mock.api_key)).status == 200
        assert mock.stats.tasks_created == 4


async def test_reads_have_their_own_bucket(session: aiohttp.ClientSession) -> None:
    async with MockEvoLink(time_scale=0.01, creates_per_second=1000, reads_per_second=2) as mock:
        reply = await create(session, mock.url, mock.api_key)
        assert reply.status == 200
        task_id = next(iter(mock.tasks))
        statuses = []
        for _ in range(4):
            async with session.get(
                f"{mock.url}/v1/tasks/{task_id}", headers=auth(mock.api_key)
            ) as read:
                statuses.append(read.status)
        assert statuses == [200, 200, 429, 429]
        # Reads ran out, creates did not.
        assert (await create(session, mock.url, mock.api_key)).status == 200
        assert mock.stats.rate_limited == {GET_TASK: 2}


async def test_the_limit_can_be_changed_or_lifted_on_a_running_mock(
    session: aiohttp.ClientSession,
) -> None:
    async with MockEvoLink(time_scale=0.01) as mock:
        assert mock.rate_limit is None
        mock.rate_limit = RateLimit(creates_per_second=1)
        assert [(await create(session, mock.url, mock.api_key)).status for _ in range(2)] == [
            200,
            429,
        ]
        mock.rate_limit = None
        assert (await create(session, mock.url, mock.api_key)).status == 200
        with pytest.raises(TypeError):
            mock.rate_limit = 5  # type: ignore[assignment]


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan"), "5"])
def test_rate_limit_refuses_a_rate_that_is_not_positive(bad: Any) -> None:
    with pytest.raises(ValueError, match="creates_per_second"):
        RateLimit(creates_per_second=bad)


async def test_stats_route_reports_what_the_mock_saw_without_counting_itself(
    session: aiohttp.ClientSession,
) -> None:
    async with MockEvoLink(time_scale=0.01, creates_per_second=1) as mock:
        for _ in range(3):
            await create(session, mock.url, mock.api_key)
        async with session.get(f"{mock.url}/_mock/stats") as reply:
            assert reply.status == 200
            stats = await reply.json()
        assert stats == mock.stats_json()
        assert stats["tasks_created"] == 1
        assert stats["requests"] == {CREATE: 3}
        assert stats["rate_limited"] == {CREATE: 2}
        assert mock.api_key not in str(stats)


@pytest.fixture
def limited_server() -> Iterator[tuple[str, str]]:
    """`mock-server --creates-per-second 2` in a subprocess; yields (url, api key)."""
    command = [
        sys.executable,
        "-m",
        "evolink_async",
        "mock-server",
        "--time-scale",
        "0.001",
        "--creates-per-second",
        "2",
        "--reads-per-second",
        "50",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first, second = process.stdout.readline(), process.stdout.readline()
        found_url = re.search(r"on (http://127\.0\.0\.1:\d+)", first)
        found_key = re.search(r"EVOLINK_API_KEY=(\S+)", second)
        assert found_url and found_key, (first, second)
        yield found_url.group(1), found_key.group(1)
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        if process.stdout is not None:
            process.stdout.close()


async def test_mock_server_flags_limit_creates_and_serve_stats(
    session: aiohttp.ClientSession, limited_server: tuple[str, str]
) -> None:
    url, key = limited_server
    started = time.monotonic()
    statuses = [(await create(session, url, key)).status for _ in range(4)]
    if time.monotonic() - started < 0.4:
        assert statuses == [200, 200, 429, 429]
    async with session.get(f"{url}/_mock/stats") as reply:
        stats = await reply.json()
    assert stats["tasks_created"] == statuses.count(200)
    assert stats["rate_limited"].get(CREATE, 0) == statuses.count(429) > 0
