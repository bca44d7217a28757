"""
An aiohttp web backend that shares one client across requests and takes callbacks.

Shows the shape of a real service: ONE `EvoLinkClient` made when the app
starts (a `cleanup_ctx`) and closed when it stops, shared by every request;
a middleware that turns each `EvoLinkError` into a sensible HTTP status; and
EvoLink's callback route mounted with `evolink_async.webhooks.callback_handler`,
so a request waiting on a task wakes as soon as EvoLink calls back instead of
at its next planned poll. A client that disconnects cancels only its own wait:
the runner is made with `handler_cancellation=True` (aiohttp's default lets a
handler run on after its client has gone), so the handler is cancelled, its
`client.wait` ends, and the shared watcher stops polling that task unless
another request is waiting on it.

Routes:

- `POST /generate` (JSON `{"model": ..., <the model's fields>}`): starts a
  generation, waits for it, answers 200 `{"task_id", "video_url", ...}`.
  Still running after `max_wait`: 202 with the task id, to poll below.
- `POST /submit` (same body): answers 202 `{"task_id", ...}` at once.
- `GET /tasks/{id}?wait=SECONDS`: waits up to `wait` (0-60) seconds for the
  task to finish, then answers its status.
- `POST /evolink/callback?token=...`: EvoLink's callbacks.

Errors: bad parameters 422 (with every problem), unknown task 404, a failed
generation 502 (with its code), rate limited 429 (with Retry-After), out of
credits 503, EvoLink unreachable 502/504.

    EVOLINK_API_KEY=... python examples/04_web_backend.py --port 8080 \\
        --public-url https://app.example.com     # where EvoLink can reach this app
    curl -X POST localhost:8080/generate -d '{"model": "wan2.5-image-to-video",
        "prompt": "A cat playing piano", "image_urls": ["https://example.com/cat.png"]}'

    python examples/04_web_backend.py --mock           # serve, call itself, stop
    python examples/04_web_backend.py --mock --serve   # keep serving on the fake server

With `--mock` the embedded fake server delivers its callbacks to this app's own
callback route, so callbacks flow for real.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import logging
import math
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import aiohttp
import attrs
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from evolink_async import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    EvoLinkClient,
    EvoLinkError,
    InsufficientCreditsError,
    ModelId,
    NotFoundError,
    PermissionDeniedError,
    PollPolicy,
    RateLimitError,
    RequestTooLargeError,
    Task,
    TaskCancelledError,
    TaskFailedError,
    TaskStatus,
    ValidationError,
    WaitTimeoutError,
)
from evolink_async.testing import MockEvoLink
from evolink_async.webhooks import callback_handler

logger = logging.getLogger("web_backend")

CALLBACK_PATH = "/evolink/callback"
#: Longest `?wait=` a status request may ask for: proxies cut idle HTTP
#: requests after a minute or so.
MAX_STATUS_WAIT = 60.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@attrs.frozen(kw_only=True)
class Settings:
    """
    What the app needs besides a client.

    Attributes:
        client_factory: makes the one client, inside the running loop.
        public_url: where EvoLink can reach this app (`https://...`, public);
            None: no `callback_url` is sent and waits rely on polling alone.
        callback_token: the secret in the callback URL; callbacks without it
            get 403.
        max_wait: how long `POST /generate` waits before answering 202.
    """

    client_factory: Callable[[], EvoLinkClient]
    public_url: str | None = None
    callback_token: str = attrs.field(factory=lambda: secrets.token_urlsafe(24))
    max_wait: float = 600.0

    @property
    def callback_url(self) -> str | None:
        """The `callback_url` sent with every generation, token included."""
        if self.public_url is None:
            return None
        return f"{self.public_url.rstrip('/')}{CALLBACK_PATH}?token={self.callback_token}"


SETTINGS = web.AppKey("settings", Settings)
EVOLINK = web.AppKey("evolink", EvoLinkClient)
CALLBACK = web.AppKey[Handler]("evolink_callback")


def make_app(
    client_factory: Callable[[], EvoLinkClient],
    *,
    public_url: str | None = None,
    callback_token: str | None = None,
    max_wait: float = 600.0,
) -> web.Application:
    """
    The web app; `client_factory()` is called once, when the app starts.

    Args:
        client_factory: makes the shared client (e.g. `EvoLinkClient`).
        public_url: this app's public base URL, for callbacks (see `Settings`).
        callback_token: the callback secret; default: a random one per process
            (callbacks of tasks made before a restart are then refused, which
            costs nothing: they are only hints, polling still finds the result).
        max_wait: seconds `POST /generate` waits before answering 202.
    """
    settings = Settings(client_factory=client_factory, public_url=public_url, max_wait=max_wait)
    if callback_token is not None:
        settings = attrs.evolve(settings, callback_token=callback_token)
    app = web.Application(middlewares=[evolink_errors])
    app[SETTINGS] = settings
    app.cleanup_ctx.append(evolink_client)
    app.router.add_post("/generate", generate)
    app.router.add_post("/submit", submit)
    app.router.add_get("/tasks/{task_id}", task_status)
    app.router.add_post(CALLBACK_PATH, evolink_callback)
    return app


async def evolink_client(app: web.Application) -> AsyncIterator[None]:
    """Make the one shared client when the app starts; close it when it stops."""
    settings = app[SETTINGS]
    async with settings.client_factory() as client:
        app[EVOLINK] = client
        app[CALLBACK] = callback_handler(client, token=settings.callback_token)
        yield


async def evolink_callback(request: web.Request) -> web.StreamResponse:
    # The handler needs the client, which exists only once the app has started;
    # the route is registered before that, so it forwards.
    return await request.app[CALLBACK](request)


# -- the routes -----------------------------------------------------------------


async def generate(request: web.Request) -> web.Response:
    """Start a generation and wait for it (202 with the task id if it takes too long)."""
    client = request.app[EVOLINK]
    settings = request.app[SETTINGS]
    model, fields = await read_job(request)
    task = await client.submit(model, **fields)
    try:
        done = await client.wait(task, timeout=settings.max_wait)
    except WaitTimeoutError as exc:
        return accepted(exc.task or task)
    return web.json_response(task_json(done))


async def submit(request: web.Request) -> web.Response:
    """Start a generation; answer 202 with its id at once."""
    client = request.app[EVOLINK]
    model, fields = await read_job(request)
    return accepted(await client.submit(model, **fields))


async def task_status(request: web.Request) -> web.Response:
    """A task's status, after waiting up to `?wait=` seconds for it to finish."""
    client = request.app[EVOLINK]
    task_id = request.match_info["task_id"]
    text = request.query.get("wait", "0")
    try:
        wait = float(text)
    except ValueError:
        wait = math.nan
    if not 0 <= wait <= MAX_STATUS_WAIT:
        raise ValidationError(f"wait={text!r}: must be a number of seconds, 0-{MAX_STATUS_WAIT:g}")
    try:
        if wait == 0:
            task = await client.get_task(task_id)
        else:
            task = await client.wait(task_id, timeout=wait)
    except (TaskFailedError, TaskCancelledError) as exc:
        task = exc.task  # a finished task is a fine answer to "how is it going?"
    except WaitTimeoutError as exc:
        task = exc.task or await client.get_task(task_id)
    except BadRequestError as exc:
        # EvoLink answers 400 `invalid_task_id` to a malformed id; to this
        # app's callers that is simply a task that does not exist.
        error = {"type": "NotFoundError", "message": f"no task {task_id!r}", "code": exc.code}
        return web.json_response({"error": error}, status=404)
    return web.json_response(task_json(task))


