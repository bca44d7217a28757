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
- `read_task`, `read_tasks`, `read_task_page`, `read_credits`,
  `read_upload`: a decoded reply -> the value it should hold (tasks carry
  the reply's request id, and its JSON text for `Task.raw`: the body, or in
  a listing their item's slice of it), or a `MalformedReplyError` naming
  what was wrong, with the HTTP status and request id. Any reply the SDK cannot read
  (not JSON, nested too deep, a number no float holds, a task other than the
  one asked for) is that error, never another exception type.
- `inflate`: a compressed body inflated to at most `MAX_REPLY_BYTES`
  (a task is a few kB; a 200 kB gzip bomb must not cost 600 MB).
- `Redactor`: the configured API key (and so `Bearer <key>`) is masked in
  every reply body and request id before anything of it is stored in a
  value, an exception, a log line, a record or a journal.

Nothing here sends, sleeps or reads a clock, so every rule is tested with bytes
alone.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, NamedTuple, TypeVar

from .._convert import CONVERTER, MalformedResponseError, structure_task
from .._errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    IdempotencyConflictError,
    InsufficientCreditsError,
    MalformedReplyError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
    ServerError,
)
from .._values import Credits, ReplyJSON, Task, UploadedFile
from .retry import retry_after_of

__all__ = [
    "MAX_REPLY_BYTES",
    "NO_SECRET",
    "Redactor",
    "Response",
    "TaskPage",
    "api_error",
    "decode_reply",
    "error_from_reply",
    "inflate",
    "loads_reply",
    "malformed",
    "read_credits",
    "read_task",
    "read_task_page",
    "read_tasks",
    "read_upload",
    "request_id_of",
]

T = TypeVar("T")

_STATUS_ERRORS: Final[Mapping[int, type[APIError]]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: InsufficientCreditsError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: RequestTooLargeError,
    429: RateLimitError,
}


#: The largest API reply read, after inflating: a task is a few kB, a batch
#: read of 50 tasks or a page of the task list some hundred kB.
MAX_REPLY_BYTES: Final = 4 * 1024 * 1024
#: What stands where the API key was.
_MASK: Final = "[api key]"
#: Keys shorter than this are not masked: masking them would mangle text
#: (a real key is far longer).
_MIN_SECRET: Final = 8
#: The byte-order marks of UTF-16 (and so UTF-32 LE), which `json.loads` reads.
_WIDE_BOMS: Final = (b"\xff\xfe", b"\xfe\xff")
_WIDE_CODECS: Final = ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")


class Redactor:
    """Masks one secret (the API key) in server-supplied bytes and text."""

    __slots__ = ("_data", "_escapes", "_json", "_text", "_wide")

    def __init__(self, secret: str | None) -> None:
        usable = secret is not None and len(secret) >= _MIN_SECRET
        self._text = secret if usable else None
        self._data = secret.encode() if usable and secret is not None else None
        # The key as `json.dumps` writes it, and the escapes that can hide it.
        self._json = json.dumps(secret)[1:-1] if usable else None
        hiding = [char for char in '/"\\' if usable and secret and char in secret]
        self._escapes = (b"\\u00", *(b"\\" + char.encode() for char in hiding))
        # The key and the mask in each wide encoding, for a body that is not JSON.
        self._wide = tuple(
            (secret.encode(codec), _MASK.encode(codec))
            for codec in _WIDE_CODECS
            if usable and secret is not None
        )

    def data(self, payload: bytes) -> bytes:
        """`payload` with the secret masked, however a JSON body spells it."""
        secret = self._data
        if secret is None:
            return payload
        if secret in payload:
            payload = payload.replace(secret, _MASK.encode())
        # JSON escapes (`\u0073k-...`) and UTF-16/32 hide the key from a byte
        # search; only the decoded text shows it.
        if (
            any(escape in payload for escape in self._escapes)
            or b"\x00" in payload[:4]
            or payload[:2] in _WIDE_BOMS
        ):
            return self._decoded(payload)
        return payload

    def _decoded(self, payload: bytes) -> bytes:
        """A JSON `payload` written again as ASCII JSON with the key masked, if it holds it."""
        try:
            text = json.dumps(json.loads(payload))
        except (ValueError, RecursionError):
            # Not JSON: shown as text, where a wide encoding's key is the
            # key with NULs between its letters.
            for key, mask in self._wide:
                payload = payload.replace(key, mask)
            return payload
        if self._json is None or self._json not in text:
            return payload
        return text.replace(self._json, _MASK).encode()

    def text(self, value: str) -> str:
        """`value` with the secret masked."""
        secret = self._text
        if secret is None or secret not in value:
            return value
        return value.replace(secret, _MASK)


