"""
A callback body that arrives in pieces is read whole (issue item 6).

Proxies and slow links split a POST across TCP segments, or send it chunked.
`callback_handler` must read every piece: 204 for a task body however it is
cut, 400 only for a body that is not a task, and 413 above 1 MiB whether or
not a Content-Length announced it. Requests are written by hand on a raw
socket, so the cut points are exactly the drawn ones.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from evolink_async import EvoLinkClient
from evolink_async.webhooks import callback_handler

TASK_ID = "task-unified-1774857405-abc12345"
BODY = json.dumps(
    {
        "id": TASK_ID,
        "status": "completed",
        "progress": 100,
        "results": ["https://example.com/v.mp4"],
        "note": "x" * 3000,  # larger than one read of a slow link
    }
).encode()
MIB = 1024 * 1024


@asynccontextmanager
async def route() -> AsyncIterator[tuple[int, list[int]]]:
    """The callback route on loopback; yields its port and the statuses it answered."""
    answered: list[int] = []
    client = EvoLinkClient("sk-test-key-000000", base_url="http://127.0.0.1:9")
    handler = callback_handler(client)

    async def counted(request: web.Request) -> web.Response:
        response = await handler(request)
        answered.append(response.status)
        return response

    app = web.Application()
    app.router.add_post("/cb", counted)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1], answered
    finally:
        await runner.cleanup()
        await client.aclose()


async def post(port: int, head: bytes, pieces: list[bytes]) -> int:
    """Send `head` then each piece as its own write; the reply's status."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        for piece in pieces:
            await asyncio.sleep(0.01)  # let each piece go out as its own segment
            writer.write(piece)
            await writer.drain()
        status_line = await reader.readline()
        return int(status_line.split()[1])
    finally:
        writer.close()
        await writer.wait_closed()


def cut(body: bytes, points: list[int]) -> list[bytes]:
    edges = [0, *sorted({p % (len(body) + 1) for p in points}), len(body)]
    return [body[a:b] for a, b in itertools.pairwise(edges) if b > a]


def chunked(pieces: list[bytes]) -> list[bytes]:
    return [b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces] + [b"0\r\n\r\n"]


HEAD = b"POST /cb HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


@settings(max_examples=25, deadline=None)
@given(
    points=st.lists(st.integers(0, len(BODY)), min_size=1, max_size=6),
    encoding=st.sampled_from(["length", "chunked"]),
)
def test_a_task_body_in_any_pieces_is_taken(points: list[int], encoding: str) -> None:
    pieces = cut(BODY, points)

    async def scenario() -> tuple[int, list[int]]:
        async with route() as (port, answered):
            if encoding == "length":
                head = HEAD + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(BODY)
                status = await post(port, head, pieces)
            else:
                head = HEAD + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                status = await post(port, head, chunked(pieces))
            return status, answered

    status, answered = asyncio.run(scenario())
    assert status == 204
    assert answered == [204]


def test_a_chunked_body_over_the_cap_is_413() -> None:
    piece = b"x" * (64 * 1024)

    async def scenario() -> tuple[int, list[int]]:
        async with route() as (port, answered):
            head = HEAD + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            status = await post(port, head, chunked([piece] * (MIB // len(piece) + 2)))
            return status, answered

    status, answered = asyncio.run(scenario())
    assert status == 413
    assert answered == [413]


def test_a_chunked_body_that_is_not_a_task_is_400() -> None:
    async def scenario() -> int:
        async with route() as (port, _):
            head = HEAD + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            return await post(port, head, chunked([b'{"status": ', b'"completed"}']))

    assert asyncio.run(scenario()) == 400