async def read_job(request: web.Request) -> tuple[ModelId, dict[str, Any]]:
    """The model id and fields of a JSON body; the app's callback URL added."""
    try:
        body = await request.json()
    except json.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        error = {"type": "BadRequest", "message": "the body must be a JSON object"}
        raise web.HTTPBadRequest(text=json.dumps({"error": error}), content_type="application/json")
    model = body.pop("model", None)
    if not isinstance(model, str):
        raise ValidationError(f"model={model!r}: a model id is required")
    callback_url = request.app[SETTINGS].callback_url
    if callback_url is not None:
        # Ours, never the caller's: callbacks must come back to this app.
        body["callback_url"] = callback_url
    # Any string: `submit` checks it (an unknown id is a ValidationError naming
    # the closest); the cast only tells type checkers it is meant as a model id.
    return cast(ModelId, model), body


def task_json(task: Task) -> dict[str, Any]:
    data: dict[str, Any] = {
        "task_id": task.id,
        "model": task.model,
        "status": task.status.value,
        "progress": task.progress,
    }
    if task.status is TaskStatus.COMPLETED:
        data["video_url"] = task.video_url
    if task.error is not None:
        data["error"] = {
            "code": task.error.code,
            "message": task.error.message,
            "retryable": task.error.retryable,
        }
    return data