#: A redactor with nothing to mask (no key configured).
NO_SECRET: Final = Redactor(None)


def inflate(payload: bytes, encoding: str | None, *, limit: int = MAX_REPLY_BYTES) -> bytes:
    """
    The body of a reply sent with `Content-Encoding: encoding`, at most `limit` bytes.

    Raises:
        MalformedReplyError: it inflates past `limit`, is corrupt, or uses an
            encoding the SDK did not ask for.
    """
    kind = (encoding or "identity").strip().lower()
    if kind in ("", "identity"):
        return payload
    if kind in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif kind == "deflate":
        # RFC 9110 deflate is zlib-wrapped; some servers send raw deflate.
        wbits = zlib.MAX_WBITS if payload[:1] == b"\x78" else -zlib.MAX_WBITS
    else:
        raise MalformedReplyError(f"reply in an encoding the SDK did not ask for ({kind!r})")
    inflater = zlib.decompressobj(wbits)
    try:
        body = inflater.decompress(payload, limit + 1)
    except zlib.error as exc:
        raise MalformedReplyError(f"corrupt {kind} reply ({exc})") from None
    if len(body) > limit or inflater.unconsumed_tail:
        raise MalformedReplyError(f"reply inflates past {limit} bytes")
    return body


class Response(NamedTuple):
    """
    A decoded reply: status, headers, JSON data, request id; whether the
    server replayed an earlier create for its Idempotency-Key; whether an
    earlier attempt of the same request met a 429 (the batch runner slows its
    creates on that news); and the JSON text tasks keep for `Task.raw`:
    `body`, the whole (masked) body, and `items`, for a task listing, each
    item of its `data` list (None when the reply was not read item by item).
    """

    status: int
    headers: Mapping[str, str]
    data: Any
    request_id: str | None
    replayed: bool = False
    rate_limited: bool = False
    body: bytes | None = None
    items: list[ReplyJSON] | None = None


def request_id_of(headers: Mapping[str, str], redactor: Redactor = NO_SECRET) -> str | None:
    """The server's request id (`X-Request-Id`, or `X-Oneapi-Request-Id`), masked."""
    value = headers.get("X-Request-Id") or headers.get("X-Oneapi-Request-Id")
    return redactor.text(value) if value is not None else None


