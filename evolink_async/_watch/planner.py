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

A model whose progress says nothing follows, once calibrated, the poll
schedule its finished tasks give it (`schedule.py`): jittered only earlier
(a later poll would be late), and, with `PollPolicy.learned_gaps`, past
`max_interval` where the gap ends before the longest run the model showed.
A task that outlives the schedule is polled at the schedule's own latency
until `schedule.PAST_SCHEDULE` times its last time, then backs off. In the
same way, when the line through two progress readings (a prediction the
model's finished tasks scored as better than the level) puts the finish
within half of `PollPolicy.latency_target` in log-spread, the next poll may skip past
`max_interval` to the start of that band.

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
from .calibration import Calibration, Finished
from .keller import keller_interval, lognormal_survival
from .policy import PollPolicy
from .schedule import interval_after

__all__ = [
    "PollState",
    "estimated_duration",
    "finished",
    "next_poll_at",
    "observe",
    "progress_predictions",
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
# A finish bracketed by polls this close (the earlier at least this share of
# the later) is known well enough to stand for the duration by its middle.
_TIGHT = 0.5
# Half-width, in spreads, of the central 95 % of a normal: the "likely"
# durations of a lognormal posterior (see `PollPolicy.latency_target`).
_LIKELY_SPREADS = 1.96
# A flat model's schedule stretches no gap past `max_interval` in its last
# tail of durations, this share: the longest are the last to finish, so
# while a model is young its histogram holds too few of them to trust a gap.
_TAIL = 0.1
# The lowest `pressure` next_poll_at plans with (a guard against 0, not tuning).
_MIN_PRESSURE = 1e-6


# -- per-task state -----------------------------------------------------------


@attrs.frozen(kw_only=True, slots=True, weakref_slot=False)
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
        first_progress: The first progress level above 0 seen (0: none yet).
        first_after: Seconds after `started_at` of the last poll before it.
        first_seen: Seconds after `started_at` of the poll that showed it.
        second_progress: The second progress level seen (0: none yet).
        second_line: The finish the line through the first two levels
            pointed at, in seconds after `started_at` (0: none).
    """

    started_at: float
    estimate: float
    polls: int = 0
    last_poll: float
    gap: float = 0.0
    progress: int = 0
    reached_after: float = 0.0
    reached_by: float = 0.0
    first_progress: int = 0
    first_after: float = 0.0
    first_seen: float = 0.0
    second_progress: int = 0
    second_line: float = 0.0


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
    first_progress, first_after, first_seen = (
        state.first_progress,
        state.first_after,
        state.first_seen,
    )
    second_progress, second_line = state.second_progress, state.second_line
    if level > state.progress:
        # Level `level` was reached after the previous poll and by this one.
        elapsed = at - state.started_at
        before = state.last_poll - state.started_at if state.polls else 0.0
        reached_by = elapsed if math.isfinite(elapsed) and elapsed > 0.0 else 0.0
        before = before if math.isfinite(before) and before > 0.0 else 0.0
        reached_after = min(before, reached_by)
        if level < 100:
            if not first_progress:
                first_progress, first_after, first_seen = level, reached_after, reached_by
            elif not second_progress:
                second_progress = level
                second_line = _line(first_progress, first_seen, level, reached_by) or 0.0
    return PollState(
        started_at=state.started_at,
        estimate=state.estimate if estimate is None else estimate,
        polls=state.polls + 1,
        last_poll=at,
        gap=gap if gap > 0.0 else 0.0,
        progress=max(level, state.progress),
        reached_after=reached_after,
        reached_by=reached_by,
        first_progress=first_progress,
        first_after=first_after,
        first_seen=first_seen,
        second_progress=second_progress,
        second_line=second_line,
    )


# -- planning -----------------------------------------------------------------


def _estimate(policy: PollPolicy, state: PollState) -> float:
    estimate = _usable_estimate(state.estimate)
    return policy.default_estimate if estimate is None else estimate


def _level_prediction(state: PollState, *, stall: bool = True) -> tuple[float, float, bool] | None:
    """
    The duration progress implies from its highest level and the polls that
    bracket when it was reached (or, in a stall, the bracket the stall
    leaves), as (log-duration, the bracket's own log-variance, whether it
    is a stall); None without progress.
    """
    share = min(state.progress, 100) / 100.0
    low = max(0.0, min(state.reached_after, state.reached_by))
    high = max(state.reached_after, state.reached_by)
    reached = 0.5 * low + 0.5 * high  # (low + high) / 2 could overflow
    if not (0.0 < share < 1.0 and reached > 0.0 and math.isfinite(reached)):
        return None
    # The bracket's half-width in log units is ~(high - low) / (high + low); a
    # uniform spread over it has variance (2 * half)^2 / 12.
    half = (high - low) / (high + low)
    mu_seen = math.log(reached) - math.log(share)
    # A stall: polls after `reached_by` still showed this level. At the last
    # of them (`since` after the start) the share done was at least this
    # level and the task still ran, so T lies in (since, since / share]. Once
    # `since` is past the latest finish the bracket above allows (high /
    # share), progress has slowed: plan by the stall's bracket, so a task
    # that jumped early and then stalled is not polled as if it were about to
    # finish.
    since = state.last_poll - state.started_at
    stalled = stall and math.isfinite(since) and since * share > high
    if stalled:
        mu_seen = math.log(since) - 0.5 * math.log(share)
        half = -0.5 * math.log(share)
    return mu_seen, half * half / 3.0, stalled


def _line(first: int, seen: float, latest: int, reached: float) -> float | None:
    """
    Where the line through progress `first` read at `seen` and `latest` read
    at `reached` (seconds after the start) reaches 100, or None.
    """
    if not (0 < first < latest < 100 and 0.0 < seen < reached and math.isfinite(reached)):
        return None
    finish = reached + (100 - latest) * (reached - seen) / (latest - first)
    return finish if finish > 0.0 and math.isfinite(finish) else None


def _line_prediction(state: PollState) -> float | None:
    """
    The finish the line through the first and the latest progress readings
    points at (seconds after the start), or None without two readings.
    """
    return _line(state.first_progress, state.first_seen, state.progress, state.reached_by)


def progress_predictions(
    state: PollState,
) -> tuple[tuple[tuple[float, float], ...], tuple[tuple[float, float], ...]]:
    """
    The task's duration as progress predicted it, two ways: from its level
    and when it was reached, and from the line through two readings; each
    as made early (at the first readings) and now. Each prediction is
    (seconds, share still to go); `Calibrator` scores them against the real
    duration once the task finishes.
    """
    levels: list[tuple[float, float]] = []
    lines: list[tuple[float, float]] = []
    first = state.first_progress
    if 0 < first < state.progress:
        reached = 0.5 * state.first_after + 0.5 * state.first_seen
        if reached > 0.0:
            levels.append((reached * 100.0 / first, 1.0 - first / 100.0))
    if state.second_line > 0.0 and state.second_progress < state.progress:
        lines.append((state.second_line, 1.0 - state.second_progress / 100.0))
    to_go = 1.0 - min(state.progress, 100) / 100.0
    level = _level_prediction(state)
    if level is not None:
        levels.append((_exp(level[0]), to_go))
    line = _line_prediction(state)
    if line is not None:
        lines.append((line, to_go))
    return tuple(levels), tuple(lines)


def finished(state: PollState, *, at: float) -> Finished | None:
    """
    What a task that was just seen completed at `at` teaches a `Calibrator`
    (`state` as before that poll), or None when `at` is unusable.

    It finished between its last poll (its creation, before any) and `at`.
    When that bracket is tight its middle stands for the duration; when it is
    loose (a task that finished before its first poll, say), the bracket
    itself is handed on: leaving such tasks out would teach that no task is
    ever that short, and the next schedule would start later still.
    """
    low = state.last_poll - state.started_at if state.polls else 0.0
    high = at - state.started_at
    if not (0.0 < high < math.inf):
        return None
    low = min(max(low, 0.0), high)
    duration = 0.5 * low + 0.5 * high
    tight = low >= _TIGHT * high
    level, line = progress_predictions(state) if tight else ((), ())
    return Finished(
        estimate=_estimate_of(state),
        duration=duration,
        within=None if tight else (low, high),
        moved=0 < state.progress < 100,
        flat=state.progress == 0 and state.polls > 0 and low > 0.5 * duration,
        level=level,
        line=line,
    )


def _estimate_of(state: PollState) -> float:
    estimate = _usable_estimate(state.estimate)
    return math.nan if estimate is None else estimate


def _posterior(
    policy: PollPolicy,
    state: PollState,
    calibration: Calibration | None,
    *,
    stall: bool = True,
) -> tuple[float, float, bool]:
    """
    Median of the log-duration, its log-spread, and whether progress was
    used: from the (calibrated) estimate and progress (and, with `stall`,
    from polls that showed no new progress).
    """
    mu = math.log(_estimate(policy, state))
    spread = policy.estimate_spread
    if calibration is not None:
        mu += calibration.shift
        spread = calibration.spread
    variance = spread * spread
    if calibration is not None and calibration.flat:
        return mu, max(_MIN_SPREAD, spread), False
    level = _level_prediction(state, stall=stall)
    if level is None:
        return mu, max(_MIN_SPREAD, spread), False
    share = min(state.progress, 100) / 100.0
    to_go = 1.0 - share
    mu_seen, bracket, stalled = level
    scored = calibration.level_score(to_go) if calibration is not None else None
    if scored is None:
        noise = policy.progress_noise * to_go
        seen = bracket + noise * noise + policy.progress_noise_floor**2
    else:
        mu_seen += scored.bias
        seen = bracket + scored.noise * scored.noise
    line = calibration.line_score(to_go) if calibration is not None else None
    if line is not None and (scored is None or line.noise < scored.noise):
        finish = None if stalled else _line_prediction(state)
        if finish is not None:
            mu_seen = math.log(finish) + line.bias
            seen = line.noise * line.noise
    seen += _MIN_SPREAD * _MIN_SPREAD
    # Prior-data conflict: when the two disagree by more than
    # `conflict_threshold` combined spreads, the estimate is the likelier
    # culprit ("can be wildly wrong"): widen its spread until they do not.
    limit = (mu_seen - mu) / policy.conflict_threshold
    variance = max(variance, limit * limit - seen)
    mu = (mu * seen + mu_seen * variance) / (variance + seen)
    variance = variance * seen / (variance + seen)
    return mu, max(_MIN_SPREAD, math.sqrt(variance)), True


def estimated_duration(
    policy: PollPolicy, state: PollState, calibration: Calibration | None = None
) -> float:
    """
    The planner's current median estimate of the task's total duration (seconds).

    The server's estimate (corrected by `calibration`, when given) blended
    with what progress has shown so far; finite and positive.
    """
    return _exp(_posterior(policy, state, calibration)[0])


def next_poll_at(
    policy: PollPolicy,
    state: PollState,
    *,
    now: float,
    u: float,
    pressure: float = 1.0,
    calibration: Calibration | None = None,
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
        calibration: What the model's finished tasks taught
            (`Calibrator.get`): the estimate's real bias and spread, the
            shape of the durations, whether and how well progress informs.
            None plans from the policy alone.

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
    estimate = _estimate(policy, state)
    if calibration is not None:
        estimate *= _exp(calibration.shift)

    late = 1.0 + policy.jitter
    if state.polls <= 0 and (calibration is None or not calibration.flat):
        # The first poll comes early, to see progress while it can help.
        interval = policy.first_poll_fraction * estimate
        if pressure < 1.0:
            interval /= math.sqrt(pressure)
    else:
        interval, high, scheduled = _planned_interval(
            policy,
            state,
            calibration,
            elapsed=anchor - started,
            scale=estimate,
            low=low,
            high=high,
            pressure=pressure,
        )
        if scheduled:
            # A poll after the schedule's time would be late: jitter only
            # brings it forward.
            late = 1.0
    if not math.isfinite(interval):
        interval = high
    interval = min(high, max(low, interval))

    # Jitter inside the bounds, so tasks pinned to a bound still spread out.
    u = min(1.0, max(0.0, u)) if math.isfinite(u) else 0.5
    earliest = max(low, interval * (1.0 - policy.jitter))
    latest = min(high, interval * late)
    when = anchor + earliest + u * (latest - earliest)
    if not math.isfinite(when):
        when = anchor
    if math.isfinite(now) and not when >= now:
        when = now
    return when


def _planned_interval(
    policy: PollPolicy,
    state: PollState,
    calibration: Calibration | None,
    *,
    elapsed: float,
    scale: float,
    low: float,
    high: float,
    pressure: float,
) -> tuple[float, float, bool]:
    """
    The Keller interval from `elapsed`, or the overdue backoff, or the
    model's schedule; the ceiling it is held to (`high`, or more where the
    model's finished tasks show a poll there would find nothing: see
    `PollPolicy.learned_gaps`); and whether it is the schedule.
    """
    # Overdue is judged without the stall bracket, which moves with the
    # clock: a task stuck for good must still come to back off.
    mu, sigma, informed = _posterior(policy, state, calibration, stall=False)
    elapsed = max(elapsed, _exp(mu) * _MIN_FRACTION, _TINY)
    log_elapsed = math.log(elapsed)
    if calibration is not None and calibration.schedule and not informed:
        # Progress does not inform: follow the model's own poll schedule,
        # the fewest polls for its real durations (see `schedule.py`); under
        # pressure, every k-th of its times (k about 1 / sqrt(pressure)).
        stride = max(1, round(1.0 / math.sqrt(pressure)))
        interval = _scheduled_interval(policy, state, calibration, elapsed, high, stride)
        # No task of the model finished between the schedule's times, up to
        # the longest finished run it showed: a poll the ceiling forced in
        # would find none. (Past the schedule, or past that run, the
        # ceiling holds: there the model's durations are a guess.)
        estimate = _estimate(policy, state)
        reach = min(calibration.seen, calibration.schedule[-1]) * estimate
        end = elapsed + interval
        if (
            policy.learned_gaps
            and end <= reach * (1.0 + 1e-9)
            and calibration.cdf is not None
            and calibration.survival(math.log(end / estimate)) >= _TAIL
        ):
            high = max(high, interval)
        return interval, high, True
    histogram = calibration if calibration is not None and calibration.cdf is not None else None
    if histogram is not None and not informed:
        # No progress to go by: plan from the durations the model's tasks
        # really had, whatever their shape (two populations stay two).
        log_estimate = math.log(_estimate(policy, state))

        def survival(log_t: float) -> float:
            return histogram.survival(log_t - log_estimate)

        overdue = survival(log_elapsed) < lognormal_survival(policy.overdue_spread, 0.0, 1.0)
        likely = histogram.is_likely(log_elapsed - log_estimate)
    else:
        overdue = log_elapsed > mu + policy.overdue_spread * sigma
        mu, sigma, _ = _posterior(policy, state, calibration)
        likely = abs(log_elapsed - mu) <= _LIKELY_SPREADS * sigma

        def survival(log_t: float) -> float:
            return lognormal_survival(log_t, mu, sigma)

    if overdue:
        return (state.gap * policy.backoff if state.polls else high), high, False
    scale = min(scale, _exp(mu))
    # The ceiling of this interval; `high` stays the ceiling jitter keeps to.
    top = high
    if likely:
        top = max(low, min(high, policy.latency_target * scale))
    elif (
        informed
        and policy.learned_gaps
        and sigma <= 0.5 * policy.latency_target
        and _scored(calibration, state)
    ):
        # A line through two progress readings, which the model's finished
        # tasks proved good, puts the finish within half the latency target
        # (in log-spread; wider, and uneven steps of progress lose): skip
        # to the start of that band, past the ceiling if need be (polls
        # before it would find the task still running).
        top = high = max(high, _exp(mu - _LIKELY_SPREADS * sigma) - elapsed)
    interval = keller_interval(
        pressure * policy.latency_weight / max(_TINY, scale),
        elapsed=elapsed,
        survival=survival,
        low=low,
        high=top,
    )
    return interval, high, False


def _scored(calibration: Calibration | None, state: PollState) -> bool:
    """
    Whether `state` is planned by the line through two progress readings,
    a prediction the model's finished tasks scored as better than the level.
    """
    if calibration is None or not (0 < state.first_progress < state.progress < 100):
        return False
    to_go = 1.0 - state.progress / 100.0
    line, level = calibration.line_score(to_go), calibration.level_score(to_go)
    return line is not None and (level is None or line.noise < level.noise)


def _scheduled_interval(
    policy: PollPolicy,
    state: PollState,
    calibration: Calibration,
    elapsed: float,
    high: float,
    stride: int,
) -> float:
    """The time to the `stride`-th next poll of the model's schedule after `elapsed`."""
    estimate = _estimate(policy, state)
    step = interval_after(
        calibration.schedule,
        elapsed / estimate,
        latency=calibration.latency,
        jitter=policy.jitter,
        stride=stride,
        polled=state.polls > 0,
    )
    if step is not None:
        return step * estimate
    return state.gap * policy.backoff if state.polls else high
