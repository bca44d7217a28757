"""
`default_headers=` and `client.with_options(...)`: extra headers on every API
request (never on downloads, never over the SDK's own), and views that share
the parent's session, limit, watcher and downloader but not its options.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest

from evolink_async import (
    APITimeoutError,
    ClientClosedError,
    EvoLinkClient,
    ServerError,
    TaskStatus,
    ValidationError,
)
from evolink_async.testing import Fault, MockEvoLink

from .conftest import FAST_POLL, make_client

pytestmark = pytest.mark.anyio

MODEL: Final = "wan2.5-image-to-video"
WAN: dict[str, Any] = {"prompt": "an options test", "image_urls": ["https://example.com/a.jpg"]}
PNG: Final = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00\x00\x00\x10" * 2 + b"\x08\x02"
GET_TASK: Final = "GET /v1/tasks/{id}"
VIDEO: Final = "GET /files/videos/{name}"


def headers_of(mock: MockEvoLink, route: str) -> list[dict[str, str]]:
    """The headers of every request the mock saw on `route`."""
    return [dict(seen.headers) for seen in mock.requests_log if seen.route == route]


# -- default_headers -------------------------------------------------------------


async def test_default_headers_go_on_every_api_request_and_never_on_downloads(
    mock: MockEvoLink, tmp_path: Path
) -> None:
    async with make_client(mock, default_headers={"X-Team": "video", "X-Env": "ci"}) as client:
        task = await client.generate(MODEL, **WAN)
        await client.get_task(task.id)
        await client.get_credits()
        await client.upload_file(PNG, file_name="a.png")
        await client.download(task, tmp_path / "out.mp4")
    api = [seen for seen in mock.requests_log if seen.route != VIDEO]
    assert {seen.route for seen in api} >= {
        "POST /v1/videos/generations",
        GET_TASK,
        "GET /v1/credits",
        "POST /api/v1/files/upload/stream",
    }
    for seen in api:
        assert seen.headers.get("X-Team") == "video", seen.route
        assert seen.headers.get("X-Env") == "ci", seen.route
        assert seen.headers.get("Authorization") == f"Bearer {mock.api_key}"
    (download,) = headers_of(mock, VIDEO)
    assert "X-Team" not in download and "X-Env" not in download
    assert "Authorization" not in download


async def test_default_headers_on_a_session_of_the_caller(
    mock: MockEvoLink, tmp_path: Path
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        make_client(mock, session=session, default_headers={"X-Team": "video"}) as client,
    ):
        task = await client.generate(MODEL, **WAN)
        await client.download(task, tmp_path / "out.mp4")
    for headers in headers_of(mock, GET_TASK) + headers_of(mock, "POST /v1/videos/generations"):
        assert headers.get("X-Team") == "video"
    (download,) = headers_of(mock, VIDEO)
    assert "X-Team" not in download and "Authorization" not in download


async def test_default_headers_may_replace_the_user_agent(mock: MockEvoLink) -> None:
    async with make_client(mock, default_headers={"User-Agent": "my-app/1.0"}) as client:
        await client.get_credits()
    (seen,) = headers_of(mock, "GET /v1/credits")
    assert seen["User-Agent"] == "my-app/1.0"


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "authorization",
        "Idempotency-Key",
        "IDEMPOTENCY-KEY",
        "Content-Type",
        "Content-Length",
        "Transfer-Encoding",
        "Host",
    ],
)
async def test_default_headers_cannot_replace_a_header_the_sdk_sets(
    name: str, mock: MockEvoLink
) -> None:
    with pytest.raises(ValidationError, match="set by the SDK itself"):
        make_client(mock, default_headers={name: "x"})
    async with make_client(mock) as client:
        with pytest.raises(ValidationError, match="set by the SDK itself"):
            client.with_options(headers={name: "x"})
    assert mock.requests_log == type(mock.requests_log)()


async def test_the_sdk_keeps_its_own_headers_on_a_create(mock: MockEvoLink) -> None:
    async with make_client(mock, default_headers={"X-Team": "video"}) as client:
        view = client.with_options(headers={"X-Source": "test"})
        await view.submit(MODEL, idempotency_key="key-of-my-own-0001", **WAN)
    (create,) = headers_of(mock, "POST /v1/videos/generations")
    assert create["Idempotency-Key"] == "key-of-my-own-0001"
    assert create["Content-Type"] == "application/json"
    assert create["Authorization"] == f"Bearer {mock.api_key}"
    assert (create["X-Team"], create["X-Source"]) == ("video", "test")


@pytest.mark.parametrize(
    ("headers", "rule"),
    [
        ("X-Team: video", "must be a dict"),
        ({"X Team": "video"}, "not a valid header name"),
        ({"": "video"}, "not a valid header name"),
        ({"X-Team": 1}, "must be a string"),
        ({"X-Team": "a\r\nX-Evil: 1"}, "newline"),
    ],
)
def test_bad_default_headers_are_refused(headers: object, rule: str) -> None:
    with pytest.raises(ValidationError, match=rule):
        EvoLinkClient("sk-test-key-0000", default_headers=headers)  # type: ignore[arg-type]


# -- with_options ----------------------------------------------------------------


async def test_a_view_takes_its_own_headers_and_the_parent_keeps_none(
    mock: MockEvoLink,
) -> None:
    async with make_client(mock) as client:
        view = client.with_options(headers={"X-Source": "batch"})
        task = await view.submit(MODEL, **WAN)
        await view.get_task(task.id)
        await client.get_task(task.id)
    gets = headers_of(mock, GET_TASK)
    assert [headers.get("X-Source") for headers in gets] == ["batch", None]
    assert headers_of(mock, "POST /v1/videos/generations")[0]["X-Source"] == "batch"


async def test_a_views_retries_and_timeout_are_its_own(mock: MockEvoLink) -> None:
    async with make_client(mock) as client:
        task = await client.submit(MODEL, **WAN)
        view = client.with_options(max_retries=0, timeout=0.2)
        assert (view.retry.max_retries, client.retry.max_retries) == (0, 3)
        mock.inject(Fault.SERVER_ERROR, route=GET_TASK, status=503)
        with pytest.raises(ServerError):
            await view.get_task(task.id)
        assert len(headers_of(mock, GET_TASK)) == 1  # no retry
        mock.inject(Fault.SERVER_ERROR, route=GET_TASK, status=503)
        assert (await client.get_task(task.id)).id == task.id  # retried
        assert len(headers_of(mock, GET_TASK)) == 3
        mock.inject(Fault.SLOW, route=GET_TASK, delay=1.0)
        with pytest.raises(APITimeoutError):
            await view.get_task(task.id)
        mock.inject(Fault.SLOW, route=GET_TASK, delay=0.4)
        assert (await client.get_task(task.id)).id == task.id  # 5 s timeout


async def test_views_share_the_concurrency_limit(mock: MockEvoLink) -> None:
    async with make_client(mock, max_concurrency=2) as client:
        task = await client.submit(MODEL, **WAN)
        views = [client.with_options(headers={"X-View": str(n)}) for n in range(3)]
        mock.inject(Fault.SLOW, route=GET_TASK, delay=0.05, times=8)
        mock.stats.reset_max_in_flight()
        callers = [client, *views, client, *views]
        await asyncio.gather(*(caller.get_task(task.id) for caller in callers))
    assert mock.stats.max_in_flight == 2
    assert len(headers_of(mock, GET_TASK)) == 8


async def test_a_view_shares_the_session_watcher_and_downloader(
    mock: MockEvoLink, tmp_path: Path
) -> None:
    async with make_client(mock) as client:
        view = client.with_options(timeout=9.0)
        task = await view.submit(MODEL, **WAN)
        # Two waiters, one through each: one poll stream for the task.
        done, again = await asyncio.gather(client.wait(task), view.wait(task.id))
        await view.download(done, tmp_path / "out.mp4")
        assert view._transport.session is client._transport.session
        assert view._watcher is client._watcher
        assert view._downloader is client._downloader
    assert done.status is again.status is TaskStatus.COMPLETED
    # One shared poll stream keeps min_interval between reads; two watchers would not.
    polls = mock.stats.polls[task.id]
    gaps = [later - earlier for earlier, later in itertools.pairwise(polls)]
    assert len(polls) >= 2 and min(gaps) >= 0.9 * FAST_POLL.min_interval


async def test_closing_the_parent_closes_its_views(mock: MockEvoLink) -> None:
    client = make_client(mock)
    view = client.with_options(max_retries=1)
    view_of_view = view.with_options(headers={"X-Deep": "1"})
    task = await view_of_view.submit(MODEL, **WAN)
    await client.aclose()
    assert client.closed and view.closed and view_of_view.closed
    for closed in (view, view_of_view):
        with pytest.raises(ClientClosedError):
            await closed.get_task(task.id)
    with pytest.raises(ClientClosedError):
        client.with_options(max_retries=0)


async def test_closing_a_view_closes_only_the_view(mock: MockEvoLink) -> None:
    async with make_client(mock) as client:
        async with client.with_options(max_retries=1) as view:
            task = await view.submit(MODEL, **WAN)
            inner = view.with_options(timeout=2.0)
            sibling = client.with_options(timeout=3.0)
        assert view.closed and inner.closed and not sibling.closed
        with pytest.raises(ClientClosedError):
            await view.get_task(task.id)
        with pytest.raises(ClientClosedError):
            await inner.get_task(task.id)
        # The parent, its session and its other views go on.
        assert not client.closed
        assert (await client.wait(task)).status is TaskStatus.COMPLETED
        assert (await sibling.get_task(task.id)).status is TaskStatus.COMPLETED
        await view.aclose()  # twice is fine
    assert [client.closed, sibling.closed] == [True, True]


async def test_a_view_never_closed_warns_nothing(mock: MockEvoLink) -> None:
    async with make_client(mock) as client:
        view = client.with_options(max_retries=0)
        await view.get_credits()
        del view
        gc.collect()  # filterwarnings=error: a ResourceWarning would fail here


@pytest.mark.parametrize(
    ("options", "rule"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"timeout": "5"}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
        ({"max_retries": 1.5}, "max_retries"),
        ({"headers": ["X-A"]}, "headers"),
    ],
)
def test_bad_view_options_are_refused(options: dict[str, Any], rule: str) -> None:
    client = EvoLinkClient("sk-test-key-0000")
    with pytest.raises(ValidationError, match=rule):
        client.with_options(**options)
