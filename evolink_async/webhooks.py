"""
Receive EvoLink callbacks in an aiohttp application, in one line.

    from evolink_async.webhooks import callback_handler

    app.router.add_post("/evolink/callback", callback_handler(client))

EvoLink POSTs the task object to a request's `callback_url` when the task
completes, fails or is cancelled. Callbacks are not signed, so the handler
only *hints* the client: waiters on that task wake at once and the client
confirms with `GET /v1/tasks/{id}` before anyone sees a result. To keep
strangers from making you poll, put a secret in the URL you send
(`https://you.example/evolink/callback?token=...`) and pass the same `token`
here: requests without it get 403.

EvoLink only sends what the URL holds, so the token travels in the query
string, and aiohttp's default access log writes query strings (`%r`). Keep
it out of your logs: give the runner an `access_log_class` that logs
`request.path` rather than the query (examples/04_web_backend.py has one), or
`access_log=None`.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from ._client import MAX_CALLBACK_BYTES as _MAX_CALLBACK_BYTES
from ._client import EvoLinkClient
from ._errors import ValidationError
from ._text import printable

__all__ = ["callback_handler"]

logger = logging.getLogger("evolink_async")


def callback_handler(
    client: EvoLinkClient, *, token: str | None = None
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """
    An aiohttp handler that feeds callback bodies to `client.handle_callback_body`.

    Answers 204 when the body was taken, 400 for a body that is not a task
    object, 403 when `token` is set and the request's `?token=` differs, and
    413 for bodies over 1 MiB (chunked or not). The whole body is read, however
    many TCP segments or chunks it came in.
    """
    expected = token.encode() if token is not None else None

    async def handle(request: web.Request) -> web.Response:
        if expected is not None:
            given = request.query.get("token", "").encode()
            if not hmac.compare_digest(given, expected):
                return web.json_response({"error": "bad token"}, status=403)
        if request.content_length is not None and request.content_length > _MAX_CALLBACK_BYTES:
            return web.json_response({"error": "body too large"}, status=413)
        chunks: list[bytes] = []
        size = 0
        while chunk := await request.content.readany():
            size += len(chunk)
            if size > _MAX_CALLBACK_BYTES:
                return web.json_response({"error": "body too large"}, status=413)
            chunks.append(chunk)
        try:
            client.handle_callback_body(b"".join(chunks))
        except ValidationError as exc:
            logger.info("rejected a callback body: %s", printable(exc))
            return web.json_response({"error": "not a task object"}, status=400)
        return web.Response(status=204)

    return handle