def accepted(task: Task) -> web.Response:
    return web.json_response(task_json(task), status=202, headers={"Location": f"/tasks/{task.id}"})


# -- errors -----------------------------------------------------------------------


@web.middleware
async def evolink_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every `EvoLinkError` a route lets through with a fitting status."""
    try:
        return await handler(request)
    except EvoLinkError as exc:
        status, body, headers = error_reply(exc)
        if status >= 500 and not isinstance(exc, TaskFailedError):
            logger.warning("%s %s: %s", request.method, request.path, exc)
        return web.json_response({"error": body}, status=status, headers=headers)


def error_reply(exc: EvoLinkError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """The HTTP status, error body and headers for an SDK error."""
    name = type(exc).__name__
    body: dict[str, Any] = {"type": name, "message": str(exc)}
    if isinstance(exc, ValidationError):
        body["problems"] = [{"field": p.field, "rule": p.rule} for p in exc.problems]
        return 422, body, {}
    if isinstance(exc, TaskFailedError):
        # The generation itself failed: an upstream failure, not the caller's request.
        body.update(task_id=exc.task.id, code=exc.code, retryable=exc.retryable)
        return 502, body, {}
    if isinstance(exc, TaskCancelledError):
        body["task_id"] = exc.task.id
        return 409, body, {}
    if isinstance(exc, WaitTimeoutError):
        return 504, body, {}
    if isinstance(exc, APITimeoutError):
        return 504, body, {}
    if isinstance(exc, APIConnectionError):
        return 502, body, {}
    if not isinstance(exc, APIError):
        return 500, body, {}
    body.update(code=exc.code, request_id=exc.request_id)
    if isinstance(exc, RateLimitError):
        headers = {}
        if exc.retry_after is not None:
            headers["Retry-After"] = str(math.ceil(exc.retry_after))
        return 429, body, headers
    if isinstance(exc, NotFoundError):
        return 404, body, {}
    if isinstance(exc, BadRequestError):
        # EvoLink refused the parameters (or, on /tasks/{id}, a malformed id).
        return 422, body, {}
    if isinstance(exc, RequestTooLargeError):
        return 413, body, {}
    if isinstance(exc, InsufficientCreditsError):
        # This service is out of credits: unavailable, not the caller's fault.
        return 503, body, {}
    if isinstance(exc, AuthenticationError | PermissionDeniedError):
        # The server's own key is wrong: a misconfiguration, said in the log.
        return 500, {"type": name, "message": "the server's EvoLink account is misconfigured"}, {}
    return 502, body, {}  # ServerError and anything else EvoLink answered


# -- running it -------------------------------------------------------------------


class AccessLogger(AbstractAccessLogger):
    """Access log lines without query strings: the callback token is in one."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s -> %s in %.3f s", request.method, request.path, response.status, time
        )


