"""
Every exception evolink_async raises.

The whole tree::

    EvoLinkError
    ├── ValidationError (also ValueError)      bad parameters, caught before sending
    ├── APIError                                the API refused: .status .code .type
    │   │                                       .message .param .request_id
    │   ├── BadRequestError            400
    │   │   └── IdempotencyConflictError        an Idempotency-Key reused with another body
    │   ├── AuthenticationError        401 (and: no key configured)
    │   ├── InsufficientCreditsError   402
    │   ├── PermissionDeniedError      403
    │   ├── NotFoundError              404
    │   ├── RequestTooLargeError       413
    │   ├── RateLimitError             429 .retry_after
    │   ├── ServerError                5xx
    │   ├── NotSupportedError          404/405 from an endpoint only official
    │   │                                       clients use (`GET /v1/tasks`)
    │   └── MalformedReplyError                 a 2xx reply the SDK cannot read
    ├── APIConnectionError                      network failure after retries
    │   └── APITimeoutError
    ├── ClientClosedError (also RuntimeError)   the client was closed
    ├── NotSubmittedError                       a batch job the run stopped before sending
    ├── JournalError                            a batch journal that cannot be used
    ├── TaskFailedError                         .task .code .message .retryable
    ├── TaskCancelledError                      .task
    └── WaitTimeoutError (also TimeoutError)    .task (last snapshot)

"The API refused the request" (`APIError`) and "the generation itself failed"
(`TaskFailedError`) are kept apart on purpose: the first is about the call, the
second about a task that was accepted, ran, and (usually) was not billed.

No message built here ever includes the API key: messages are made from the
server's reply and the request's method and path only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._text import short_repr

if TYPE_CHECKING:
    from ._values import Task

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "EvoLinkError",
    "IdempotencyConflictError",
    "InsufficientCreditsError",
    "JournalError",
    "MalformedReplyError",
    "NotFoundError",
    "NotSubmittedError",
    "NotSupportedError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTooLargeError",
    "ServerError",
    "TaskCancelledError",
    "TaskFailedError",
    "ValidationError",
    "WaitTimeoutError",
]


class EvoLinkError(Exception):
    """
    Base class of every exception raised by evolink_async.

    Catch this to handle anything the SDK raises; the subclasses say what went
    wrong.
    """


class ValidationError(EvoLinkError, ValueError):
    """
    Request parameters break a documented rule; nothing was sent.

    `problems` lists every broken rule of the request (not only the first), each
    a `Problem` naming the field, the offending value and the rule.
    """

    def __init__(self, problems: list[Problem] | str, *, model: str | None = None) -> None:
        if isinstance(problems, str):
            problems = [Problem(field=None, value=None, rule=problems)]
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.model = model
        super().__init__(self._render())

    def _render(self) -> str:
        head = f"invalid request for {self.model}" if self.model else "invalid request"
        if len(self.problems) == 1:
            return f"{head}: {self.problems[0]}"
        lines = "\n".join(f"  - {p}" for p in self.problems)
        return f"{head} ({len(self.problems)} problems):\n{lines}"


class Problem:
    """
    One broken rule: which field, what value, which rule.

    `field` is None for rules about the request as a whole.
    """

    __slots__ = ("field", "rule", "value")

    def __init__(self, *, field: str | None, value: object, rule: str) -> None:
        self.field = field
        self.value = value
        self.rule = rule

    def __str__(self) -> str:
        if self.field is None:
            return self.rule
        return f"{self.field}={short_repr(self.value)}: {self.rule}"

    def __repr__(self) -> str:
        return f"Problem(field={self.field!r}, value={short_repr(self.value)}, rule={self.rule!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Problem):
            return NotImplemented
        return (self.field, self.rule) == (other.field, other.rule)

    def __hash__(self) -> int:
        return hash((self.field, self.rule))


class APIError(EvoLinkError):
    """
    The API answered with an error (or with a reply the SDK cannot read).

    Attributes:
        status: the HTTP status (0 when no status applies, e.g. a malformed
            reply to a 200).
        code: the error code from the body: a string on current API pages, an
            int (the HTTP status) on older ones, None if the body had none.
        type: the error type from the body (`invalid_request_error`, ...).
        message: the human-readable message from the body.
        param: the offending parameter, when the API names one.
        request_id: the server's request id (`X-Request-Id` /
            `X-Oneapi-Request-Id`), for support tickets.
        body: the parsed error body, or the raw text when it was not JSON.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: str | int | None = None,
        type: str | None = None,  # noqa: A002 -- the API names it `type`
        param: str | None = None,
        request_id: str | None = None,
        body: Mapping[str, Any] | str | None = None,
        fallback_suggestion: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.type = type
        self.message = message
        self.param = param
        self.request_id = request_id
        self.body = body
        self.fallback_suggestion = fallback_suggestion
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [f"HTTP {self.status}"] if self.status else []
        if self.code is not None:
            parts.append(f"[{self.code}]")
        # Status 0: nothing was answered (no key configured, a reply that could
        # not be read): the message says it all.
        text = f"{' '.join(parts)}: {self.message}" if parts else self.message
        if self.param:
            text += f" (param: {self.param})"
        if self.fallback_suggestion:
            text += f" (suggestion: {self.fallback_suggestion})"
        if self.request_id:
            text += f" (request id: {self.request_id})"
        return text


