"""
The mock's per-key rate limit: `RateLimit` (the knobs) and `KeyBuckets`
(one token bucket for creates and one for reads per API key).

The real API publishes no numbers; these buckets let a test (or a benchmark)
give the mock a limit and count what went past it. Rates are per real
second: `time_scale` shortens tasks, not the limit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

import attrs

__all__ = ["CREATE_ROUTES", "READ_ROUTES", "KeyBuckets", "RateLimit"]

#: The routes each bucket meters, by route key.
CREATE_ROUTES: Final = frozenset({"POST /v1/videos/generations"})
READ_ROUTES: Final = frozenset(
    {"GET /v1/tasks/{id}", "POST /v1/tasks/batch", "GET /v1/tasks", "GET /v1/credits"}
)


def _rate(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not (isinstance(value, int | float) and 0 < value < math.inf):
        raise ValueError(f"{attribute.name} must be a positive number or None, got {value!r}")


@attrs.frozen(kw_only=True)
class RateLimit:
    """
    Requests per second one API key may make before the mock answers 429.

    Each key has a token bucket for creates (`POST /v1/videos/generations`)
    and one for reads (`GET /v1/tasks/{id}`, `POST /v1/tasks/batch`,
    `GET /v1/tasks`, `GET /v1/credits`); a request with no token left gets
    HTTP 429, the API's `rate_limit_error` body and a `Retry-After` of the
    seconds until the next token. None leaves that kind unlimited.

    Attributes:
        creates_per_second: tokens per second for creates.
        reads_per_second: tokens per second for reads.
        burst_seconds: each bucket holds this many seconds of tokens (at
            least one token), so a key that was idle may send a short burst.
    """

    creates_per_second: float | None = attrs.field(default=None, validator=_rate)
    reads_per_second: float | None = attrs.field(default=None, validator=_rate)
    burst_seconds: float = attrs.field(default=1.0, validator=_rate)


@attrs.define(slots=True)
class _Bucket:
    rate: float
    capacity: float
    tokens: float
    stamp: float

    def take(self, now: float) -> float:
        """0.0 when a token was taken, else the seconds until one is there."""
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class KeyBuckets:
    """The buckets of every key seen, made on a key's first metered request."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float]) -> None:
        self.limit = limit
        self._clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def take(self, key: str, route: str) -> float:
        """0.0 when `key` may make a request to `route` now, else the seconds to wait."""
        if route in CREATE_ROUTES:
            kind, rate = "create", self.limit.creates_per_second
        elif route in READ_ROUTES:
            kind, rate = "read", self.limit.reads_per_second
        else:
            return 0.0
        if rate is None:
            return 0.0
        now = self._clock()
        bucket = self._buckets.get((key, kind))
        if bucket is None:
            capacity = max(1.0, rate * self.limit.burst_seconds)
            bucket = self._buckets[key, kind] = _Bucket(rate, capacity, capacity, now)
        return bucket.take(now)
