"""
Replies to values, without I/O: status + headers + bytes in, a value or the
right `APIError` out.

- `decode_reply`: a whole HTTP reply -> `Response` (the JSON data and what
  the headers say), or the `APIError` subclass for its status. A 2xx that
  carries an error body (some gateways answer failures so) and a 2xx that is
  not JSON are errors too.
- `api_error`: the one reader of an error body, for the API
  (`{"error": {"code", "message", "type", "param"}}`, `{"error": "text"}`)
  and for the files API (`{"success": false, "code", "msg"}`), HTTP status
  or not.
- `read_task`, `read_tasks`, `read_credits`, `read_upload`: a decoded reply
  -> the value it should hold, or a "malformed reply" `APIError` naming what
  was wrong, with the HTTP status and request id.

Nothing here sends, sleeps or reads a clock, so every rule is tested with bytes
alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Final, NamedTuple

from .._convert import CONVERTER, MalformedResponseError, structure_task
from .._errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    IdempotencyConflictError,
    InsufficientCreditsError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
    ServerError,
)
from .._values import Credits, Task, UploadedFile
from .retry import retry_after_of

__all__ = [
    "Response",
    "api_error",
    "decode_reply",
    "error_from_reply",
    "loads_reply",
    "malformed",
    "read_credits",
    "read_task",
    "read_tasks",
    "read_upload",
    "request_id_of",
]

_STATUS_ERRORS: Final[Mapping[int, type[APIError]]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: InsufficientCreditsError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: RequestTooLargeError,
    429: RateLimitError,
}


class Response(NamedTuple):
    """
    A decoded reply: status, headers, JSON data, request id; whether the
    server replayed an earlier create for its Idempotency-Key; and whether an
    earlier attempt of the same request met a 429 (the batch runner slows its
    creates on that news).
    """

    status: int
    headers: Mapping[str, str]
    data: Any
    request_id: str | None
    replayed: bool = False
    rate_limited: bool = False


def request_id_of(headers: Mapping[str, str]) -> str | None:
    """The server's request id (`X-Request-Id`, or `X-Oneapi-Request-Id`)."""
    return headers.get("X-Request-Id") or headers.get("X-Oneapi-Request-Id")


