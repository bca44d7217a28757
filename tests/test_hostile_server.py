"""
A hostile server: replies the SDK cannot read, replies that echo the key, no
size limits, dropped consumers, closing mid-work, odd result URLs, replies
for another task. Each class of input gets a documented error for the one call
or task it concerns, never another exception type and never its neighbours'.

Servers here are real aiohttp servers on loopback: the MockEvoLink with
injected replies, or a small app of the test's own where the mock cannot be
that hostile (gzip bombs, endless or stalled bodies).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evolink_async import (
    APIError,
    APITimeoutError,
    AuthenticationError,
    ClientClosedError,
    EvoLinkClient,
    EvoLinkError,
    MalformedReplyError,
    RetryPolicy,
    Task,
    TaskStatus,
    ValidationError,
)
from evolink_async.testing import Fault, MockEvoLink

from .conftest import FAST_RETRY, HUGE, NUMERIC_PATHS, TOO_LONG, journal_counts, make_client

pytestmark = pytest.mark.anyio

GET_TASK = "GET /v1/tasks/{id}"
CREATE = "POST /v1/videos/generations"
TASK_ID = "task-unified-1774857405-abc12345"
MODEL: Final = "wan2.5-image-to-video"
WAN: dict[str, Any] = {
    "prompt": "A cat playing piano",
    "image_urls": ["https://example.com/cat.png"],
}


def wan(job_id: str) -> dict[str, Any]:
    return {"id": job_id, "model": MODEL, **WAN}


def causes(error: BaseException) -> list[BaseException]:
    """The exception and everything chained to it (cause and context)."""
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


@asynccontextmanager
async def serve(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[str]:
    """A one-route aiohttp server on loopback; yields its base URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


# -- 1. replies the SDK cannot read -------------------------------------------


def task_text(path: tuple[str, ...], literal: str, task_id: str = TASK_ID) -> bytes:
    """A task reply whose field at `path` is the JSON literal `literal`."""
    base: dict[str, Any] = {
        "id": task_id,
        "status": "processing",
        "progress": 10,
        "task_info": {"estimated_time": 1},
        "usage": {"credits_reserved": 1},
    }
    marker = "__HOSTILE__"
    node = base
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = marker
    return json.dumps(base).replace(f'"{marker}"', literal).encode()


@pytest.mark.parametrize("path", NUMERIC_PATHS, ids=".".join)
@pytest.mark.parametrize("literal", [HUGE, f"-{HUGE}", "1e400", "-1e400", TOO_LONG])
async def test_numbers_no_float_holds_are_read_or_refused_cleanly(
    client: EvoLinkClient, mock: MockEvoLink, path: tuple[str, ...], literal: str
) -> None:
    body = task_text(path, literal)
    mock.inject(Fault.REPLY, route=GET_TASK, status=200, body=body, times=10)
    try:
        task = await client.get_task(TASK_ID)
    except MalformedReplyError:
        pass  # refused whole: the 4,400-digit literal is not JSON Python reads
    else:
        assert task.id == TASK_ID
        assert 0 <= task.progress <= 100


