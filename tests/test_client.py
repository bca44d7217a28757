"""EvoLinkClient against MockEvoLink over real HTTP: errors, retries, idempotency, secrets."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from evolink_async import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    EvoLinkClient,
    EvoLinkError,
    IdempotencyConflictError,
    InsufficientCreditsError,
    MalformedReplyError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RawRequest,
    RequestTooLargeError,
    RetryPolicy,
    ServerError,
    TaskStatus,
    ValidationError,
)
from evolink_async._api.retry import parse_retry_after
from evolink_async.testing import Fault, FaultPlan, MockEvoLink

from .conftest import FAST_RETRY, make_client

pytestmark = pytest.mark.anyio

CREATE = "POST /v1/videos/generations"
GET_TASK = "GET /v1/tasks/{id}"
SEEDANCE = {
    "prompt": "The camera slowly pushes in",
    "image_urls": ["https://example.com/first-frame.jpg"],
}


def raw_seedance() -> RawRequest:
    return RawRequest("seedance-2.0-image-to-video", SEEDANCE)


def session_of(client: EvoLinkClient) -> aiohttp.ClientSession | None:
    return client._transport._session


def is_open(session: aiohttp.ClientSession) -> bool:
    return not session.closed


def keys_sent(mock: MockEvoLink) -> list[str | None]:
    return [r.headers.get("Idempotency-Key") for r in mock.requests_log if r.route == CREATE]


# -- happy path ------------------------------------------------------------


async def test_submit_returns_pending_task_and_server_saw_one_create(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    task = await client.submit(raw_seedance())

    assert task.status is TaskStatus.PENDING
    assert task.id in mock.tasks
    assert task.model == "seedance-2.0-image-to-video"
    assert task.estimated_time is not None and task.estimated_time > 0
    assert task.usage is not None and task.usage.credits_reserved
    assert mock.stats.requests[CREATE] == 1
    assert mock.stats.tasks_created == 1
    sent = mock.requests_log[-1]
    assert sent.json == {"model": "seedance-2.0-image-to-video", **SEEDANCE}
    assert sent.headers["Authorization"] == f"Bearer {mock.api_key}"


async def test_get_task_reads_the_same_task(client: EvoLinkClient, mock: MockEvoLink) -> None:
    created = await client.submit(raw_seedance())
    read = await client.get_task(created.id)

    assert read.id == created.id
    assert read.status in (TaskStatus.PENDING, TaskStatus.PROCESSING, TaskStatus.COMPLETED)
    assert mock.stats.requests[GET_TASK] == 1
    assert mock.stats.polls[created.id]


@pytest.mark.parametrize("task_id", ["", "  ", ".", "..", "..."])
async def test_ids_that_cannot_be_tasks_are_refused_before_sending(
    client: EvoLinkClient, mock: MockEvoLink, task_id: str
) -> None:
    with pytest.raises(ValidationError, match="task_id"):
        await client.get_task(task_id)
    assert sum(mock.stats.requests.values()) == 0


async def test_task_id_is_quoted_into_the_path(client: EvoLinkClient, mock: MockEvoLink) -> None:
    with pytest.raises(BadRequestError) as info:
        await client.get_task("../credits")
    assert info.value.code == "invalid_task_id"
    assert mock.requests_log[-1].path.startswith("/v1/tasks/")
    assert mock.stats.requests["GET /v1/credits"] == 0


# -- error mapping ---------------------------------------------------------

ERROR_CASES = [
    (400, "invalid_request", "invalid_request_error", BadRequestError),
    (401, "unauthorized", "authentication_error", AuthenticationError),
    (402, "insufficient_quota", "insufficient_quota_error", InsufficientCreditsError),
    (403, "model_access_denied", "permission_error", PermissionDeniedError),
    (404, "not_found", "not_found_error", NotFoundError),
    (413, "request_too_large", "request_too_large_error", RequestTooLargeError),
    (429, "rate_limit_exceeded", "rate_limit_error", RateLimitError),
    (500, "internal_error", "internal_server_error", ServerError),
    (502, "upstream_error", "upstream_error", ServerError),
    (503, "service_unavailable", "service_unavailable_error", ServerError),
    (504, 504, "gateway_timeout", ServerError),
    (418, "teapot", "odd_error", APIError),
]


@pytest.mark.parametrize(("status", "code", "type_", "cls"), ERROR_CASES)
async def test_each_status_maps_to_its_error_class(
    mock: MockEvoLink, status: int, code: str | int, type_: str, cls: type[APIError]
) -> None:
    body = {
        "error": {"code": code, "message": f"boom {status}", "type": type_, "param": "duration"}
    }
    mock.inject(
        Fault.REPLY,
        route=GET_TASK,
        status=status,
        body=body,
        headers={"X-Request-Id": "req-123"},
    )
    async with make_client(mock, max_retries=0) as client:
        with pytest.raises(cls) as info:
            await client.get_task("task-unified-1774857405-abc123")
    error = info.value
    assert type(error) is cls
    assert (error.status, error.code, error.type) == (status, code, type_)
    assert (error.message, error.param, error.request_id) == (
        f"boom {status}",
        "duration",
        "req-123",
    )
    assert f"boom {status}" in str(error) and "req-123" in str(error)
    assert mock.stats.requests[GET_TASK] == 1


async def test_old_integer_error_codes_are_accepted(mock: MockEvoLink) -> None:
    mock.inject(
        Fault.REPLY, route=GET_TASK, status=400, body={"error": {"code": 400, "message": "x"}}
    )
    async with make_client(mock) as client:
        with pytest.raises(BadRequestError) as info:
            await client.get_task("task-unified-1774857405-abc123")
    assert info.value.code == 400


async def test_idempotency_conflict_has_its_own_class(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    key = "conflict-key-0000000001"
    await client.submit(raw_seedance(), idempotency_key=key)
    other = RawRequest("seedance-2.0-image-to-video", {**SEEDANCE, "duration": 6})
    with pytest.raises(IdempotencyConflictError) as info:
        await client.submit(other, idempotency_key=key)
    assert info.value.code == "idempotency_conflict"
    assert mock.stats.tasks_created == 1


async def test_wrong_key_is_authentication_error(mock: MockEvoLink) -> None:
    async with make_client(mock) as good:
        key = good._transport._api_key
    assert key == mock.api_key
    async with EvoLinkClient("sk-wrong-key", base_url=mock.url, retry=FAST_RETRY) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.get_credits()
    assert info.value.status == 401
    assert mock.stats.requests["GET /v1/credits"] == 1


async def test_missing_key_fails_clearly_before_sending(
    mock: MockEvoLink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EVOLINK_API_KEY", raising=False)
    async with EvoLinkClient(base_url=mock.url) as client:
        with pytest.raises(AuthenticationError, match="EVOLINK_API_KEY"):
            await client.submit(raw_seedance())
    assert sum(mock.stats.requests.values()) == 0


async def test_key_and_urls_come_from_the_environment(
    mock: MockEvoLink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVOLINK_API_KEY", mock.api_key)
    monkeypatch.setenv("EVOLINK_BASE_URL", mock.url)
    monkeypatch.setenv("EVOLINK_FILES_BASE_URL", mock.url + "/")
    async with EvoLinkClient() as client:
        balance = await client.get_credits()
    assert client.base_url == mock.url and client.files_base_url == mock.url
    assert balance.remaining_credits is not None and balance.remaining_credits > 0
    assert mock.stats.requests["GET /v1/credits"] == 1


# -- retries ---------------------------------------------------------------


async def test_retries_stop_at_max_retries(mock: MockEvoLink) -> None:
    mock.inject(Fault.SERVER_ERROR, route=GET_TASK, times=10, status=503)
    async with make_client(mock, max_retries=2) as client:
        with pytest.raises(ServerError) as info:
            await client.get_task("task-unified-1774857405-abc123")
    assert info.value.status == 503
    assert mock.stats.requests[GET_TASK] == 3


async def test_max_retries_zero_tries_once(mock: MockEvoLink) -> None:
    mock.inject(Fault.SERVER_ERROR, route=GET_TASK, times=5, status=500)
    async with make_client(mock, max_retries=0) as client:
        with pytest.raises(ServerError):
            await client.get_task("task-unified-1774857405-abc123")
    assert mock.stats.requests[GET_TASK] == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_transient_statuses_are_retried_to_success(mock: MockEvoLink, status: int) -> None:
    mock.inject(Fault.SERVER_ERROR, route=CREATE, times=2, status=status)
    async with make_client(mock) as client:
        task = await client.submit(raw_seedance())
    assert task.id in mock.tasks
    assert mock.stats.requests[CREATE] == 3
    assert mock.stats.tasks_created == 1
    assert len(set(keys_sent(mock))) == 1


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 413])
async def test_client_errors_are_not_retried(mock: MockEvoLink, status: int) -> None:
    mock.inject(Fault.REPLY, route=CREATE, status=status, body={"error": {"message": "no"}})
    async with make_client(mock) as client:
        with pytest.raises(APIError):
            await client.submit(raw_seedance())
    assert mock.stats.requests[CREATE] == 1


async def test_429_retry_waits_at_least_retry_after(mock: MockEvoLink) -> None:
    mock.inject(Fault.RATE_LIMIT, route=CREATE, retry_after=0.3)
    async with make_client(mock) as client:
        started = time.monotonic()
        task = await client.submit(raw_seedance())
        elapsed = time.monotonic() - started
    assert elapsed >= 0.3
    assert task.id in mock.tasks
    assert mock.stats.requests[CREATE] == 2
    times = [r.time for r in mock.requests_log if r.route == CREATE]
    assert times[1] - times[0] >= 0.3


async def test_429_pauses_other_requests_of_its_kind_only(mock: MockEvoLink) -> None:
    mock.inject(Fault.RATE_LIMIT, route=CREATE, retry_after=0.3)
    async with make_client(mock) as client:
        first = asyncio.create_task(client.submit(raw_seedance()))
        while mock.stats.requests[CREATE] == 0:
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)
        # A create met a 429: another create waits its Retry-After out ...
        second = asyncio.create_task(client.submit(raw_seedance()))
        # ... a read (another bucket on the server) does not.
        await client.get_credits()
        assert not first.done() and not second.done()
        await asyncio.gather(first, second)
    routes = [r.route for r in mock.requests_log]
    assert routes == [CREATE, "GET /v1/credits", CREATE, CREATE]
    assert mock.stats.tasks_created == 2


async def test_retry_after_in_the_message_is_honoured(mock: MockEvoLink) -> None:
    body = {
        "error": {
            "code": "rate_limit_exceeded",
            "message": "Too many requests",
            "type": "rate_limit_error",
            "fallback_suggestion": "retry after 0.25 seconds",
        }
    }
    mock.inject(Fault.REPLY, route=CREATE, status=429, body=body)
    async with make_client(mock) as client:
        started = time.monotonic()
        await client.submit(raw_seedance())
    assert time.monotonic() - started >= 0.25
    assert mock.stats.tasks_created == 1


async def test_huge_retry_after_raises_at_once_with_the_advice(mock: MockEvoLink) -> None:
    far = (datetime.now(UTC) + timedelta(days=365)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    mock.inject(Fault.RATE_LIMIT, route=CREATE, retry_after=far)
    async with make_client(mock) as client:
        with pytest.raises(RateLimitError) as info:
            await client.submit(raw_seedance())
    assert info.value.retry_after is not None and info.value.retry_after > 300 * 24 * 3600
    assert mock.stats.requests[CREATE] == 1


async def test_5xx_with_an_absurd_retry_after_is_raised_not_slept_on(mock: MockEvoLink) -> None:
    mock.inject(Fault.SERVER_ERROR, route=GET_TASK, status=503, retry_after="1e9")
    async with make_client(mock) as client:
        started = time.monotonic()
        with pytest.raises(ServerError):
            await client.get_task("task-unified-1774857405-abc123")
    assert time.monotonic() - started < 1.0
    assert mock.stats.requests[GET_TASK] == 1


async def test_dropped_get_is_retried(mock: MockEvoLink, client: EvoLinkClient) -> None:
    task = await client.submit(raw_seedance())
    mock.inject(Fault.DROP_BEFORE, route=GET_TASK, times=2)
    read = await client.get_task(task.id)
    assert read.id == task.id
    # Two dropped attempts, then the answer. aiohttp itself re-sends an
    # idempotent request once when a reused keep-alive connection drops
    # (RFC 9112 9.3.1), so the server may see the dropped ones twice.
    assert 3 <= mock.stats.requests[GET_TASK] <= 5
    assert mock.stats.faults_injected["drop_before"] == 2


async def test_drops_beyond_retries_raise_connection_error(mock: MockEvoLink) -> None:
    mock.inject(Fault.DROP_BEFORE, route=GET_TASK, times=10)
    async with make_client(mock, max_retries=1) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.get_task("task-unified-1774857405-abc123")
    assert not isinstance(info.value, APITimeoutError)
    # The aiohttp error is named, not chained: its request info would carry
    # the Authorization header into error reporters.
    assert "ServerDisconnectedError" in str(info.value) or "ClientOSError" in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    # Our two attempts; aiohttp may re-send each once on a reused connection.
    assert 2 <= mock.stats.requests[GET_TASK] <= 4


async def test_slow_reply_times_out_and_is_retried(mock: MockEvoLink) -> None:
    mock.inject(Fault.SLOW, route=GET_TASK, delay=0.5)
    async with make_client(mock, timeout=0.1) as client:
        created = await client.submit(raw_seedance())
        read = await client.get_task(created.id)
    assert read.id == created.id
    assert mock.stats.requests[GET_TASK] == 2


async def test_timeout_after_retries_is_api_timeout_error(mock: MockEvoLink) -> None:
    mock.inject(Fault.SLOW, route=GET_TASK, delay=0.5, times=5)
    async with make_client(mock, timeout=0.05, max_retries=1) as client:
        with pytest.raises(APITimeoutError, match="timed out"):
            await client.get_task("task-unified-1774857405-abc123")
    assert mock.stats.requests[GET_TASK] == 2


# -- idempotent creates ----------------------------------------------------


async def test_create_dropped_after_the_task_was_made_is_not_duplicated(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    mock.inject(Fault.DROP_AFTER, route=CREATE)
    task = await client.submit(raw_seedance())

    assert mock.stats.requests[CREATE] == 2
    assert mock.stats.tasks_created == 1
    assert list(mock.tasks) == [task.id]
    keys = keys_sent(mock)
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0] is not None
    assert mock.stats.creates_per_key == {keys[0]: 1}
    assert mock.stats.replays == 1


async def test_fifty_submits_under_30_percent_drops_create_exactly_fifty_tasks(
    mock: MockEvoLink,
) -> None:
    mock.faults = FaultPlan(drop_after=0.3, routes=frozenset({CREATE}))
    retry = RetryPolicy(max_retries=12, initial_backoff=0.001, max_backoff=0.005)
    async with make_client(mock, retry=retry) as client:
        tasks = await asyncio.gather(*(client.submit(raw_seedance()) for _ in range(50)))

    assert len({task.id for task in tasks}) == 50
    assert mock.stats.tasks_created == 50
    assert set(mock.tasks) == {task.id for task in tasks}
    assert all(count == 1 for count in mock.stats.creates_per_key.values())
    assert len(mock.stats.creates_per_key) == 50
    assert mock.stats.faults_injected["drop_after"] > 0
    assert mock.stats.requests[CREATE] == 50 + mock.stats.faults_injected["drop_after"]


async def test_every_submit_gets_a_fresh_valid_key(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    await client.submit(raw_seedance())
    await client.submit(raw_seedance())
    keys = keys_sent(mock)
    assert len(keys) == 2 and keys[0] != keys[1]
    for key in keys:
        assert key is not None and 16 <= len(key) <= 96


async def test_own_idempotency_key_is_sent_and_replayed(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    key = "my-job-000001.attempt_1"
    first = await client.submit(raw_seedance(), idempotency_key=key)
    again = await client.submit(raw_seedance(), idempotency_key=key)
    assert first.id == again.id
    assert keys_sent(mock) == [key, key]
    assert mock.stats.tasks_created == 1


@pytest.mark.parametrize("key", ["short", "x" * 97, "has space in it 123", "bad/slash-0000000"])
async def test_malformed_idempotency_key_is_rejected_before_sending(
    client: EvoLinkClient, mock: MockEvoLink, key: str
) -> None:
    with pytest.raises(ValidationError, match="idempotency_key"):
        await client.submit(raw_seedance(), idempotency_key=key)
    assert sum(mock.stats.requests.values()) == 0


# -- concurrency -----------------------------------------------------------


async def test_max_concurrency_is_never_exceeded(mock: MockEvoLink) -> None:
    mock.faults = FaultPlan(slow=1.0, slow_delay=0.03)
    async with make_client(mock, max_concurrency=4) as client:
        created = await client.submit(raw_seedance())
        mock.stats.reset_max_in_flight()
        await asyncio.gather(
            *(client.get_task(created.id) for _ in range(30)),
            *(client.get_credits() for _ in range(10)),
        )
    assert mock.stats.max_in_flight == 4
    assert mock.stats.requests[GET_TASK] == 30


# -- replies ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", "not JSON"),
        (b"", "not JSON"),
        (json.dumps({"status": "pending"}).encode(), "no 'id'"),
        (json.dumps({"id": "task-unified-1-a"}).encode(), "no 'status'"),
        (json.dumps(["a", "list"]).encode(), "expected a task object"),
        (json.dumps({"id": "t", "status": "pending", "task_info": [1]}).encode(), "task_info"),
    ],
)
async def test_malformed_success_replies_raise_api_error(
    client: EvoLinkClient, mock: MockEvoLink, body: bytes, match: str
) -> None:
    attempts = client.retry.max_retries + 1
    mock.inject(Fault.REPLY, route=GET_TASK, status=200, body=body, times=attempts)
    with pytest.raises(MalformedReplyError, match=match) as info:
        await client.get_task("task-unified-1774857405-abc123")
    assert isinstance(info.value, APIError)
    assert info.value.status == 200
    # Retried like a 5xx: every attempt met the unreadable reply.
    assert mock.stats.requests[GET_TASK] == attempts


async def test_one_malformed_reply_is_retried_away(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    task = await client.submit(raw_seedance())
    mock.inject(Fault.REPLY, route=GET_TASK, status=200, body=b"<html>oops</html>")
    assert (await client.get_task(task.id)).id == task.id
    assert mock.stats.requests[GET_TASK] == 2


async def test_200_with_error_body_is_an_api_error(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    body = {"error": {"code": "internal_error", "message": "upstream said no"}}
    mock.inject(Fault.REPLY, route=GET_TASK, status=200, body=body)
    with pytest.raises(APIError, match="upstream said no"):
        await client.get_task("task-unified-1774857405-abc123")


async def test_unknown_fields_and_statuses_are_kept_not_errors(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    body = {
        "id": "task-unified-1774857405-abc123",
        "status": "queued_for_gpu",
        "progress": "42",
        "brand_new_field": {"nested": True},
        "task_info": {"estimated_time": "165", "can_cancel": False, "shiny": 1},
    }
    mock.inject(Fault.REPLY, route=GET_TASK, status=200, body=body)
    task = await client.get_task("task-unified-1774857405-abc123")
    assert task.status is TaskStatus.UNKNOWN
    assert task.raw["status"] == "queued_for_gpu"
    assert task.raw["brand_new_field"] == {"nested": True}
    assert task.progress == 42 and task.estimated_time == 165.0 and task.can_cancel is False
    assert task.usage is None and task.error is None and task.video_url is None


# -- secrets ---------------------------------------------------------------


async def test_api_key_never_appears_in_repr_errors_or_logs(
    mock: MockEvoLink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="evolink_async")
    errors: list[BaseException] = []
    mock.inject(Fault.SERVER_ERROR, route=CREATE, status=503)
    mock.inject(Fault.DROP_BEFORE, route=GET_TASK)
    async with make_client(mock, max_retries=1) as client:
        assert mock.api_key not in repr(client)
        assert "api_key=<set>" in repr(client)
        task = await client.submit(raw_seedance())
        await client.get_task(task.id)
        for call in (
            client.get_task("not-a-task-id"),
            client.get_task("task-unified-1774857405-zzzzzzzz"),
            client.submit("no-such-model", prompt="x"),  # type: ignore[call-overload]
        ):
            try:
                await call
            except EvoLinkError as exc:
                errors.append(exc)
    async with EvoLinkClient("sk-wrong-secret-1234", base_url=mock.url) as wrong:
        assert "sk-wrong-secret-1234" not in repr(wrong)
        try:
            await wrong.get_credits()
        except EvoLinkError as exc:
            errors.append(exc)
    assert len(errors) == 4
    for error in errors:
        text = f"{error!s} {error!r} {getattr(error, 'body', '')}"
        assert mock.api_key not in text and "sk-wrong-secret-1234" not in text
    assert caplog.records, "DEBUG logging produced nothing"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "POST /v1/videos/generations -> 200" in logged
    assert "retry 1 of 1" in logged
    assert mock.api_key not in logged and "Bearer" not in logged


# -- lifecycle -------------------------------------------------------------


async def test_session_is_created_lazily_and_closed(mock: MockEvoLink) -> None:
    client = make_client(mock)
    assert session_of(client) is None
    await client.get_credits()
    session = session_of(client)
    assert session is not None
    assert is_open(session)
    await client.aclose()
    assert not is_open(session)
    assert client.closed


async def test_closed_client_refuses_use(mock: MockEvoLink) -> None:
    async with make_client(mock) as client:
        await client.get_credits()
    with pytest.raises(RuntimeError, match="closed"):
        await client.get_credits()
    with pytest.raises(RuntimeError, match="closed"):
        async with client:
            pass
    assert mock.stats.requests["GET /v1/credits"] == 1


async def test_callers_session_is_used_and_left_open(mock: MockEvoLink) -> None:
    async with aiohttp.ClientSession() as session:
        async with make_client(mock, session=session) as client:
            await client.get_credits()
        assert not session.closed
        async with session.get(mock.url + "/v1/credits") as resp:
            assert resp.status == 401


async def test_unclosed_client_warns(mock: MockEvoLink) -> None:
    client = make_client(mock)
    await client.get_credits()
    session = client._transport._session
    assert session is not None
    with pytest.warns(ResourceWarning, match="never closed"):
        client.__del__()
    await session.close()
    del client
    gc.collect()


async def test_cancelling_the_task_that_holds_the_client_still_closes_its_session(
    mock: MockEvoLink,
) -> None:
    # What asyncio.run does on Ctrl-C: cancel the main task, here in the
    # middle of a wait. Leaving `async with` must still close the session.
    clients: list[EvoLinkClient] = []
    entered = asyncio.Event()

    async def main() -> None:
        async with make_client(mock) as client:
            clients.append(client)
            task = await client.submit(raw_seedance())
            entered.set()
            await client.wait(task)

    runner = asyncio.create_task(main())
    await entered.wait()
    await asyncio.sleep(0.01)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    (client,) = clients
    assert not client._transport.has_open_session
    assert mock.stats.tasks_created == 1


async def test_client_refuses_a_second_event_loop(mock: MockEvoLink) -> None:
    client = make_client(mock)
    await client.get_credits()

    def other_loop() -> None:
        async def use() -> None:
            await client.get_credits()

        asyncio.run(use())

    with pytest.raises(RuntimeError, match="another event loop"):
        await asyncio.to_thread(other_loop)
    await client.aclose()


def test_invalid_client_options_are_validation_errors() -> None:
    with pytest.raises(ValidationError, match="max_concurrency"):
        EvoLinkClient("k", max_concurrency=0)
    with pytest.raises(ValidationError, match="timeout"):
        EvoLinkClient("k", timeout=-1)
    with pytest.raises(ValidationError, match="max_retries"):
        EvoLinkClient("k", max_retries=-1)
    with pytest.raises(ValidationError, match="base_url"):
        EvoLinkClient("k", base_url="ftp://example.com")


# -- Retry-After parsing (pure) ------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0.5", 0.5),
        ("0", 0.0),
        ("-1", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
        ("inf", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date_in_the_future() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Thu, 01 Jan 2026 12:01:30 GMT", now=now) == 90.0


def test_backoff_is_full_jitter_capped() -> None:
    policy = RetryPolicy(initial_backoff=0.5, max_backoff=4.0, multiplier=2.0)
    assert policy.backoff(0, 0.999) < 0.5
    assert policy.backoff(2, 0.5) == 1.0
    assert policy.backoff(10, 0.999) < 4.0
    assert policy.backoff(3, 0.0) == 0.0
    assert policy.backoff(1000, 0.5) == 2.0
