"""
Retries: the policy, the one Retry-After rule, and the one attempt loop.

Every retry the SDK makes goes through here: API requests and result
downloads run `retry_loop`, and the task watcher's backoff after a failed
poll takes its wait from `RetryPolicy.delay` too. The rule for a wait:

- the backoff before retry n (0-based) is drawn uniformly from
  [0, min(max_backoff, initial_backoff * multiplier**n)] ("full jitter", so
  clients that failed together do not retry together);
- the wait is at least the server's Retry-After: the header (delta-seconds or
  an HTTP date) or, on a 429 or 503 without one, a hint in the error text
  ("retry after 30 seconds");
- a Retry-After longer than `max_retry_after` is not waited out: the request
  fails at once with the error (a `RateLimitError` carries `retry_after`),
  since sleeping for hours is the caller's decision, not the SDK's. The
  watcher, which must not end a wait over it, polls again after its
  `max_interval` instead.

The policy and the rule are pure (no clock, no sleep, no randomness of their
own); `retry_loop` takes its `sleep` and random source from the caller, so
tests can run it without sleeping.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import attrs

from .._checked import checked_arguments
from .._errors import APIConnectionError, APIError, Problem, ValidationError
from .._numbers import finite_number, is_whole

__all__ = [
    "RetryPolicy",
    "Retryable",
    "parse_retry_after",
    "retry_after_of",
    "retry_loop",
]

logger = logging.getLogger("evolink_async")

T = TypeVar("T")

# "retry after 60 seconds", "Retry after 30s", "please retry in 5 sec".
_RETRY_HINT: Final = re.compile(
    r"retry\s+(?:after|in)\s+(\d+(?:\.\d+)?)\s*(?:s\b|sec|second)", re.I
)
#: Statuses whose error text may carry the wait when Retry-After is missing.
_HINTED_STATUSES: Final = frozenset({429, 503})


def _refuse(field: str, value: object, rule: str) -> ValidationError:
    # A Problem shows the value safely (an int of 5,000 digits has no repr).
    return ValidationError([Problem(field=field, value=value, rule=rule)])


def _positive(_: object, attribute: attrs.Attribute[float], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _refuse(attribute.name, value, "must be a number")
    number = finite_number(value)  # None for an int beyond the float range, too
    if number is None or number <= 0:
        raise _refuse(attribute.name, value, "must be a finite number > 0")


def _non_negative_int(_: object, attribute: attrs.Attribute[int], value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _refuse(attribute.name, value, "must be a whole number >= 0")


def _statuses(value: object) -> frozenset[int]:
    """`retry_statuses` as a frozenset of HTTP statuses (whole numbers 100-599)."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise _refuse("retry_statuses", value, "must be a collection of HTTP statuses (100-599)")
    statuses = list(value)
    for status in statuses:
        if not is_whole(status) or not 100 <= status <= 599:
            raise _refuse("retry_statuses", status, "is not an HTTP status (100-599)")
    return frozenset(statuses)


@checked_arguments
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

    Raises:
        ValidationError: a field breaks its rule (also a `ValueError`).
    """

    max_retries: int = attrs.field(default=4, validator=_non_negative_int)
    initial_backoff: float = attrs.field(default=0.5, validator=_positive)
    max_backoff: float = attrs.field(default=30.0, validator=_positive)
    multiplier: float = attrs.field(default=2.0, validator=_positive)
    max_retry_after: float = attrs.field(default=300.0, validator=_positive)
    retry_statuses: frozenset[int] = attrs.field(
        default=frozenset({429, 500, 502, 503, 504}), converter=_statuses
    )

    def backoff(self, retry: int, u: float) -> float:
        """The jittered wait before retry number `retry` (0-based), given a draw `u` in [0, 1)."""
        try:
            growth = self.multiplier ** min(retry, 64)
        except OverflowError:  # a huge multiplier: the ceiling is max_backoff anyway
            growth = math.inf
        return u * min(self.max_backoff, self.initial_backoff * growth)

    def delay(self, retry: int, u: float, retry_after: float | None) -> float | None:
        """
        The wait before retry number `retry` (0-based): the jittered backoff,
        at least `retry_after`; None when `retry_after` is over
        `max_retry_after` (do not wait that long: give up now).
        """
        if retry_after is not None and retry_after > self.max_retry_after:
            return None
        wait = self.backoff(retry, u)
        return wait if retry_after is None else max(wait, retry_after)


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


def retry_hint(*texts: str | None) -> float | None:
    """Seconds named in an error text ("retry after 30 seconds"), or None."""
    for text in texts:
        if text:
            match = _RETRY_HINT.search(text)
            if match:
                return float(match.group(1))
    return None


def retry_after_of(status: int, headers: Mapping[str, str], *texts: str | None) -> float | None:
    """
    The server's Retry-After for a reply, in seconds, or None: the header,
    else (for a 429 or 503) a wait named in the error texts.
    """
    seconds = parse_retry_after(headers.get("Retry-After"))
    if seconds is None and status in _HINTED_STATUSES:
        seconds = retry_hint(*texts)
    return seconds


class Retryable(Exception):  # noqa: N818 -- a signal between an attempt and the loop, not an error
    """
    Raised by one attempt of `retry_loop` for a failure worth another try.

    `error` is what the caller sees if no try is left; `retry_after` is the
    server's advice in seconds, if any.
    """

    def __init__(
        self, error: APIError | APIConnectionError, *, retry_after: float | None = None
    ) -> None:
        super().__init__(error)
        self.error = error
        self.retry_after = retry_after


async def retry_loop(
    attempt: Callable[[int], Awaitable[T]],
    *,
    policy: RetryPolicy,
    max_retries: int,
    sleep: Callable[[float], Awaitable[Any]],
    rng: random.Random,
    what: str,
    failed: Retryable | None = None,
    on_retry: Callable[[int, APIError | APIConnectionError, float], Awaitable[None]] | None = None,
) -> T:
    """
    Run `attempt(n)` for n = 0, 1, ... until it returns; the only retry loop.

    An attempt raises `Retryable` for a failure worth another try; anything
    else it raises ends the loop as it is. After `max_retries` retries, or when
    the server asks for a wait over `policy.max_retry_after`, the last
    failure's `error` is raised. `failed` is the failure of an attempt 0 the
    caller already made (the transport sends the first attempt itself).
    `on_retry(failed, error, wait)` runs before each wait: attempt number
    `failed` (1 for the first) met `error`, the next comes in `wait` seconds.
    """
    retry = 0
    failure = failed
    while True:
        if failure is None:
            try:
                return await attempt(retry)
            except Retryable as caught:
                failure = caught
        # Raised outside the handler: the error's context stays empty.
        error = failure.error
        if retry >= max_retries:
            raise error
        wait = policy.delay(retry, rng.random(), failure.retry_after)
        if wait is None:
            raise error
        retry += 1
        logger.info(
            "%s failed (%s); retry %d of %d in %.2fs",
            what,
            _short_reason(error),
            retry,
            max_retries,
            wait,
        )
        if on_retry is not None:
            await on_retry(retry, error, wait)
        await sleep(wait)
        failure = None


def _short_reason(failure: Exception) -> str:
    if isinstance(failure, APIError) and failure.status:
        return f"HTTP {failure.status}"
    return type(failure).__name__