async def test_deep_nesting_is_read_or_refused_cleanly(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    # 2,000 levels: Python 3.11 and 3.12 cannot parse them (a malformed reply);
    # 3.13 can, and then the task is read. Either way, nothing else escapes.
    body = b'{"id": "%s", "status": "pending", "x": ' % TASK_ID.encode()
    body += b"[" * 2_000 + b"]" * 2_000 + b"}"
    mock.inject(Fault.REPLY, route=GET_TASK, status=200, body=body, times=10)
    try:
        task = await client.get_task(TASK_ID)
    except MalformedReplyError:
        return
    assert task.id == TASK_ID


async def test_nesting_no_parser_reads_is_a_malformed_reply(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    body = b'{"id": "%s", "status": "pending", "x": ' % TASK_ID.encode()
    body += b"[" * 100_000 + b"]" * 100_000 + b"}"
    mock.inject(Fault.REPLY, route=GET_TASK, status=200, body=body, times=10)
    with pytest.raises(MalformedReplyError):
        await client.get_task(TASK_ID)


def test_a_task_too_deep_to_write_again_is_journalled_by_its_fields() -> None:
    from evolink_async._batch.resume import journal_record, read_record

    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    raw = {"id": TASK_ID, "status": "completed", "results": ["https://x/v.mp4"], "x": deep}
    task = Task(
        id=TASK_ID, status=TaskStatus.COMPLETED, progress=100, results=("https://x/v.mp4",), raw=raw
    )
    record = journal_record(task, None, None)
    json.dumps(record)  # the journal writes it
    back, error, _ = read_record(json.loads(json.dumps(record)))
    assert error is None
    assert back is not None and back.id == TASK_ID and back.video_url == "https://x/v.mp4"


async def test_an_unreadable_poll_ends_no_other_wait(mock: MockEvoLink) -> None:
    async with make_client(mock) as client:
        tasks = [await client.submit(MODEL, **WAN) for _ in range(5)]
        # A few polls meet a reply with a number no float holds (in every
        # numeric field at once); every wait still finishes.
        hostile = json.dumps({"id": tasks[0].id, "status": "processing"})[:-1]
        hostile += "".join(f', "{key}": {HUGE}' for key in ("progress", "created")) + "}"
        mock.inject(Fault.REPLY, route=GET_TASK, status=200, body=hostile.encode(), times=3)
        done = await asyncio.gather(*(client.wait(task, timeout=20) for task in tasks))
    assert [task.status for task in done] == [TaskStatus.COMPLETED] * 5


async def test_a_reader_that_raises_anything_ends_only_its_task() -> None:
    from evolink_async._watch.policy import PollPolicy
    from evolink_async._watch.watcher import Watcher

    class Reader:
        async def poll_task(self, task_id: str, /) -> Task:
            if task_id == "bad":
                raise OverflowError("int too large to convert to float")
            return Task(id=task_id, status=TaskStatus.COMPLETED, progress=100)

        async def poll_tasks(self, task_ids: Any, /) -> list[Task]:
            raise AssertionError("not used")

    policy = PollPolicy(min_interval=0.001, max_interval=0.005, default_estimate=0.002)
    watcher = Watcher(policy=policy, reader=Reader(), max_in_flight=4)
    results = await asyncio.gather(
        watcher.wait("bad", initial=None, started_at=None, timeout=5, on_progress=None),
        *(
            watcher.wait(f"ok-{n}", initial=None, started_at=None, timeout=5, on_progress=None)
            for n in range(3)
        ),
        return_exceptions=True,
    )
    await watcher.aclose()
    assert isinstance(results[0], MalformedReplyError)
    assert all(isinstance(task, Task) and task.is_terminal for task in results[1:])


async def test_an_unreadable_create_reply_is_retried_then_resumed(
    mock: MockEvoLink, tmp_path: Path
) -> None:
    journal = tmp_path / "run.journal"
    jobs = [wan(f"j-{n}") for n in range(6)]
    hostile = task_text(("progress",), "[" * 100_000 + "]" * 100_000)
    # More unreadable replies than one create retries: that job's create ends
    # with the error (its task may exist), the others are untouched.
    mock.inject(
        Fault.REPLY, route=CREATE, status=200, body=hostile, times=FAST_RETRY.max_retries + 1
    )
    async with make_client(mock) as client:
        first = await client.batch(jobs, concurrency=1, journal=journal).results()
    errors = [outcome for outcome in first if not outcome.ok]
    assert len(errors) == 1
    assert isinstance(errors[0].error, MalformedReplyError)
    async with make_client(mock) as client:
        second = await client.batch(jobs, concurrency=1, journal=journal).results()
    assert all(outcome.ok for outcome in second)
    # One task per job, however many times a create was sent.
    assert mock.stats.tasks_created == len(jobs)
    assert max(mock.stats.creates_per_key.values()) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"id": "t", "status": "pending", "progress": ' + HUGE.encode() + b"}",
        b'{"id": "t", "status": "pending", "created": 1e400}',
        b'{"id": "t", "status": "pending", "task_info": {"estimated_time": '
        + HUGE.encode()
        + b"}}",
        b"\xff\xfe not json",
        b"[1, 2]",
        b'"a string"',
    ],
)
async def test_hostile_callback_bodies_are_validation_errors(
    client: EvoLinkClient, body: bytes
) -> None:
    # Refused or read; anything else would have been a 500 in a web backend.
    with contextlib.suppress(ValidationError):
        client.handle_callback_body(body)


