"""
`MockEvoLink`: a real aiohttp server on loopback that behaves like the
documented EvoLink API (tasks, files, credits), with injectable faults.

Handlers are kept lean: one wrapper per route counts the request, picks a
fault, reads the body once, checks the key, and sets `X-Request-Id`; task
state is computed on read from timestamps (see `_state.py`), and a single
background task sends callbacks when tasks end.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import contextlib
import hashlib
import heapq
import ipaddress
import itertools
import json
import math
import random
import re
import string
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Final, NoReturn
from urllib.parse import quote, urlsplit

import aiohttp
import attrs
from aiohttp import web

from ._faults import CREATE_ROUTE, Fault, FaultPlan, Injection, is_api_route, pick_fault
from ._rules import check_create
from ._state import (
    CANCELLED,
    COMPLETED,
    DEFAULT_PROFILE,
    FAILED,
    FAILURE_MESSAGES,
    MODEL_PROFILES,
    TERMINAL,
    CallbackDelivery,
    MockStats,
    MockTask,
    RecordedRequest,
    plan_progress,
    sniff_image,
    video_bytes,
)

__all__ = ["MockEvoLink", "serve_forever"]

#: The documented limit on a request body (64 MB).
MAX_BODY: Final = 64 * 1024 * 1024
#: A batch read takes at most this many ids (as EvoLink's own clients send).
MAX_BATCH: Final = 50
#: Default (and largest) page size of `GET /v1/tasks`.
DEFAULT_PAGE_SIZE: Final = 20
MAX_PAGE_SIZE: Final = 100
#: Files API uploads live this long (scaled by `time_scale`; not enforced).
UPLOAD_TTL: Final = 72 * 3600.0
#: Callbacks: 10 s timeout, retries after 1, 2 and 4 s (all scaled).
CALLBACK_TIMEOUT: Final = 10.0
CALLBACK_RETRY_DELAYS: Final = (1.0, 2.0, 4.0)
#: Default `Retry-After` of a 429 and the delay a 503 message mentions.
RATE_LIMIT_RETRY_AFTER: Final = 60.0
UNAVAILABLE_RETRY_AFTER: Final = 30.0
#: Default video length (seconds) when a request names none.
DEFAULT_VIDEO_SECONDS: Final = 5.0
#: Share of a task's run time spent queued (pending) before processing.
QUEUE_SHARE: Final = (0.05, 0.15)
#: A failed or cancelled task ends this far into its run time.
EARLY_END_SHARE: Final = (0.3, 1.0)

TASK_ID_PATTERN: Final = re.compile(r"task-unified-\d+-[a-z0-9]+")
_IDEMPOTENCY_KEY: Final = re.compile(r"[A-Za-z0-9._-]{16,96}")
_MOCK_FAIL: Final = re.compile(r"mock:fail=([A-Za-z0-9_.-]+)")
_RANGE: Final = re.compile(r"bytes=(\d*)-(\d*)")
_ID_ALPHABET: Final = string.ascii_lowercase + string.digits
_FAILURE_CODES: Final = tuple(FAILURE_MESSAGES)
_LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1", "::1"})
_IMAGE_EXTENSIONS: Final[Mapping[str, tuple[str, bytes]]] = {
    "jpg": ("image/jpeg", b"\xff\xd8\xff\xe0"),
    "jpeg": ("image/jpeg", b"\xff\xd8\xff\xe0"),
    "png": ("image/png", b"\x89PNG\r\n\x1a\n"),
    "gif": ("image/gif", b"GIF89a"),
    "webp": ("image/webp", b"RIFF\x00\x00\x00\x00WEBP"),
}

_ERROR_TYPES: Final[Mapping[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota_error",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    410: "not_found_error",
    413: "request_too_large_error",
    416: "invalid_request_error",
    429: "rate_limit_error",
    500: "internal_server_error",
    502: "upstream_error",
    503: "service_unavailable_error",
}

_Endpoint = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _ReplyError(Exception):
    """An error reply, raised inside a handler and rendered by the wrapper."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.headers = headers


@attrs.define(slots=True)
class _Call:
    """One request as a handler sees it: body already read and parsed."""

    request: web.Request
    route: str
    request_id: str
    now: float
    json: Any
    bad_json: bool
    fault: Fault | None


@attrs.frozen(slots=True)
class _Replay:
    canonical_body: str
    reply: bytes


@attrs.frozen(slots=True)
class _StoredFile:
    name: str
    mime_type: str
    data: bytes


# Built once: `json.dumps` with options makes a new encoder on every call.
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_CANONICAL: Final = json.JSONEncoder(separators=(",", ":"), sort_keys=True)


def _dumps(data: object) -> bytes:
    return _ENCODER.encode(data).encode()


def _num(value: float) -> int | float:
    """A JSON number as the API writes it: `165` rather than `165.0`."""
    if math.isfinite(value) and float(value).is_integer():
        return int(value)
    return round(value, 3)


def _seconds_text(seconds: float) -> str:
    """Seconds for a header or message: `60`, `0.6`, `0.05`."""
    text = f"{max(seconds, 0.0):.3f}".rstrip("0").rstrip(".")
    return text or "0"


def _json_response(
    data: object, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=_dumps(data), status=status, content_type="application/json", headers=headers
    )


