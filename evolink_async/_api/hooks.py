"""
Event hooks: callables a client runs around each API request, by httpx's
convention (`event_hooks={"request": [...], "response": [...], "retry": [...]}`).

- Every request to the API and the files API fires them, polls of the shared
  watcher included; result downloads do not.
- Each hook gets one `RequestEvent`, a frozen value made of the method, the
  path (no query string), the attempt, the status, the time taken, the
  request id and the error: never a header, so never the API key.
- A hook may be sync or async; hooks of one kind run one after another, in
  order, in the task that makes the request.
- A hook that raises ends the call that made the request with that very
  exception, as in httpx (a note on it names the hook's kind): a `request`
  hook's before anything is sent, a `response` or `retry` hook's instead of
  any further retry. A poll of the shared watcher whose hook raises ends
  the waits on the tasks it polled with that exception.

`Observer` is what the transport runs per request when hooks or counters
are on; with neither, the transport does not make one.
"""

from __future__ import annotations

import contextlib
import inspect
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlsplit

import attrs

from .._errors import APIConnectionError, APIError, EvoLinkError, ValidationError
from .._text import short_repr

if TYPE_CHECKING:
    from .._telemetry import Counters

__all__ = [
    "HOOK_KINDS",
    "EventHooks",
    "Observer",
    "RequestEvent",
    "check_event_hooks",
    "raised_by_hook",
]

#: The kinds of hooks, in the order they fire for one attempt.
HOOK_KINDS: Final = ("request", "response", "retry")
#: Set on an exception a hook raised, so the shared watcher passes it on as it is.
_MARK: Final = "_evolink_event_hook"

EventKind = Literal["request", "response", "retry"]


@attrs.frozen(kw_only=True, slots=True)
class RequestEvent:
    """
    What an event hook is told about one attempt of one API request.

    Attributes:
        event: `"request"` (about to be sent), `"response"` (the attempt's
            outcome: a reply, or `error` without one) or `"retry"` (the
            attempt failed and will be tried again after `wait` seconds).
        method: `"GET"`, `"POST"`.
        path: the URL's path, without the query string
            (`/v1/tasks/task-unified-...`).
        route: the path's template (`/v1/tasks/{id}`), for grouping.
        attempt: 1 for the first try, 2 for the first retry, ...; for
            `"retry"`, the attempt that failed.
        status: the HTTP status (`"response"`, and `"retry"` after a reply);
            None before a reply or when none came.
        elapsed: seconds from the attempt's start (its wait for a free slot
            included) to its outcome; None for `"request"`.
        request_id: the server's request id of the reply, when it sent one.
        error: the `EvoLinkError` the attempt met (`APIError`,
            `APIConnectionError`, ...), or None.
        wait: for `"retry"`, the seconds before the next attempt; else None.
    """

    event: EventKind
    method: str
    path: str
    route: str
    attempt: int
    status: int | None = None
    elapsed: float | None = None
    request_id: str | None = None
    error: EvoLinkError | None = None
    wait: float | None = None


Hook = Callable[[RequestEvent], Any]


@attrs.frozen(slots=True)
class EventHooks:
    """A client's hooks, checked: a tuple of callables per kind."""

    request: tuple[Hook, ...] = ()
    response: tuple[Hook, ...] = ()
    retry: tuple[Hook, ...] = ()


