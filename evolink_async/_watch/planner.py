"""
Deciding *when* to poll a task: a pure, sans-io planner (its knobs are
`PollPolicy`, in `policy.py`).

Nothing here does I/O, sleeps, or reads a clock: every function takes the
times it needs as arguments (the caller's monotonic clock) and returns a new
immutable value. The watcher that sleeps and fetches lives elsewhere, so the
planner is tested without a server and without sleeping::

    state = start(policy, started_at=t0, estimated_time=165)
    when = next_poll_at(policy, state, now=t0, u=random.random())
    ...  # sleep until `when`, GET the task
    state = observe(state, at=t, progress=task.progress, status=task.status)
    when = next_poll_at(policy, state, now=t, u=random.random())

The model
---------
A task's total duration ``T`` (creation to completion) is taken to be
lognormal. Its prior median is the server's ``estimated_time`` (or
`PollPolicy.default_estimate` when that is missing, zero, negative or not a
number), with log-spread `PollPolicy.estimate_spread`.

Progress re-estimates it. Progress is coarse, so a level ``p`` was reached
somewhere between the last poll that showed less and the first that showed
``p``: ``T ~ (middle of that bracket) / (p / 100)``. Its log-spread combines the
bracket's width, `PollPolicy.progress_noise` * (1 - p/100) (progress need not
grow linearly with time) and `PollPolicy.progress_noise_floor` (even 95 % may be
some way from done). Prior and progress are blended by precision (inverse
variance) in log space: a little progress barely moves the prior, much progress
or a tight bracket all but replaces it. When the two disagree by more than
`PollPolicy.conflict_threshold` combined spreads, the prior's spread is widened
until they do not: a 2400 s estimate for a task whose progress says 240 s gives
way after a poll or two. Only the highest progress level and the times that
bracket it are kept, so a task's state is a handful of numbers.

A stall is evidence too. If the last poll, ``s`` after the start, still showed
``p``, then ``T`` lies in ``(s, s / (p / 100)]``. Once ``s`` is past the latest
finish the first bracket allows, progress has slowed, and that later bracket
takes its place: a task at 52 % after 30 s and still at 52 % after 90 s is not
polled as if it were due any second.

The next interval follows Keller's optimal checking rule: checking
``sqrt(lambda * h / 2)`` times per second, ``h`` the hazard (the chance per
second of finishing now, given not finished yet), minimises expected polls +
``lambda`` * expected detection delay. Here ``lambda = latency_weight /
min(estimate, T_hat)`` (``T_hat`` the blended median): one estimated duration of
delay is worth `PollPolicy.latency_weight` polls, and a task that turns out
longer than the server said is not watched more loosely for it. The interval
``d`` solves the discrete form ``lambda * d * q(d) / 2 = 1`` (``q(d)`` the
chance of finishing within ``d`` of the last poll, by a few bisection steps):
intervals are short where finishing is likely, around the estimated finish,
and long far from it. The caller may scale ``lambda`` down (``pressure`` < 1)
while its poll budget is short: the same rule then spends fewer polls, and
leaves out the ones least likely to find the task finished.

The first poll comes after `PollPolicy.first_poll_fraction` of the estimate.
Once a task runs `PollPolicy.overdue_spread` log-spreads past its estimated
finish (judged without the stall bracket, which moves with the clock), the
model has failed (stuck progress, a long queue): each interval is then
`PollPolicy.backoff` times the last. Every interval is jittered by +/-
`PollPolicy.jitter` (from the caller's uniform draw ``u``) and kept within
``[min_interval, max_interval]`` of the last poll (the ceiling divided by
``sqrt(pressure)`` under pressure).

Scaling: every duration is derived from ``estimated_time``, elapsed time, or a
`PollPolicy` time field (`min_interval`, `max_interval`, `default_estimate`);
all other knobs and constants are ratios. Multiplying those times by ``k``
multiplies every planned delay by ``k``: a fake server at 1/100 of real
durations behaves like the real one, 100 times faster.

Tuning: fewer polls and more delay -> lower `latency_weight`; trust the
server's estimate more -> lower `estimate_spread` or higher
`conflict_threshold`; trust progress more -> lower `progress_noise`. The
defaults come from simulating tasks of lognormal duration (spread 0.3 and 0.8)
around a 165 s estimate with coarse, uneven progress: about a quarter of a
fixed 5 s poller's polls for a 95th-percentile detection delay below a fixed
10 s poller's (tests/test_poll_planner.py checks this). Without any progress
(always 0 until done) no planner can do that; this one then still matches a
fixed 15 s poller when the estimate is right.
"""