def _error_body(status: int, code: str, message: str, param: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {
        "code": code,
        "message": message,
        "type": _ERROR_TYPES.get(status, "api_error"),
    }
    if param is not None:
        error["param"] = param
    return {"error": error}


def _drop(request: web.BaseRequest) -> NoReturn:
    """
    Close the connection with no HTTP reply.

    The transport is aborted, then `CancelledError` is raised: aiohttp's
    server treats that as the peer having gone away, so it neither writes a
    500 nor logs an error. The client sees `ServerDisconnectedError` (or a
    reset).
    """
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise asyncio.CancelledError


def _is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


class MockEvoLink:
    """
    A local fake of the EvoLink API, run as a real HTTP server on loopback.

    Use it as `async with MockEvoLink() as mock:` (or `await mock.start()` /
    `await mock.close()`), and point a client at `mock.url` with
    `mock.api_key`; the files API is served on the same URL. It serves:

    - `POST /v1/videos/generations`: creates a task (validated like the
      vendor pages, billed, `Idempotency-Key` honoured: same key and body
      replays the first reply with `idempotency-replayed: true`, another
      body gives 409 `idempotency_conflict`).
    - `GET /v1/tasks/{id}`, `POST /v1/tasks/batch` (`{"task_ids": [...]}`,
      at most 50; answers `{"data": [...], "not_found": [...]}`, unknown or
      malformed ids listed in `not_found`), `GET /v1/tasks?status=&model=
      &page=&page_size=` (newest first), `GET /v1/credits`.
    - The files API (`/api/v1/files/upload/stream`, `/base64`, `/url`),
      images only; other files get HTTP 200 with `"success": false`.
    - Result videos at `/files/videos/{id}.mp4?sig=...` (no key needed,
      `Range: bytes=N-` supported) and uploads at
      `/files/uploads/{file_id}/{name}`.

    **Task life.** A task's mean run time is its model's estimated time
    (`estimated_times`, unscaled seconds for 5 s of video) times
    `0.5 + 0.5 * duration / 5` (longer videos take longer; the factor is
    clamped to [0.5, 4]) times `time_scale`. The true run time is drawn
    lognormal around that mean: `mean * exp(N(0, duration_sigma) -
    duration_sigma**2 / 2)`, whose expectation is the mean. The first 5-15 %
    of it is spent `pending`, the rest `processing` (progress in uneven
    steps), then the task ends. The reported `estimated_time` is `mean *
    eta_bias`, present in every state unless `report_estimated_time=False`.
    State is computed on each read from the loop clock: no timers.

    **Outcomes.** A prompt containing `mock:fail=<code>` makes the task fail
    with that error code (e.g. `mock:fail=content_policy_violation`);
    `mock:cancel` makes it end `cancelled`; otherwise a share `failure_rate`
    of tasks fail with a random documented code. Failed and cancelled tasks
    end 30-100 % into their run time and are refunded (`credits_used: 0`).

    **Billing.** Each create reserves credits (seedance 10 per second of
    video, seedance-fast 6, happyhorse 20, wan2.5/wan2.7 and unknown models
    5 per call); when the balance is short the create gets 402
    `insufficient_quota`. Completed tasks report `usage.credits_used`.

    **Results** expire `result_ttl` (scaled) seconds after they are issued:
    the URL then answers 410; reading the task again issues a fresh URL
    (new `sig`) that works for another `result_ttl`.

    **Callbacks.** When a task with a `callback_url` ends, its JSON is
    POSTed to `callback_target` when set, else to the task's own
    `callback_url` only if that is a loopback address (never the
    internet): 10 s timeout, retries after 1, 2 and 4 s, all scaled.

    Args:
        api_key: the only Bearer key accepted (others get 401).
        time_scale: multiplies every duration: run times, reported estimates,
            default Retry-After, result TTL, callback timings.
        seed: seeds all randomness (run times, outcomes, faults, ids); None
            for a different run each time. Task ids also hold the wall-clock
            epoch, as the API's do.
        duration_sigma: spread of the lognormal run time (0 = exact).
        eta_bias: reported `estimated_time` = true mean x eta_bias.
        estimated_times: model id -> base estimated time (unscaled seconds),
            merged over the defaults (seedance 165, seedance-fast 90,
            happyhorse 240, wan2.7 and wan2.5 120); key `"*"` sets the
            time of unknown models (default 120).
        report_estimated_time: False leaves `estimated_time` out of replies.
        failure_rate: share of tasks that fail with a random code.
        credits: the starting balance.
        batch_endpoint: serve `POST /v1/tasks/batch`; when False it answers
            404 like an unknown route. May be changed at any time.
        result_ttl: how long (unscaled seconds) a result URL works.
        callback_target: where every callback goes, e.g. a loopback
            receiver standing in for `https://example.com/hook`.
        validate: check creates against the documented rules (see
            `evolink_async.testing._rules`); unknown model ids always pass.
        faults: random faults (`FaultPlan`); settable later as `mock.faults`.
        video_size: bytes of each fake video.
        keep_requests: how many requests `requests_log` keeps (0 = none).
        host: interface to listen on.
        port: port to listen on; 0 picks a free one.
    """

    def __init__(
        self,
        *,
        api_key: str = "sk-mock-0000000000000000",
        time_scale: float = 1.0,
        seed: int | None = 0,
        duration_sigma: float = 0.3,
        eta_bias: float = 1.0,
        estimated_times: Mapping[str, float] | None = None,
        report_estimated_time: bool = True,
        failure_rate: float = 0.0,
        credits: float = 1_000_000.0,  # noqa: A002 -- the API's own word for the balance
        batch_endpoint: bool = True,
        result_ttl: float = 86_400.0,
        callback_target: str | None = None,
        validate: bool = True,
        faults: FaultPlan | None = None,
        video_size: int = 64 * 1024,
        keep_requests: int = 10_000,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not time_scale > 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale!r}")
        if duration_sigma < 0:
            raise ValueError(f"duration_sigma must be >= 0, got {duration_sigma!r}")
        if not eta_bias > 0:
            raise ValueError(f"eta_bias must be > 0, got {eta_bias!r}")
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError(f"failure_rate must be in [0, 1], got {failure_rate!r}")
        if video_size < 0 or keep_requests < 0:
            raise ValueError("video_size and keep_requests must be >= 0")
        self.api_key = api_key
        self.time_scale = time_scale
        self.duration_sigma = duration_sigma
        self.eta_bias = eta_bias
        self.report_estimated_time = report_estimated_time
        self.failure_rate = failure_rate
        self.batch_endpoint = batch_endpoint
        self.result_ttl = result_ttl
        self.callback_target = callback_target
        self.validate = validate
        self.faults: FaultPlan | None = faults
        self.video_size = video_size
        self.host = host
        self._port = port
        self._estimated_times: dict[str, float] = {
            model: profile.estimated_time for model, profile in MODEL_PROFILES.items()
        }
        self._estimated_times.update(estimated_times or {})

        root = random.Random(seed)
        # Separate streams, all from `seed`: a fault plan's draws never shift
        # the run times tasks get, nor ids the ones of uploads.
        self._task_rng = random.Random(root.getrandbits(64))
        self._fault_rng = random.Random(root.getrandbits(64))
        self._id_rng = random.Random(root.getrandbits(64))
        self._url_key = root.getrandbits(128).to_bytes(16, "big")

        #: Counters of everything the mock saw.
        self.stats = MockStats()
        #: The last `keep_requests` requests, oldest first.
        self.requests_log: collections.deque[RecordedRequest] = collections.deque(
            maxlen=keep_requests
        )
        self._tasks: dict[str, MockTask] = {}
        self._idempotency: dict[str, _Replay] = {}
        self._injections: list[Injection] = []
        self._uploads: dict[str, _StoredFile] = {}
        self._request_ids = itertools.count(1)
        self._task_seq = itertools.count()

        self._initial_credits = credits
        self._used_credits = 0.0
        self._held_credits = 0.0
        self._ledger: list[tuple[float, int, MockTask]] = []

        self._callback_heap: list[tuple[float, int, MockTask]] = []
        self._callback_wakeup = asyncio.Event()
        self._callback_scheduler: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._closed = False

    # ----------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """
        Start listening; `url` and `port` work from here on.

        Raises:
            RuntimeError: the mock was already started (or closed).
        """
        if self._runner is not None or self._closed:
            raise RuntimeError("MockEvoLink can be started only once")
        self._loop = asyncio.get_running_loop()
        app = web.Application(client_max_size=MAX_BODY)
        self._add_routes(app)
        # A short shutdown grace: closing the mock should not wait out a
        # slow-reply fault that nobody listens to any more.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.25)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._url = f"http://{host}:{self._port}"

    async def close(self) -> None:
        """Stop the server, stop sending callbacks and close their session."""
        if self._closed:
            return
        self._closed = True
        if self._runner is not None:
            await self._runner.cleanup()
        pending = list(self._background)
        if self._callback_scheduler is not None:
            pending.append(self._callback_scheduler)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> MockEvoLink:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -------------------------------------------------------------- access

    @property
    def url(self) -> str:
        """The base URL (`http://127.0.0.1:PORT`, no trailing slash)."""
        if self._url is None:
            raise RuntimeError("MockEvoLink is not started")
        return self._url

    @property
    def port(self) -> int:
        """The port listened on (the one picked when created with port 0)."""
        if self._url is None:
            raise RuntimeError("MockEvoLink is not started")
        return self._port

    @property
    def tasks(self) -> Mapping[str, MockTask]:
        """Every task created, by id, in creation order (read-only view)."""
        return MappingProxyType(self._tasks)

    @property
    def remaining_credits(self) -> float:
        """The balance `GET /v1/credits` would report now."""
        self._settle(self.clock())
        return self._initial_credits - self._used_credits - self._held_credits

    def add_credits(self, amount: float) -> None:
        """Top the balance up by `amount` (negative to take credits away)."""
        self._initial_credits += amount

    def clock(self) -> float:
        """The loop clock every task time and `stats.polls` entry is on."""
        loop = self._loop or asyncio.get_running_loop()
        return loop.time()

    def video_bytes(self, task_id: str) -> bytes:
        """The bytes the result video of `task_id` is served with."""
        return video_bytes(task_id, self.video_size)

    def inject(
        self,
        fault: Fault,
        *,
        route: str | None = None,
        times: int = 1,
        status: int | None = None,
        body: bytes | str | Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        delay: float | None = None,
        retry_after: float | str | None = None,
    ) -> None:
        """
        Queue `fault` for the next `times` requests to `route`.

        Queued faults go before any `FaultPlan` draw, oldest first, one per
        request.

        Args:
            fault: the kind of fault.
            route: a route key such as `"POST /v1/videos/generations"`,
                `"GET /v1/tasks/{id}"` or `"GET /files/videos/{name}"`; None
                means any `/v1/` route.
            times: how many requests it hits.
            status: the HTTP status: for `SERVER_ERROR` (default 500) and
                `REPLY` (default 200).
            body: the reply body: replaces the error body of `RATE_LIMIT` and
                `SERVER_ERROR`; for `REPLY`, bytes and str are sent as is, a
                mapping as JSON.
            headers: headers added to the reply; for `REPLY`, the only
                headers besides `X-Request-Id` (itself left out when given)
                and what HTTP needs. A JSON or text body without a
                `Content-Type` gets `application/json` or `text/plain`.
            delay: real seconds to wait before acting (for `SLOW`: before
                sending the reply; default the plan's `slow_delay` or 1 s).
            retry_after: the `Retry-After` header: a number of seconds
                (default 60 x time_scale for `RATE_LIMIT`) or any text sent
                verbatim (`"-1"`, an HTTP date). Also sent with
                `SERVER_ERROR` when given.
        """
        if times < 1:
            raise ValueError(f"times must be >= 1, got {times!r}")
        if fault is Fault.SLOW and delay is None:
            delay = self.faults.slow_delay if self.faults is not None else 1.0
        self._injections.append(
            Injection(
                fault=Fault(fault),
                route=route,
                remaining=times,
                status=status,
                body=body,
                headers=headers,
                delay=delay,
                retry_after=retry_after,
            )
        )

    def clear_injections(self) -> None:
        """Forget every queued fault not used yet."""
        self._injections.clear()

    # -------------------------------------------------------------- routes

    def _add_routes(self, app: web.Application) -> None:
        router = app.router
        add = self._endpoint
        router.add_post("/v1/videos/generations", add(CREATE_ROUTE, self._create, auth=True))
        router.add_post("/v1/tasks/batch", add("POST /v1/tasks/batch", self._batch, auth=True))
        router.add_get("/v1/tasks/{task_id}", add("GET /v1/tasks/{id}", self._get_task, auth=True))
        router.add_get("/v1/tasks", add("GET /v1/tasks", self._list_tasks, auth=True))
        router.add_get("/v1/credits", add("GET /v1/credits", self._credits, auth=True))
        router.add_post(
            "/api/v1/files/upload/stream",
            add("POST /api/v1/files/upload/stream", self._upload_stream, auth=True),
        )
        router.add_post(
            "/api/v1/files/upload/base64",
            add("POST /api/v1/files/upload/base64", self._upload_base64, auth=True),
        )
        router.add_post(
            "/api/v1/files/upload/url",
            add("POST /api/v1/files/upload/url", self._upload_url, auth=True),
        )
        router.add_get(
            "/files/videos/{name}", add("GET /files/videos/{name}", self._video, auth=False)
        )
        router.add_get(
            "/files/uploads/{file_id}/{name}",
            add("GET /files/uploads/{file_id}/{name}", self._uploaded_file, auth=False),
        )
        router.add_route("*", "/{tail:.*}", self._unknown_route)

    def _endpoint(
        self, route: str, handler: Callable[[_Call], Awaitable[web.StreamResponse]], *, auth: bool
    ) -> _Endpoint:
        is_api = is_api_route(route)

        async def endpoint(request: web.Request) -> web.StreamResponse:
            stats = self.stats
            stats.requests[route] += 1
            stats.in_flight += 1
            if stats.in_flight > stats.max_in_flight:
                stats.max_in_flight = stats.in_flight
            try:
                return await self._serve(request, route, handler, auth=auth, is_api=is_api)
            finally:
                stats.in_flight -= 1

        return endpoint

    async def _serve(
        self,
        request: web.Request,
        route: str,
        handler: Callable[[_Call], Awaitable[web.StreamResponse]],
        *,
        auth: bool,
        is_api: bool,
    ) -> web.StreamResponse:
        request_id = f"mock-{next(self._request_ids):08d}"
        injection = None
        if self._injections or self.faults is not None:
            injection = pick_fault(
                self._injections, self.faults, self._fault_rng, route, is_api=is_api
            )
        fault = injection.fault if injection is not None else None
        if injection is not None and fault is not None:
            self.stats.faults_injected[fault.value] += 1
            if injection.delay and fault is not Fault.SLOW:
                await asyncio.sleep(injection.delay)
            if fault is Fault.DROP_BEFORE:
                self._record(request, route, request_id, None)
                _drop(request)

        try:
            data, bad_json = await self._read_body(request)
        except _ReplyError as problem:
            self._record(request, route, request_id, None)
            return self._problem_response(problem, request_id)
        self._record(request, route, request_id, data)

        if injection is not None and fault in (Fault.RATE_LIMIT, Fault.SERVER_ERROR, Fault.REPLY):
            return self._fault_reply(injection, request_id)

        call = _Call(request, route, request_id, self.clock(), data, bad_json, fault)
        try:
            if auth and not self._authorized(request):
                raise _ReplyError(401, "unauthorized", "Invalid or missing API key")
            response = await handler(call)
        except _ReplyError as problem:
            response = self._problem_response(problem, request_id)
        if not response.prepared:
            response.headers["X-Request-Id"] = request_id

        if injection is not None:
            if fault is Fault.SLOW:
                await asyncio.sleep(injection.delay or 0.0)
            elif fault is Fault.DROP_AFTER:
                _drop(request)
        return response

    async def _unknown_route(self, request: web.Request) -> web.StreamResponse:
        self.stats.requests[f"{request.method} <unknown>"] += 1
        return self._not_found_route(request, f"mock-{next(self._request_ids):08d}")

    @staticmethod
    def _not_found_route(request: web.Request, request_id: str) -> web.Response:
        body = _error_body(404, "not_found", f"Unknown route: {request.method} {request.path}")
        return _json_response(body, status=404, headers={"X-Request-Id": request_id})

    async def _read_body(self, request: web.Request) -> tuple[Any, bool]:
        if not request.body_exists:
            return None, False
        length = request.content_length
        if length is not None and length > MAX_BODY:
            raise _ReplyError(413, "request_too_large", "Request body is over 64 MB")
        if request.content_type.startswith("multipart/"):
            return None, False  # the handler streams it
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise _ReplyError(413, "request_too_large", "Request body is over 64 MB") from None
        if not raw:
            return None, False
        try:
            return json.loads(raw), False
        except ValueError:
            return None, True

    def _record(self, request: web.Request, route: str, request_id: str, data: Any) -> None:
        if self.requests_log.maxlen:
            self.requests_log.append(
                RecordedRequest(
                    method=request.method,
                    path=request.path,
                    route=route,
                    query=dict(request.query),
                    headers=dict(request.headers),
                    json=data,
                    time=self.clock(),
                    request_id=request_id,
                )
            )

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token.strip() == self.api_key

    @staticmethod
    def _problem_response(problem: _ReplyError, request_id: str) -> web.Response:
        headers = {"X-Request-Id": request_id}
        if problem.headers:
            headers.update(problem.headers)
        body = _error_body(problem.status, problem.code, problem.message, problem.param)
        return _json_response(body, status=problem.status, headers=headers)

    def _fault_reply(self, injection: Injection, request_id: str) -> web.Response:
        headers: dict[str, str] = {}
        fault = injection.fault
        if fault is Fault.REPLY:
            given = dict(injection.headers or {})
            lowered = {name.lower() for name in given}
            if not lowered & {"x-request-id", "x-oneapi-request-id"}:
                given["X-Request-Id"] = request_id
            payload = injection.body
            if isinstance(payload, Mapping):
                raw = _dumps(dict(payload))
                if "content-type" not in lowered:
                    given["Content-Type"] = "application/json"
            elif isinstance(payload, str):
                raw = payload.encode()
                if "content-type" not in lowered:
                    given["Content-Type"] = "text/plain; charset=utf-8"
            else:
                raw = payload or b""
            return web.Response(body=raw, status=injection.status or 200, headers=given)

        headers["X-Request-Id"] = request_id
        retry_after = injection.retry_after
        if fault is Fault.RATE_LIMIT:
            status = 429
            if retry_after is None:
                retry_after = RATE_LIMIT_RETRY_AFTER * self.time_scale
            wait = retry_after if isinstance(retry_after, str) else _seconds_text(retry_after)
            body: Any = _error_body(
                429, "rate_limit_exceeded", f"Rate limit exceeded, retry after {wait} seconds"
            )
        else:
            status = injection.status or 500
            if status == 503:
                wait = _seconds_text(UNAVAILABLE_RETRY_AFTER * self.time_scale)
                body = _error_body(
                    503,
                    "service_unavailable",
                    f"Service temporarily unavailable, retry after {wait} seconds",
                )
            elif status == 502:
                body = _error_body(502, "upstream_error", "Upstream provider error")
            else:
                body = _error_body(status, "internal_error", "Internal server error")
        if retry_after is not None:
            headers["Retry-After"] = (
                retry_after if isinstance(retry_after, str) else _seconds_text(retry_after)
            )
        if injection.headers:
            headers.update(injection.headers)
        if injection.body is not None:
            payload = injection.body
            if isinstance(payload, Mapping):
                return _json_response(dict(payload), status=status, headers=headers)
            raw = payload.encode() if isinstance(payload, str) else payload
            return web.Response(body=raw, status=status, headers=headers)
        return _json_response(body, status=status, headers=headers)

    # --------------------------------------------------------------- tasks

    async def _create(self, call: _Call) -> web.StreamResponse:
        try:
            return self._create_task(call)
        except _ReplyError:
            self.stats.rejected_creates += 1
            raise

    def _create_task(self, call: _Call) -> web.StreamResponse:
        body = call.json
        if call.bad_json or not isinstance(body, dict):
            raise _ReplyError(400, "invalid_request", "Request body must be a JSON object")
        key = call.request.headers.get("Idempotency-Key")
        canonical = ""
        if key is not None:
            if not _IDEMPOTENCY_KEY.fullmatch(key):
                raise _ReplyError(
                    400,
                    "invalid_request",
                    "Idempotency-Key must be 16-96 characters of [A-Za-z0-9._-]",
                    param="Idempotency-Key",
                )
            canonical = _CANONICAL.encode(body)
            replay = self._idempotency.get(key)
            if replay is not None:
                if replay.canonical_body != canonical:
                    self.stats.idempotency_conflicts += 1
                    raise _ReplyError(
                        409,
                        "idempotency_conflict",
                        "This Idempotency-Key was used with a different request body",
                        param="Idempotency-Key",
                    )
                self.stats.replays += 1
                return web.Response(
                    body=replay.reply,
                    content_type="application/json",
                    headers={"idempotency-replayed": "true"},
                )

        if self.validate:
            violation = check_create(body)
            if violation is not None:
                raise _ReplyError(400, violation.code, violation.message, param=violation.param)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _ReplyError(400, "invalid_request", "model is required", param="model")

        now = call.now
        profile = MODEL_PROFILES.get(model, DEFAULT_PROFILE)
        duration: Any = body.get("duration")
        if _is_number(duration):
            video_duration: float | None = float(duration)
        elif model in MODEL_PROFILES:
            video_duration = DEFAULT_VIDEO_SECONDS
        else:
            video_duration = None
        billed_seconds = video_duration or DEFAULT_VIDEO_SECONDS
        cost = profile.rate * (billed_seconds if profile.billing_rule == "per_second" else 1.0)
        self._settle(now)
        remaining = self._initial_credits - self._used_credits - self._held_credits
        if cost > remaining:
            raise _ReplyError(
                402,
                "insufficient_quota",
                f"Insufficient credits: this request needs {_num(cost)}, "
                f"{_num(max(remaining, 0.0))} remaining",
            )

        task = self._plan_task(body, model, key, now, video_duration, profile.billing_rule, cost)
        self._tasks[task.id] = task
        self._held_credits += cost
        heapq.heappush(self._ledger, (task.finishes_at, next(self._task_seq), task))
        if task.callback_url is not None:
            self._schedule_callback(task)
        self.stats.tasks_created += 1
        reply = _dumps(self._task_json(task, now))
        if key is not None:
            self._idempotency[key] = _Replay(canonical, reply)
            self.stats.creates_per_key[key] = self.stats.creates_per_key.get(key, 0) + 1
        return web.Response(body=reply, content_type="application/json")

    def _plan_task(
        self,
        body: dict[str, Any],
        model: str,
        key: str | None,
        now: float,
        video_duration: float | None,
        billing_rule: str,
        cost: float,
    ) -> MockTask:
        rng = self._task_rng
        base = self._estimated_times.get(
            model, self._estimated_times.get("*", DEFAULT_PROFILE.estimated_time)
        )
        factor = 1.0
        if video_duration is not None:
            factor = min(max(0.5 + 0.5 * video_duration / DEFAULT_VIDEO_SECONDS, 0.5), 4.0)
        mean = base * factor * self.time_scale
        sigma = self.duration_sigma
        run_time = mean * math.exp(rng.gauss(0.0, sigma) - sigma * sigma / 2) if sigma else mean
        started_at = now + run_time * rng.uniform(*QUEUE_SHARE)
        end_share = rng.uniform(*EARLY_END_SHARE)
        failure_roll = rng.random()
        random_code = rng.choice(_FAILURE_CODES)

        final_status = COMPLETED
        error_code: str | None = None
        prompt = body.get("prompt")
        forced = _MOCK_FAIL.search(prompt) if isinstance(prompt, str) else None
        if forced is not None:
            final_status, error_code = FAILED, forced.group(1)
        elif isinstance(prompt, str) and "mock:cancel" in prompt:
            final_status = CANCELLED
        elif failure_roll < self.failure_rate:
            final_status, error_code = FAILED, random_code
        finishes_at = now + run_time
        if final_status != COMPLETED:
            finishes_at = started_at + (finishes_at - started_at) * end_share
        marks, values = plan_progress(rng, completes=final_status == COMPLETED)

        callback_url = body.get("callback_url")
        epoch = int(time.time())
        while True:
            suffix = "".join(self._id_rng.choices(_ID_ALPHABET, k=8))
            task_id = f"task-unified-{epoch}-{suffix}"
            if task_id not in self._tasks:
                break
        return MockTask(
            id=task_id,
            model=model,
            body=body,
            idempotency_key=key,
            created_at=now,
            created_epoch=epoch,
            started_at=started_at,
            finishes_at=finishes_at,
            final_status=final_status,
            duration=run_time,
            estimated_time=mean * self.eta_bias,
            video_duration=video_duration,
            billing_rule=billing_rule,
            credits_reserved=cost,
            error_code=error_code,
            error_message=(
                FAILURE_MESSAGES.get(error_code, f"Generation failed: {error_code}")
                if error_code
                else None
            ),
            callback_url=callback_url if isinstance(callback_url, str) else None,
            progress_marks=marks,
            progress_values=values,
            url_expires_at=(
                finishes_at + self.result_ttl * self.time_scale
                if final_status == COMPLETED
                else math.inf
            ),
        )

    def _task_json(self, task: MockTask, now: float) -> dict[str, Any]:
        status = task.status_at(now)
        terminal = status in TERMINAL
        info: dict[str, Any] = {"can_cancel": not terminal}
        if self.report_estimated_time:
            info["estimated_time"] = _num(round(task.estimated_time, 3))
        if task.video_duration is not None:
            info["video_duration"] = _num(task.video_duration)
        usage: dict[str, Any] = {
            "billing_rule": task.billing_rule,
            "credits_reserved": _num(task.credits_reserved),
            "user_group": "default",
        }
        if terminal:
            usage["credits_used"] = _num(task.credits_reserved if status == COMPLETED else 0.0)
        data: dict[str, Any] = {
            "id": task.id,
            "object": "video.generation.task",
            "created": task.created_epoch,
            "model": task.model,
            "status": status,
            "progress": task.progress_at(now),
            "type": "video",
            "task_info": info,
            "usage": usage,
        }
        if status == COMPLETED:
            data["results"] = [self._result_url(task, now)]
        elif status == FAILED:
            data["error"] = {"code": task.error_code, "message": task.error_message}
        return data

    def _result_url(self, task: MockTask, now: float) -> str:
        if now >= task.url_expires_at:
            task.url_generation += 1
            task.url_expires_at = now + self.result_ttl * self.time_scale
        sig = self._sig(task.id, task.url_generation)
        return f"{self.url}/files/videos/{task.id}.mp4?sig={sig}"

    def _sig(self, task_id: str, generation: int) -> str:
        digest = hashlib.blake2b(
            f"{task_id}:{generation}".encode(), key=self._url_key, digest_size=8
        )
        return digest.hexdigest()

    def _settle(self, now: float) -> None:
        """Move credits of tasks that ended by `now` from held to used (or back)."""
        ledger = self._ledger
        while ledger and ledger[0][0] <= now:
            _, _, task = heapq.heappop(ledger)
            self._held_credits -= task.credits_reserved
            if task.final_status == COMPLETED:
                self._used_credits += task.credits_reserved

    def _read_task(self, task: MockTask, now: float) -> dict[str, Any]:
        polls = self.stats.polls.get(task.id)
        if polls is None:
            self.stats.polls[task.id] = [now]
        else:
            polls.append(now)
        return self._task_json(task, now)

    async def _get_task(self, call: _Call) -> web.StreamResponse:
        task_id = call.request.match_info["task_id"]
        if not TASK_ID_PATTERN.fullmatch(task_id):
            raise _ReplyError(
                400, "invalid_task_id", f"Invalid task id: {task_id}", param="task_id"
            )
        task = self._tasks.get(task_id)
        if task is None:
            raise _ReplyError(404, "not_found", f"Task {task_id} not found or expired")
        return _json_response(self._read_task(task, call.now))

    async def _batch(self, call: _Call) -> web.StreamResponse:
        if not self.batch_endpoint:
            return self._not_found_route(call.request, call.request_id)
        body = call.json
        ids = body.get("task_ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise _ReplyError(
                400, "invalid_request", "task_ids must be a list of task ids", param="task_ids"
            )
        if len(ids) > MAX_BATCH:
            raise _ReplyError(
                400,
                "invalid_request",
                f"task_ids may hold at most {MAX_BATCH} ids, got {len(ids)}",
                param="task_ids",
            )
        found: list[dict[str, Any]] = []
        not_found: list[str] = []
        for task_id in dict.fromkeys(ids):
            task = self._tasks.get(task_id)
            if task is None:
                not_found.append(task_id)
            else:
                found.append(self._read_task(task, call.now))
        return _json_response({"data": found, "not_found": not_found})

    async def _list_tasks(self, call: _Call) -> web.StreamResponse:
        query = call.request.query
        page = self._query_int(query, "page", 1, 1, None)
        page_size = self._query_int(query, "page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
        status = query.get("status")
        model = query.get("model")
        now = call.now
        matching = [
            task
            for task in reversed(self._tasks.values())
            if (model is None or task.model == model)
            and (status is None or task.status_at(now) == status)
        ]
        start = (page - 1) * page_size
        data = [self._task_json(task, now) for task in matching[start : start + page_size]]
        return _json_response(
            {"data": data, "total": len(matching), "page": page, "page_size": page_size}
        )

    @staticmethod
    def _query_int(
        query: Mapping[str, str], name: str, default: int, low: int, high: int | None
    ) -> int:
        text = query.get(name)
        if text is None:
            return default
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low or (high is not None and value > high):
            limit = f" and {high}" if high is not None else ""
            raise _ReplyError(
                400,
                "invalid_request",
                f"{name} must be an integer >= {low}{limit}",
                param=name,
            )
        return value

    async def _credits(self, call: _Call) -> web.StreamResponse:
        self._settle(call.now)
        remaining = _num(self._initial_credits - self._used_credits - self._held_credits)
        used = _num(self._used_credits)
        return _json_response(
            {
                "success": True,
                "data": {
                    "user": {"remaining_credits": remaining, "used_credits": used},
                    "token": {
                        "remaining_credits": remaining,
                        "unlimited_credits": False,
                        "used_credits": used,
                    },
                },
            }
        )

    # ------------------------------------------------------------- videos

    async def _video(self, call: _Call) -> web.StreamResponse:
        request = call.request
        name = request.match_info["name"]
        task = self._tasks.get(name.removesuffix(".mp4")) if name.endswith(".mp4") else None
        if task is None or task.status_at(call.now) != COMPLETED:
            raise _ReplyError(404, "not_found", f"No such file: {name}")
        sig = request.query.get("sig", "")
        if sig == self._sig(task.id, task.url_generation):
            if call.now >= task.url_expires_at:
                self.stats.expired_downloads += 1
                raise _ReplyError(410, "url_expired", "This result link has expired")
        elif any(sig == self._sig(task.id, g) for g in range(task.url_generation)):
            self.stats.expired_downloads += 1
            raise _ReplyError(410, "url_expired", "This result link has expired")
        else:
            raise _ReplyError(403, "invalid_signature", "Invalid or missing signature")

        data = self.video_bytes(task.id)
        size = len(data)
        headers = {
            "Accept-Ranges": "bytes",
            "Content-Type": "video/mp4",
            "X-Request-Id": call.request_id,
        }
        status = 200
        start, end = 0, size - 1
        range_header = request.headers.get("Range")
        match = _RANGE.fullmatch(range_header.strip()) if range_header else None
        if match is not None and (match.group(1) or match.group(2)):
            first, last = match.group(1), match.group(2)
            if first:
                start = int(first)
                end = min(int(last), size - 1) if last else size - 1
            else:
                start = max(size - int(last), 0)
            if start >= size or start > end:
                raise _ReplyError(
                    416,
                    "range_not_satisfiable",
                    f"Range not satisfiable: {range_header}",
                    headers={"Content-Range": f"bytes */{size}"},
                )
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        part = data[start : end + 1]
        self.stats.downloads[task.id] += 1
        if call.fault is Fault.DROP_AFTER:
            # Half the body, then the connection goes: a download cut short.
            response = web.StreamResponse(status=status, headers=headers)
            response.content_length = len(part)
            await response.prepare(request)
            await response.write(part[: len(part) // 2])
            _drop(request)
        return web.Response(body=part, status=status, headers=headers)

    # -------------------------------------------------------------- files

    async def _upload_stream(self, call: _Call) -> web.StreamResponse:
        try:
            form = await call.request.post()
        except web.HTTPRequestEntityTooLarge:
            raise _ReplyError(413, "request_too_large", "Request body is over 64 MB") from None
        except ValueError:
            return self._upload_failure("Could not read the multipart form")
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            return self._upload_failure("The multipart field 'file' is required")
        data = upload.file.read()
        file_name = form.get("file_name")
        upload_path = form.get("upload_path")
        return self._store_upload(
            data,
            original_name=upload.filename or "upload",
            file_name=file_name if isinstance(file_name, str) and file_name else None,
            upload_path=upload_path if isinstance(upload_path, str) and upload_path else None,
        )

    async def _upload_base64(self, call: _Call) -> web.StreamResponse:
        body = call.json
        text = body.get("base64_data") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text:
            return self._upload_failure("base64_data is required")
        if text.startswith("data:") and "," in text:
            text = text.split(",", 1)[1]
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            return self._upload_failure("base64_data is not valid base64")
        name = body.get("file_name") if isinstance(body, dict) else None
        upload_path = body.get("upload_path") if isinstance(body, dict) else None
        return self._store_upload(
            data,
            original_name=name if isinstance(name, str) and name else "upload",
            file_name=name if isinstance(name, str) and name else None,
            upload_path=upload_path if isinstance(upload_path, str) else None,
        )

    async def _upload_url(self, call: _Call) -> web.StreamResponse:
        body = call.json
        url = body.get("file_url") if isinstance(body, dict) else None
        if not isinstance(url, str):
            return self._upload_failure("file_url is required")
        try:
            parts = urlsplit(url)
        except ValueError:
            return self._upload_failure("file_url is not a valid URL")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return self._upload_failure("file_url must be an http(s) URL")
        original = parts.path.rsplit("/", 1)[-1] or "upload"
        data = await self._fetch_for_upload(url, parts.hostname, original)
        if data is None:
            return self._upload_failure(f"Could not fetch {url}")
        name = body.get("file_name") if isinstance(body, dict) else None
        return self._store_upload(
            data,
            original_name=original,
            file_name=name if isinstance(name, str) and name else None,
            upload_path=None,
        )

    async def _fetch_for_upload(self, url: str, host: str, original: str) -> bytes | None:
        """
        The bytes behind `url`: files of this mock are read directly, other
        loopback URLs fetched; the internet is never touched, so any other
        URL stands for a small placeholder image chosen by its extension.
        """
        prefix = f"{self._url}/files/uploads/"
        if self._url is not None and url.startswith(prefix):
            stored = self._uploads.get(url[len(prefix) :].split("/", 1)[0])
            return stored.data if stored is not None else None
        if _is_loopback_host(host):
            timeout = aiohttp.ClientTimeout(total=CALLBACK_TIMEOUT * self.time_scale)
            try:
                async with self._client().get(url, timeout=timeout) as response:
                    if response.status != 200:
                        return None
                    return await response.read()
            except (aiohttp.ClientError, TimeoutError):
                return None
        extension = original.rsplit(".", 1)[-1].lower() if "." in original else ""
        known = _IMAGE_EXTENSIONS.get(extension)
        if known is None:
            return None
        seed = hashlib.sha256(url.encode()).digest()
        return known[1] + seed * 32

    def _store_upload(
        self,
        data: bytes,
        *,
        original_name: str,
        file_name: str | None,
        upload_path: str | None,
    ) -> web.Response:
        kind = sniff_image(data)
        if kind is None:
            return self._upload_failure(
                "Unsupported file type: only JPEG, PNG, GIF and WebP images are accepted"
            )
        mime_type, extension = kind
        file_id = "file_" + "".join(self._id_rng.choices(_ID_ALPHABET, k=16))
        name = (file_name or original_name).replace("/", "_").replace("\\", "_")
        if not name or name in (".", ".."):
            name = f"{file_id}.{extension}"
        self._uploads[file_id] = _StoredFile(name=name, mime_type=mime_type, data=data)
        self.stats.uploads += 1
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=UPLOAD_TTL * self.time_scale)
        file_url = f"{self.url}/files/uploads/{file_id}/{quote(name, safe='')}"
        return _json_response(
            {
                "success": True,
                "code": 200,
                "msg": "File uploaded successfully",
                "data": {
                    "file_id": file_id,
                    "file_name": name,
                    "original_name": original_name,
                    "file_size": len(data),
                    "mime_type": mime_type,
                    "upload_path": upload_path or "uploads",
                    "file_url": file_url,
                    "download_url": f"{file_url}?download=1",
                    "upload_time": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
                    "expires_at": expires.isoformat(timespec="seconds").replace("+00:00", "Z"),
                },
            }
        )

    @staticmethod
    def _upload_failure(message: str) -> web.Response:
        # The files API's documented quirk: failures come back as HTTP 200.
        return _json_response({"success": False, "code": 400, "msg": message})

    async def _uploaded_file(self, call: _Call) -> web.StreamResponse:
        match_info = call.request.match_info
        stored = self._uploads.get(match_info["file_id"])
        if stored is None or stored.name != match_info["name"]:
            raise _ReplyError(404, "not_found", "No such file")
        headers = {"Content-Type": stored.mime_type}
        if "download" in call.request.query:
            headers["Content-Disposition"] = f'attachment; filename="{quote(stored.name)}"'
        return web.Response(body=stored.data, headers=headers)

    # ----------------------------------------------------------- callbacks

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    def _schedule_callback(self, task: MockTask) -> None:
        heapq.heappush(self._callback_heap, (task.finishes_at, next(self._task_seq), task))
        if self._callback_scheduler is None:
            self._callback_scheduler = asyncio.create_task(self._run_callbacks())
        elif task is self._callback_heap[0][2]:
            self._callback_wakeup.set()

    async def _run_callbacks(self) -> None:
        """The one background task: sleeps until the next task ends, sends its callback."""
        heap = self._callback_heap
        wakeup = self._callback_wakeup
        while True:
            if not heap:
                await wakeup.wait()
                wakeup.clear()
                continue
            delay = heap[0][0] - self.clock()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await wakeup.wait()
                wakeup.clear()
                continue
            _, _, task = heapq.heappop(heap)
            delivery = asyncio.create_task(self._deliver(task))
            self._background.add(delivery)
            delivery.add_done_callback(self._background.discard)

    def _callback_destination(self, task: MockTask) -> str | None:
        if self.callback_target is not None:
            return self.callback_target
        url = task.callback_url
        if url is None:
            return None
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError:
            return None
        if parts.scheme in ("http", "https") and _is_loopback_host(host):
            return url
        return None

    async def _deliver(self, task: MockTask) -> None:
        url = self._callback_destination(task)
        if url is None:
            return
        # Never earlier than the end, whatever the timer's rounding did.
        now = max(self.clock(), task.finishes_at)
        body = self._task_json(task, now)
        payload = _dumps(body)
        timeout = aiohttp.ClientTimeout(total=CALLBACK_TIMEOUT * self.time_scale)
        headers = {"Content-Type": "application/json", "User-Agent": "EvoLink-Mock-Callback"}
        http_status: int | None = None
        attempts = 0
        for delay in (0.0, *CALLBACK_RETRY_DELAYS):
            if delay:
                await asyncio.sleep(delay * self.time_scale)
            attempts += 1
            self.stats.callback_attempts += 1
            try:
                async with self._client().post(
                    url, data=payload, headers=headers, timeout=timeout
                ) as response:
                    http_status = response.status
                    await response.read()
            except (aiohttp.ClientError, TimeoutError):
                continue
            if 200 <= http_status < 300:
                self.stats.callbacks_delivered.append(
                    CallbackDelivery(
                        task_id=task.id,
                        url=url,
                        task_status=body["status"],
                        http_status=http_status,
                        attempts=attempts,
                        ok=True,
                        time=self.clock(),
                    )
                )
                return
        self.stats.callbacks_failed.append(
            CallbackDelivery(
                task_id=task.id,
                url=url,
                task_status=body["status"],
                http_status=http_status,
                attempts=attempts,
                ok=False,
                time=self.clock(),
            )
        )


async def serve_forever(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    on_ready: Callable[[MockEvoLink], object] | None = None,
    **kwargs: Any,
) -> None:
    """
    Run a `MockEvoLink` until cancelled (for `evolink-async mock-server`).

    Args:
        host: interface to listen on.
        port: port to listen on (0: any free port; read it from the mock
            given to `on_ready`).
        on_ready: called with the started mock, e.g. to print its URL.
        **kwargs: any other `MockEvoLink` argument.
    """
    async with MockEvoLink(host=host, port=port, **kwargs) as mock:
        if on_ready is not None:
            on_ready(mock)
        await asyncio.Event().wait()
