"""
`client.list_tasks(...)`: `GET /v1/tasks` page after page to the end, each
task once, filters sent as the API names them, arguments checked before
anything is sent, and `NotSupportedError` where the API does not serve it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

import pytest
from aiohttp import web

from evolink_async import (
    APIError,
    ClientClosedError,
    EvoLinkClient,
    NotSupportedError,
    Task,
    TaskStatus,
    ValidationError,
)
from evolink_async.testing import Fault, MockEvoLink

from .conftest import make_client

pytestmark = pytest.mark.anyio

WAN25: Final = "wan2.5-image-to-video"
WAN27: Final = "wan2.7-image-to-video"
IMAGE: Final = "https://example.com/a.jpg"
LIST: Final = "GET /v1/tasks"


async def collect(tasks: AsyncIterator[Task]) -> list[Task]:
    return [task async for task in tasks]


def list_queries(mock: MockEvoLink) -> list[dict[str, str]]:
    return [dict(seen.query) for seen in mock.requests_log if seen.route == LIST]


async def test_every_task_is_listed_once_newest_first_page_after_page(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    created = [await client.submit(WAN25, prompt=f"p{n}", image_urls=[IMAGE]) for n in range(7)]
    listed = await collect(client.list_tasks(page_size=3))
    assert [task.id for task in listed] == [task.id for task in reversed(created)]
    assert list_queries(mock) == [
        {"page": "1", "page_size": "3"},
        {"page": "2", "page_size": "3"},
        {"page": "3", "page_size": "3"},
    ]


async def test_a_full_last_page_ends_the_listing_by_its_total(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    for n in range(4):
        await client.submit(WAN25, prompt=f"p{n}", image_urls=[IMAGE])
    assert len(await collect(client.list_tasks(page_size=2))) == 4
    assert [query["page"] for query in list_queries(mock)] == ["1", "2"]


async def test_filters_go_to_the_server_by_the_apis_names(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    done = await client.generate(WAN25, prompt="finished", image_urls=[IMAGE])
    # Never completed, however slow the machine: it fails, if it ends at all.
    other = await client.submit(WAN27, prompt="mock:fail=service_error", image_start=IMAGE)
    completed = [task async for task in client.list_tasks(status=TaskStatus.COMPLETED)]
    assert [task.id for task in completed] == [done.id]
    by_string = [task async for task in client.list_tasks(status="completed", model=WAN25)]
    assert [task.id for task in by_string] == [done.id]
    by_model = [task.id async for task in client.list_tasks(model=WAN27)]
    assert by_model == [other.id]
    assert list_queries(mock) == [
        {"page": "1", "page_size": "50", "status": "completed"},
        {"page": "1", "page_size": "50", "status": "completed", "model": WAN25},
        {"page": "1", "page_size": "50", "model": WAN27},
    ]


async def test_listed_tasks_carry_the_request_id_of_their_page(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    for n in range(3):
        await client.submit(WAN25, prompt=f"p{n}", image_urls=[IMAGE])
    listed = await collect(client.list_tasks(page_size=2))
    pages = [seen.request_id for seen in mock.requests_log if seen.route == LIST]
    assert [task.request_id for task in listed] == [pages[0], pages[0], pages[1]]


async def test_an_empty_account_lists_nothing_in_one_request(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    assert await collect(client.list_tasks()) == []
    assert len(list_queries(mock)) == 1


@pytest.mark.parametrize("status", [404, 405])
async def test_an_api_without_the_listing_raises_not_supported(
    status: int, client: EvoLinkClient, mock: MockEvoLink
) -> None:
    mock.inject(
        Fault.REPLY,
        route=LIST,
        status=status,
        body={"error": {"code": "not_found", "message": "no such route", "type": "x"}},
    )
    with pytest.raises(NotSupportedError) as caught:
        await collect(client.list_tasks())
    assert isinstance(caught.value, APIError)
    assert caught.value.status == status
    assert caught.value.request_id is not None
    assert len(list_queries(mock)) == 1  # not retried


async def test_a_server_error_is_retried_not_called_unsupported(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    await client.submit(WAN25, prompt="p", image_urls=[IMAGE])
    mock.inject(Fault.SERVER_ERROR, route=LIST, status=503)
    assert len(await collect(client.list_tasks())) == 1
    assert len(list_queries(mock)) == 2


@pytest.mark.parametrize(
    ("arguments", "rule"),
    [
        ({"status": "done"}, "status="),
        ({"status": "COMPLETED"}, "status="),
        ({"status": TaskStatus.UNKNOWN}, "status="),
        ({"status": 3}, "status="),
        ({"model": ""}, "model="),
        ({"model": 5}, "model="),
        ({"page_size": 0}, "page_size="),
        ({"page_size": 101}, "page_size="),
        ({"page_size": 2.0}, "page_size="),
        ({"page_size": True}, "page_size="),
        ({"page_size": "10"}, "page_size="),
    ],
)
async def test_bad_arguments_are_refused_before_anything_is_sent(
    arguments: dict[str, Any], rule: str, client: EvoLinkClient, mock: MockEvoLink
) -> None:
    with pytest.raises(ValidationError, match=rule):
        client.list_tasks(**arguments)  # at the call, not at the first step
    assert list_queries(mock) == []


async def test_a_closed_client_lists_nothing(mock: MockEvoLink) -> None:
    client = make_client(mock)
    await client.aclose()
    with pytest.raises(ClientClosedError):
        await collect(client.list_tasks())
    assert list_queries(mock) == []


# -- servers that page oddly (a small app of the test's own) ----------------------


def task_json(task_id: str) -> dict[str, Any]:
    return {"id": task_id, "status": "completed", "progress": 100, "results": ["https://v/x"]}


async def serve(
    handler: Callable[[web.Request], Any],
) -> tuple[web.AppRunner, str, list[dict[str, str]]]:
    seen: list[dict[str, str]] = []

    async def route(request: web.Request) -> web.StreamResponse:
        seen.append(dict(request.query))
        result: web.StreamResponse = await handler(request)
        return result

    app = web.Application()
    app.router.add_route("*", "/v1/tasks", route)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    return runner, f"http://127.0.0.1:{port}", seen


async def test_a_server_that_ignores_page_is_read_until_nothing_is_new() -> None:
    async def same_page(request: web.Request) -> web.StreamResponse:
        return web.json_response({"data": [task_json("a"), task_json("b")]})

    runner, url, seen = await serve(same_page)
    try:
        async with EvoLinkClient("sk-test-key-0000", base_url=url, trust_env=False) as client:
            listed = await collect(client.list_tasks(page_size=2))
    finally:
        await runner.cleanup()
    assert [task.id for task in listed] == ["a", "b"]
    assert [query["page"] for query in seen] == ["1", "2"]


async def test_a_server_that_shrinks_the_page_size_is_paged_by_its_own_size() -> None:
    ids = [f"t{n}" for n in range(5)]

    async def capped(request: web.Request) -> web.StreamResponse:
        page = int(request.query["page"])
        chunk = ids[(page - 1) * 2 : page * 2]
        return web.json_response(
            {"data": [task_json(i) for i in chunk], "total": 5, "page": page, "page_size": 2}
        )

    runner, url, seen = await serve(capped)
    try:
        async with EvoLinkClient("sk-test-key-0000", base_url=url, trust_env=False) as client:
            listed = await collect(client.list_tasks(page_size=50))
    finally:
        await runner.cleanup()
    assert [task.id for task in listed] == ids
    assert [query["page"] for query in seen] == ["1", "2", "3"]


async def test_a_405_from_a_server_of_its_own_is_not_supported() -> None:
    async def refuse(request: web.Request) -> web.StreamResponse:
        return web.Response(status=405, text="Method Not Allowed")

    runner, url, seen = await serve(refuse)
    try:
        async with EvoLinkClient("sk-test-key-0000", base_url=url, trust_env=False) as client:
            with pytest.raises(NotSupportedError, match="HTTP 405"):
                await collect(client.list_tasks())
    finally:
        await runner.cleanup()
    assert len(seen) == 1


async def test_stopping_early_sends_no_further_page(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    for n in range(5):
        await client.submit(WAN25, prompt=f"p{n}", image_urls=[IMAGE])
    seen = []
    async for task in client.list_tasks(page_size=2):
        seen.append(task)
        if len(seen) == 2:
            break
    await asyncio.sleep(0.01)
    assert len(seen) == 2
    assert len(list_queries(mock)) == 1