from __future__ import annotations

import math
import sys

import attrs

from .._numbers import finite_number
from .policy import PollPolicy

__all__ = [
    "PollState",
    "estimated_duration",
    "next_poll_at",
    "observe",
    "start",
]

# Numerical guards, not tuning (both are ratios, so scaling holds): a
# log-spread below _MIN_SPREAD would divide by ~0 after a perfectly tight
# progress bracket, and an elapsed time below _MIN_FRACTION of the estimate
# would take the log of ~0.
_MIN_SPREAD = 1e-3
_MIN_FRACTION = 1e-9
# Largest argument for math.exp that cannot overflow a float.
_MAX_EXP = 700.0
# Smallest positive float: keeps math.log away from 0 for degenerate inputs
# (hand-made states with zero durations), far below any real time scale.
_TINY = sys.float_info.min
# Bisection steps for the Keller interval over [min_interval, max_interval] in
# log space: 8 halvings of the default 30x range give ~1.4% precision, well
# under the default 10% jitter, for a fixed, small cost per call.
_SOLVE_STEPS = 8
_SQRT2 = math.sqrt(2.0)
# The lowest `pressure` next_poll_at plans with (a guard against 0, not tuning).
_MIN_PRESSURE = 1e-6


# -- per-task state -----------------------------------------------------------


@attrs.frozen(kw_only=True, slots=True)
class PollState:
    """
    What the planner knows about one task: a handful of numbers, no history.

    Made by `start` and advanced by `observe`; build it by hand only in tests.
    Times are on the caller's clock.

    Attributes:
        started_at: When the task was created.
        estimate: The latest usable `estimated_time` in seconds, or the
            policy's `default_estimate`.
        polls: How many polls have been observed.
        last_poll: When the last poll was made (`started_at` before any).
        gap: Seconds from the poll before the last (or from `started_at`) to
            the last poll; 0 before any poll.
        progress: Highest progress seen, 0-100.
        reached_after: Seconds after `started_at` of the last poll that still
            showed less than `progress`.
        reached_by: Seconds after `started_at` of the first poll that showed
            `progress`.
    """

    started_at: float
    estimate: float
    polls: int = 0
    last_poll: float
    gap: float = 0.0
    progress: int = 0
    reached_after: float = 0.0
    reached_by: float = 0.0


def _usable_estimate(value: object) -> float | None:
    """A positive, finite number of seconds from `value`, else None."""
    number = finite_number(value)
    return number if number is not None and number > 0.0 else None


def _progress_level(progress: object) -> int:
    if isinstance(progress, bool) or not isinstance(progress, int | float):
        return 0
    if not math.isfinite(progress):
        return 0
    return min(100, max(0, int(progress)))


def _exp(value: float) -> float:
    return math.exp(min(value, _MAX_EXP))


def start(policy: PollPolicy, *, started_at: float, estimated_time: float | None) -> PollState:
    """
    The planning state of a task just created.

    Args:
        policy: Supplies `default_estimate` when `estimated_time` is unusable.
        started_at: When the task was created, on the caller's monotonic clock.
        estimated_time: The server's `task_info.estimated_time` in seconds;
            None, zero, negative or not a number mean "unknown".
    """
    estimate = _usable_estimate(estimated_time)
    return PollState(
        started_at=started_at,
        estimate=policy.default_estimate if estimate is None else estimate,
        last_poll=started_at,
    )


