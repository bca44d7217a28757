"""
The poll planner as pure functions: no server, no sleeping, simulated clocks.

`simulate` drives the planner over synthetic tasks (lognormal durations, coarse
and uneven progress) and compares it with fixed-interval pollers, the way
EvoLink's other clients poll (every 5, 10 or 15 s).
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
import sys
from collections.abc import Iterator, Sequence

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evolink_async._errors import ValidationError
from evolink_async._watch.planner import (
    PollState,
    estimated_duration,
    next_poll_at,
    observe,
    start,
)
from evolink_async._watch.policy import PollPolicy

POLICY = PollPolicy()
STILL = PollPolicy(jitter=0.0)  # no jitter: exact intervals


# -- a synthetic task and a simulated watcher ---------------------------------


@attrs.frozen
class FakeTask:
    """A task that takes `duration` seconds and reports progress at `checkpoints`."""

    duration: float
    checkpoints: tuple[int, ...] = (0, 10, 35, 60, 80, 95)

    def status(self, elapsed: float) -> str:
        if elapsed >= self.duration:
            return "completed"
        return "pending" if elapsed < 0.05 * self.duration else "processing"

    def progress(self, elapsed: float) -> int:
        """The highest checkpoint at or below the true share done."""
        if elapsed >= self.duration:
            return 100
        if elapsed < 0.05 * self.duration:
            return 0
        done = math.floor(elapsed / self.duration * 100)
        return max(c for c in self.checkpoints if c <= done)


def random_tasks(n: int, *, sigma: float, eta: float, seed: int) -> list[FakeTask]:
    """`n` tasks with lognormal durations around `eta`, each with its own checkpoints."""
    rng = random.Random(seed)
    tasks = []
    for _ in range(n):
        duration = eta * math.exp(rng.gauss(0.0, sigma))
        steps = rng.sample(range(5, 96), rng.randint(3, 6))
        tasks.append(FakeTask(duration, (0, *sorted(steps))))
    return tasks


def schedule(
    task: FakeTask,
    *,
    policy: PollPolicy = POLICY,
    estimated_time: float | None,
    started_at: float = 0.0,
    rng: random.Random | None = None,
) -> Iterator[float]:
    """The poll times (absolute) the planner picks, until one sees the task completed."""
    draw = rng or random.Random(0)
    state = start(policy, started_at=started_at, estimated_time=estimated_time)
    when = next_poll_at(policy, state, now=started_at, u=draw.random())
    while True:
        yield when
        elapsed = when - started_at
        if elapsed >= task.duration:
            return
        state = observe(
            state, at=when, progress=task.progress(elapsed), status=task.status(elapsed)
        )
        when = next_poll_at(policy, state, now=when, u=draw.random())


def watch(
    task: FakeTask,
    *,
    policy: PollPolicy = POLICY,
    estimated_time: float | None,
    rng: random.Random | None = None,
) -> list[float]:
    """All poll times, the last one the first to see the task completed."""
    polls = list(
        itertools.islice(
            schedule(task, policy=policy, estimated_time=estimated_time, rng=rng), 10_000
        )
    )
    assert polls[-1] >= task.duration, "no completion seen after 10,000 polls"
    return polls


@attrs.frozen
class Figures:
    polls: float  # mean polls per task
    p50: float  # detection delay percentiles, seconds
    p95: float


def figures(polls: Sequence[int], delays: Sequence[float]) -> Figures:
    cuts = statistics.quantiles(delays, n=20)
    return Figures(statistics.fmean(polls), statistics.median(delays), cuts[-1])


def simulate(tasks: Sequence[FakeTask], *, estimated_time: float) -> Figures:
    rng = random.Random(1)
    counts, delays = [], []
    for task in tasks:
        polls = watch(task, estimated_time=estimated_time, rng=rng)
        counts.append(len(polls))
        delays.append(polls[-1] - task.duration)
    return figures(counts, delays)


def fixed(tasks: Sequence[FakeTask], every: float) -> Figures:
    counts = [math.ceil(task.duration / every) for task in tasks]
    delays = [n * every - task.duration for n, task in zip(counts, tasks, strict=True)]
    return figures(counts, delays)


def intervals(polls: Sequence[float], started_at: float = 0.0) -> list[float]:
    times = [started_at, *polls]
    return [b - a for a, b in itertools.pairwise(times)]


# -- first poll ---------------------------------------------------------------


def test_first_poll_comes_after_a_fraction_of_the_estimate() -> None:
    state = start(STILL, started_at=1000.0, estimated_time=165.0)
    assert next_poll_at(STILL, state, now=1000.0, u=0.5) == pytest.approx(1000.0 + 0.2 * 165.0)
    faster = attrs.evolve(STILL, first_poll_fraction=0.1)
    assert next_poll_at(faster, state, now=1000.0, u=0.5) == pytest.approx(1016.5)


@pytest.mark.parametrize(("estimate", "delay"), [(2400.0, 60.0), (3.0, 2.0)])
def test_first_poll_stays_within_min_and_max_interval(estimate: float, delay: float) -> None:
    state = start(STILL, started_at=0.0, estimated_time=estimate)
    assert next_poll_at(STILL, state, now=0.0, u=0.5) == pytest.approx(delay)


@pytest.mark.parametrize("estimate", [None, 0.0, -5.0, math.nan, math.inf, -math.inf])
def test_unusable_estimate_falls_back_to_default_estimate(estimate: float | None) -> None:
    policy = attrs.evolve(STILL, default_estimate=100.0)
    state = start(policy, started_at=0.0, estimated_time=estimate)
    assert state.estimate == 100.0
    assert next_poll_at(policy, state, now=0.0, u=0.5) == pytest.approx(20.0)
    polls = watch(FakeTask(90.0), policy=policy, estimated_time=estimate)
    assert polls[-1] - 90.0 < 15.0


def test_first_poll_of_a_task_found_late_is_now() -> None:
    state = start(POLICY, started_at=0.0, estimated_time=165.0)
    assert next_poll_at(POLICY, state, now=500.0, u=0.3) == 500.0


# -- shape of the schedule ----------------------------------------------------


def test_polls_are_densest_around_the_estimated_finish() -> None:
    # A task that never reports progress: only the estimate says when it ends.
    eta = 165.0
    task = FakeTask(100 * eta, checkpoints=(0,))
    polls = list(itertools.islice(schedule(task, policy=STILL, estimated_time=eta), 60))
    gaps = intervals(polls)
    at = list(zip(polls, gaps, strict=True))
    # (The likely durations, within 1.96 spreads of the estimate, start at
    # about 0.46 of it: there the gap is at most `latency_target`.)
    before = [g for p, g in at if p <= 0.45 * eta]
    near = [g for p, g in at if 0.8 * eta <= p <= 1.5 * eta]
    after = [g for p, g in at if p >= 4 * eta]
    assert len(near) >= 5
    assert max(near) < 0.5 * min(before)
    assert min(after) > 2 * max(near)
    # After the first poll (a fixed share of the estimate), intervals shrink
    # all the way to the estimated finish.
    approach = [g for p, g in at[1:] if p <= eta]
    assert approach == sorted(approach, reverse=True)


def test_progress_sharpens_the_schedule_around_the_real_finish() -> None:
    task = FakeTask(200.0)
    polls = watch(task, policy=STILL, estimated_time=165.0)
    gaps = intervals(polls)
    assert polls[-1] - task.duration < 8.0
    # Most polls fall in the last third of the run, none in a burst early on.
    late = [p for p in polls if p >= 0.66 * task.duration]
    assert len(late) >= len(polls) / 2
    assert min(gaps[:2]) > 20.0


def test_overdue_task_backs_off_geometrically_up_to_max_interval() -> None:
    # Stuck at 60 % forever: the finish progress predicts passes, then polls back off.
    stuck = 60
    state = start(STILL, started_at=0.0, estimated_time=100.0)
    when = next_poll_at(STILL, state, now=0.0, u=0.5)
    polls = []
    for _ in range(60):
        polls.append(when)
        progress = stuck if when > 30 else 10
        state = observe(state, at=when, progress=progress, status="processing")
        when = next_poll_at(STILL, state, now=when, u=0.5)
    gaps = intervals(polls)
    # 60 % by the second poll says done by ~90 s if progress were linear;
    # a while past that, each gap is 1.5 times the one before, up to 60 s.
    grown = [
        (p, b / a)
        for p, (a, b) in zip(polls[2:], itertools.pairwise(gaps[1:]), strict=True)
        if b < 60.0 and b > 1.01 * a
    ]
    backoff = [(p, ratio) for p, ratio in grown if ratio == pytest.approx(1.5)]
    assert len(backoff) >= 3
    assert min(p for p, _ in backoff) > 90.0
    assert backoff == grown[-len(backoff) :]
    assert gaps[-5:] == pytest.approx([60.0] * 5)
    assert max(gaps) == pytest.approx(60.0)
    # The estimate follows the stall: the task is taken to need longer and longer.
    assert estimated_duration(STILL, state) > polls[-1]


def test_a_task_that_jumps_early_and_then_stalls_is_not_polled_hard() -> None:
    # 52 % at the first poll (a fifth of the 165 s estimate) says "done by
    # ~60 s" if progress were linear; it then stays at 52 % until 130 s and
    # finishes at 222 s. Planning as if the finish were always imminent polled
    # it every ~4 s: 39 polls. The stall moves the estimate out instead.
    duration = 222.0

    def seen(t: float) -> tuple[int, str]:
        if t >= duration:
            return 100, "completed"
        return (52 if t < 130.0 else 77 if t < 170.0 else 93), "processing"

    state = start(STILL, started_at=0.0, estimated_time=165.0)
    when = next_poll_at(STILL, state, now=0.0, u=0.5)
    polls = [when]
    while when < duration:
        progress, status = seen(when)
        state = observe(state, at=when, progress=progress, status=status)
        when = next_poll_at(STILL, state, now=when, u=0.5)
        polls.append(when)
    stalled = [t for t in polls if 60.0 < t < 130.0]
    assert len(stalled) <= 6
    # Near the finish, polls are at most `latency_target` of the estimate
    # apart: a couple more than the Keller rule alone, far from 39.
    assert len(polls) <= 26
    assert polls[-1] - duration <= 0.05 * 165.0


@pytest.mark.parametrize("pressure", [1.0, 0.5, 1 / 16, 0.0, -1.0, math.nan])
def test_pressure_spaces_polls_out_within_a_stretched_ceiling(pressure: float) -> None:
    # No progress, an estimate of 1000 s: every interval wants to be long.
    policy = STILL
    state = start(policy, started_at=0.0, estimated_time=1000.0)
    relaxed = start(policy, started_at=0.0, estimated_time=1000.0)
    # Clamped into (0, 1]: 0 and below plan with the smallest pressure, NaN with 1.
    bound = min(1.0, max(pressure, 1e-6)) if math.isfinite(pressure) else 1.0
    ceiling = policy.max_interval / math.sqrt(bound)
    when = next_poll_at(policy, state, now=0.0, u=0.5, pressure=pressure)
    plain = next_poll_at(policy, relaxed, now=0.0, u=0.5)
    assert plain <= when <= ceiling + 1e-9
    for _ in range(5):
        state = observe(state, at=when, progress=10, status="processing")
        relaxed = observe(relaxed, at=plain, progress=10, status="processing")
        nxt = next_poll_at(policy, state, now=when, u=0.5, pressure=pressure)
        plain_nxt = next_poll_at(policy, relaxed, now=plain, u=0.5)
        assert policy.min_interval <= nxt - when <= ceiling + 1e-9
        assert nxt - when >= plain_nxt - plain - 1e-9
        when, plain = nxt, plain_nxt
    if pressure == 1 / 16:
        assert when > 6 * policy.max_interval  # far sparser than the plain plan


def test_progress_pulls_a_far_too_high_estimate_in() -> None:
    # The server says 2400 s; the task takes 240 s and progress shows it.
    task = FakeTask(240.0, checkpoints=(0, 10, 25, 40, 55, 70, 85, 95))
    polls = watch(task, estimated_time=2400.0)
    assert polls[-1] - task.duration < 15.0
    assert len(polls) <= 12
    assert sum(1 for p in polls if 180.0 <= p <= 260.0) >= len(polls) / 2
    # Once half-way, the estimate is near the truth.
    state = start(POLICY, started_at=0.0, estimated_time=2400.0)
    state = observe(state, at=60.0, progress=25, status="processing")
    state = observe(state, at=120.0, progress=40, status="processing")
    state = observe(state, at=130.0, progress=55, status="processing")
    assert 180.0 < estimated_duration(POLICY, state) < 320.0


def test_progress_pulls_a_far_too_low_estimate_out() -> None:
    state = start(POLICY, started_at=0.0, estimated_time=30.0)
    state = observe(state, at=100.0, progress=20, status="processing")
    state = observe(state, at=140.0, progress=30, status="processing")
    assert estimated_duration(POLICY, state) > 250.0


def test_new_estimated_time_replaces_the_old_one() -> None:
    state = start(POLICY, started_at=0.0, estimated_time=165.0)
    assert observe(state, at=30.0, progress=0, status="pending", estimated_time=300).estimate == 300
    for unusable in (None, 0, -1.0, math.nan):
        again = observe(state, at=30.0, progress=0, status="pending", estimated_time=unusable)
        assert again.estimate == 165.0


@pytest.mark.parametrize(
    "progress_seen",
    [
        [10, 10, 10, 10, 10, 10, 10, 10],  # stuck
        [0, 90, 90, 90, 90, 90, 90, 90],  # one big jump
        [50, 20, 60, 0, 70, 10],  # going back (ignored)
        [100, 100, 100, 100],  # 100 but not completed
        [250, -3, 7, 1_000_000],  # out of range
    ],
)
def test_odd_progress_gives_sensible_estimates(progress_seen: list[int]) -> None:
    state = start(POLICY, started_at=50.0, estimated_time=165.0)
    now = 50.0
    for progress in progress_seen:
        now = next_poll_at(POLICY, state, now=now, u=0.5)
        state = observe(state, at=now, progress=progress, status="processing")
        duration = estimated_duration(POLICY, state)
        assert math.isfinite(duration)
        assert duration > 0.0
        assert 0 <= state.progress <= 100
    assert state.progress == min(100, max(max(progress_seen), 0))


def test_pending_counts_as_no_progress() -> None:
    state = start(POLICY, started_at=0.0, estimated_time=165.0)
    pending = observe(state, at=30.0, progress=50, status="pending")
    assert pending.progress == 0
    assert observe(state, at=30.0, progress=50, status="processing").progress == 50


def test_unknown_status_is_planned_like_processing() -> None:
    state = start(POLICY, started_at=0.0, estimated_time=165.0)
    known = observe(state, at=40.0, progress=30, status="processing")
    odd = observe(state, at=40.0, progress=30, status="transcoding")
    assert odd == known
    assert next_poll_at(POLICY, odd, now=40.0, u=0.4) == next_poll_at(
        POLICY, known, now=40.0, u=0.4
    )


def test_observe_leaves_the_old_state_alone() -> None:
    state = start(POLICY, started_at=0.0, estimated_time=165.0)
    new = observe(state, at=33.0, progress=10, status="processing")
    assert state.polls == 0
    assert state.progress == 0
    assert (new.polls, new.last_poll, new.gap, new.progress) == (1, 33.0, 33.0, 10)
    assert (new.reached_after, new.reached_by) == (0.0, 33.0)
    newer = observe(new, at=70.0, progress=35, status="processing")
    assert (newer.reached_after, newer.reached_by, newer.gap) == (33.0, 70.0, 37.0)


# -- jitter and bounds --------------------------------------------------------


@pytest.mark.parametrize("estimate", [165.0, 2400.0, 1.0])
def test_jitter_spreads_tasks_created_together(estimate: float) -> None:
    rng = random.Random(7)
    state = start(POLICY, started_at=0.0, estimated_time=estimate)
    firsts = [next_poll_at(POLICY, state, now=0.0, u=rng.random()) for _ in range(1000)]
    assert len(set(firsts)) == 1000
    assert all(POLICY.min_interval <= t <= POLICY.max_interval for t in firsts)
    assert max(firsts) - min(firsts) > 0.05 * min(firsts)
    # The same after a poll.
    state = observe(state, at=firsts[0], progress=10, status="processing")
    seconds = [next_poll_at(POLICY, state, now=firsts[0], u=rng.random()) for _ in range(1000)]
    assert len(set(seconds)) == 1000
    low, high = firsts[0] + POLICY.min_interval, firsts[0] + POLICY.max_interval
    assert all(low <= t <= high for t in seconds)


def test_jitter_stays_within_the_policy_fraction() -> None:
    state = start(POLICY, started_at=0.0, estimated_time=165.0)
    centre = next_poll_at(STILL, state, now=0.0, u=0.5)
    lowest = next_poll_at(POLICY, state, now=0.0, u=0.0)
    highest = next_poll_at(POLICY, state, now=0.0, u=0.999999)
    assert lowest == pytest.approx(centre * 0.9)
    assert highest == pytest.approx(centre * 1.1, rel=1e-5)


finite_times = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False)


@st.composite
def policies(draw: st.DrawFn) -> PollPolicy:
    low = draw(st.floats(min_value=1e-3, max_value=100.0))
    return PollPolicy(
        min_interval=low,
        max_interval=low * draw(st.floats(min_value=1.0, max_value=1000.0)),
        jitter=draw(st.floats(min_value=0.0, max_value=0.99)),
        default_estimate=draw(st.floats(min_value=1e-3, max_value=1e5)),
        first_poll_fraction=draw(st.floats(min_value=1e-3, max_value=1.0)),
        estimate_spread=draw(st.floats(min_value=1e-2, max_value=5.0)),
        progress_noise=draw(st.floats(min_value=0.0, max_value=5.0)),
        progress_noise_floor=draw(st.floats(min_value=0.0, max_value=2.0)),
        conflict_threshold=draw(st.floats(min_value=0.1, max_value=10.0)),
        latency_weight=draw(st.floats(min_value=1e-2, max_value=1e5)),
        overdue_spread=draw(st.floats(min_value=0.0, max_value=10.0)),
        backoff=draw(st.floats(min_value=1.0, max_value=10.0)),
    )


estimates = st.one_of(
    st.none(), st.floats(allow_nan=True, allow_infinity=True), st.floats(1e-3, 1e5)
)
statuses = st.sampled_from(["pending", "processing", "completed", "queued", "", "FAILED"])


@st.composite
def histories(draw: st.DrawFn, policy: PollPolicy) -> PollState:
    started = draw(finite_times)
    state = start(policy, started_at=started, estimated_time=draw(estimates))
    now = started
    for _ in range(draw(st.integers(min_value=0, max_value=12))):
        now += draw(st.floats(min_value=0.0, max_value=1e4))
        state = observe(
            state,
            at=now,
            progress=draw(st.integers(min_value=-10, max_value=200)),
            status=draw(statuses),
            estimated_time=draw(estimates),
        )
    return state


@settings(max_examples=400)
@given(data=st.data(), policy=policies(), u=st.floats(min_value=0.0, max_value=1.0))
def test_next_poll_is_finite_and_within_bounds(
    data: st.DataObject, policy: PollPolicy, u: float
) -> None:
    state = data.draw(histories(policy))
    now = state.last_poll + data.draw(st.floats(min_value=-1e4, max_value=1e4))
    when = next_poll_at(policy, state, now=now, u=u)
    assert math.isfinite(when)
    assert when >= now
    slack = 1e-9 * max(1.0, abs(state.last_poll))
    if now <= state.last_poll + policy.max_interval:
        assert state.last_poll + policy.min_interval - slack <= when
        assert when <= state.last_poll + policy.max_interval + slack
    else:
        assert when == now


any_float = st.floats(allow_nan=True, allow_infinity=True)
any_int = st.integers(min_value=-(2**70), max_value=2**70)


@settings(max_examples=400)
@given(
    policy=policies(),
    state=st.builds(
        PollState,
        started_at=any_float,
        estimate=any_float,
        polls=any_int,
        last_poll=any_float,
        gap=any_float,
        progress=any_int,
        reached_after=any_float,
        reached_by=any_float,
    ),
    now=finite_times,
    u=any_float,
    progress=any_int,
    at=any_float,
    estimate=estimates,
)
def test_planner_never_raises_on_odd_inputs(
    policy: PollPolicy,
    state: PollState,
    now: float,
    u: float,
    progress: int,
    at: float,
    estimate: float | None,
) -> None:
    for current in (
        state,
        observe(state, at=at, progress=progress, status="processing", estimated_time=estimate),
    ):
        when = next_poll_at(policy, current, now=now, u=u)
        assert math.isfinite(when)
        assert when >= now
        assert math.isfinite(estimated_duration(policy, current))


# -- scaling ------------------------------------------------------------------


def scaled(policy: PollPolicy, k: float) -> PollPolicy:
    return attrs.evolve(
        policy,
        min_interval=policy.min_interval * k,
        max_interval=policy.max_interval * k,
        default_estimate=policy.default_estimate * k,
    )


@pytest.mark.parametrize(
    ("duration", "estimate"),
    [(165.0, 165.0), (240.0, 2400.0), (600.0, 165.0), (90.0, None), (60.0, 165.0)],
)
def test_planned_delays_scale_with_the_time_fields(duration: float, estimate: float | None) -> None:
    k = 0.01
    rng = random.Random(3)
    task = FakeTask(duration)
    big, small = POLICY, scaled(POLICY, k)
    start_big, start_small = 5000.0, 5000.0 * k
    a = start(big, started_at=start_big, estimated_time=estimate)
    b = start(
        small, started_at=start_small, estimated_time=None if estimate is None else estimate * k
    )
    now_big, now_small = start_big, start_small
    delays_big, delays_small = [], []
    for _ in range(40):
        u = rng.random()
        next_big = next_poll_at(big, a, now=now_big, u=u)
        next_small = next_poll_at(small, b, now=now_small, u=u)
        delays_big.append(next_big - now_big)
        delays_small.append(next_small - now_small)
        elapsed = next_big - start_big
        if elapsed >= task.duration:
            break
        progress, status = task.progress(elapsed), task.status(elapsed)
        a = observe(a, at=next_big, progress=progress, status=status)
        b = observe(b, at=next_small, progress=progress, status=status)
        now_big, now_small = next_big, next_small
    assert len(delays_big) >= 3
    assert [d * k for d in delays_big] == pytest.approx(delays_small, rel=1e-6)


# -- PollPolicy validation ----------------------------------------------------


def test_default_policy_is_valid_and_documented() -> None:
    policy = PollPolicy()
    assert policy.min_interval == 2.0
    assert policy.max_interval == 60.0
    assert policy.max_polls_per_second is None  # as many as the server allows
    assert policy.batch_endpoint is False
    assert policy.jitter == 0.1
    doc = PollPolicy.__doc__ or ""
    for field in attrs.fields(PollPolicy):
        assert f"{field.name}:" in doc, field.name


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("min_interval", 0.0),
        ("min_interval", -1.0),
        ("min_interval", math.nan),
        ("min_interval", math.inf),
        ("min_interval", "2"),
        ("min_interval", True),
        ("max_interval", 0.0),
        ("max_polls_per_second", 0.0),
        ("max_polls_per_second", math.inf),
        ("jitter", -0.1),
        ("jitter", 1.0),
        ("default_estimate", 0.0),
        ("default_estimate", math.nan),
        ("first_poll_fraction", 0.0),
        ("first_poll_fraction", 1.5),
        ("estimate_spread", 0.0),
        ("progress_noise", -0.1),
        ("progress_noise_floor", -1.0),
        ("conflict_threshold", 0.0),
        ("latency_weight", -3.0),
        ("overdue_spread", -1.0),
        ("backoff", 0.5),
        ("batch_endpoint", "yes"),
    ],
)
def test_policy_rejects_a_bad_field_naming_field_value_and_rule(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        PollPolicy(**{field: value})  # type: ignore[arg-type]
    assert isinstance(caught.value, ValueError)
    message = str(caught.value)
    assert f"PollPolicy.{field}={value!r}" in message
    assert "must be" in message


def test_policy_rejects_min_interval_above_max_interval() -> None:
    with pytest.raises(ValidationError, match=r"min_interval=10\.0: must be <= max_interval"):
        PollPolicy(min_interval=10.0, max_interval=5.0)
    assert PollPolicy(min_interval=5.0, max_interval=5.0).max_interval == 5.0


def test_policy_is_frozen_and_keyword_only() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        POLICY.min_interval = 1.0  # type: ignore[misc]
    with pytest.raises(ValidationError, match="keyword arguments only"):
        PollPolicy(2.0)  # type: ignore[call-arg]


def test_poll_state_is_small() -> None:
    state = observe(
        start(POLICY, started_at=0.0, estimated_time=165.0), at=33, progress=10, status="x"
    )
    assert not hasattr(state, "__dict__")
    assert len(attrs.fields(PollState)) <= 13
    assert sys.getsizeof(state) <= 160


# -- simulated efficiency against fixed-interval pollers ----------------------


def test_simulated_planner_polls_a_third_as_often_as_5s_and_detects_like_10s() -> None:
    tasks = random_tasks(500, sigma=0.3, eta=165.0, seed=11)
    ours = simulate(tasks, estimated_time=165.0)
    every5, every10 = fixed(tasks, 5.0), fixed(tasks, 10.0)
    assert ours.polls <= every5.polls / 3
    assert ours.p95 <= every10.p95


@pytest.mark.parametrize(
    ("sigma", "reported"),
    [(0.8, 165.0), (0.3, 1650.0)],
    ids=["widely-spread-durations", "estimate-10x-too-high"],
)
def test_simulated_planner_is_never_worse_than_a_15s_poller(sigma: float, reported: float) -> None:
    tasks = random_tasks(500, sigma=sigma, eta=165.0, seed=12)
    ours = simulate(tasks, estimated_time=reported)
    every15 = fixed(tasks, 15.0)
    assert ours.polls <= every15.polls
    assert ours.p95 <= every15.p95
