"""
The web backend of 04, with FastAPI: one client in a lifespan, a callback route.

Shows the FastAPI way to share ONE `EvoLinkClient` across requests (made in
the app's `lifespan`, closed when it stops), an exception handler that turns
each `EvoLinkError` into a sensible HTTP status, and EvoLink's callback route
as a plain endpoint that feeds the body to `client.handle_callback_body` (waiters
on that task wake at once; the client confirms with a GET, since callbacks
are unsigned).

A client that disconnects cancels only its own wait. uvicorn does not cancel
a handler whose client has gone (it runs to the end and its answer is
dropped), so `POST /generate` races its wait against ASGI's
`http.disconnect` message (`unless_disconnected`): the wait ends, and the
shared watcher stops polling that task unless another request waits on it.

Routes: `POST /generate` (JSON `{"model": ..., <the model's fields>}`: starts
a generation, waits, answers the video URL; bad parameters 422, a failed
generation 502 with its code, ...) and `POST /evolink/callback?token=...`.

FastAPI and uvicorn are not dependencies of evolink-async (they are in its
`dev` extra, so the tests run this file); this example says so and exits
when they are missing:

    pip install fastapi uvicorn
    EVOLINK_API_KEY=... python examples/07_fastapi_backend.py --port 8000 \\
        --public-url https://app.example.com     # where EvoLink can reach this app
    python examples/07_fastapi_backend.py --mock  # serve, call itself, stop
"""

# No `from __future__ import annotations` here: FastAPI reads the endpoints'
# annotations at run time, and those endpoints are defined inside `make_app`
# (FastAPI is imported there), where string annotations could not be resolved.

import argparse
import asyncio
import contextlib
import hmac
import math
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import aiohttp

from evolink_async import (
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
    TaskCancelledError,
    TaskFailedError,
    ValidationError,
    WaitTimeoutError,
)
from evolink_async.testing import MockEvoLink

if TYPE_CHECKING:
    # Imported where used at run time, so the file still starts (and says what
    # to install) without FastAPI.
    from fastapi import FastAPI, Request

T = TypeVar("T")

CALLBACK_PATH = "/evolink/callback"
INSTALL_HINT = "this example needs FastAPI and uvicorn: pip install fastapi uvicorn"

#: The HTTP status for each SDK error; the first matching class wins.
STATUSES: list[tuple[type[EvoLinkError], int]] = [
    (ValidationError, 422),  # bad parameters, caught before sending
    (BadRequestError, 422),  # ... or refused by EvoLink
    (NotFoundError, 404),
    (RateLimitError, 429),
    (InsufficientCreditsError, 503),  # this service is out of credits
    (AuthenticationError, 500),  # the server's own key is wrong
    (PermissionDeniedError, 500),
    (TaskFailedError, 502),  # the generation itself failed
    (TaskCancelledError, 409),
    (APITimeoutError, 504),
    (WaitTimeoutError, 504),
    (EvoLinkError, 502),  # anything else: EvoLink failed or was unreachable
]


