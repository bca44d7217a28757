"""
The watcher's poll budget, as pure controllers: a clock reading in, numbers out.

- `TokenBucket`: the poll budget of the whole client, at the rate the
  server allows (`rate.RateControl`, within `PollPolicy.max_polls_per_second`).
- `Pressure`: the share of `PollPolicy.latency_weight` the planner plans
  with. Over each window, if polls used more than `BUSY_UTILIZATION` of the
  budget or more than `LATE_SHARE` of them went out late (later than
  `LATE_FRACTION` of their planned interval: the budget, the in-flight cap or
  a busy event loop held them back), pressure is multiplied by `EASE`; once a
  window used less than `CALM_UTILIZATION` with almost nothing late, it is
  divided by it, up to 1 (the policy's own plan). Planning to leave headroom
  keeps polls on time, so the ones that matter (around each task's expected
  finish) are not queued behind the ones that do not.

None of these sleeps or reads a clock; the watcher hands them its own.
`PollGate` is the one exception's shape: a budget shared with other
processes (`SharedBudget`) that the watcher also asks before each poll.
"""

from __future__ import annotations

import logging
from typing import Final, Protocol

__all__ = [
    "BUSY_UTILIZATION",
    "CALM_UTILIZATION",
    "EASE",
    "LATE_FRACTION",
    "LATE_SHARE",
    "MAX_PRESSURE",
    "MIN_PRESSURE",
    "START_POLL_RATE",
    "WINDOW_POLLS",
    "WINDOW_SENT",
    "PollGate",
    "Pressure",
    "TokenBucket",
]

logger = logging.getLogger("evolink_async")

#: Polls per second a watcher with no `max_polls_per_second` starts at; it
#: grows from there while polls wait for it (see `rate.RateControl`).
START_POLL_RATE: Final = 50.0
#: Pressure eases past this share of the budget, and comes back under the
#: calm one. The budget is paced (no bursts), so a poll queues only a few
#: token intervals behind the others even at 95 %: headroom above that
#: would be polls the server allows and the watcher does not make.
BUSY_UTILIZATION: Final = 0.95
CALM_UTILIZATION: Final = 0.85
LATE_FRACTION: Final = 0.1
LATE_SHARE: Final = 0.1
#: A window lasts `min_interval`, and at least as long as the budget takes
#: for this many polls, so that one window's share is not noise.
WINDOW_POLLS: Final = 100
#: ... and holds at least this many polls sent: with a budget far above
#: the polls planned, a window of a few milliseconds would judge the share
#: late on a handful of polls.
WINDOW_SENT: Final = 50
#: Per window, pressure is multiplied by EASE when busy, divided by it when
#: calm, within [MIN_PRESSURE, 1], or up to MAX_PRESSURE where the budget is
#: the server's own limit (no `max_polls_per_second`): polls it allows and
#: the watcher does not make are detection latency given away.
EASE: Final = 0.8
MIN_PRESSURE: Final = 1 / 16
MAX_PRESSURE: Final = 4.0


class PollGate(Protocol):
    """A poll budget beyond the watcher's own, e.g. one shared by many processes."""

    def take_poll(self) -> bool:
        """Use one poll token held here; False when `refill_polls` must run first."""
        ...

    async def refill_polls(self) -> None:
        """Get more poll tokens, waiting until they may be used."""
        ...

    def rate_limited(self, kind: str) -> None:
        """A request of `kind` ("poll", "create") met a 429: adapt the shared rate."""
        ...


class TokenBucket:
    """A token bucket: `rate` tokens a second, at most a tenth of a second's saved up."""

    __slots__ = ("stamp", "tokens")

    def __init__(self, rate: float, now: float) -> None:
        self.tokens = _burst(rate)
        self.stamp = now

    def delay(self, now: float, rate: float) -> float:
        """Seconds until a token is there at `rate` (0: one was taken now)."""
        self.tokens = min(_burst(rate), self.tokens + (now - self.stamp) * rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / rate


def _burst(rate: float) -> float:
    # A tenth of a second's worth: enough to absorb timer jitter, small
    # enough that no one second sees much more than the budget.
    return max(1.0, rate / 10)


class Pressure:
    """The planning pressure, adjusted once per window of polls sent."""

    __slots__ = ("_late", "_polls", "_start", "value")

    def __init__(self) -> None:
        self.value = 1.0
        self._start: float | None = None
        self._polls = 0
        self._late = 0

    def sent(
        self,
        now: float,
        *,
        late: bool,
        budget: float,
        min_interval: float,
        ceiling: float = 1.0,
    ) -> float:
        """
        Count one poll sent at `now` (`late` if it went out late, `budget`
        the polls per second allowed now); at the end of each window adjust
        the pressure, up to `ceiling` (above 1: a budget with room to spare
        is spent, on denser polls where tasks are likely to finish). Returns
        the pressure to plan with.
        """
        start = self._start
        if start is None:
            self._start = start = now
        self._polls += 1
        self._late += late
        span = now - start
        if span < min_interval or span * budget < WINDOW_POLLS or self._polls < WINDOW_SENT:
            return self.value
        used = self._polls / (budget * span)
        late_share = self._late / self._polls
        pressure = self.value
        if used > BUSY_UTILIZATION or late_share > LATE_SHARE:
            pressure = max(MIN_PRESSURE, pressure * EASE)
        elif used < CALM_UTILIZATION and late_share <= LATE_SHARE / 4:
            pressure = min(max(1.0, ceiling), pressure / EASE)
        elif pressure > ceiling:
            pressure = max(ceiling, pressure * EASE)
        if pressure != self.value:
            logger.debug(
                "poll planning pressure %.2f -> %.2f (%.0f%% of the budget used, %.0f%% late)",
                self.value,
                pressure,
                used * 100,
                late_share * 100,
            )
            self.value = pressure
        self._start = now
        self._polls = 0
        self._late = 0
        return pressure
