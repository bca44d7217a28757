"""
`MockEvoLink`: a real aiohttp server on loopback that behaves like the
documented EvoLink API (tasks, files, credits), with injectable faults.

This module holds the mock's knobs, its lifecycle, the routing table and the
one wrapper every route goes through: it counts the request, picks a fault,
reads the body once, checks the key, and sets `X-Request-Id`. The routes
themselves are small classes sharing one `MockState` (`_state.py`):
`TaskRoutes` (`_tasks.py`), `UploadRoutes` and `VideoRoutes` (`_files.py`).
Callbacks and the mock's own client session are in `_outbound.py`; the
shapes of replies, errors and faults in `_replies.py`.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import itertools
import json
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final, Generic, TypeVar, overload

from aiohttp import web

from ._faults import CREATE_ROUTE, Fault, FaultPlan, Injection, is_api_route, pick_fault
from ._files import UploadRoutes, VideoRoutes
from ._limits import KeyBuckets, RateLimit
from ._outbound import Callbacks, Outbound
from ._replies import (
    Call,
    Handler,
    ReplyError,
    drop,
    fault_reply,
    json_response,
    not_found_route,
    problem_response,
    rate_limited_reply,
)
from ._state import (
    MODEL_PROFILES,
    MockState,
    MockStats,
    MockTask,
    RecordedRequest,
    check_mixture,
    check_progress,
    video_bytes,
)
from ._tasks import Ledger, TaskRoutes, task_json

__all__ = ["MockEvoLink", "serve_forever"]

#: The documented limit on a request body (64 MB).
MAX_BODY: Final = 64 * 1024 * 1024

_T = TypeVar("_T")
_Endpoint = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Shared(Generic[_T]):
    """
    A `MockEvoLink` attribute that lives in its `MockState`.

    Reading or setting `mock.<name>` reads or sets the state's field of the
    same name. The route groups hold the state, not the mock, so this is
    what lets a knob changed on a running mock reach them at once. `check`,
    when given, validates (and normalises) a value set later.
    """

    def __init__(self, check: Callable[[Any], _T] | None = None) -> None:
        self._check = check

    def __set_name__(self, owner: type[MockEvoLink], name: str) -> None:
        self._name = name

    @overload
    def __get__(self, instance: None, owner: type[MockEvoLink]) -> _Shared[_T]: ...

    @overload
    def __get__(self, instance: MockEvoLink, owner: type[MockEvoLink]) -> _T: ...

    def __get__(self, instance: MockEvoLink | None, owner: type[MockEvoLink]) -> _T | _Shared[_T]:
        if instance is None:
            return self
        value: _T = getattr(instance._state, self._name)
        return value

    def __set__(self, instance: MockEvoLink, value: _T) -> None:
        setattr(instance._state, self._name, self._check(value) if self._check else value)


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
    - `GET /_mock/stats` (no key, not counted): `stats_json()`, so a test in
      another process can count what the mock saw.

    **Rate limit.** With `rate_limit` (or `creates_per_second` /
    `reads_per_second`), each key's creates and reads draw from token buckets
    (see `RateLimit`); past them the mock answers 429 with the API's
    `rate_limit_error` body and a `Retry-After` of the seconds until a
    token, counted in `stats.rate_limited`.

    **Task life.** A task's mean run time is its model's estimated time
    (`estimated_times`, unscaled seconds for 5 s of video) times
    `0.5 + 0.5 * duration / 5` (longer videos take longer; the factor is
    clamped to [0.5, 4]) times `time_scale`. The true run time is drawn
    lognormal around that mean: `mean * exp(N(0, duration_sigma) -
    duration_sigma**2 / 2)`, whose expectation is the mean; with
    `duration_mixture` the mean is first multiplied by one component's
    factor, drawn by weight. The first 5-15 % of it is spent `pending`, the
    rest `processing` (progress as `progress` says), then the task ends. The
    reported `estimated_time` is `mean * eta_bias` (the mean before any
    mixture factor: the server does not know which component a task drew),
    present in every state unless `report_estimated_time=False`. State is
    computed on each read from the loop clock: no timers.

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
        duration_mixture: None (one lognormal), or (weight, factor) pairs:
            each task's mean is multiplied by the factor of one pair, drawn
            with probability weight / sum of weights, and spread by
            `duration_sigma` around it; e.g. `((0.8, 0.6), (0.2, 2.5))`: 80 %
            of tasks run 0.6x the model's mean, 20 % 2.5x. Weights and
            factors must be > 0. Settable later (new tasks only).
        progress: how `progress` moves while a task is processing:
            `"steps"` (default) uneven coarse steps, 3-8 per task;
            `"linear"` floor(100 x the share of the processing window
            elapsed); `"none"` 0 until the task ends. Every mode reports 0
            while pending and 100 once completed; the mode draws the same
            numbers from `seed` as the others, so run times do not change
            with it. Settable later (new tasks only).
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
        rate_limit: per-key limits on creates and reads (`RateLimit`);
            settable later as `mock.rate_limit`.
        creates_per_second: shorthand for `RateLimit(creates_per_second=...)`
            (with `reads_per_second`, when `rate_limit` is not given).
        reads_per_second: shorthand for `RateLimit(reads_per_second=...)`.
        host: interface to listen on.
        port: port to listen on; 0 picks a free one.
    """

    # The knobs the route groups read live in the shared state (see `_Shared`);
    # the ones only this class reads (`api_key`, `faults`, `host`) stay here.
    time_scale = _Shared[float]()
    duration_sigma = _Shared[float]()
    duration_mixture = _Shared[tuple[tuple[float, float], ...] | None](check_mixture)
    progress = _Shared[str](check_progress)
    eta_bias = _Shared[float]()
    report_estimated_time = _Shared[bool]()
    failure_rate = _Shared[float]()
    batch_endpoint = _Shared[bool]()
    result_ttl = _Shared[float]()
    callback_target = _Shared[str | None]()
    validate = _Shared[bool]()
    video_size = _Shared[int]()
    #: Counters of everything the mock saw.
    stats = _Shared[MockStats]()

    def __init__(
        self,
        *,
        api_key: str = "sk-mock-0000000000000000",
        time_scale: float = 1.0,
        seed: int | None = 0,
        duration_sigma: float = 0.3,
        duration_mixture: Sequence[tuple[float, float]] | None = None,
        progress: str = "steps",
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
        rate_limit: RateLimit | None = None,
        creates_per_second: float | None = None,
        reads_per_second: float | None = None,
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
        if rate_limit is None and (creates_per_second or reads_per_second) is not None:
            rate_limit = RateLimit(
                creates_per_second=creates_per_second, reads_per_second=reads_per_second
            )
        self.api_key = api_key
        self.faults: FaultPlan | None = faults
        self._buckets: KeyBuckets | None = None
        self.host = host
        self._port = port
        times = {model: profile.estimated_time for model, profile in MODEL_PROFILES.items()}
        times.update(estimated_times or {})

        root = random.Random(seed)
        # Separate streams, all from `seed`: a fault plan's draws never shift
        # the run times tasks get, nor ids the ones of uploads.
        task_rng = random.Random(root.getrandbits(64))
        self._fault_rng = random.Random(root.getrandbits(64))
        id_rng = random.Random(root.getrandbits(64))
        url_key = root.getrandbits(128).to_bytes(16, "big")

        state = MockState(
            time_scale=time_scale,
            duration_sigma=duration_sigma,
            duration_mixture=check_mixture(duration_mixture),
            progress=check_progress(progress),
            eta_bias=eta_bias,
            report_estimated_time=report_estimated_time,
            failure_rate=failure_rate,
            batch_endpoint=batch_endpoint,
            result_ttl=result_ttl,
            callback_target=callback_target,
            validate=validate,
            video_size=video_size,
            estimated_times=times,
            task_rng=task_rng,
            id_rng=id_rng,
            url_key=url_key,
        )
        self._state = state
        #: The last `keep_requests` requests, oldest first.
        self.requests_log: collections.deque[RecordedRequest] = collections.deque(
            maxlen=keep_requests
        )
        self._injections: list[Injection] = []
        self._request_ids = itertools.count(1)

        self._ledger = Ledger(credits)
        self._outbound = Outbound(state)
        self._callbacks = Callbacks(state, self._outbound, functools.partial(task_json, state))
        self._task_routes = TaskRoutes(state, self._ledger, self._callbacks.schedule)
        self._upload_routes = UploadRoutes(state, self._outbound)
        self._video_routes = VideoRoutes(state)

        self._runner: web.AppRunner | None = None
        self._closed = False
        self.rate_limit = rate_limit

    # ----------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """
        Start listening; `url` and `port` work from here on.

        Raises:
            RuntimeError: the mock was already started (or closed).
        """
        if self._runner is not None or self._closed:
            raise RuntimeError("MockEvoLink can be started only once")
        self._state.loop = asyncio.get_running_loop()
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
        self._state.url = f"http://{host}:{self._port}"

    async def close(self) -> None:
        """Stop the server, stop sending callbacks and close their session."""
        if self._closed:
            return
        self._closed = True
        if self._runner is not None:
            await self._runner.cleanup()
        await self._callbacks.close()
        await self._outbound.close()

    async def __aenter__(self) -> MockEvoLink:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -------------------------------------------------------------- access

    @property
    def url(self) -> str:
        """The base URL (`http://127.0.0.1:PORT`, no trailing slash)."""
        return self._state.base_url()

    @property
    def port(self) -> int:
        """The port listened on (the one picked when created with port 0)."""
        if self._state.url is None:
            raise RuntimeError("MockEvoLink is not started")
        return self._port

    @property
    def tasks(self) -> Mapping[str, MockTask]:
        """Every task created, by id, in creation order (read-only view)."""
        return MappingProxyType(self._state.tasks)

    @property
    def remaining_credits(self) -> float:
        """The balance `GET /v1/credits` would report now."""
        return self._ledger.remaining(self.clock())

    def add_credits(self, amount: float) -> None:
        """Top the balance up by `amount` (negative to take credits away)."""
        self._ledger.initial += amount

    def clock(self) -> float:
        """The loop clock every task time and `stats.polls` entry is on."""
        return self._state.clock()

    @property
    def rate_limit(self) -> RateLimit | None:
        """The per-key limits on creates and reads (None: none); settable, buckets start full."""
        return self._buckets.limit if self._buckets is not None else None

    @rate_limit.setter
    def rate_limit(self, limit: RateLimit | None) -> None:
        if limit is not None and not isinstance(limit, RateLimit):
            raise TypeError(f"rate_limit must be a RateLimit or None, got {limit!r}")
        self._buckets = KeyBuckets(limit, self._state.clock) if limit is not None else None

    def stats_json(self) -> dict[str, Any]:
        """
        The counters of `stats` as plain JSON (what `GET /_mock/stats` answers).

        Keys: `tasks_created`, `creates_per_key`, `replays`, `requests` (by
        route key), `rate_limited` (429s by route key), `faults_injected`,
        `rejected_creates`, `idempotency_conflicts`, `in_flight`,
        `max_in_flight`, `uploads`, `polls` (reads per task id), `downloads`.
        """
        stats = self._state.stats
        return {
            "tasks_created": stats.tasks_created,
            "creates_per_key": dict(stats.creates_per_key),
            "replays": stats.replays,
            "requests": dict(stats.requests),
            "rate_limited": dict(stats.rate_limited),
            "faults_injected": dict(stats.faults_injected),
            "rejected_creates": stats.rejected_creates,
            "idempotency_conflicts": stats.idempotency_conflicts,
            "in_flight": stats.in_flight,
            "max_in_flight": stats.max_in_flight,
            "uploads": stats.uploads,
            "polls": {task_id: len(times) for task_id, times in stats.polls.items()},
            "downloads": dict(stats.downloads),
        }

    def video_bytes(self, task_id: str) -> bytes:
        """The bytes the result video of `task_id` is served with."""
        return video_bytes(task_id, self._state.video_size)

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
        tasks = self._task_routes
        uploads = self._upload_routes
        router.add_post("/v1/videos/generations", add(CREATE_ROUTE, tasks.create, auth=True))
        router.add_post("/v1/tasks/batch", add("POST /v1/tasks/batch", tasks.batch, auth=True))
        router.add_get("/v1/tasks/{task_id}", add("GET /v1/tasks/{id}", tasks.get_task, auth=True))
        router.add_get("/v1/tasks", add("GET /v1/tasks", tasks.list_tasks, auth=True))
        router.add_get("/v1/credits", add("GET /v1/credits", tasks.credits, auth=True))
        router.add_post(
            "/api/v1/files/upload/stream",
            add("POST /api/v1/files/upload/stream", uploads.upload_stream, auth=True),
        )
        router.add_post(
            "/api/v1/files/upload/base64",
            add("POST /api/v1/files/upload/base64", uploads.upload_base64, auth=True),
        )
        router.add_post(
            "/api/v1/files/upload/url",
            add("POST /api/v1/files/upload/url", uploads.upload_url, auth=True),
        )
        router.add_get(
            "/files/videos/{name}",
            add("GET /files/videos/{name}", self._video_routes.video, auth=False),
        )
        router.add_get(
            "/files/uploads/{file_id}/{name}",
            add("GET /files/uploads/{file_id}/{name}", uploads.uploaded_file, auth=False),
        )
        router.add_get("/_mock/stats", self._stats_route)
        router.add_route("*", "/{tail:.*}", self._unknown_route)

    def _endpoint(self, route: str, handler: Handler, *, auth: bool) -> _Endpoint:
        """The aiohttp handler of `route`: counts it in and out, then `_serve`s it."""
        is_api = is_api_route(route)

        async def endpoint(request: web.Request) -> web.StreamResponse:
            stats = self._state.stats
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
        handler: Handler,
        *,
        auth: bool,
        is_api: bool,
    ) -> web.StreamResponse:
        """One request: fault, body, log, key check, handler, then any fault that acts late."""
        request_id = f"mock-{next(self._request_ids):08d}"
        injection = None
        if self._injections or self.faults is not None:
            injection = pick_fault(
                self._injections, self.faults, self._fault_rng, route, is_api=is_api
            )
        fault = injection.fault if injection is not None else None
        if injection is not None and fault is not None:
            self._state.stats.faults_injected[fault.value] += 1
            if injection.delay and fault is not Fault.SLOW:
                await asyncio.sleep(injection.delay)
            if fault is Fault.DROP_BEFORE:
                self._record(request, route, request_id, None)
                drop(request)

        try:
            data, bad_json = await self._read_body(request)
        except ReplyError as problem:
            self._record(request, route, request_id, None)
            return problem_response(problem, request_id)
        self._record(request, route, request_id, data)

        if injection is not None and fault in (Fault.RATE_LIMIT, Fault.SERVER_ERROR, Fault.REPLY):
            return fault_reply(injection, request_id, self._state.time_scale)

        call = Call(request, route, request_id, self.clock(), data, bad_json, fault)
        try:
            if auth and not self._authorized(request):
                raise ReplyError(401, "unauthorized", "Invalid or missing API key")
            wait = self._buckets.take(self.api_key, route) if self._buckets is not None else 0.0
            if wait > 0.0:
                self._state.stats.rate_limited[route] += 1
                return rate_limited_reply(wait, request_id)
            response = await handler(call)
        except ReplyError as problem:
            response = problem_response(problem, request_id)
        if not response.prepared:
            response.headers["X-Request-Id"] = request_id

        if injection is not None:
            if fault is Fault.SLOW:
                await asyncio.sleep(injection.delay or 0.0)
            elif fault is Fault.DROP_AFTER:
                drop(request)
        return response

    async def _stats_route(self, request: web.Request) -> web.StreamResponse:
        """`GET /_mock/stats`: `stats_json()`, left out of the counters it reports."""
        return json_response(self.stats_json())

    async def _unknown_route(self, request: web.Request) -> web.StreamResponse:
        """Any route the mock does not serve: counted as `"<METHOD> <unknown>"`, then 404."""
        self._state.stats.requests[f"{request.method} <unknown>"] += 1
        return not_found_route(request, f"mock-{next(self._request_ids):08d}")

    async def _read_body(self, request: web.Request) -> tuple[Any, bool]:
        """(the parsed JSON body or None, whether a body was there but not JSON)."""
        if not request.body_exists:
            return None, False
        length = request.content_length
        if length is not None and length > MAX_BODY:
            raise ReplyError(413, "request_too_large", "Request body is over 64 MB")
        if request.content_type.startswith("multipart/"):
            return None, False  # the handler streams it
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise ReplyError(413, "request_too_large", "Request body is over 64 MB") from None
        if not raw:
            return None, False
        try:
            return json.loads(raw), False
        except ValueError:
            return None, True

    def _record(self, request: web.Request, route: str, request_id: str, data: Any) -> None:
        """Add the request to `requests_log` (when it keeps any)."""
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
        """True when the request carries `Bearer <api_key>`."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token.strip() == self.api_key


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