# -- 2. the key never leaks ----------------------------------------------------

KEY = "sk-hostile-0123456789abcdef"
places = st.sampled_from(["message", "param", "type", "code", "extra", "suggestion"])


async def _echoing_mock() -> MockEvoLink:
    return MockEvoLink(api_key=KEY, time_scale=0.002, seed=3)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(place=places, status=st.sampled_from([400, 401, 403, 429, 500]), bearer=st.booleans())
def test_an_echoed_key_is_masked_everywhere(place: str, status: int, bearer: bool) -> None:
    echoed = f"Bearer {KEY}" if bearer else KEY
    error: dict[str, Any] = {"code": "invalid_api_key", "message": "bad key", "type": "auth"}
    if place == "extra":
        error["received_header"] = echoed
    elif place == "suggestion":
        error["fallback_suggestion"] = f"retry after 1 seconds with {echoed}"
    else:
        error[place] = f"you sent {echoed}"

    async def scenario() -> None:
        async with MockEvoLink(api_key=KEY, time_scale=0.002) as mock:
            mock.inject(
                Fault.REPLY,
                route=GET_TASK,
                status=status,
                body={"error": error},
                headers={"X-Request-Id": f"req {echoed}"},
                times=10,
            )
            async with make_client(mock, max_retries=0) as client:
                with pytest.raises(APIError) as info:
                    await client.get_task(TASK_ID)
            exc = info.value
            texts = [str(exc), repr(exc), exc.message, repr(exc.body), str(exc.request_id)]
            texts += [repr(vars(exc))]
            assert not any(KEY in text for text in texts), texts

    asyncio.run(scenario())


async def test_an_echoed_key_reaches_no_journal_and_no_record(tmp_path: Path) -> None:
    journal = tmp_path / "run.journal"
    async with MockEvoLink(api_key=KEY, time_scale=0.002) as mock:
        body = {"error": {"code": "bad", "message": f"header was Authorization: Bearer {KEY}"}}
        mock.inject(Fault.REPLY, route=CREATE, status=400, body=body)
        async with make_client(mock) as client:
            outcomes = await client.batch([wan("a")], journal=journal).results()
    assert isinstance(outcomes[0].error, APIError)
    assert KEY not in json.dumps(outcomes[0].to_record())
    for path in tmp_path.iterdir():
        assert KEY.encode() not in path.read_bytes()


async def test_no_aiohttp_object_is_chained_to_an_error(mock: MockEvoLink) -> None:
    mock.inject(Fault.DROP_BEFORE, route=GET_TASK, times=10)
    mock.inject(Fault.SLOW, route="GET /v1/credits", times=10, delay=1.0)
    async with make_client(mock, max_retries=1, timeout=0.1) as client:
        errors: list[BaseException] = []
        for call in (client.get_task(TASK_ID), client.get_credits()):
            try:
                await call
            except EvoLinkError as exc:
                errors.append(exc)
    assert len(errors) == 2
    for error in errors:
        chain = causes(error)
        assert not any(type(link).__module__.startswith("aiohttp") for link in chain), chain


async def test_a_401_echoing_the_key_is_masked(mock: MockEvoLink) -> None:
    async with make_client(mock) as client:
        key = mock.api_key
        body = {"error": {"code": "invalid_api_key", "message": f"Invalid key {key}"}}
        mock.inject(Fault.REPLY, route=GET_TASK, status=401, body=body)
        with pytest.raises(AuthenticationError) as info:
            await client.get_task(TASK_ID)
    assert key not in str(info.value) and key not in repr(info.value.body)
    assert "[api key]" in info.value.message


# -- 3. size limits --------------------------------------------------------------