#: The C scanner behind `json.loads`, called directly (see `loads_reply`).
#: (`scan_once` is set in `JSONDecoder.__init__`; typeshed does not list it.)
_scan_json: Final[Callable[[str, int], tuple[Any, int]]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def loads_reply(payload: bytes) -> Any:
    """
    `json.loads(payload)`, the same values and errors, with a shorter way for
    the usual reply (UTF-8, no surrounding whitespace).

    `json.loads` of bytes first sniffs the encoding and then goes through
    three Python layers; every poll reply pays for that. Anything unusual
    (a BOM, UTF-16, leading whitespace, a parse error, trailing data) takes
    the full `json.loads` path, so its result or its error is exactly that.
    """
    try:
        text = payload.decode()
        data, end = _scan_json(text, 0)
    except (UnicodeDecodeError, StopIteration, ValueError):
        return json.loads(payload)
    if end != len(text) and text[end:].strip(" \t\n\r"):
        return json.loads(payload)
    return data


def decode_reply(
    status: int,
    headers: Mapping[str, str],
    payload: bytes,
    *,
    method: str,
    path: str,
) -> Response:
    """
    The `Response` of a 2xx reply; for any other status, raise its error.

    Raises:
        APIError: the subclass for the status (`RateLimitError` with
            `retry_after`, ...); or a malformed 2xx (not JSON, or an error
            body).
    """
    request_id = request_id_of(headers)
    if not 200 <= status < 300:
        raise error_from_reply(status, headers, payload, request_id)
    try:
        data = loads_reply(payload)
    except ValueError:
        snippet = " ".join(payload[:200].decode("utf-8", errors="replace").split())
        raise APIError(
            f"malformed reply to {method} {path}: not JSON ({snippet!r})",
            status=status,
            request_id=request_id,
            body=payload[:2000].decode("utf-8", errors="replace"),
        ) from None
    if (
        (type(data) is dict or isinstance(data, Mapping))
        and "error" in data
        and "id" not in data
        and isinstance(data["error"], Mapping)
    ):
        raise error_from_reply(status, headers, payload, request_id)
    if method == "POST":
        # Only creates (POST, with an Idempotency-Key) are ever replayed.
        replayed = headers.get("idempotency-replayed", "").lower() == "true"
        return Response(status, headers, data, request_id, replayed)
    return Response(status, headers, data, request_id)


def error_from_reply(
    status: int, headers: Mapping[str, str], body: bytes, request_id: str | None
) -> APIError:
    """The `APIError` subclass for an error reply, from its raw body."""
    text = body.decode("utf-8", errors="replace")
    try:
        parsed: Any = json.loads(text) if text else None
    except ValueError:
        parsed = None
    return api_error(status, headers, parsed, text, request_id)


def _error_fields(parsed: object, *, files_api: bool) -> Mapping[str, Any]:
    """The mapping that holds an error's code and message, in any known shape."""
    if not isinstance(parsed, Mapping):
        return {}
    inner = parsed.get("error")
    if isinstance(inner, Mapping):
        return inner
    if isinstance(inner, str):
        return {"message": inner}
    fields: dict[str, Any] = {}
    if "message" in parsed or "msg" in parsed:
        fields["message"] = parsed.get("message", parsed.get("msg"))
    if files_api and "code" in parsed:
        # The files API: `{"success": false, "code": ..., "msg": ...}`.
        fields["code"] = parsed.get("code")
    return fields


def _text_field(fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    return value if isinstance(value, str) else None


def api_error(
    status: int,
    headers: Mapping[str, str],
    parsed: object,
    text: str,
    request_id: str | None,
    *,
    what: str | None = None,
) -> APIError:
    """
    The `APIError` for an error body: the subclass for the status (or the
    error code), with the body's code, message, type and param.

    `parsed` is the JSON body (None if it was not JSON), `text` the body as
    text. `what` names a files-API call (whose bodies put `code` and `msg`
    at the top), for a body that gives no message.
    """
    fields = _error_fields(parsed, files_api=what is not None)
    raw_code = fields.get("code")
    code: str | int | None = (
        raw_code if isinstance(raw_code, str | int) and not isinstance(raw_code, bool) else None
    )
    message = fields.get("message")
    if not isinstance(message, str) or not message:
        snippet = " ".join(re.sub(r"<[^>]*>", " ", text).split())[:200]
        message = snippet or (f"{what} failed" if what else f"HTTP {status} with an empty body")
    suggestion = _text_field(fields, "fallback_suggestion")
    common: dict[str, Any] = {
        "status": status,
        "code": code,
        "type": _text_field(fields, "type"),
        "param": _text_field(fields, "param"),
        "request_id": request_id,
        "body": parsed if isinstance(parsed, Mapping) else text[:2000],
        "fallback_suggestion": suggestion,
    }
    if code == "idempotency_conflict":
        return IdempotencyConflictError(message, **common)
    if status == 429:
        retry_after = retry_after_of(status, headers, suggestion, message)
        return RateLimitError(message, retry_after=retry_after, **common)
    cls = _STATUS_ERRORS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else APIError
    return cls(message, **common)


def malformed(response: Response, detail: str) -> APIError:
    """The `APIError` for a successful reply the SDK cannot read."""
    return APIError(
        f"malformed reply: {detail}",
        status=response.status,
        request_id=response.request_id,
        body=response.data if isinstance(response.data, Mapping) else None,
    )


def read_task(response: Response) -> Task:
    """The task a reply holds."""
    try:
        return structure_task(response.data)
    except MalformedResponseError as exc:
        raise malformed(response, str(exc)) from None


def read_tasks(response: Response) -> list[Task]:
    """The tasks of a `POST /v1/tasks/batch` reply; unreadable items are left out."""
    data = response.data
    items = data.get("data") if isinstance(data, Mapping) else data
    if not isinstance(items, list):
        raise malformed(response, "batch reply has no 'data' list")
    tasks = []
    for item in items:
        try:
            tasks.append(structure_task(item))
        except MalformedResponseError:
            continue
    return tasks


def _files_failure(response: Response, what: str) -> APIError:
    """A files-API-style `"success": false` reply (HTTP 200) as its `APIError`."""
    return api_error(
        response.status,
        response.headers,
        response.data,
        "",
        response.request_id,
        what=what,
    )


def read_credits(response: Response) -> Credits:
    """The balance a `GET /v1/credits` reply holds."""
    data = response.data
    if isinstance(data, Mapping) and data.get("success") is False:
        raise _files_failure(response, "credits")
    try:
        return CONVERTER.structure(data, Credits)
    except MalformedResponseError as exc:
        raise malformed(response, str(exc)) from None


def read_upload(response: Response) -> UploadedFile:
    """The stored file a files-API upload reply describes."""
    reply = response.data
    if not isinstance(reply, Mapping) or reply.get("success") is not True:
        raise _files_failure(response, "upload")
    try:
        return CONVERTER.structure(reply.get("data"), UploadedFile)
    except MalformedResponseError as exc:
        raise malformed(response, str(exc)) from None
