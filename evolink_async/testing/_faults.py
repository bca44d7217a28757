"""
Faults the mock server can inject: `Fault` (the kinds), `FaultPlan` (random
faults at given rates) and the queue of one-off faults `MockEvoLink.inject`
adds.

At most one fault hits a request. Queued faults come first (oldest first);
otherwise one random draw against the plan's cumulative rates picks a kind
(so the rates must sum to at most 1).
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterable, Mapping

import attrs

__all__ = ["Fault", "FaultPlan", "Injection", "is_api_route", "pick_fault"]

#: Route keys that take part in a plan when `FaultPlan.routes` is None: the
#: API (`/v1/...`), not the files API nor downloads.
API_PREFIX = "/v1/"

CREATE_ROUTE = "POST /v1/videos/generations"


def is_api_route(route: str) -> bool:
    """True for the route key of an API route (path under `/v1/`)."""
    return route.partition(" ")[2].startswith(API_PREFIX)


class Fault(enum.StrEnum):
    """
    A kind of fault; the values are the keys of `MockStats.faults_injected`.

    - `RATE_LIMIT`: HTTP 429, `Retry-After` header, `rate_limit_error` body.
    - `SERVER_ERROR`: HTTP 500/502/503 with the documented body for the status.
    - `DROP_BEFORE`: the connection is closed before anything is done; no
      HTTP reply at all.
    - `DROP_AFTER`: the request is handled (a create makes its task and
      records its Idempotency-Key), then the connection is closed with no
      reply. On a video download, half the body is sent first.
    - `SLOW`: handled normally, the reply held back for a delay.
    - `REPLY`: exactly the given status, body and headers (hostile replies).
    """

    RATE_LIMIT = "rate_limit"
    SERVER_ERROR = "server_error"
    DROP_BEFORE = "drop_before"
    DROP_AFTER = "drop_after"
    SLOW = "slow"
    REPLY = "reply"


def _probability(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be a probability in [0, 1], got {value!r}")


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _optional_non_negative(
    _: object, attribute: attrs.Attribute[float | None], value: float | None
) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _statuses(
    _: object, attribute: attrs.Attribute[tuple[int, ...]], value: tuple[int, ...]
) -> None:
    if not value or any(not 500 <= s <= 599 for s in value):
        raise ValueError(f"{attribute.name} must be a non-empty tuple of 5xx statuses")


def _route_set(routes: Iterable[str] | None) -> frozenset[str] | None:
    return None if routes is None else frozenset(routes)


@attrs.frozen(kw_only=True)
class FaultPlan:
    """
    Random faults: each rate is the probability that one request gets that
    fault.

    The kinds exclude each other (one draw per request), so the rates must
    sum to at most 1. `drop_after` only hits creates
    (`POST /v1/videos/generations`); on other routes that share of the draw
    means no fault.

    Args:
        rate_limit: share of requests answered 429.
        server_error: share answered with a status from
            `server_error_statuses` (picked at random).
        drop_before: share whose connection is closed before any handling.
        drop_after: share of creates whose task is made, then the connection
            closed without a reply.
        slow: share whose reply is delayed by `slow_delay`.
        slow_delay: the delay in real seconds (not scaled by `time_scale`).
        retry_after: the 429's `Retry-After` in seconds; None means 60 s times
            the mock's `time_scale`.
        server_error_statuses: the statuses `server_error` picks from.
        routes: the route keys the plan applies to (e.g.
            `{"POST /v1/videos/generations"}`); None means every `/v1/` route.
    """

    rate_limit: float = attrs.field(default=0.0, validator=_probability)
    server_error: float = attrs.field(default=0.0, validator=_probability)
    drop_before: float = attrs.field(default=0.0, validator=_probability)
    drop_after: float = attrs.field(default=0.0, validator=_probability)
    slow: float = attrs.field(default=0.0, validator=_probability)
    slow_delay: float = attrs.field(default=1.0, validator=_non_negative)
    retry_after: float | None = attrs.field(default=None, validator=_optional_non_negative)
    server_error_statuses: tuple[int, ...] = attrs.field(
        default=(500, 502, 503), converter=tuple, validator=_statuses
    )
    routes: frozenset[str] | None = attrs.field(default=None, converter=_route_set)

    def __attrs_post_init__(self) -> None:
        total = self.rate_limit + self.server_error + self.drop_before + self.drop_after + self.slow
        if total > 1.0 + 1e-9:
            raise ValueError(f"fault rates must sum to at most 1, got {total:g}")

    def applies_to(self, route: str) -> bool:
        """True when requests to `route` (a route key) take part in this plan."""
        if self.routes is None:
            return is_api_route(route)
        return route in self.routes


@attrs.define(kw_only=True, slots=True)
class Injection:
    """One queued fault from `MockEvoLink.inject`, with the uses left."""

    fault: Fault
    route: str | None
    remaining: int
    status: int | None = None
    body: bytes | str | Mapping[str, object] | None = None
    headers: Mapping[str, str] | None = None
    delay: float | None = None
    retry_after: float | str | None = None

    def matches(self, route: str, *, is_api: bool) -> bool:
        """True when this injection applies to a request to `route`."""
        return is_api if self.route is None else self.route == route


def pick_fault(
    queue: list[Injection],
    plan: FaultPlan | None,
    rng: random.Random,
    route: str,
    *,
    is_api: bool,
) -> Injection | None:
    """
    The fault for one request to `route`, or None.

    Consumes one use of the first matching queued injection; otherwise draws
    once from `plan` (rng is only touched when a plan applies to the route).
    """
    if queue:
        for index, injection in enumerate(queue):
            if injection.matches(route, is_api=is_api):
                injection.remaining -= 1
                if injection.remaining <= 0:
                    del queue[index]
                return injection
    if plan is None or not plan.applies_to(route):
        return None
    draw = rng.random()
    edge = plan.drop_before
    if draw < edge:
        return Injection(fault=Fault.DROP_BEFORE, route=route, remaining=0)
    edge += plan.rate_limit
    if draw < edge:
        return Injection(
            fault=Fault.RATE_LIMIT, route=route, remaining=0, retry_after=plan.retry_after
        )
    edge += plan.server_error
    if draw < edge:
        status = rng.choice(plan.server_error_statuses)
        return Injection(fault=Fault.SERVER_ERROR, route=route, remaining=0, status=status)
    edge += plan.slow
    if draw < edge:
        return Injection(fault=Fault.SLOW, route=route, remaining=0, delay=plan.slow_delay)
    edge += plan.drop_after
    if draw < edge and route == CREATE_ROUTE:
        return Injection(fault=Fault.DROP_AFTER, route=route, remaining=0)
    return None