def observe(
    state: PollState,
    *,
    at: float,
    progress: int,
    status: str,
    estimated_time: float | None = None,
) -> PollState:
    """
    Fold one poll's result into the state.

    Args:
        state: The state before this poll (left unchanged).
        at: When the poll was made, on the caller's clock.
        progress: The reported progress, 0-100 (clamped). A value below one
            already seen is ignored: progress is taken not to go back.
        status: The API's status string (a `TaskStatus` works too). While
            `pending` the task has not started, so its progress counts as 0;
            strings not known are planned like `processing`.
        estimated_time: A newly reported estimate, if the reply had one; a
            usable one replaces the old.

    Returns:
        The new state.
    """
    if not math.isfinite(at):
        at = state.last_poll
    level = 0 if status == "pending" else _progress_level(progress)
    estimate = _usable_estimate(estimated_time)
    gap = at - state.last_poll
    reached_after, reached_by = state.reached_after, state.reached_by
    if level > state.progress:
        # Level `level` was reached after the previous poll and by this one.
        elapsed = at - state.started_at
        before = state.last_poll - state.started_at if state.polls else 0.0
        reached_by = elapsed if math.isfinite(elapsed) and elapsed > 0.0 else 0.0
        before = before if math.isfinite(before) and before > 0.0 else 0.0
        reached_after = min(before, reached_by)
    return PollState(
        started_at=state.started_at,
        estimate=state.estimate if estimate is None else estimate,
        polls=state.polls + 1,
        last_poll=at,
        gap=gap if gap > 0.0 else 0.0,
        progress=max(level, state.progress),
        reached_after=reached_after,
        reached_by=reached_by,
    )


# -- planning -----------------------------------------------------------------


def _estimate(policy: PollPolicy, state: PollState) -> float:
    estimate = _usable_estimate(state.estimate)
    return policy.default_estimate if estimate is None else estimate


def _posterior(policy: PollPolicy, state: PollState, *, stall: bool = True) -> tuple[float, float]:
    """
    Median of the log-duration and its log-spread, from estimate and progress
    (and, with `stall`, from polls that showed no new progress).
    """
    mu = math.log(_estimate(policy, state))
    variance = policy.estimate_spread * policy.estimate_spread
    share = min(state.progress, 100) / 100.0
    low = max(0.0, min(state.reached_after, state.reached_by))
    high = max(state.reached_after, state.reached_by)
    reached = 0.5 * low + 0.5 * high  # (low + high) / 2 could overflow
    if not (share > 0.0 and reached > 0.0 and math.isfinite(reached)):
        return mu, max(_MIN_SPREAD, math.sqrt(variance))
    # The bracket's half-width in log units is ~(high - low) / (high + low); a
    # uniform spread over it has variance (2 * half)^2 / 12.
    half = (high - low) / (high + low)
    noise = policy.progress_noise * (1.0 - share)
    floor = policy.progress_noise_floor
    mu_seen = math.log(reached) - math.log(share)
    # A stall: polls after `reached_by` still showed this level. At the last
    # of them (`since` after the start) the share done was at least this
    # level and the task still ran, so T lies in (since, since / share]. Once
    # `since` is past the latest finish the bracket above allows (high /
    # share), progress has slowed: plan by the stall's bracket, so a task
    # that jumped early and then stalled is not polled as if it were about to
    # finish.
    since = state.last_poll - state.started_at
    if stall and share < 1.0 and math.isfinite(since) and since * share > high:
        mu_seen = math.log(since) - 0.5 * math.log(share)
        half = -0.5 * math.log(share)
    seen = half * half / 3.0 + noise * noise + floor * floor + _MIN_SPREAD * _MIN_SPREAD
    # Prior-data conflict: when the two disagree by more than
    # `conflict_threshold` combined spreads, the estimate is the likelier
    # culprit ("can be wildly wrong"): widen its spread until they do not.
    limit = (mu_seen - mu) / policy.conflict_threshold
    variance = max(variance, limit * limit - seen)
    mu = (mu * seen + mu_seen * variance) / (variance + seen)
    variance = variance * seen / (variance + seen)
    return mu, max(_MIN_SPREAD, math.sqrt(variance))


def estimated_duration(policy: PollPolicy, state: PollState) -> float:
    """
    The planner's current median estimate of the task's total duration (seconds).

    The server's estimate blended with what progress has shown so far; finite
    and positive.
    """
    return _exp(_posterior(policy, state)[0])


def _survival(log_t: float, mu: float, sigma: float) -> float:
    """P(T > t) for a lognormal T with median e**mu and log-spread sigma."""
    return 0.5 * math.erfc((log_t - mu) / (sigma * _SQRT2))