async def start(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, str]:
    """Serve `app` on host:port (0: any free port); the runner and the base URL."""
    # handler_cancellation: a request whose client disconnects is cancelled,
    # so its wait ends and stops costing polls (aiohttp's default runs it on).
    runner = web.AppRunner(app, access_log_class=AccessLogger, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = runner.addresses[0][1]
    return runner, f"http://{host}:{bound}"


@contextlib.asynccontextmanager
async def mock_backend(
    host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[tuple[str, MockEvoLink]]:
    """
    The app on a MockEvoLink that runs 100x faster than real time and calls back.

    The callback URL the app sends is a public-looking one (the SDK refuses
    loopback callback URLs, as the API does); the fake server delivers it to
    the app's real address instead (`callback_target`).
    """
    async with MockEvoLink(time_scale=0.01) as mock:
        poll = PollPolicy(
            min_interval=0.02, max_interval=0.6, default_estimate=1.2, max_polls_per_second=2000
        )
        token = secrets.token_urlsafe(24)
        app = make_app(
            lambda: EvoLinkClient(
                mock.api_key, base_url=mock.url, files_base_url=mock.url, poll=poll
            ),
            public_url="https://app.example.com",
            callback_token=token,
            max_wait=30.0,
        )
        runner, url = await start(app, host, port)
        mock.callback_target = f"{url}{CALLBACK_PATH}?token={token}"
        try:
            yield url, mock
        finally:
            await runner.cleanup()


async def call_yourself(url: str) -> None:
    """Make a few requests to the running app, all at once, and print the answers."""
    job = {
        "model": "wan2.5-image-to-video",
        "prompt": "A cat playing piano",
        "image_urls": ["https://example.com/cat.png"],
    }
    requests: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", "/generate", job),
        ("POST", "/generate", {**job, "duration": 7}),
        ("POST", "/generate", {**job, "prompt": "A cat mock:fail=content_policy_violation"}),
        ("POST", "/generate", {**job, "model": "no-such-model"}),
        ("GET", "/tasks/task-unified-1700000000-zzzzzzzz", None),
    ]
    async with aiohttp.ClientSession(url) as http:

        async def call(method: str, path: str, body: dict[str, Any] | None) -> str:
            async with http.request(method, path, json=body) as response:
                return f"{method} {path} -> {response.status} {summary(await response.json())}"

        async def submit_then_wait() -> str:
            async with http.post("/submit", json=job) as response:
                submitted = await response.json()
                lines = [f"POST /submit -> {response.status} {summary(submitted)}"]
            lines.append(await call("GET", f"/tasks/{submitted['task_id']}?wait=30", None))
            return "\n".join(lines)

        # Concurrent requests, one client in the app: nothing more to it.
        answers = await asyncio.gather(*(call(*r) for r in requests), submit_then_wait())
    for answer in answers:
        print(answer)


def summary(body: dict[str, Any]) -> str:
    """A one-line view of an answer of this app."""
    if "error" in body:
        error = body["error"]
        code = f" [{error['code']}]" if error.get("code") else ""
        problems = error.get("problems") or [{}]
        first = problems[0]
        rule = f": {first.get('field') or 'request'}: {first['rule']}" if "rule" in first else ""
        return f"{error['type']}{code}{rule}"
    return f"{body['status']} {body['task_id']}" + (" video_url=..." if "video_url" in body else "")


async def main(use_mock: bool, serve: bool, host: str, port: int, public_url: str | None) -> None:
    """Serve the app; with --mock, call it a few times first (and stop unless --serve)."""
    if not use_mock:
        app = make_app(
            EvoLinkClient, public_url=public_url, callback_token=os.environ.get("CALLBACK_TOKEN")
        )
        runner, url = await start(app, host, port)
        print(f"serving on {url} (Ctrl-C stops)")
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
        return
    async with mock_backend(host, port) as (url, mock):
        print(f"serving on {url}, EvoLink faked at {mock.url}")
        await call_yourself(url)
        answers = collections.Counter(d.http_status for d in mock.stats.callbacks_delivered)
        print(f"callbacks delivered to the app: {answers.total()}, answered {dict(answers)}")
        if serve:
            print("serving until Ctrl-C")
            await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--mock", action="store_true", help="use the embedded fake server")
    parser.add_argument("--serve", action="store_true", help="with --mock: keep serving")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="default: 8080, or any free port with --mock")
    parser.add_argument("--public-url", help="this app's public https URL, for callbacks")
    args = parser.parse_args()
    port = args.port if args.port is not None else (0 if args.mock else 8080)
    quiet = args.mock and not args.serve  # the demo prints its own lines
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.mock, args.serve, args.host, port, args.public_url))