class BadRequestError(APIError):
    """HTTP 400: the API rejected the parameters (or the task id's form)."""


class IdempotencyConflictError(BadRequestError):
    """An `Idempotency-Key` was reused with a different request body."""


class AuthenticationError(APIError):
    """HTTP 401, or no API key configured: set `EVOLINK_API_KEY` or pass `api_key`."""


class InsufficientCreditsError(APIError):
    """HTTP 402: not enough credits for this request; top up, then retry."""


class PermissionDeniedError(APIError):
    """HTTP 403: the model is not enabled for this API key."""


class NotFoundError(APIError):
    """HTTP 404: the task (or file) is unknown or has expired."""


class RequestTooLargeError(APIError):
    """HTTP 413: the request body is over the API's limit (64 MB)."""


class RateLimitError(APIError):
    """
    HTTP 429 after every retry: slow down.

    `retry_after` is the server's advice in seconds (from `Retry-After` or the
    error text), or None when it gave none.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class ServerError(APIError):
    """HTTP 5xx after every retry: the service is failing; try again later."""


class NotSupportedError(APIError):
    """
    The API does not serve this call: HTTP 404 or 405 from an endpoint that
    EvoLink's own clients use but its documentation does not describe
    (`GET /v1/tasks`, behind `list_tasks`).

    `status` is the 404 or 405 the API answered; nothing else went wrong,
    and retrying will not help.
    """


class MalformedReplyError(APIError):
    """
    The API answered, but with a reply the SDK cannot read: not JSON, over the
    size limit, nested too deep, a number no float holds, not the value it
    should be, or a task other than the one asked for.

    Retried like a 5xx (a create with its Idempotency-Key, so never billed
    twice); a poll that keeps getting one ends that task's waits only.
    """


class APIConnectionError(EvoLinkError):
    """
    The request never got an HTTP answer (connection refused or dropped), even
    after every retry.

    A create whose connection dropped may still have made a task; retrying
    `submit` with the same `idempotency_key` is safe and will not pay twice.
    """


class APITimeoutError(APIConnectionError):
    """The request timed out, even after every retry."""


class ClientClosedError(EvoLinkError, RuntimeError):
    """
    The `EvoLinkClient` is closed: it was used after `aclose()`, or closed
    while a wait was in progress. A closed client is not reopened; make a new
    one.
    """


class NotSubmittedError(EvoLinkError):
    """
    A batch job read but never sent, because the run stopped first (no
    credits left, Ctrl-C, `run.stop()`); re-run to send it.
    """


class JournalError(EvoLinkError):
    """
    A batch journal cannot be used: another run holds it, it is another
    program's file (left untouched), or reading or writing it failed (a full
    disk, a damaged file).

    A run refused its journal at the start sent nothing; one whose journal
    failed mid-run stops, and everything journalled before is kept.
    """


class TaskFailedError(EvoLinkError):
    """
    The task ran and failed on the server.

    Attributes:
        task: the final `Task` snapshot.
        code: the error code (`content_policy_violation`, ...), or None.
        message: the error message, or "".
        retryable: True when resubmitting the same request may succeed
            (capacity and timeout errors), False when it will fail again.
    """

    def __init__(self, task: Task) -> None:
        self.task = task
        error = task.error
        self.code = error.code if error else None
        self.message = error.message if error else ""
        self.retryable = error.retryable if error else False
        hint = " (worth resubmitting)" if self.retryable else ""
        detail = self.message or "no message"
        super().__init__(f"task {task.id} failed: [{self.code or 'unknown'}] {detail}{hint}")


class TaskCancelledError(EvoLinkError):
    """The task was cancelled on the server; `task` is the final snapshot."""

    def __init__(self, task: Task) -> None:
        self.task = task
        super().__init__(f"task {task.id} was cancelled")


class WaitTimeoutError(EvoLinkError, TimeoutError):
    """
    `wait` gave up before the task finished; the task itself goes on.

    `task` is the last snapshot seen (None if the task was never read); wait
    again with the same id to pick it up later.
    """

    def __init__(self, task_id: str, timeout: float, task: Task | None) -> None:
        self.task = task
        self.task_id = task_id
        self.timeout = timeout
        state = f"last seen {task.status.value} at {task.progress}%" if task else "never read"
        super().__init__(f"task {task_id} not finished after {timeout:g}s ({state})")