def _keller_interval(
    policy: PollPolicy,
    *,
    elapsed: float,
    mu: float,
    sigma: float,
    scale: float,
    low: float,
    high: float,
    pressure: float,
) -> float:
    """The smallest d in [low, high] with lambda * d * P(done by +d | running) / 2 >= 1."""
    lam = pressure * policy.latency_weight / max(_TINY, min(scale, _exp(mu)))
    alive = _survival(math.log(elapsed), mu, sigma)
    if not alive > 0.0:
        return high

    def excess(d: float) -> float:
        done = 1.0 - _survival(math.log(elapsed + d), mu, sigma) / alive
        return lam * d * done * 0.5 - 1.0

    if not excess(high) >= 0.0:
        return high
    if excess(low) >= 0.0:
        return low
    lo, hi = math.log(low), math.log(high)
    for _ in range(_SOLVE_STEPS):
        mid = 0.5 * (lo + hi)
        if excess(math.exp(mid)) >= 0.0:
            hi = mid
        else:
            lo = mid
    return math.exp(hi)


def next_poll_at(
    policy: PollPolicy, state: PollState, *, now: float, u: float, pressure: float = 1.0
) -> float:
    """
    The clock time at which to poll the task next.

    Pure arithmetic on a few numbers, cheap enough for every poll of 100,000
    tasks; the same arguments always give the same answer.

    Args:
        policy: Tuning and interval bounds.
        state: What is known of the task (`start`, then `observe` per poll).
        now: The caller's clock now: the result is never earlier.
        u: A uniform draw in [0, 1) choosing the jitter (clamped into range).
        pressure: The share of `PollPolicy.latency_weight` to plan with
            (clamped into (0, 1]; 1 plans as the policy says). The watcher
            lowers it while its poll budget or the event loop cannot keep up:
            polls are then left out where finishing is least likely, rather
            than every poll running late. The first poll and the
            `max_interval` ceiling move out by 1 / sqrt(pressure), as Keller
            intervals do.

    Returns:
        A finite time within [`min_interval`, `max_interval` / sqrt(pressure)]
        after the last poll (after `started_at` before the first), or `now`
        if `now` is already past that window.
    """
    pressure = min(1.0, max(_MIN_PRESSURE, pressure)) if math.isfinite(pressure) else 1.0
    low, high = policy.min_interval, policy.max_interval
    if pressure < 1.0:
        # Short of budget, polls would run late anyway, past max_interval at
        # random; stretching it here keeps the choice with the planner.
        high = max(low, high / math.sqrt(pressure))
    anchor = state.last_poll
    if not math.isfinite(anchor):
        anchor = state.started_at
    if not math.isfinite(anchor):
        anchor = now if math.isfinite(now) else 0.0
    started = state.started_at if math.isfinite(state.started_at) else anchor

    if state.polls <= 0:
        interval = policy.first_poll_fraction * _estimate(policy, state)
        if pressure < 1.0:
            interval /= math.sqrt(pressure)
    else:
        # Overdue is judged without the stall bracket, which moves with the
        # clock: a task stuck for good must still come to back off.
        mu, sigma = _posterior(policy, state, stall=False)
        elapsed = max(anchor - started, _exp(mu) * _MIN_FRACTION, _TINY)
        if math.log(elapsed) > mu + policy.overdue_spread * sigma:
            interval = state.gap * policy.backoff
        else:
            mu, sigma = _posterior(policy, state)
            interval = _keller_interval(
                policy,
                elapsed=elapsed,
                mu=mu,
                sigma=sigma,
                scale=_estimate(policy, state),
                low=low,
                high=high,
                pressure=pressure,
            )
    if not math.isfinite(interval):
        interval = high
    interval = min(high, max(low, interval))

    # Jitter inside the bounds, so tasks pinned to a bound still spread out.
    u = min(1.0, max(0.0, u)) if math.isfinite(u) else 0.5
    earliest = max(low, interval * (1.0 - policy.jitter))
    latest = min(high, interval * (1.0 + policy.jitter))
    when = anchor + earliest + u * (latest - earliest)
    if not math.isfinite(when):
        when = anchor
    if math.isfinite(now) and not when >= now:
        when = now
    return when