async def test_a_gzip_bomb_reply_is_refused_without_inflating_it() -> None:
    bomb = gzip.compress(b"0" * 200_000_000, compresslevel=9)  # ~200 kB on the wire

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=bomb, headers={"Content-Encoding": "gzip"}, content_type="application/json"
        )

    async with (
        serve(handler) as url,
        EvoLinkClient("sk-test-key-000000", base_url=url, retry=FAST_RETRY) as client,
    ):
        tracemalloc.start()
        try:
            with pytest.raises(MalformedReplyError, match="inflates"):
                await client.get_task(TASK_ID)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 64 * 1024 * 1024, peak


async def test_an_endless_chunked_reply_is_cut_off() -> None:
    sent = 0

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal sent
        response = web.StreamResponse()
        await response.prepare(request)
        chunk = b" " * 65536
        for _ in range(2000):  # bounded: 128 MiB at most
            try:
                await response.write(chunk)
            except (ConnectionError, RuntimeError):
                break
            sent += len(chunk)
        return response

    async with (
        serve(handler) as url,
        EvoLinkClient("sk-test-key-000000", base_url=url, max_retries=0) as client,
    ):
        with pytest.raises(MalformedReplyError, match="over"):
            await client.get_task(TASK_ID)
    assert sent < 64 * 1024 * 1024


def _task_with_video(url: str) -> Task:
    return Task(id=TASK_ID, status=TaskStatus.COMPLETED, progress=100, results=(url,))


async def test_an_endless_video_stops_at_the_size_limit(tmp_path: Path) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(200):  # 12.5 MiB at most
            try:
                await response.write(b"v" * 65536)
            except (ConnectionError, RuntimeError):
                break
        return response

    async with (
        serve(handler) as url,
        EvoLinkClient(
            "sk-test-key-000000", base_url=url, retry=FAST_RETRY, max_video_bytes=1_000_000
        ) as client,
    ):
        with pytest.raises(MalformedReplyError, match="limit"):
            await client.download(_task_with_video(f"{url}/v.mp4"), tmp_path / "v.mp4")
    assert list(tmp_path.iterdir()) == []


async def test_a_slow_drip_download_ends_at_the_deadline(tmp_path: Path) -> None:
    dripped: list[int] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "100000"})
        await response.prepare(request)
        for sent in range(400):  # 20 s at most
            if request.transport is None or request.transport.is_closing():
                dripped.append(sent)  # the client hung up
                break
            try:
                await response.write(b"x")
            except (ConnectionError, RuntimeError):
                dripped.append(sent)
                break
            await asyncio.sleep(0.05)
        return response

    async with (
        serve(handler) as url,
        EvoLinkClient(
            "sk-test-key-000000", base_url=url, retry=FAST_RETRY, download_timeout=0.5
        ) as client,
    ):
        with pytest.raises(APITimeoutError, match="within"):
            # The guard only stops a hang: the deadline is 0.5 s, the drip 20 s.
            await asyncio.wait_for(
                client.download(_task_with_video(f"{url}/v.mp4"), tmp_path / "v.mp4"), 15
            )
        for _ in range(100):  # the server notices the hang-up within a write or two
            if dripped:
                break
            await asyncio.sleep(0.05)
    # The client hung up long before the body could end: what the server
    # sent is a fraction of the 400 bytes it meant to drip.
    assert dripped and dripped[0] < 400
    assert list(tmp_path.iterdir()) == []


# -- 4. leaving a batch early ------------------------------------------------------


async def test_leaving_the_loop_stops_creating_and_journals_what_was_sent(
    mock: MockEvoLink, tmp_path: Path
) -> None:
    journal = tmp_path / "run.journal"
    async with make_client(mock) as client:
        run = client.batch([wan(f"j-{n}") for n in range(300)], concurrency=2, journal=journal)
        async for _ in run:
            break
        created_at_break = mock.stats.tasks_created
        await asyncio.sleep(1.0)
        # Creates already on their way may land; nothing new is sent.
        assert mock.stats.tasks_created <= created_at_break + 2
        created = mock.stats.tasks_created
        assert created < 300
    counts = await journal_counts(journal)
    # Every create that was sent has its task id in the journal.
    assert counts["begun"] == 0
    assert counts["created"] + counts["finished"] == created


