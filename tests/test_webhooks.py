"""The aiohttp callback route: mounted in one line, hints the client, rejects junk."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from evolink_async import EvoLinkClient, RawRequest, TaskStatus
from evolink_async.testing import MockEvoLink
from evolink_async.webhooks import callback_handler

from .conftest import TIME_SCALE, make_client

pytestmark = pytest.mark.anyio

TOKEN = "s3cret-callback-token"


@pytest.fixture
async def mock_and_client() -> AsyncIterator[tuple[MockEvoLink, EvoLinkClient, str]]:
    """A client, an aiohttp app with the callback route, and a mock that calls it."""
    async with (
        MockEvoLink(time_scale=TIME_SCALE, eta_bias=10.0) as mock,
        make_client(mock) as client,
    ):
        app = web.Application()
        app.router.add_post("/evolink/callback", callback_handler(client, token=TOKEN))
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/evolink/callback"
        try:
            yield mock, client, url
        finally:
            await runner.cleanup()


async def test_callback_route_wakes_the_waiter(
    mock_and_client: tuple[MockEvoLink, EvoLinkClient, str],
) -> None:
    mock, client, url = mock_and_client
    mock.callback_target = f"{url}?token={TOKEN}"
    params = {
        "prompt": "A cat",
        "image_urls": ["https://example.com/cat.png"],
        "callback_url": "https://app.example.com/evolink/callback",
    }
    task = await client.submit(RawRequest("wan2.5-image-to-video", params))
    done = await client.wait(task)

    assert done.status is TaskStatus.COMPLETED
    # The mock records a delivery once our route has answered it.
    for _ in range(200):
        if mock.stats.callbacks_delivered:
            break
        await asyncio.sleep(0.005)
    assert [d.http_status for d in mock.stats.callbacks_delivered] == [204]
    finished = mock.tasks[task.id].finishes_at
    # The estimate is 10x too high; the callback made the confirming read come at once.
    after = [t for t in mock.stats.polls[task.id] if t >= finished]
    assert len(after) == 1
    assert after[0] - finished < 0.25 * mock.tasks[task.id].duration


@pytest.mark.parametrize(
    ("query", "body", "status"),
    [
        ("", b'{"id": "task-unified-1-abc", "status": "completed"}', 403),
        ("?token=wrong", b'{"id": "task-unified-1-abc", "status": "completed"}', 403),
        (f"?token={TOKEN}", b"not json", 400),
        (f"?token={TOKEN}", b'["a list"]', 400),
        (f"?token={TOKEN}", b'{"status": "completed"}', 400),
        (f"?token={TOKEN}", b"x" * (1024 * 1024 + 10), 413),
        (f"?token={TOKEN}", b'{"id": "task-unified-1-abc", "status": "completed"}', 204),
    ],
    ids=["no-token", "wrong-token", "not-json", "not-object", "no-id", "too-large", "good"],
)
async def test_callback_route_answers(
    mock_and_client: tuple[MockEvoLink, EvoLinkClient, str],
    query: str,
    body: bytes,
    status: int,
) -> None:
    mock, client, url = mock_and_client
    data = io.BytesIO(body)  # aiohttp warns about large raw-bytes bodies
    async with aiohttp.ClientSession() as session, session.post(url + query, data=data) as resp:
        assert resp.status == status
    # A hint for a task nobody waits on costs no request.
    assert sum(mock.stats.requests.values()) == 0
    assert client._watcher.watched == 0