#: The C scanner behind `json.loads`, called directly (see `loads_reply`).
#: (`scan_once` is set in `JSONDecoder.__init__`; typeshed does not list it.)
_scan_json: Final[Callable[[str, int], tuple[Any, int]]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
#: The C reader of one JSON string (the text after its opening quote).
_scan_string: Final[Callable[[str, int], tuple[str, int]]] = json.decoder.scanstring  # type: ignore[attr-defined]


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


#: Whitespace as JSON has it (`json.decoder.WHITESPACE`).
_WHITESPACE: Final = re.compile(r"[ \t\n\r]*")
#: Replies read by `_scan_listing`: task listings, whose items become tasks.
_LISTINGS: Final = frozenset({"/v1/tasks/batch", "/v1/tasks"})


class _ListingShapeError(ValueError):
    """A listing `_scan_listing` leaves to `loads_reply`."""


def _skip(text: str, at: int) -> int:
    """The first offset at or after `at` that is not JSON whitespace."""
    match = _WHITESPACE.match(text, at)
    return at if match is None else match.end()


def _scan_items(
    text: str, at: int, view: memoryview | None
) -> tuple[list[Any], list[ReplyJSON], int]:
    """
    The JSON array at `text[at] == "["`: its items, each item's JSON text,
    and where the array ends.

    Raises:
        ValueError, StopIteration, RecursionError: not one array.
    """
    items: list[Any] = []
    parts: list[ReplyJSON] = []
    at = _skip(text, at + 1)
    if text.startswith("]", at):
        return items, parts, at + 1
    while True:
        value, end = _scan_json(text, at)
        items.append(value)
        parts.append(
            ReplyJSON(view[at:end]) if view is not None else ReplyJSON(text[at:end], "utf-8")
        )
        at = _skip(text, end)
        if text.startswith(",", at):
            at = _skip(text, at + 1)
        elif text.startswith("]", at):
            return items, parts, at + 1
        else:
            raise _ListingShapeError


def _scan_listing(payload: bytes) -> tuple[Any, list[ReplyJSON]] | None:
    """
    `loads_reply(payload)` of a task listing (`{"data": [...], ...}` or a
    bare `[...]`), with the JSON text of each item of that list; None for
    any reply this does not read, which the caller reads with `loads_reply`.

    A batch reply holds up to 50 tasks in one body; each task keeps its own
    item's bytes for `Task.raw` (a slice: no second parse, no encoding). The
    top level is read here, in a few steps per item, and every value in it
    by the C scanner `loads_reply` uses, so the data is what `json.loads`
    gives (duplicate keys included: the last one counts).
    """
    try:
        text = payload.decode()
    except UnicodeDecodeError:
        return None
    # In ASCII a text offset is a byte offset: items are sliced from the bytes.
    view = memoryview(payload) if len(text) == len(payload) else None
    try:
        at = _skip(text, 0)
        data: Any
        if text.startswith("[", at):
            data, parts, at = _scan_items(text, at, view)
        elif text.startswith("{", at):
            listing: dict[str, Any] = {}
            found: list[ReplyJSON] | None = None
            at = _skip(text, at + 1)
            while True:
                if not text.startswith('"', at):
                    raise _ListingShapeError
                key, at = _scan_string(text, at + 1)
                at = _skip(text, at)
                if not text.startswith(":", at):
                    raise _ListingShapeError
                at = _skip(text, at + 1)
                if key == "data" and text.startswith("[", at):
                    listing[key], found, at = _scan_items(text, at, view)
                else:
                    listing[key], at = _scan_json(text, at)
                    if key == "data":
                        found = None
                at = _skip(text, at)
                if text.startswith(",", at):
                    at = _skip(text, at + 1)
                elif text.startswith("}", at):
                    at += 1
                    break
                else:
                    raise _ListingShapeError
            if found is None:
                return None
            data, parts = listing, found
        else:
            return None
    except (StopIteration, ValueError, RecursionError):
        return None
    if at != len(text) and text[at:].strip(" \t\n\r"):
        return None
    return data, parts


def decode_reply(
    status: int,
    headers: Mapping[str, str],
    payload: bytes,
    *,
    method: str,
    path: str,
    redactor: Redactor = NO_SECRET,
) -> Response:
    """
    The `Response` of a 2xx reply; for any other status, raise its error.
    The secret is masked in the body and the request id first.

    Raises:
        APIError: the subclass for the status (`RateLimitError` with
            `retry_after`, ...); an error body in a 2xx.
        MalformedReplyError: a 2xx that is not JSON (or nested too deep).
    """
    payload = redactor.data(payload)
    request_id = request_id_of(headers, redactor)
    if not 200 <= status < 300:
        raise error_from_reply(status, headers, payload, request_id)
    items = None
    try:
        listing = _scan_listing(payload) if path in _LISTINGS else None
        if listing is None:
            data = loads_reply(payload)
        else:
            data, items = listing
    except (ValueError, RecursionError):
        snippet = " ".join(payload[:200].decode("utf-8", errors="replace").split())
        raise MalformedReplyError(
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
        return Response(status, headers, data, request_id, replayed, body=payload, items=items)
    return Response(status, headers, data, request_id, body=payload, items=items)


def error_from_reply(
    status: int, headers: Mapping[str, str], body: bytes, request_id: str | None
) -> APIError:
    """The `APIError` subclass for an error reply, from its raw body."""
    text = body.decode("utf-8", errors="replace")
    try:
        parsed: Any = json.loads(text) if text else None
    except (ValueError, RecursionError):
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


def malformed(response: Response, detail: str) -> MalformedReplyError:
    """The error for a successful reply the SDK cannot read."""
    return MalformedReplyError(
        f"malformed reply: {detail}",
        status=response.status,
        request_id=response.request_id,
        body=response.data if isinstance(response.data, Mapping) else None,
    )


def read_task(response: Response, task_id: str | None = None) -> Task:
    """The task a reply holds (the task `task_id`, when given)."""
    try:
        task = structure_task(
            response.data, response.request_id, source=response.body, expected_id=task_id
        )
    except MalformedResponseError as exc:
        raise malformed(response, str(exc)) from None
    except Exception as exc:  # hostile replies: any failure to read is one error
        raise malformed(response, f"unreadable ({type(exc).__name__})") from None
    if task_id is not None and task.id != task_id:
        raise malformed(response, f"the reply is for task {task.id!r}, not {task_id!r}")
    return task


def _structure(response: Response, reader: Callable[[Any], T], data: object) -> T:
    """`reader(data)`; anything it cannot read is a `MalformedReplyError`."""
    try:
        return reader(data)
    except MalformedResponseError as exc:
        raise malformed(response, str(exc)) from None
    except Exception as exc:  # hostile replies: any failure to read is one error
        raise malformed(response, f"unreadable ({type(exc).__name__})") from None


def read_tasks(response: Response) -> list[Task]:
    """The tasks of a `POST /v1/tasks/batch` reply; unreadable items are left out."""
    data = response.data
    items = data.get("data") if isinstance(data, Mapping) else data
    if not isinstance(items, list):
        raise malformed(response, "batch reply has no 'data' list")
    tasks = []
    request_id = response.request_id
    parts: Sequence[ReplyJSON | None] = response.items or ()
    if len(parts) != len(items):
        parts = [None] * len(items)
    for item, part in zip(items, parts, strict=True):
        try:
            tasks.append(structure_task(item, request_id, source=part))
        except Exception:  # noqa: S112 -- an unreadable item is left out; its task is read singly
            continue
    return tasks


class TaskPage(NamedTuple):
    """
    One page of `GET /v1/tasks`: the tasks read, how many items were
    unreadable (left out), and what the reply says of the listing (`total`,
    `page_size`; None when it does not say).
    """

    tasks: list[Task]
    unreadable: int
    total: int | None
    page_size: int | None


def _whole(value: object) -> int | None:
    return value if type(value) is int and value >= 0 else None


def read_task_page(response: Response) -> TaskPage:
    """A `GET /v1/tasks` reply: `{"data": [...], "total", "page", "page_size"}`."""
    data = response.data
    items = data.get("data") if isinstance(data, Mapping) else None
    if not isinstance(items, list):
        raise malformed(response, "task list reply has no 'data' list")
    tasks = read_tasks(response)
    return TaskPage(
        tasks,
        len(items) - len(tasks),
        _whole(data.get("total")),
        _whole(data.get("page_size")),
    )


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
    return _structure(response, lambda value: CONVERTER.structure(value, Credits), data)


def read_upload(response: Response) -> UploadedFile:
    """The stored file a files-API upload reply describes."""
    reply = response.data
    if not isinstance(reply, Mapping) or reply.get("success") is not True:
        raise _files_failure(response, "upload")
    return _structure(
        response, lambda value: CONVERTER.structure(value, UploadedFile), reply.get("data")
    )
