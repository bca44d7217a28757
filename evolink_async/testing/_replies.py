"""
How the mock answers: JSON replies, the API's error bodies, fault replies,
and connections dropped without a reply.

Also the two things every route group speaks in: `Call` (one request as a
handler sees it) and `ReplyError` (an error reply a handler raises and the
server's wrapper renders). Nothing here holds state.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, NoReturn

import attrs
from aiohttp import web

from ._faults import Fault, Injection

__all__ = [
    "RATE_LIMIT_RETRY_AFTER",
    "UNAVAILABLE_RETRY_AFTER",
    "Call",
    "Handler",
    "ReplyError",
    "drop",
    "dumps",
    "error_body",
    "fault_reply",
    "json_response",
    "not_found_route",
    "num",
    "problem_response",
    "rate_limited_reply",
    "seconds_text",
]

#: Default `Retry-After` of a 429 and the delay a 503 message mentions.
RATE_LIMIT_RETRY_AFTER: Final = 60.0
UNAVAILABLE_RETRY_AFTER: Final = 30.0

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

# Built once: `json.dumps` with options makes a new encoder on every call.
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


class ReplyError(Exception):
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
class Call:
    """One request as a handler sees it: body already read and parsed."""

    request: web.Request
    route: str
    request_id: str
    now: float
    json: Any
    bad_json: bool
    fault: Fault | None


#: A route handler of a route group.
Handler = Callable[[Call], Awaitable[web.StreamResponse]]


def dumps(data: object) -> bytes:
    """`data` as compact UTF-8 JSON, the way the API writes it."""
    return _ENCODER.encode(data).encode()


def num(value: float) -> int | float:
    """A JSON number as the API writes it: `165` rather than `165.0`."""
    if math.isfinite(value) and float(value).is_integer():
        return int(value)
    return round(value, 3)


def seconds_text(seconds: float) -> str:
    """Seconds for a header or message: `60`, `0.6`, `0.05`."""
    text = f"{max(seconds, 0.0):.3f}".rstrip("0").rstrip(".")
    return text or "0"


def json_response(
    data: object, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A reply with `data` as its JSON body."""
    return web.Response(
        body=dumps(data), status=status, content_type="application/json", headers=headers
    )


def error_body(status: int, code: str, message: str, param: str | None = None) -> dict[str, Any]:
    """The API's error body: `{"error": {"code", "message", "type"[, "param"]}}`."""
    error: dict[str, Any] = {
        "code": code,
        "message": message,
        "type": _ERROR_TYPES.get(status, "api_error"),
    }
    if param is not None:
        error["param"] = param
    return {"error": error}


def problem_response(problem: ReplyError, request_id: str) -> web.Response:
    """The reply a `ReplyError` stands for."""
    headers = {"X-Request-Id": request_id}
    if problem.headers:
        headers.update(problem.headers)
    body = error_body(problem.status, problem.code, problem.message, problem.param)
    return json_response(body, status=problem.status, headers=headers)


def not_found_route(request: web.Request, request_id: str) -> web.Response:
    """The 404 of a route the mock does not serve (or has switched off)."""
    body = error_body(404, "not_found", f"Unknown route: {request.method} {request.path}")
    return json_response(body, status=404, headers={"X-Request-Id": request_id})


def fault_reply(injection: Injection, request_id: str, time_scale: float) -> web.Response:
    """
    The reply of a `RATE_LIMIT`, `SERVER_ERROR` or `REPLY` fault.

    `time_scale` scales the default `Retry-After` of a 429 and the delay a
    503 message mentions.
    """
    headers: dict[str, str] = {}
    fault = injection.fault
    if fault is Fault.REPLY:
        given = dict(injection.headers or {})
        lowered = {name.lower() for name in given}
        if not lowered & {"x-request-id", "x-oneapi-request-id"}:
            given["X-Request-Id"] = request_id
        payload = injection.body
        if isinstance(payload, Mapping):
            raw = dumps(dict(payload))
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
            retry_after = RATE_LIMIT_RETRY_AFTER * time_scale
        wait = retry_after if isinstance(retry_after, str) else seconds_text(retry_after)
        body: Any = error_body(
            429, "rate_limit_exceeded", f"Rate limit exceeded, retry after {wait} seconds"
        )
    else:
        status = injection.status or 500
        if status == 503:
            wait = seconds_text(UNAVAILABLE_RETRY_AFTER * time_scale)
            body = error_body(
                503,
                "service_unavailable",
                f"Service temporarily unavailable, retry after {wait} seconds",
            )
        elif status == 502:
            body = error_body(502, "upstream_error", "Upstream provider error")
        else:
            body = error_body(status, "internal_error", "Internal server error")
    if retry_after is not None:
        headers["Retry-After"] = (
            retry_after if isinstance(retry_after, str) else seconds_text(retry_after)
        )
    if injection.headers:
        headers.update(injection.headers)
    if injection.body is not None:
        payload = injection.body
        if isinstance(payload, Mapping):
            return json_response(dict(payload), status=status, headers=headers)
        raw = payload.encode() if isinstance(payload, str) else payload
        return web.Response(body=raw, status=status, headers=headers)
    return json_response(body, status=status, headers=headers)


def rate_limited_reply(wait: float, request_id: str) -> web.Response:
    """The 429 of a key past its `RateLimit`: `Retry-After` is the seconds until a token."""
    text = seconds_text(max(wait, 0.001))
    body = error_body(
        429, "rate_limit_exceeded", f"Rate limit exceeded, retry after {text} seconds"
    )
    headers = {"X-Request-Id": request_id, "Retry-After": text}
    return json_response(body, status=429, headers=headers)


def drop(request: web.BaseRequest) -> NoReturn:
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
