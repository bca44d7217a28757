"""
HTTP: one aiohttp session, one concurrency semaphore, retries, error mapping.

Every request of a client goes through `Transport.request`. It:

- waits for a slot of the client-wide semaphore (`max_concurrency`), per
  attempt, so a request sleeping between retries holds no slot;
- waits out a client-wide rate-limit pause set by the last 429's Retry-After,
  so one 429 slows every request of the client, not only the one that got it;
- retries 429, 500, 502, 503, 504, dropped connections and timeouts with
  exponential backoff and full jitter, honouring Retry-After;
- retries a POST only when the caller says it is safe (creates carry an
  Idempotency-Key, so a retry is replayed by the server, never billed twice);
- maps every failure to the `_errors` tree: no aiohttp exception escapes.

The API key is only ever put in the Authorization header of requests to the
API and files hosts; it never reaches a log line, an exception or a result
download (result URLs are on a CDN).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import email.utils
import json
import logging
import math
import random
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

import aiohttp
import attrs
from multidict import CIMultiDict, CIMultiDictProxy

from ._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    IdempotencyConflictError,
    InsufficientCreditsError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
    ServerError,
)
from ._version import __version__

__all__ = ["Response", "RetryPolicy", "Transport", "parse_retry_after"]

logger = logging.getLogger("evolink_async")

USER_AGENT: Final = f"evolink-async/{__version__} aiohttp/{aiohttp.__version__}"

_STATUS_ERRORS: Final[Mapping[int, type[APIError]]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: InsufficientCreditsError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: RequestTooLargeError,
    429: RateLimitError,
}

# "retry after 60 seconds", "Retry after 30s", "please retry in 5 sec".
_RETRY_HINT = re.compile(r"retry\s+(?:after|in)\s+(\d+(?:\.\d+)?)\s*(?:s\b|sec|second)", re.I)


def _positive(_: object, attribute: attrs.Attribute[float], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{attribute.name}={value!r}: must be a number")  # noqa: TRY004 -- attrs validators raise ValueError
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{attribute.name}={value!r}: must be a finite number > 0")


def _non_negative_int(_: object, attribute: attrs.Attribute[int], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{attribute.name}={value!r}: must be a whole number >= 0")


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """
    How a request is retried after a transient failure.

    The wait before retry n (0-based) is drawn uniformly from
    [0, min(max_backoff, initial_backoff * multiplier**n)] ("full jitter",
    so many clients that failed together do not retry together), and is at
    least the server's Retry-After when it sent one.

    Args:
        max_retries: retries after the first attempt (0 = try once).
        initial_backoff: the backoff ceiling of the first retry, seconds.
        max_backoff: the largest backoff ceiling, seconds.
        multiplier: growth of the ceiling per retry.
        max_retry_after: a Retry-After longer than this (seconds) is not waited
            out: the error is raised at once, carrying `retry_after`.
        retry_statuses: HTTP statuses that are retried.
    """

    max_retries: int = attrs.field(default=4, validator=_non_negative_int)
    initial_backoff: float = attrs.field(default=0.5, validator=_positive)
    max_backoff: float = attrs.field(default=30.0, validator=_positive)
    multiplier: float = attrs.field(default=2.0, validator=_positive)
    max_retry_after: float = attrs.field(default=300.0, validator=_positive)
    retry_statuses: frozenset[int] = attrs.field(
        default=frozenset({429, 500, 502, 503, 504}), converter=frozenset
    )

    def backoff(self, retry: int, u: float) -> float:
        """The jittered wait before retry number `retry` (0-based), given a draw `u` in [0, 1)."""
        ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier ** min(retry, 64))
        return u * ceiling


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """
    Seconds to wait from a Retry-After header: delta-seconds or an HTTP date.

    Returns None for a missing, negative or unreadable value; a date in the
    past gives 0.
    """
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
        return max(0.0, seconds)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def _hint_seconds(*texts: str | None) -> float | None:
    for text in texts:
        if text:
            match = _RETRY_HINT.search(text)
            if match:
                return float(match.group(1))
    return None


class Response(NamedTuple):
    """A decoded reply: status, headers, JSON data, request id."""

    status: int
    headers: Mapping[str, str]
    data: Any
    request_id: str | None
    replayed: bool = False


def _request_id(headers: Mapping[str, str]) -> str | None:
    return headers.get("X-Request-Id") or headers.get("X-Oneapi-Request-Id")


def _error_from_reply(
    status: int, headers: Mapping[str, str], body: bytes, request_id: str | None
) -> APIError:
    """The `APIError` subclass for an error reply, with the body's details."""
    parsed: Any = None
    text = body.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = None
    error: Mapping[str, Any] = {}
    if isinstance(parsed, Mapping):
        inner = parsed.get("error")
        if isinstance(inner, Mapping):
            error = inner
        elif isinstance(inner, str):
            error = {"message": inner}
        elif "message" in parsed or "msg" in parsed:
            error = {"message": parsed.get("message", parsed.get("msg"))}
    raw_code = error.get("code")
    code: str | int | None = (
        raw_code if isinstance(raw_code, str | int) and not isinstance(raw_code, bool) else None
    )
    message = error.get("message")
    if not isinstance(message, str) or not message:
        snippet = " ".join(re.sub(r"<[^>]*>", " ", text).split())[:200]
        message = snippet or f"HTTP {status} with an empty body"
    error_type = error.get("type") if isinstance(error.get("type"), str) else None
    param = error.get("param") if isinstance(error.get("param"), str) else None
    suggestion = error.get("fallback_suggestion")
    suggestion = suggestion if isinstance(suggestion, str) else None
    body_value: Mapping[str, Any] | str = parsed if isinstance(parsed, Mapping) else text[:2000]
    common: dict[str, Any] = {
        "status": status,
        "code": code,
        "type": error_type,
        "param": param,
        "request_id": request_id,
        "body": body_value,
        "fallback_suggestion": suggestion,
    }
    if code == "idempotency_conflict":
        return IdempotencyConflictError(message, **common)
    if status == 429:
        retry_after = parse_retry_after(headers.get("Retry-After"))
        if retry_after is None:
            retry_after = _hint_seconds(suggestion, message)
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