async def test_an_exception_in_the_loop_body_stops_the_run(mock: MockEvoLink) -> None:
    async with make_client(mock) as client:
        run = client.batch([wan(f"e-{n}") for n in range(300)], concurrency=2)

        async def consume() -> None:
            async for _ in run:
                raise KeyError("consumer bug")

        with pytest.raises(KeyError):
            await consume()
        created_at_exception = mock.stats.tasks_created
        await asyncio.sleep(1.0)
        assert mock.stats.tasks_created <= created_at_exception + 2
        assert mock.stats.tasks_created < 300


# -- 5. closing the client mid-work --------------------------------------------------


@pytest.mark.parametrize("stage", ["waiting for data", "receiving data"])
async def test_closing_the_client_ends_a_download_promptly(tmp_path: Path, stage: str) -> None:
    started = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "10000000"})
        await response.prepare(request)
        started.set()
        for _ in range(600):  # 30 s at most
            if request.transport is None or request.transport.is_closing():
                break
            try:
                if stage == "receiving data":
                    await response.write(b"x" * 1024)
            except (ConnectionError, RuntimeError):
                break
            await asyncio.sleep(0.05)
        return response

    async with serve(handler) as url:
        client = EvoLinkClient("sk-test-key-000000", base_url=url, timeout=60.0)
        download = asyncio.create_task(
            client.download(_task_with_video(f"{url}/v.mp4"), tmp_path / "v.mp4")
        )
        await started.wait()
        await asyncio.sleep(0.1)
        await client.aclose()
        with pytest.raises(ClientClosedError):
            # Ends with the close: a download left waiting would run into the
            # 60 s read timeout or the 30 s body, far past this guard.
            await asyncio.wait_for(download, 5)
        assert list(tmp_path.iterdir()) == []


# -- 7. downloads: encodings and URLs -------------------------------------------------


async def test_a_gzip_encoded_video_with_content_length_downloads(tmp_path: Path) -> None:
    video = bytes(range(256)) * 4000
    encoded = gzip.compress(video)

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=encoded,
            headers={"Content-Encoding": "gzip", "Content-Length": str(len(encoded))},
            content_type="video/mp4",
        )

    async with (
        serve(handler) as url,
        EvoLinkClient("sk-test-key-000000", base_url=url) as client,
    ):
        path = await client.download(_task_with_video(f"{url}/v.mp4"), tmp_path / "v.mp4")
    assert path.read_bytes() == video


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "javascript:alert(1)",
        "ftp://files.example.com/v.mp4",
        "/files/videos/v.mp4",
        "videos/v.mp4",
        "data:video/mp4;base64,AAAA",
        "http://",
        "https://[::1",
        "gopher://x/1",
    ],
)
async def test_result_urls_that_are_not_http_fail_at_once(
    mock: MockEvoLink, tmp_path: Path, url: str
) -> None:
    # Any retry would first sleep a minute, far past the guard: failing
    # inside it means failing without a retry.
    patient = RetryPolicy(initial_backoff=60.0, max_backoff=60.0)
    async with EvoLinkClient(mock.api_key, base_url=mock.url, retry=patient) as client:
        with pytest.raises(MalformedReplyError, match="http"):
            await asyncio.wait_for(client.download(_task_with_video(url), tmp_path / "v.mp4"), 10)
    assert sum(mock.stats.requests.values()) == 0
    assert list(tmp_path.iterdir()) == []


# -- 8. a reply for another task ----------------------------------------------------


async def test_a_reply_for_another_task_is_malformed(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    a = await client.submit(MODEL, **WAN)
    b = await client.submit(MODEL, **WAN)
    other = {"id": b.id, "status": "completed", "progress": 100, "results": ["https://x/y.mp4"]}
    mock.inject(
        Fault.REPLY, route=GET_TASK, status=200, body=other, times=FAST_RETRY.max_retries + 1
    )
    with pytest.raises(MalformedReplyError, match=b.id):
        await client.get_task(a.id)
    # A wait on A never returns B: the reply counts as unreadable, and A's own
    # reads finish the wait.
    mock.inject(Fault.REPLY, route=GET_TASK, status=200, body=other, times=2)
    done = await client.wait(a, timeout=20)
    assert done.id == a.id
