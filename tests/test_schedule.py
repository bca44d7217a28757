"""
Gaps past `max_interval` that finished tasks vouch for: a flat model's
poll schedule (with jitter that never makes a poll late, and a task that
outlives the schedule), and a line of progress proved good. Pure: no
server, no clock.
"""

from __future__ import annotations

import math
import random

import attrs
import pytest

from evolink_async import PollPolicy
from evolink_async._watch.calibration import (
    BIN,
    RANGE,
    TO_GO_BINS,
    Calibration,
    Calibrator,
    ErrorStats,
    Finished,
)
from evolink_async._watch.planner import next_poll_at, observe, start
from evolink_async._watch.schedule import PAST_SCHEDULE, interval_after

POLICY = PollPolicy(max_interval=40.0, jitter=0.0)


def uniform_cdf(low: float, high: float) -> tuple[float, ...]:
    """A histogram's cumulative shares for log(actual / estimate) uniform in [low, high]."""
    edges = (-RANGE + i * BIN for i in range(round(2 * RANGE / BIN) + 1))
    return tuple(min(1.0, max(0.0, (edge - low) / (high - low))) for edge in edges)


def flat(*, seen: float, schedule: tuple[float, ...] = (1.0, 1.1, 1.2)) -> Calibration:
    """A flat model's calibration with this schedule (in estimates)."""
    return Calibration(
        spread=0.3,
        cdf=uniform_cdf(-0.15, 0.3),
        flat=True,
        schedule=schedule,
        latency=0.05,
        seen=seen,
        samples=50.0,
    )


def first_poll(policy: PollPolicy, calibration: Calibration) -> float:
    state = start(policy, started_at=0.0, estimated_time=100.0)
    return next_poll_at(policy, state, now=0.0, u=0.5, calibration=calibration)


def test_a_learned_schedule_goes_past_the_ceiling_where_tasks_ran_longer() -> None:
    # No task finished before 100 s, and tasks ran to 130 s: a poll at the
    # 40 s ceiling would find none.
    assert first_poll(POLICY, flat(seen=1.3)) == pytest.approx(100.0)


def test_the_ceiling_holds_past_the_longest_run_seen() -> None:
    # Tasks were only seen to run 50 s: whether any finishes before 100 s
    # is a guess, so the ceiling stands.
    assert first_poll(POLICY, flat(seen=0.5)) == pytest.approx(40.0)


def test_the_ceiling_holds_in_the_tail_of_the_durations() -> None:
    # Nearly all tasks finish before 100 s: a gap out there rests on the
    # few longest, the last to be learned.
    calibration = attrs.evolve(flat(seen=1.3), cdf=uniform_cdf(-1.0, 0.02))
    assert first_poll(POLICY, calibration) == pytest.approx(40.0)


def test_learned_gaps_off_keeps_a_strict_ceiling() -> None:
    strict = attrs.evolve(POLICY, learned_gaps=False)
    assert first_poll(strict, flat(seen=1.3)) == pytest.approx(40.0)


def test_jitter_on_a_schedule_only_brings_a_poll_forward() -> None:
    jittered = attrs.evolve(POLICY, jitter=0.1)
    state = start(jittered, started_at=0.0, estimated_time=100.0)
    times = [
        next_poll_at(jittered, state, now=0.0, u=u, calibration=flat(seen=1.3))
        for u in (0.0, 0.5, 0.999)
    ]
    assert times == pytest.approx([90.0, 95.0, 99.99])


def test_a_task_past_its_schedule_is_polled_at_its_latency_then_backs_off() -> None:
    calibration = flat(seen=1.3)
    state = start(POLICY, started_at=0.0, estimated_time=100.0)
    for at in (100.0, 110.0, 120.0, 125.0):
        state = observe(state, at=at, progress=0, status="processing")
    # Past the schedule's end (120 s): every latency (5 s).
    assert next_poll_at(POLICY, state, now=125.0, u=0.5, calibration=calibration) == (
        pytest.approx(130.0)
    )
    # Far past it: the backoff of the last gap.
    late = 120.0 * PAST_SCHEDULE + 10.0
    state = observe(state, at=late, progress=0, status="processing")
    gap = state.gap
    assert next_poll_at(POLICY, state, now=late, u=0.5, calibration=calibration) == (
        pytest.approx(late + min(POLICY.max_interval, gap * POLICY.backoff))
    )


