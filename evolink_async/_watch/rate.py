"""
`RateControl`: finds the rate a server allows one kind of request (polls, or
creates) and paces just under it. Pure: clock readings in, a rate out.

The server is taken to be a token bucket (some rate R, some burst), the way
per-key limits are commonly built (the mock's `RateLimit` is one): a 429
means its bucket is empty. Between two 429s the bucket went from empty to
empty, so the requests it let through in between, over the time between,
is R, less what other clients of the key took: exactly the share left to
this one, whatever the burst. The controller:

- starts at `start` and, until the first 429, doubles its rate for every
  second it is saturated (requests waited for it, or used most of it); a
  rate that is not used does not grow;
- cuts the rate on a 429 only when its request was sent after the last cut
  (the replies to the requests in flight at a cut come first: those were
  on their way before the controller reacted), and once `MIN_GRANTS`
  requests were let through since, or `STILL_OVER` more 429s came (until
  then the rate is still coming down, and there is nothing to measure);
- a cut measures the rate granted since the latest 429 (of the last
  `MEASURE_WINDOW` seconds) with `MIN_GRANTS` let through since (one fewer, so a
  short interval errs low) and sits at `SIT` of it; with nothing to measure
  (the first cut) it multiplies the rate by `DECREASE`, and a coarse measure
  (fewer than `MIN_GRANTS` requests) is trusted only as far as that;
- after a measured cut holds the rate for `HOLD_REQUESTS` requests of
  saturated use (at least `HOLD_SECONDS`, at most `HOLD_MAX_SECONDS`), then
  probes: the rate grows by a factor that rises with the probe's age
  (`exp(PROBE * t**2 / 2)` after `t` seconds), gently at first, so the next
  429 comes late and alone, and quickly later, so a rate cut too far (or a
  share another client left) is won back in seconds. After a blind or
  coarse cut it probes at once;
- sharing a key, a client's measure is its own share. Its hold and its
  probe are scaled by its reach (the most it was measured to get, or its
  first cut's rate): it holds for `HOLD_REQUESTS` requests at its reach,
  and its probe adds `reach * (exp(PROBE * t**2 / 2) - 1)` to the held
  rate. A client cut to a small share thus holds no longer, in time, than
  one holding the whole limit, and climbs back towards its reach as fast:
  a share another client leaves is taken up in seconds (with one client,
  reach and rate are one). A measure over more than `MEASURE_WINDOW` (no
  429 in it) that would cut deeper than the blind cut is not trusted (the
  share changed over so long an interval: the others used the key
  differently throughout): the cut is blind, and it probes at once;
- stays within [`floor`, `ceiling`] (the floor: a quarter of the start,
  unless told otherwise).

Against a token-bucket server that holds a second of tokens this gives one
to three 429s per probe, one probe every few hundred requests: well under
1 % of requests, while the rate averages 95-100 % of the limit
(`tests/test_rate_control.py` simulates such a server).

Retry-After is honoured by whoever sends (the transport holds every request
of the kind that met it, see `Transport.pause_for`); `RateControl.blocked`
tells a pacer the same, so it does not queue requests to go out together.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from typing import Final

__all__ = [
    "BUSY_SHARE",
    "BUSY_WINDOW",
    "DECREASE",
    "FLOOR_SHARE",
    "HOLD_MAX_SECONDS",
    "HOLD_REQUESTS",
    "HOLD_SECONDS",
    "MAX_GROWTH",
    "MEASURE_WINDOW",
    "MIN_GRANTS",
    "PROBE",
    "SIT",
    "RateControl",
]

logger = logging.getLogger("evolink_async")

#: Share of the measured rate the controller sits at: the server's bucket
#: refills by the rest, so a little jitter does not meet a 429.
SIT: Final = 0.97
#: Requests sent at the measured rate before probing above it: each probe
#: ends in a 429 or three, so this sets their share (well under 1 %).
HOLD_REQUESTS: Final = 300
#: ... and at least this long, so a fast rate does not probe all the time.
HOLD_SECONDS: Final = 2.0
#: ... and at most this long, so a rate cut far below the limit comes back.
HOLD_MAX_SECONDS: Final = 15.0
#: Probe growth: after t seconds of probing the rate is the held rate times
#: exp(PROBE * t**2 / 2): +0.5 % after 1 s, +13 % after 5 s, x1.6 after 10 s.
PROBE: Final = 0.01
#: The probe's growth exponent stops here (the rate is e**20 times the
#: held one by then: far past any ceiling), so it never overflows.
MAX_GROWTH: Final = 20.0
#: The measure spans the events of this many seconds: long enough for a
#: precise count, short enough that a server bucket that filled up (and
#: wasted tokens the count then misses) does not drag it down for long.
MEASURE_WINDOW: Final = 10.0
#: Requests let through between events before their count is a measure:
#: fewer say little (one more or less is a large share of them).
MIN_GRANTS: Final = 16
#: 429s of requests sent since the last cut that show it was not enough,
#: before `MIN_GRANTS` requests were let through.
STILL_OVER: Final = 3
#: 429s remembered to measure from (the window's oldest is what counts).
MAX_POINTS: Final = 256
#: The rate never falls under this share of where it started (unless told
#: a floor): 429s that are not a rate limit (a server's hiccups, another
#: client's bursts) must not wear it down to nothing.
FLOOR_SHARE: Final = 0.25
#: The cut on a 429 with no measure to go by (the first).
DECREASE: Final = 0.5
#: A rate grows only while saturated: a request waited for it, or at least
#: BUSY_SHARE of it was used, within the last BUSY_WINDOW seconds.
BUSY_WINDOW: Final = 1.0
BUSY_SHARE: Final = 0.8


class RateControl:
    """
    The rate (requests per second) one kind of request may go out at.

    Feed it every request sent (`sent`), let through (`accepted`) and
    refused with a 429 (`rate_limited`), and `waited` when a request had to
    wait for the rate; read `rate` (and `blocked`) before sending.
    """

    __slots__ = (
        "_accepted",
        "_base",
        "_before_cut",
        "_cuts",
        "_event_accepted",
        "_event_at",
        "_events",
        "_held",
        "_over",
        "_probe_from",
        "_reach",
        "_waited_at",
        "_window_from",
        "_window_sent",
        "blocked",
        "ceiling",
        "floor",
        "limit",
        "max_wait",
        "rate",
        "rate_limited_count",
        "sent_count",
        "what",
    )

    def __init__(
        self,
        *,
        start: float,
        ceiling: float | None = None,
        floor: float | None = None,
        max_wait: float = 60.0,
        what: str = "requests",
    ) -> None:
        self.ceiling = ceiling
        #: A Retry-After longer than this blocks nothing (the sender decides).
        self.max_wait = max_wait
        self.floor = start * FLOOR_SHARE if floor is None else min(floor, start)
        self.rate = start if ceiling is None else min(start, ceiling)
        #: The rate last measured between two 429s (None before two events).
        self.limit: float | None = None
        #: No request before this time (a 429's Retry-After).
        self.blocked = -math.inf
        self.what = what
        self.sent_count = 0
        self.rate_limited_count = 0
        self._accepted = 0
        #: (time, requests accepted until then) of recent events.
        self._events: deque[tuple[float, int]] = deque(maxlen=MAX_POINTS)
        self._event_at = -math.inf
        self._event_accepted = -MIN_GRANTS
        self._over = 0
        self._cuts = 0
        #: Replies still to come of requests sent before the last cut.
        self._before_cut = 0
        #: The rate held since the last event, and how many requests were
        #: let through at it; then the time probing began (None: not yet).
        self._base = self.rate
        self._held = 0
        self._probe_from: float | None = None
        #: The most this client was measured to get (or, before a measure,
        #: what its first cut left): the scale of its hold and its probe.
        self._reach = 0.0
        self._waited_at = -math.inf
        self._window_from = -math.inf
        self._window_sent = 0

    @property
    def cuts(self) -> int:
        """How many times a 429 lowered the rate."""
        return self._cuts

    def growing(self, now: float) -> bool:
        """
        True while the rate is still rising to a limit it has not met (no
        429 yet, under the ceiling, in use): a budget that is not short yet.
        """
        ceiling = self.ceiling
        return (
            not self._cuts
            and (ceiling is None or self.rate < ceiling)
            and now - self._waited_at <= BUSY_WINDOW
        )

    def waited(self, now: float) -> None:
        """A request waited for the rate at `now`: the rate is saturated."""
        self._waited_at = now

    def sent(self, now: float) -> None:
        """A request went out at `now`."""
        self.sent_count += 1
        span = now - self._window_from
        if span >= BUSY_WINDOW:
            # A rate mostly in use counts as saturated: demand planned to
            # leave headroom (the watcher's pressure) never quite fills it.
            if self._window_sent >= BUSY_SHARE * self.rate * span:
                self._waited_at = now
            self._window_from = now
            self._window_sent = 0
        self._window_sent += 1

    def accepted(self, now: float) -> None:
        """A request was let through (any reply but a 429)."""
        self._accepted += 1
        self._before_cut -= 1
        if now - self._waited_at > BUSY_WINDOW:
            return  # an unused rate proves nothing: leave it
        if not self._cuts:
            # Slow start: at a saturated rate r, r requests a second each
            # multiply it by 2**(1/r): twice the rate a second later.
            self._set(self.rate * 2.0 ** (1.0 / max(self.rate, 1.0)))
            self._base = self.rate
            return
        base = self._base
        scale = max(base, self._reach)
        if self._probe_from is None:
            self._held += 1
            held_for = now - self._event_at
            if held_for >= HOLD_MAX_SECONDS or (
                self._held * scale >= HOLD_REQUESTS * base and held_for >= HOLD_SECONDS
            ):
                self._probe_from = now
            return
        age = now - self._probe_from
        self._set(base + scale * math.expm1(min(MAX_GROWTH, PROBE * age * age / 2)))

    def rate_limited(self, now: float, *, in_flight: int, retry_after: float | None) -> None:
        """
        A request met a 429 at `now`, with `in_flight` others of its kind on
        their way; `retry_after` is the server's Retry-After (seconds) when
        it gave one.
        """
        self.rate_limited_count += 1
        before_cut = self._before_cut > 0
        self._before_cut -= 1
        if retry_after is not None and 0 < retry_after <= self.max_wait:
            self.blocked = max(self.blocked, now + retry_after)
        # Every 429 finds the server's bucket empty: a point to measure from.
        events = self._events
        while len(events) > 1 and now - events[0][0] > MEASURE_WINDOW:
            events.popleft()
        events.append((now, self._accepted))
        if before_cut:
            return  # on its way before the last cut: part of it
        self._over += 1
        since_cut = self._accepted - self._event_accepted
        if since_cut < MIN_GRANTS and self._over < STILL_OVER:
            return  # too soon to tell whether the last cut was enough
        previous = self.rate
        rate = self.rate * DECREASE
        measured = False
        if since_cut >= MIN_GRANTS:
            # The latest empty-bucket point with enough let through since:
            # recent (a limit that fell shows at once) and precise.
            for then, accepted_then in reversed(events):
                granted = self._accepted - accepted_then - 1
                if granted >= MIN_GRANTS and now > then:
                    self.limit = granted / (now - then)
                    # Over a longer interval than the window (the only
                    # point left), a client sharing the key measured the
                    # others' use as it changed: trusted no further than
                    # the blind cut.
                    if now - then <= MEASURE_WINDOW or SIT * self.limit >= rate:
                        rate = min(self.rate, SIT * self.limit)
                        measured = True
                    break
        elif since_cut > 1 and now > self._event_at:
            # Still over after the last cut: what came through since is a
            # coarse measure, trusted as far as the blind cut.
            seen = (since_cut - 1) / (now - self._event_at)
            rate = min(self.rate, max(rate, SIT * seen))
        self._event_at = now
        self._event_accepted = self._accepted
        self._before_cut = in_flight
        self._over = 0
        self._cuts += 1
        self._set(rate)
        self._base = self.rate
        self._held = 0
        if measured or not self._reach:
            self._reach = max(self._reach, self.rate)
        # Below a measured rate, hold; below a guess, probe at once (from
        # the guess, the probe is gentle for its first seconds anyway).
        self._probe_from = None if measured else now
        logger.info("%s rate-limited (HTTP 429): %.3g/s -> %.3g/s", self.what, previous, self.rate)

    def _set(self, rate: float) -> None:
        ceiling = self.ceiling
        if ceiling is not None:
            rate = min(rate, ceiling)
        self.rate = max(self.floor, rate)