def check_event_hooks(value: object) -> EventHooks | None:
    """
    `event_hooks=` as `EventHooks` (None when it holds no hook).

    Raises:
        ValidationError: not a mapping of the kinds in `HOOK_KINDS` to
            lists (or tuples) of callables.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValidationError(
            f"event_hooks={short_repr(value)}: must be a dict such as "
            '{"request": [...], "response": [...], "retry": [...]}, '
            f"not {type(value).__name__}"
        )
    found: dict[str, tuple[Hook, ...]] = {}
    for kind, hooks in value.items():
        if kind not in HOOK_KINDS:
            raise ValidationError(
                f"event_hooks: unknown kind {short_repr(kind)};"
                f" the kinds are {', '.join(HOOK_KINDS)}"
            )
        if isinstance(hooks, str | bytes | Mapping) or not isinstance(hooks, Iterable):
            raise ValidationError(
                f"event_hooks[{kind!r}]={short_repr(hooks)}:"
                " must be a list of functions (sync or async)"
            )
        checked = tuple(hooks)
        for hook in checked:
            if not callable(hook):
                raise ValidationError(
                    f"event_hooks[{kind!r}]: {short_repr(hook)}"
                    " is not callable (a function, sync or async)"
                )
        found[kind] = checked
    hooks_set = EventHooks(**found)
    if not (hooks_set.request or hooks_set.response or hooks_set.retry):
        return None
    return hooks_set


def raised_by_hook(exc: BaseException) -> bool:
    """True for an exception an event hook raised (passed on as it is)."""
    return getattr(exc, _MARK, False) is True


async def _run(hooks: tuple[Hook, ...], event: RequestEvent) -> None:
    for hook in hooks:
        try:
            result = hook(event)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            with contextlib.suppress(AttributeError, TypeError):  # a class without attributes
                setattr(exc, _MARK, True)
            exc.add_note(f"(raised by an evolink_async {event.event!r} event hook)")
            raise


def _path(url: str) -> str:
    try:
        return urlsplit(url).path or "/"
    except ValueError:
        return "/"


class Observer:
    """
    Hooks and counters for one API request: fired around each attempt and
    before each retry.
    """

    __slots__ = ("_attributes", "_counters", "_hooks", "_method", "_path", "_route")

    def __init__(
        self,
        hooks: EventHooks | None,
        counters: Counters | None,
        *,
        method: str,
        url: str,
        route: str,
    ) -> None:
        self._hooks = hooks
        self._counters = counters
        self._method = method
        self._route = route
        self._path = _path(url) if hooks is not None else route
        self._attributes: dict[str, str] = (
            {"http.request.method": method, "url.template": route} if counters else {}
        )

    def _event(self, kind: EventKind, attempt: int, **fields: Any) -> RequestEvent:
        return RequestEvent(
            event=kind,
            method=self._method,
            path=self._path,
            route=self._route,
            attempt=attempt,
            **fields,
        )

    async def before(self, attempt: int) -> float:
        """Fire the `request` hooks of `attempt`; return its start time."""
        hooks = self._hooks
        if hooks is not None and hooks.request:
            await _run(hooks.request, self._event("request", attempt))
        return time.monotonic()

    async def after(
        self,
        attempt: int,
        started: float,
        *,
        status: int | None = None,
        request_id: str | None = None,
        error: EvoLinkError | None = None,
    ) -> None:
        """Count the attempt and fire the `response` hooks with its outcome."""
        elapsed = time.monotonic() - started
        if isinstance(error, APIError):
            status = error.status or status
            request_id = error.request_id or request_id
        counters = self._counters
        if counters is not None:
            attributes: dict[str, str | int] = dict(self._attributes)
            if status:
                attributes["http.response.status_code"] = status
            if error is not None:
                attributes["error.type"] = type(error).__name__
            counters.requests.add(1, attributes)
            if status == 429:
                counters.rate_limits.add(1, self._attributes)
        hooks = self._hooks
        if hooks is not None and hooks.response:
            event = self._event(
                "response",
                attempt,
                status=status or None,
                elapsed=elapsed,
                request_id=request_id,
                error=error,
            )
            await _run(hooks.response, event)

    async def retry(self, failed: int, error: APIError | APIConnectionError, wait: float) -> None:
        """Count a retry; fire the `retry` hooks (attempt `failed` failed, the next in `wait` s)."""
        counters = self._counters
        if counters is not None:
            counters.retries.add(1, {**self._attributes, "error.type": type(error).__name__})
        hooks = self._hooks
        if hooks is not None and hooks.retry:
            status = error.status if isinstance(error, APIError) else None
            event = self._event(
                "retry",
                failed,
                status=status or None,
                request_id=error.request_id if isinstance(error, APIError) else None,
                error=error,
                wait=wait,
            )
            await _run(hooks.retry, event)