class _Slots:
    """
    A counting semaphore (the client's `max_concurrency`) that costs no
    await while a slot is free: `try_take()`, else `await take()`; then
    `give()` exactly once. First come, first served; a freed slot goes
    straight to the longest waiter.
    """

    __slots__ = ("_free", "_waiters")

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def try_take(self) -> bool:
        """Take a slot if one is free and nobody queues for it."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        return False

    async def take(self) -> None:
        """Wait for a slot (in turn) and take it."""
        if self.try_take():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed a slot, then cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def give(self) -> None:
        """Return a slot: to the first live waiter, else to the pool."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1


class Transport:
    """
    The client's HTTP machinery: session, semaphore, retries, errors.

    Created by `EvoLinkClient`; not a public class.
    """

    def __init__(
        self,
        *,
        api_key: str | None,
        max_concurrency: int,
        retry: RetryPolicy,
        timeout: aiohttp.ClientTimeout,
        session: aiohttp.ClientSession | None,
    ) -> None:
        self._api_key = api_key
        self.retry = retry
        self.timeout = timeout
        self.max_concurrency = max_concurrency
        self._session = session
        self._owns_session = session is None
        self._semaphore: _Slots | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._paused_until = 0.0
        #: 429 replies received so far (the batch runner adapts to it).
        self.rate_limited = 0
        self._rng = random.Random()  # noqa: S311 -- jitter, not cryptography
        self.closed = False
        # A session the transport makes carries the Authorization header as a
        # default header (aiohttp then merges nothing per request), and result
        # downloads get a second session without it: the CDN never sees the
        # key. A caller's session gets the header on each request instead.
        self._auth_in_session = False
        self._bound: tuple[aiohttp.ClientSession, _Slots] | None = None
        self._download_session: aiohttp.ClientSession | None = None
        # The Authorization header alone, built once, for a caller's session.
        self._plain_headers: CIMultiDictProxy[str] | None = None

    # -- lifecycle ---------------------------------------------------------

    def _bind(self) -> tuple[aiohttp.ClientSession, _Slots]:
        """The session and semaphore, made on first use inside the running loop."""
        if self.closed:
            raise ClientClosedError(
                "this EvoLinkClient is closed; create a new one (a closed client is not reopened)"
            )
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError(
                "this EvoLinkClient was first used in another event loop; an aiohttp session "
                "belongs to one loop, so create one client per loop (e.g. per asyncio.run)"
            )
        if self._semaphore is None:
            self._semaphore = _Slots(self.max_concurrency)
        if self._session is None:
            headers = {"User-Agent": USER_AGENT}
            if self._api_key:
                headers["Authorization"] = f"Bearer {self._api_key}"
                self._auth_in_session = True
            self._session = aiohttp.ClientSession(
                timeout=self.timeout,
                headers=headers,
                connector=aiohttp.TCPConnector(limit=max(100, 2 * self.max_concurrency)),
            )
        self._bound = (self._session, self._semaphore)
        return self._bound

    @property
    def download_session(self) -> aiohttp.ClientSession:
        """
        The session for result downloads: never one that carries the key.

        The caller's session when the client was given one (the SDK adds the
        key per API request there, never to that session), else a second
        session the transport makes on first use.
        """
        session, _ = self._bind()
        if not self._auth_in_session:
            return session
        if self._download_session is None:
            self._download_session = aiohttp.ClientSession(
                timeout=self.timeout,
                headers={"User-Agent": USER_AGENT},
                connector=aiohttp.TCPConnector(limit=max(16, self.max_concurrency)),
            )
        return self._download_session

    @property
    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session (created on first use)."""
        return self._bind()[0]

    @property
    def has_open_session(self) -> bool:
        """True when this transport made a session that is not closed yet."""
        return any(not session.closed for session in self._own_sessions())

    def _own_sessions(self) -> list[aiohttp.ClientSession]:
        sessions = [self._download_session] if self._download_session is not None else []
        if self._owns_session and self._session is not None:
            sessions.append(self._session)
        return sessions

    async def aclose(self) -> None:
        """Close the sessions this transport made; idempotent."""
        self.closed = True
        for session in self._own_sessions():
            if not session.closed:
                await session.close()

    def auth_headers(self) -> dict[str, str]:
        """The Authorization header; raises `AuthenticationError` without a key."""
        if not self._api_key:
            raise AuthenticationError(
                "no API key configured: pass api_key=... to EvoLinkClient or set the "
                "EVOLINK_API_KEY environment variable",
                status=0,
            )
        return {"Authorization": f"Bearer {self._api_key}"}

    def _make_plain_headers(self) -> CIMultiDictProxy[str]:
        self._plain_headers = CIMultiDictProxy(CIMultiDict(self.auth_headers()))
        return self._plain_headers

    # -- rate-limit pause ----------------------------------------------------

    def pause_for(self, seconds: float) -> None:
        """Hold every request of the client for `seconds` (a 429's Retry-After)."""
        until = time.monotonic() + seconds
        self._paused_until = max(self._paused_until, until)

    async def _wait_pause(self) -> None:
        while True:
            delay = self._paused_until - time.monotonic()
            if delay <= 0:
                return
            await asyncio.sleep(delay)

    # -- requests ------------------------------------------------------------

    async def request(
        self,
        method: str,
        url: str,
        *,
        path: str,
        body: bytes | None = None,
        form: Callable[[], aiohttp.FormData] | None = None,
        headers: Mapping[str, str] | None = None,
        retry_safe: bool = True,
        max_retries: int | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> Response:
        """
        Send one API request with retries; return the decoded JSON reply.

        `path` is what logs and errors show of the URL (never a query string).
        `form` builds a multipart body afresh for each attempt (aiohttp sends
        a FormData once). `retry_safe=False` sends at most once;
        `max_retries` overrides the policy's count (the watcher polls with 0
        and reschedules instead).

        Raises:
            APIError: a subclass per HTTP status, once retries are spent.
            APIConnectionError: no reply, once retries are spent.
        """
        bound = self._bound
        if bound is None or self.closed or self._loop is not asyncio.get_running_loop():
            bound = self._bind()
        session, semaphore = bound
        send_headers: Mapping[str, str] | None
        if self._auth_in_session:
            send_headers = headers
            if body is not None:
                send_headers = {"Content-Type": "application/json", **(headers or {})}
        elif body is None and not headers:
            send_headers = self._plain_headers or self._make_plain_headers()
        else:
            send_headers = self.auth_headers()
            if body is not None:
                send_headers["Content-Type"] = "application/json"
            if headers:
                send_headers.update(headers)
        policy = self.retry
        if not retry_safe:
            max_retries = 0
        elif max_retries is None:
            max_retries = policy.max_retries
        attempt = 0
        debug = logger.isEnabledFor(logging.DEBUG)
        while True:
            attempt += 1
            if self._paused_until:
                await self._wait_pause()
            started = time.monotonic() if debug else 0.0
            failure: APIError | APIConnectionError
            retry_after: float | None = None
            try:
                if not semaphore.try_take():
                    await semaphore.take()
                try:
                    async with session.request(
                        method,
                        url,
                        data=form() if form is not None else body,
                        headers=send_headers,
                        timeout=timeout or self.timeout,
                        allow_redirects=False,
                    ) as resp:
                        payload = await resp.read()
                        status = resp.status
                        resp_headers = resp.headers
                finally:
                    semaphore.give()
            except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
                failure = APITimeoutError(
                    f"{method} {path} timed out after {_describe_timeout(timeout or self.timeout)}"
                )
                failure.__cause__ = exc
            except aiohttp.InvalidURL as exc:
                raise APIConnectionError(f"{method} {path}: invalid URL") from exc
            except aiohttp.ClientError as exc:
                failure = APIConnectionError(
                    f"{method} {path}: connection failed ({type(exc).__name__})"
                )
                failure.__cause__ = exc
            else:
                request_id = _request_id(resp_headers)
                if debug:
                    elapsed = time.monotonic() - started
                    logger.debug(
                        "%s %s -> %d (attempt %d, %.1f ms, request id %s)",
                        method,
                        path,
                        status,
                        attempt,
                        elapsed * 1000,
                        request_id,
                    )
                if 200 <= status < 300:
                    return _decode(status, resp_headers, payload, request_id, method, path)
                failure = _error_from_reply(status, resp_headers, payload, request_id)
                if status == 429:
                    self.rate_limited += 1
                if status not in policy.retry_statuses:
                    raise failure
                retry_after = parse_retry_after(resp_headers.get("Retry-After"))
                if retry_after is None and status in (429, 503):
                    retry_after = _hint_seconds(failure.fallback_suggestion, failure.message)
                if retry_after is not None and retry_after > policy.max_retry_after:
                    # Waiting that long is the caller's call, not ours: say
                    # so now rather than sleep for hours (or a year).
                    raise failure
                if status == 429 and retry_after is not None:
                    self.pause_for(retry_after)
            if attempt > max_retries:
                raise failure
            delay = policy.backoff(attempt - 1, self._rng.random())
            if retry_after is not None:
                delay = max(delay, retry_after)
            logger.info(
                "%s %s failed (%s); retry %d of %d in %.2fs",
                method,
                path,
                _short_reason(failure),
                attempt,
                max_retries,
                delay,
            )
            await asyncio.sleep(delay)


def _decode(
    status: int,
    headers: Mapping[str, str],
    payload: bytes,
    request_id: str | None,
    method: str,
    path: str,
) -> Response:
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
        # A 2xx that carries an error body: some gateways answer failures so.
        raise _error_from_reply(status, headers, payload, request_id)
    if method == "POST":
        # Only creates (POST, with an Idempotency-Key) are ever replayed.
        replayed = headers.get("idempotency-replayed", "").lower() == "true"
        return Response(status, headers, data, request_id, replayed)
    return Response(status, headers, data, request_id)


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


def _describe_timeout(timeout: aiohttp.ClientTimeout) -> str:
    if timeout.total is not None:
        return f"{timeout.total:g}s"
    if timeout.sock_read is not None:
        return f"{timeout.sock_read:g}s without data"
    return "the configured timeout"


def _short_reason(failure: Exception) -> str:
    if isinstance(failure, APIError):
        return f"HTTP {failure.status}"
    return type(failure).__name__
