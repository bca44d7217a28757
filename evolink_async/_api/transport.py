"""
The transport: one aiohttp session, one concurrency limit, one 429 pause,
and the retry loop around each request.

Every API and files-API request of a client goes through `Transport.request`:

- `_send_once` sends one attempt: it waits for a slot of the client-wide
  limit (`max_concurrency`, taken per attempt, so a request sleeping between
  retries holds no slot), sends, reads the body, and maps every aiohttp
  failure to the `_errors` tree (no aiohttp exception escapes);
- `decode.decode_reply` turns the reply into a `Response` or its `APIError`;
- `retry.retry_loop` retries 429, 5xx, dropped connections and timeouts,
  honouring Retry-After (the one rule in `retry.py`). A POST is retried only
  when the caller says it is safe: creates carry an Idempotency-Key, so a
  retry is replayed by the server, never billed twice;
- a 429's Retry-After pauses every request of the client of the same kind
  (`request_kind`: creates, reads, uploads), not only the one that got it.
  A server's rate limits are per kind of request (EvoLink's, like the
  mock's, meter creates and reads apart), and its Retry-After says when
  the bucket that refused will have a token: a read 429 says nothing of
  the create bucket, so it holds no create (and the other way round);
- the client's `default_headers` ride along (in the session the transport
  makes, else per request), a view's `with_options(headers=...)` per
  request, and the proxy of `proxies.py` per request; event hooks and
  counters (`hooks.Observer`) see each attempt only when there are any.

The API key is only ever put in the Authorization header of requests to the
API and files hosts; it never reaches a log line, an exception, a hook or a
result download (result URLs are on a CDN, fetched through a second session
that carries neither the key nor `default_headers`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import logging
import random
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TypeVar

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from .._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    ClientClosedError,
    EvoLinkError,
    MalformedReplyError,
)
from .._telemetry import GLOBAL, Telemetry
from .._text import printable
from .._version import __version__
from .decode import (
    MAX_REPLY_BYTES,
    NO_SECRET,
    Redactor,
    Response,
    decode_reply,
    error_from_reply,
    inflate,
    request_id_of,
)
from .hooks import EventHooks, Observer
from .pacing import READ, Pacer, request_kind, tell
from .proxies import Proxies
from .retry import Retryable, RetryPolicy, retry_after_of, retry_loop

__all__ = ["USER_AGENT", "Transport"]

logger = logging.getLogger("evolink_async")

T = TypeVar("T")

USER_AGENT: Final = f"evolink-async/{__version__} aiohttp/{aiohttp.__version__}"


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

    Created by `EvoLinkClient`; not a public class. `view(...)` makes a
    transport with other per-request options (timeout, retries, headers)
    over the same session, slots and 429 pause: the root transport owns
    those, its views only point at it. Closing a transport closes its views
    (and theirs); closing a view closes nothing of the root.
    """

    def __init__(
        self,
        *,
        api_key: str | None,
        max_concurrency: int,
        retry: RetryPolicy,
        timeout: aiohttp.ClientTimeout,
        session: aiohttp.ClientSession | None,
        headers: Mapping[str, str] | None = None,
        proxies: Proxies | None = None,
        hooks: EventHooks | None = None,
        telemetry: Telemetry = GLOBAL,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self._root = self
        self._api_key = api_key
        self.retry = retry
        self.timeout = timeout
        self.max_concurrency = max_concurrency
        self._session = session
        self._owns_session = session is None
        self._semaphore: _Slots | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Per kind of request (`request_kind`), the `time.monotonic()` before
        #: which none is sent (a 429's Retry-After).
        self._paused_until: dict[str, float] = {}
        #: Per kind of request, what paces each of its attempts (`pace`).
        self._pacers: dict[str, Pacer] = {}
        self._sleep = sleep
        self._redactor = Redactor(api_key) if api_key else NO_SECRET
        self._rng = random.Random()  # noqa: S311 -- jitter, not cryptography
        self.closed = False
        self._views: weakref.WeakSet[Transport] = weakref.WeakSet()
        #: The client's `default_headers`: in the session the transport makes,
        #: else sent with each request.
        self._default_headers: Mapping[str, str] = dict(headers or {})
        #: A view's own headers (`with_options(headers=...)`), sent with each request.
        self._view_headers: Mapping[str, str] | None = None
        self._proxies = proxies if proxies is not None and proxies.active else None
        self.hooks = hooks
        self.telemetry = telemetry
        # A session the transport makes carries the Authorization header as a
        # default header (aiohttp then merges nothing per request), and result
        # downloads get a second session without it: the CDN never sees the
        # key. A caller's session gets the header on each request instead.
        self._auth_in_session = False
        self._bound: tuple[aiohttp.ClientSession, _Slots] | None = None
        self._download_session: aiohttp.ClientSession | None = None
        # The headers of a request without body or headers of its own, built once.
        self._plain_headers: CIMultiDictProxy[str] | None = None

    def view(
        self,
        *,
        retry: RetryPolicy,
        timeout: aiohttp.ClientTimeout,
        headers: Mapping[str, str] | None,
    ) -> Transport:
        """
        A transport over this one's session, slots and 429 pause with other
        per-request options; `headers` go on top of this transport's own.
        """
        if self.closed:
            raise self._closed_error()
        view = copy.copy(self)
        # What only the root holds (its sessions and slots) stays the root's.
        view._session = view._download_session = view._semaphore = view._bound = None
        view._owns_session = False
        view.retry = retry
        view.timeout = timeout
        view._rng = random.Random()  # noqa: S311 -- jitter, not cryptography
        view._views = weakref.WeakSet()
        view._plain_headers = None
        if headers:
            view._view_headers = {**(self._view_headers or {}), **headers}
        self._views.add(view)
        return view

    # -- lifecycle ---------------------------------------------------------

    def _closed_error(self) -> ClientClosedError:
        return ClientClosedError(
            "this EvoLinkClient is closed; create a new one (a closed client is not reopened)"
        )

    def bind(self) -> tuple[aiohttp.ClientSession, _Slots]:
        """The session and semaphore, made on first use inside the running loop."""
        if self.closed:
            raise self._closed_error()
        root = self._root
        loop = asyncio.get_running_loop()
        if root._loop is None:
            root._loop = loop
        elif root._loop is not loop:
            raise RuntimeError(
                "this EvoLinkClient was first used in another event loop; an aiohttp session "
                "belongs to one loop, so create one client per loop (e.g. per asyncio.run)"
            )
        if root._semaphore is None:
            root._semaphore = _Slots(root.max_concurrency)
        if root._session is None:
            headers = {"User-Agent": USER_AGENT, **root._default_headers}
            if root._api_key:
                headers["Authorization"] = f"Bearer {root._api_key}"
                root._auth_in_session = True
            root._session = aiohttp.ClientSession(
                timeout=root.timeout,
                headers=headers,
                connector=aiohttp.TCPConnector(limit=max(100, 2 * root.max_concurrency)),
            )
        root._bound = (root._session, root._semaphore)
        return root._bound

    def download_session(self) -> aiohttp.ClientSession:
        """
        The session for result downloads: never one that carries the key or
        the client's `default_headers`.

        The caller's session when the client was given one (the SDK adds the
        key and headers per API request there, never to that session), else
        a second session the transport makes on first use.
        """
        session, _ = self.bind()
        root = self._root
        if not root._auth_in_session and not (root._owns_session and root._default_headers):
            return session
        if root._download_session is None:
            root._download_session = aiohttp.ClientSession(
                timeout=root.timeout,
                headers={"User-Agent": USER_AGENT},
                connector=aiohttp.TCPConnector(limit=max(16, root.max_concurrency)),
            )
        return root._download_session

    def proxy_for(self, url: str) -> str | None:
        """The proxy a request to `url` goes through (None: direct)."""
        return None if self._proxies is None else self._proxies.for_url(url)

    @property
    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session (created on first use)."""
        return self.bind()[0]

    @property
    def has_open_session(self) -> bool:
        """True when this transport made a session that is not closed yet (never for a view)."""
        return any(not session.closed for session in self._own_sessions())

    def _own_sessions(self) -> list[aiohttp.ClientSession]:
        if self._root is not self:
            return []
        sessions = [self._download_session] if self._download_session is not None else []
        if self._owns_session and self._session is not None:
            sessions.append(self._session)
        return sessions

    def _mark_closed(self) -> None:
        self.closed = True
        for view in list(self._views):
            view._mark_closed()

    async def aclose(self) -> None:
        """
        Close the sessions this transport made (a view's: none), and mark it
        and its views closed; idempotent.
        """
        self._mark_closed()
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

    def _added_headers(self) -> dict[str, str]:
        """What each request adds to the session's headers (the SDK's own last)."""
        root = self._root
        if root._auth_in_session:
            added = dict(self._view_headers or {})
        else:
            added = {**root._default_headers, **(self._view_headers or {})}
            added.update(self.auth_headers())
        return added

    def _make_plain_headers(self) -> CIMultiDictProxy[str]:
        self._plain_headers = CIMultiDictProxy(CIMultiDict(self._added_headers()))
        return self._plain_headers

    # -- rate-limit pause ----------------------------------------------------

    def pause_for(self, seconds: float, kind: str = READ) -> None:
        """
        Hold every request of the client of `kind` for `seconds` (a 429's
        Retry-After); requests of other kinds go on.
        """
        paused = self._root._paused_until
        until = time.monotonic() + seconds
        paused[kind] = max(paused.get(kind, 0.0), until)

    def paused_for(self, kind: str) -> float:
        """Seconds requests of `kind` are still held for (0: none)."""
        return max(0.0, self._root._paused_until.get(kind, 0.0) - time.monotonic())

    def pace(self, kind: str, pacer: Pacer) -> Pacer:
        """
        Pace every attempt of `kind` (retries included) with `pacer` from now
        on, for the whole client; returns the pacer in place (an earlier
        one, if there is one: one key, one rate).
        """
        return self._root._pacers.setdefault(kind, pacer)

    async def _wait_pause(self, kind: str) -> None:
        paused = self._root._paused_until
        while True:
            delay = paused.get(kind, 0.0) - time.monotonic()
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
        read: Callable[[Response], T],
        body: bytes | None = None,
        form: Callable[[], aiohttp.FormData] | None = None,
        headers: Mapping[str, str] | None = None,
        retry_safe: bool = True,
        max_retries: int | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> T:
        """
        Send one API request with retries; return `read(reply)`.

        `read` turns the decoded reply into the value the caller wants; a
        `MalformedReplyError` from it (or from decoding) is retried like a
        5xx. `path` is what logs and errors show of the URL (never a query
        string). `form` builds a multipart body afresh for each attempt
        (aiohttp sends a FormData once). `retry_safe=False` sends at most
        once; `max_retries` overrides the policy's count (the watcher polls
        with 0 and reschedules instead). Event hooks and counters, when
        there are any, see every attempt and retry.

        Raises:
            APIError: a subclass per HTTP status, once retries are spent.
            APIConnectionError: no reply, once retries are spent.
            Exception: whatever an event hook raised.
        """
        root = self._root
        bound = root._bound
        if bound is None or self.closed or root._loop is not asyncio.get_running_loop():
            bound = self.bind()
        send_headers = self._headers(body, headers)
        proxy = None if self._proxies is None else self._proxies.for_url(url)
        policy = self.retry
        if not retry_safe:
            max_retries = 0
        elif max_retries is None:
            max_retries = policy.max_retries
        counters = self.telemetry.counters()
        observer = None
        if self.hooks is not None or counters is not None:
            observer = Observer(self.hooks, counters, method=method, url=url, route=path)
        kind = request_kind(path)
        attempt_args = (bound, method, url, path, kind, body, form, send_headers, timeout, proxy)
        # The first attempt goes straight, with no loop and no closure: it is
        # the only attempt of almost every request.
        try:
            if observer is None:
                return read(await self._send_once(*attempt_args))
            return await self._observed(observer, 1, attempt_args, read)
        except MalformedReplyError as unreadable:
            first = Retryable(unreadable)
        except Retryable as failure:
            first = failure
        met_429 = self._met(first, kind)
        if max_retries == 0:
            # Polls: one attempt (the watcher reschedules).
            raise first.error

        async def attempt(retry: int) -> T:
            nonlocal met_429
            try:
                if observer is None:
                    response = await self._send_once(*attempt_args)
                    if met_429:
                        response = response._replace(rate_limited=True)
                    return read(response)
                return await self._observed(observer, retry + 1, attempt_args, read, met_429)
            except MalformedReplyError as unreadable:
                raise Retryable(unreadable) from None
            except Retryable as failure:
                met_429 = self._met(failure, kind) or met_429
                raise

        return await retry_loop(
            attempt,
            policy=policy,
            max_retries=max_retries,
            sleep=self._sleep,
            rng=self._rng,
            what=f"{method} {path}",
            failed=first,
            on_retry=None if observer is None else observer.retry,
        )

    async def _observed(
        self,
        observer: Observer,
        attempt: int,
        attempt_args: tuple[Any, ...],
        read: Callable[[Response], T],
        rate_limited: bool = False,
    ) -> T:
        """One attempt with its hooks and counters around it."""
        started = await observer.before(attempt)
        try:
            response = await self._send_once(*attempt_args)
            if rate_limited:
                response = response._replace(rate_limited=True)
            value = read(response)
        except Retryable as failure:
            await observer.after(attempt, started, error=failure.error)
            raise
        except EvoLinkError as error:
            await observer.after(attempt, started, error=error)
            raise
        await observer.after(
            attempt, started, status=response.status, request_id=response.request_id
        )
        return value

    def _met(self, failure: Retryable, kind: str) -> bool:
        """True for a 429, whose Retry-After then pauses the client's requests of `kind`."""
        error = failure.error
        if not (isinstance(error, APIError) and error.status == 429):
            return False
        after = failure.retry_after
        if after is not None and after <= self.retry.max_retry_after:
            self.pause_for(after, kind)
        return True

    def _headers(
        self, body: bytes | None, headers: Mapping[str, str] | None
    ) -> Mapping[str, str] | None:
        """The headers of one request; the SDK's Content-Type wins over any other."""
        if self._root._auth_in_session and self._view_headers is None:
            if body is not None:
                return {**(headers or {}), "Content-Type": "application/json"}
            return headers
        if body is None and not headers:
            return self._plain_headers or self._make_plain_headers()
        send_headers = self._added_headers()
        if headers:
            send_headers.update(headers)
        if body is not None:
            send_headers["Content-Type"] = "application/json"
        return send_headers

    async def _send_once(
        self,
        bound: tuple[aiohttp.ClientSession, _Slots],
        method: str,
        url: str,
        path: str,
        kind: str,
        body: bytes | None,
        form: Callable[[], aiohttp.FormData] | None,
        headers: Mapping[str, str] | None,
        timeout: aiohttp.ClientTimeout | None,
        proxy: str | None,
    ) -> Response:
        """
        One attempt: a slot, the request, the body read (capped), the reply decoded.

        No aiohttp exception is chained to the error raised: its request
        info holds the Authorization header, and error reporters serialise
        causes.

        Raises:
            Retryable: a failure the policy retries (wrapping its error).
            APIError: a status the policy does not retry.
            MalformedReplyError: a reply the SDK cannot read.
            APIConnectionError: an invalid URL.
            ClientClosedError: the client was closed meanwhile.
        """
        session, slots = bound
        root = self._root
        if root._paused_until:
            await self._wait_pause(kind)
        pacer = root._pacers.get(kind) if root._pacers else None
        if pacer is not None:
            await pacer.take()
            try:
                response = await self._send_paced(
                    session, slots, method, url, path, body, form, headers, timeout, proxy
                )
            except Retryable as failure:
                tell(pacer, failure.error, failure.retry_after)
                raise
            except APIError as error:
                tell(pacer, error, None)
                raise
            except BaseException:
                pacer.lost()
                raise
            pacer.answered(rate_limited=False, retry_after=None)
            return response
        return await self._send_paced(
            session, slots, method, url, path, body, form, headers, timeout, proxy
        )

    async def _send_paced(
        self,
        session: aiohttp.ClientSession,
        slots: _Slots,
        method: str,
        url: str,
        path: str,
        body: bytes | None,
        form: Callable[[], aiohttp.FormData] | None,
        headers: Mapping[str, str] | None,
        timeout: aiohttp.ClientTimeout | None,
        proxy: str | None,
    ) -> Response:
        """`_send_once` past its pause and pacer."""
        if self.closed:
            raise self._closed_error()
        debug = logger.isEnabledFor(logging.DEBUG)
        started = time.monotonic() if debug else 0.0
        failure: APIConnectionError | None = None
        retry = True
        try:
            if not slots.try_take():
                await slots.take()
            try:
                async with session.request(
                    method,
                    url,
                    data=form() if form is not None else body,
                    headers=headers,
                    timeout=timeout or self.timeout,
                    allow_redirects=False,
                    # Inflated here, within MAX_REPLY_BYTES (see decode.inflate).
                    auto_decompress=False,
                    proxy=proxy,
                ) as resp:
                    length = resp.content_length
                    if length is not None and length <= MAX_REPLY_BYTES:
                        # aiohttp reads no more than the Content-Length.
                        payload = await resp.read()
                    else:
                        payload = await _read_capped(resp, length)
                    status = resp.status
                    resp_headers = resp.headers
            finally:
                slots.give()
        except (TimeoutError, aiohttp.ServerTimeoutError):
            failure = APITimeoutError(
                f"{method} {path} timed out after {_describe_timeout(timeout or self.timeout)}"
            )
        except aiohttp.InvalidURL:
            failure, retry = APIConnectionError(f"{method} {path}: invalid URL"), False
        except RuntimeError:
            # aiohttp's "Session is closed": the client was closed while this
            # request waited for a slot or was on its way.
            if not session.closed:
                raise
            failure, retry = APIConnectionError(f"{method} {path}: session closed"), False
        except aiohttp.ClientError as exc:
            failure = APIConnectionError(
                f"{method} {path}: connection failed ({type(exc).__name__})"
            )
        if failure is not None:
            # Raised outside the handler, so no aiohttp object is the context.
            if session.closed or self.closed:
                # The connection broke because the client closed it: no retry.
                raise self._closed_error()
            if not retry:
                raise failure
            raise Retryable(failure)
        if debug:
            logger.debug(
                "%s %s -> %d (%.1f ms, request id %s)",
                method,
                path,
                status,
                (time.monotonic() - started) * 1000,
                printable(request_id_of(resp_headers, self._redactor)),
            )
        encoding = resp_headers.get("Content-Encoding")
        if encoding is not None:
            payload = inflate(payload, encoding)
        if 200 <= status < 300:
            return decode_reply(
                status, resp_headers, payload, method=method, path=path, redactor=self._redactor
            )
        payload = self._redactor.data(payload)
        request_id = request_id_of(resp_headers, self._redactor)
        error = error_from_reply(status, resp_headers, payload, request_id)
        if status not in self.retry.retry_statuses:
            raise error
        retry_after = retry_after_of(status, resp_headers, error.fallback_suggestion, error.message)
        raise Retryable(error, retry_after=retry_after)


async def _read_capped(resp: aiohttp.ClientResponse, length: int | None) -> bytes:
    """
    A body without a Content-Length (or with one over the cap), as sent
    (still compressed, if it is), at most `MAX_REPLY_BYTES`.
    """
    if length is not None:
        raise MalformedReplyError(f"reply of {length} bytes, over {MAX_REPLY_BYTES}")
    chunks = []
    size = 0
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            raise MalformedReplyError(f"reply over {MAX_REPLY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _describe_timeout(timeout: aiohttp.ClientTimeout) -> str:
    if timeout.total is not None:
        return f"{timeout.total:g}s"
    if timeout.sock_read is not None:
        return f"{timeout.sock_read:g}s without data"
    return "the configured timeout"