def test_interval_after_counts_an_early_poll_for_the_time_ahead() -> None:
    schedule = (1.0, 2.0, 3.0)
    assert interval_after(schedule, 0.0, latency=0.1, jitter=0.1) == pytest.approx(1.0)
    # 1.95 is within a tenth of the 1 -> 2 gap: it stood for 2.0.
    assert interval_after(schedule, 1.95, latency=0.1, jitter=0.1) == pytest.approx(1.05)
    assert interval_after(schedule, 1.95, latency=0.1, jitter=0.1, polled=False) == (
        pytest.approx(0.05)
    )
    assert interval_after(schedule, 0.0, latency=0.1, jitter=0.1, stride=2) == pytest.approx(2.0)
    assert interval_after(schedule, 3.5, latency=0.1, jitter=0.1) == pytest.approx(0.1)
    assert interval_after(schedule, 3.0 * PAST_SCHEDULE + 0.1, latency=0.1, jitter=0.1) is None
    assert interval_after((), 1.0, latency=0.1, jitter=0.1) is None


def test_a_calibration_tells_its_longest_run_and_a_latency_of_the_mean() -> None:
    rng = random.Random(3)
    calibrator = Calibrator(0.4, latency_target=0.08)
    durations = [100.0 * (0.6 if rng.random() < 0.8 else 2.5) for _ in range(60)]
    for duration in durations:
        calibrator.learn("m", Finished(estimate=100.0, duration=duration, flat=True))
    assert calibrator.wants_running("m")
    # A task still running at 3 estimates shows it can run so long, not
    # that none finishes sooner: the longest finished run is what counts.
    calibrator.running("m", [math.log(3.0)])
    calibration = calibrator.get("m")
    assert calibration is not None and calibration.schedule
    assert calibration.seen == pytest.approx(2.5)
    # A share of the mean duration (~0.98 estimates), not of the median (0.6).
    assert 0.06 < calibration.latency < 0.1
    calibrator.learn("m", Finished(estimate=100.0, duration=400.0, flat=True))
    assert calibrator.get("m") is not None


def test_a_line_proved_good_skips_past_the_ceiling_to_the_predicted_finish() -> None:
    # 10 % at 20 s, 50 % at 100 s: the line reaches 100 % at 200 s, and
    # finished tasks scored such lines as far better than the level.
    good, poor = ErrorStats(50.0, 0.0, 0.02), ErrorStats(50.0, 0.0, 0.3)
    calibration = Calibration(
        spread=0.3, level=(poor,) * TO_GO_BINS, line=(good,) * TO_GO_BINS, samples=50.0
    )
    policy = PollPolicy(max_interval=40.0, jitter=0.0, min_interval=1.0)
    state = start(policy, started_at=0.0, estimated_time=200.0)
    state = observe(state, at=20.0, progress=10, status="processing")
    state = observe(state, at=100.0, progress=50, status="processing")
    when = next_poll_at(policy, state, now=100.0, u=0.5, calibration=calibration)
    assert 140.0 < when <= 200.0
    # A strict ceiling, or a line no finished task vouched for, keeps to it.
    strict = attrs.evolve(policy, learned_gaps=False)
    assert next_poll_at(strict, state, now=100.0, u=0.5, calibration=calibration) <= 140.0
    unscored = attrs.evolve(calibration, line=(None,) * TO_GO_BINS)
    assert next_poll_at(policy, state, now=100.0, u=0.5, calibration=unscored) <= 140.0


def test_a_young_model_is_scheduled_again_sooner() -> None:
    calibrator = Calibrator(0.4)
    due = []
    for index in range(120):
        calibrator.learn("m", Finished(estimate=100.0, duration=100.0 + index % 7, flat=True))
        if calibrator.wants_running("m"):
            due.append(index + 1)
            calibrator.running("m", [])
            assert calibrator.get("m") is not None  # computes the schedule
    # Every task or two at first, every RESCHEDULE (16) tasks once it has many.
    assert due[:3] == [5, 7, 10]
    assert due[-1] - due[-2] == 16