def error_reply(exc: EvoLinkError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """The HTTP status, error body and headers for an SDK error."""
    status = next(code for cls, code in STATUSES if isinstance(exc, cls))
    body: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    headers: dict[str, str] = {}
    if status == 500:
        body["message"] = "the server's EvoLink account is misconfigured"
    if isinstance(exc, ValidationError):
        body["problems"] = [{"field": p.field, "rule": p.rule} for p in exc.problems]
    if isinstance(exc, TaskFailedError):
        body.update(task_id=exc.task.id, code=exc.code, retryable=exc.retryable)
    if isinstance(exc, RateLimitError) and exc.retry_after is not None:
        headers["Retry-After"] = str(math.ceil(exc.retry_after))
    return status, body, headers


async def unless_disconnected(request: "Request", work: Awaitable[T]) -> T | None:
    """
    `await work`, or None as soon as the client disconnects (`work` is cancelled then).

    ASGI tells a handler that its client has gone with an `http.disconnect`
    message from `receive()` (after the body, `receive()` returns nothing
    else); uvicorn would otherwise let the handler wait on for nobody.
    """

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    job = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({job, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not job.done():
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job
    if job.cancelled():
        return None
    return job.result()


def make_app(
    client_factory: Callable[[], EvoLinkClient],
    *,
    public_url: str | None = None,
    callback_token: str | None = None,
    max_wait: float = 600.0,
) -> "FastAPI":
    """
    The FastAPI app; `client_factory()` is called once, in the lifespan.

    Args:
        client_factory: makes the shared client (e.g. `EvoLinkClient`).
        public_url: this app's public `https://` base URL; when set, every
            generation asks EvoLink to call back to it.
        callback_token: the secret the callback URL carries (default: random).
        max_wait: seconds `POST /generate` waits for a task.

    Raises:
        ImportError: FastAPI is not installed.
    """
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response

    secret = callback_token or secrets.token_urlsafe(24)
    callback_url = None
    if public_url is not None:
        callback_url = f"{public_url.rstrip('/')}{CALLBACK_PATH}?token={secret}"

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with client_factory() as client:
            app.state.evolink = client
            yield

    app = FastAPI(lifespan=lifespan)

    def client_of(request: Request) -> EvoLinkClient:
        client: EvoLinkClient = request.app.state.evolink
        return client

    async def evolink_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, EvoLinkError)  # registered for EvoLinkError only
        status, body, headers = error_reply(exc)
        return JSONResponse({"error": body}, status_code=status, headers=headers)

    @app.post("/generate", response_model=None)
    async def generate(request: Request, payload: dict[str, Any]) -> dict[str, Any] | Response:
        """Start a generation and wait for it; answer its video URL."""
        fields = dict(payload)
        model = fields.pop("model", None)
        if not isinstance(model, str):
            raise ValidationError(f"model={model!r}: a model id is required")
        if callback_url is not None:
            fields["callback_url"] = callback_url  # ours, never the caller's
        # Any string: `generate` checks it (an unknown id is a ValidationError).
        work = client_of(request).generate(cast(ModelId, model), timeout=max_wait, **fields)
        task = await unless_disconnected(request, work)
        if task is None:
            # nginx's code for "client closed the request": nobody reads it.
            return Response(status_code=499)
        return {"task_id": task.id, "status": task.status.value, "video_url": task.video_url}

    @app.post(CALLBACK_PATH, status_code=204)
    async def evolink_callback(request: Request, token: str = "") -> Response:
        """EvoLink's callback: a hint that wakes waiters (confirmed with a GET)."""
        if not hmac.compare_digest(token.encode(), secret.encode()):
            return JSONResponse({"error": "bad token"}, status_code=403)
        try:
            client_of(request).handle_callback_body(await request.body())
        except ValidationError:
            return JSONResponse({"error": "not a task object"}, status_code=400)
        return Response(status_code=204)

    app.add_exception_handler(EvoLinkError, evolink_error)
    return app


# -- running it -------------------------------------------------------------------


async def serve(app: "FastAPI", sock: socket.socket) -> tuple[Any, "asyncio.Task[None]"]:
    """Run `app` with uvicorn on a bound socket; the server and its task, once it is up."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    running = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if running.done():
            await running  # it failed to start: raise why
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.01)
    return server, running


async def call_yourself(url: str) -> None:
    """A few requests to the running app, all at once; print the answers."""
    job = {
        "model": "wan2.5-image-to-video",
        "prompt": "A cat playing piano",
        "image_urls": ["https://example.com/cat.png"],
    }
    bodies: list[dict[str, Any]] = [
        job,
        {**job, "duration": 7},
        {**job, "prompt": "A cat mock:fail=content_policy_violation"},
    ]
    async with aiohttp.ClientSession(url) as http:

        async def call(body: dict[str, Any]) -> str:
            async with http.post("/generate", json=body) as response:
                answer = await response.json()
            error = answer.get("error")
            if error is None:
                return f"POST /generate -> {response.status} {answer['status']} video_url=..."
            code = f" [{error['code']}]" if error.get("code") else ""
            return f"POST /generate -> {response.status} {error['type']}{code}"

        for line in await asyncio.gather(*(call(body) for body in bodies)):
            print(line)


async def main(use_mock: bool, host: str, port: int, public_url: str | None) -> None:
    """Serve the app; with --mock, call it a few times, then stop."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        print(INSTALL_HINT)
        return
    sock = socket.socket()
    sock.bind((host, port))
    url = f"http://{host}:{sock.getsockname()[1]}"
    if not use_mock:
        server, running = await serve(make_app(EvoLinkClient, public_url=public_url), sock)
        print(f"serving on {url} (Ctrl-C stops)")
        await running
        return
    async with MockEvoLink(time_scale=0.01) as mock:
        poll = PollPolicy(
            min_interval=0.02, max_interval=0.6, default_estimate=1.2, max_polls_per_second=2000
        )
        token = secrets.token_urlsafe(24)
        app = make_app(
            lambda: EvoLinkClient(
                mock.api_key, base_url=mock.url, files_base_url=mock.url, poll=poll
            ),
            public_url="https://app.example.com",  # delivered to `callback_target` instead
            callback_token=token,
            max_wait=30.0,
        )
        mock.callback_target = f"{url}{CALLBACK_PATH}?token={token}"
        server, running = await serve(app, sock)
        print(f"serving on {url} with FastAPI, EvoLink faked at {mock.url}")
        try:
            await call_yourself(url)
        finally:
            server.should_exit = True
            await running
        delivered = [d for d in mock.stats.callbacks_delivered if d.http_status == 204]
        print(f"callbacks delivered to the app and accepted: {len(delivered)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--mock", action="store_true", help="use the embedded fake server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="default: 8000, or any free port with --mock")
    parser.add_argument("--public-url", help="this app's public https URL, for callbacks")
    args = parser.parse_args()
    port = args.port if args.port is not None else (0 if args.mock else 8000)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.mock, args.host, port, args.public_url))
