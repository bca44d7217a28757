"""
Learning from finished tasks: the pure calibrator, the planner planning with
what it learned, and the watcher doing both against the mock.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import json
import math
import random
import statistics

import attrs
import pytest

from evolink_async import EvoLinkClient, PollPolicy, RawRequest
from evolink_async._watch.calibration import (
    MAX_MODELS,
    RANGE,
    WINDOW,
    Calibration,
    Calibrator,
    Finished,
)
from evolink_async._watch.planner import finished, next_poll_at, observe, start
from evolink_async._watch.schedule import fewest_polls
from evolink_async.testing import MockEvoLink, MockTask

from .conftest import JournalTarget

pytestmark = pytest.mark.anyio

POLICY = PollPolicy(jitter=0.0)
SPREAD = POLICY.estimate_spread


def taught(samples: list[Finished], model: str = "m") -> Calibration:
    calibrator = Calibrator(SPREAD)
    for sample in samples:
        calibrator.learn(model, sample)
    calibration = calibrator.get(model)
    assert calibration is not None
    return calibration


def lognormal(n: int, *, bias: float, sigma: float, seed: int = 1) -> list[Finished]:
    """Tasks estimated at 100 s that really run 100 s x bias x a lognormal spread."""
    rng = random.Random(seed)
    return [
        Finished(estimate=100.0, duration=100.0 * bias * math.exp(rng.gauss(0.0, sigma)))
        for _ in range(n)
    ]


# -- the calibrator -----------------------------------------------------------


def test_nothing_learned_means_no_calibration() -> None:
    calibrator = Calibrator(SPREAD)
    assert calibrator.get("m") is None
    assert calibrator.get(None) is None


@pytest.mark.parametrize(("bias", "sigma"), [(1.0, 0.3), (3.0, 0.3), (1 / 3, 0.3), (1.0, 0.8)])
def test_learns_the_estimates_bias_and_spread(bias: float, sigma: float) -> None:
    calibration = taught(lognormal(400, bias=bias, sigma=sigma))
    assert calibration.shift == pytest.approx(math.log(bias), abs=0.12)
    assert calibration.spread == pytest.approx(sigma, rel=0.25)
    assert calibration.samples == WINDOW  # remembers the last WINDOW tasks


def test_one_outlier_moves_the_mean_by_a_bounded_amount() -> None:
    steady = lognormal(50, bias=1.0, sigma=0.2)
    before = taught(steady)
    after = taught([*steady, Finished(estimate=100.0, duration=1e9)])
    # Capped at CAP spreads, over a weight of ~53 tasks.
    assert after.shift - before.shift < 3 * before.spread / 50
    assert after.shift > before.shift


def test_unusable_samples_teach_nothing() -> None:
    calibrator = Calibrator(SPREAD)
    for estimate, duration in [(0.0, 10.0), (10.0, 0.0), (math.nan, 1.0), (1.0, math.inf)]:
        calibrator.learn("m", Finished(estimate=estimate, duration=duration))
    calibrator.learn(None, Finished(estimate=1.0, duration=1.0))
    assert calibrator.get("m") is None
    assert len(calibrator) == 0


def bimodal(n: int, *, seed: int, flat: bool = False) -> list[Finished]:
    """Tasks estimated at 100 s: 80 % really run ~60 s, 20 % ~250 s."""
    rng = random.Random(seed)
    return [
        Finished(
            estimate=100.0,
            duration=100.0 * (0.6 if rng.random() < 0.8 else 2.5) * math.exp(rng.gauss(0, 0.1)),
            flat=flat,
        )
        for _ in range(n)
    ]


def test_a_bimodal_population_keeps_both_modes_in_its_histogram() -> None:
    calibration = taught(bimodal(400, seed=3))
    assert calibration.cdf is not None

    def share_between(low: float, high: float) -> float:
        return calibration.survival(math.log(low)) - calibration.survival(math.log(high))

    assert share_between(0.45, 0.8) == pytest.approx(0.8, abs=0.08)
    assert share_between(1.9, 3.3) == pytest.approx(0.2, abs=0.08)
    assert share_between(1.0, 1.7) < 0.03  # the gap between them is empty
    assert calibration.is_likely(math.log(0.6))
    assert calibration.is_likely(math.log(2.5))
    assert not calibration.is_likely(math.log(1.35))
    assert calibration.survival(-RANGE - 1) == 1.0
    assert calibration.survival(RANGE + 1) == 0.0


def test_the_histogram_waits_for_a_few_tasks() -> None:
    assert taught(lognormal(2, bias=1.0, sigma=0.3)).cdf is None
    assert taught(lognormal(5, bias=1.0, sigma=0.3)).cdf is not None


def test_progress_that_never_moves_is_learned_as_flat() -> None:
    flat = [Finished(estimate=100.0, duration=100.0, flat=True) for _ in range(5)]
    assert taught(flat).flat
    moving = [Finished(estimate=100.0, duration=100.0, moved=True) for _ in range(5)]
    assert not taught(moving).flat
    # Mostly moving, sometimes caught at 0 late: still informative.
    mixed = [
        Finished(estimate=100.0, duration=100.0, moved=i % 3 != 0, flat=i % 3 == 0)
        for i in range(30)
    ]
    assert not taught(mixed).flat
    # Too little evidence either way: not flat.
    assert not taught(flat[:2]).flat


def test_progress_predictions_are_scored_by_the_share_still_to_go() -> None:
    # Level predictions: 30 % off when most is still to go, 2 % near the end.
    samples = [
        Finished(
            estimate=100.0,
            duration=100.0,
            level=(
                (100.0 * (1.3 if i % 2 else 0.7), 0.9),
                (100.0 * (1.02 if i % 2 else 0.98), 0.1),
            ),
            line=((100.0, 0.6),),
        )
        for i in range(20)
    ]
    calibration = taught(samples)
    early, late = calibration.level_score(0.9), calibration.level_score(0.1)
    assert early is not None and late is not None
    assert early.noise == pytest.approx(0.30, abs=0.05)
    assert late.noise == pytest.approx(0.02, abs=0.01)
    assert calibration.level_score(0.4) is None  # nothing scored there
    line = calibration.line_score(0.6)
    assert line is not None and line.bias == pytest.approx(0.0, abs=1e-9)


def test_memory_is_bounded_by_models_not_tasks() -> None:
    calibrator = Calibrator(SPREAD)
    for i in range(MAX_MODELS + 10):
        calibrator.learn(f"model-{i}", Finished(estimate=1.0, duration=2.0))
    assert len(calibrator) == MAX_MODELS
    assert calibrator.get("model-0") is None  # the least recently used went first
    assert calibrator.get(f"model-{MAX_MODELS + 9}") is not None


# -- the planner with a calibration --------------------------------------------


def test_a_calibrated_estimate_moves_the_first_poll() -> None:
    state = start(POLICY, started_at=0.0, estimated_time=100.0)
    plain = next_poll_at(POLICY, state, now=0.0, u=0.5)
    slower = taught(lognormal(50, bias=3.0, sigma=0.2))
    assert next_poll_at(POLICY, state, now=0.0, u=0.5, calibration=slower) == pytest.approx(
        3 * plain, rel=0.15
    )


def schedule(calibration: Calibration | None, *, duration: float, estimate: float) -> list[float]:
    """Poll times of a task that shows no progress until it completes."""
    state = start(POLICY, started_at=0.0, estimated_time=estimate)
    polls: list[float] = []
    when = next_poll_at(POLICY, state, now=0.0, u=0.5, calibration=calibration)
    while True:
        polls.append(when)
        if when >= duration:
            return polls
        state = observe(state, at=when, progress=0, status="processing")
        when = next_poll_at(POLICY, state, now=when, u=0.5, calibration=calibration)


def test_a_wrong_estimate_costs_far_fewer_polls_once_calibrated() -> None:
    # The server says 100 s; tasks really take ~300 s and show no progress.
    rng = random.Random(5)
    samples = [
        Finished(estimate=100.0, duration=300.0 * math.exp(rng.gauss(0, 0.3)), flat=True)
        for _ in range(40)
    ]
    calibration = taught(samples)
    assert calibration.flat
    for duration in (220.0, 300.0, 420.0):
        blind = schedule(None, duration=duration, estimate=100.0)
        calibrated = schedule(calibration, duration=duration, estimate=100.0)
        assert len(calibrated) < 0.7 * len(blind)
        # ... and still finds it within the latency target.
        assert calibrated[-1] - duration <= POLICY.latency_target * 300.0 + 1e-9


def test_a_flat_model_skips_the_early_progress_poll() -> None:
    calibration = taught([Finished(estimate=100.0, duration=100.0, flat=True)] * 10)
    polls = schedule(calibration, duration=100.0, estimate=100.0)
    assert polls[0] > POLICY.first_poll_fraction * 100.0


def test_polls_gather_at_both_modes_of_a_bimodal_model() -> None:
    samples = bimodal(300, seed=9, flat=True)
    calibration = taught(samples)
    polls = schedule(calibration, duration=260.0, estimate=100.0)
    gaps = list(
        zip(polls, [b - a for a, b in zip([0.0, *polls], polls, strict=False)], strict=True)
    )
    # Gaps that start and end inside each window.
    first_mode = [g for t, g in gaps if t - g >= 50.0 and t <= 75.0]
    between = [g for t, g in gaps if 110.0 <= t <= 170.0]
    second_mode = [g for t, g in gaps if t - g >= 215.0 and t <= 290.0]
    assert first_mode and second_mode
    # Close together in each mode, sparse between them. The latency target
    # is a share of the mean duration (of the histogram's points: a tenth
    # of slack for its bins), not of the median, which sits in the first.
    mean = sum(sample.duration for sample in samples) / len(samples)
    assert max(first_mode) <= POLICY.latency_target * mean * 1.1
    assert max(second_mode) <= POLICY.latency_target * 250.0 + 1e-9
    assert len(between) <= 2


def test_linear_progress_learned_as_good_puts_the_poll_at_the_predicted_end() -> None:
    # Linear progress after a 10 s queue: the line through two readings
    # predicts the finish; once the calibrator knows such predictions are
    # good, the planner polls right there instead of feeling its way.
    def run(calibration: Calibration | None) -> tuple[list[float], Finished | None]:
        duration, queued = 200.0, 10.0
        state = start(POLICY, started_at=0.0, estimated_time=200.0)
        when = next_poll_at(POLICY, state, now=0.0, u=0.5, calibration=calibration)
        polls = [when]
        while when < duration:
            progress = max(0, int(100 * (when - queued) / (duration - queued)))
            state = observe(state, at=when, progress=progress, status="processing")
            when = next_poll_at(POLICY, state, now=when, u=0.5, calibration=calibration)
            polls.append(when)
        return polls, finished(state, at=when)

    blind, lesson = run(None)
    assert lesson is not None and lesson.line
    calibration = taught([lesson] * 10)
    learned, _ = run(calibration)
    assert len(learned) < len(blind)
    assert learned[-1] - 200.0 < 0.03 * 200.0


# -- the watcher, against the mock ------------------------------------------------

SCALE = 0.01


def blind_schedule(policy: PollPolicy, state: MockTask) -> tuple[int, float]:
    """
    The polls the planner alone (no calibration, no progress) makes of a task
    the mock ran, and the time of the one that finds it, from its creation:
    computed, not timed, as the planner is pure.
    """
    alone = start(policy, started_at=0.0, estimated_time=state.estimated_time)
    when, count = next_poll_at(policy, alone, now=0.0, u=0.5), 1
    while when < state.finishes_at - state.created_at:
        alone = observe(alone, at=when, progress=0, status="processing")
        when, count = next_poll_at(policy, alone, now=when, u=0.5), count + 1
    return count, when


async def test_the_watcher_calibrates_a_model_whose_estimates_are_3x_too_low() -> None:
    # No progress and estimates a third of the real run time. Once some
    # tasks finished, the next ones are planned from what those showed: the
    # server sees far fewer reads of them than the planner alone would make
    # for the very same tasks, and finds each one soon after it finished.
    policy = attrs.evolve(PollPolicy().scaled(SCALE), max_polls_per_second=10_000.0)
    async with (
        MockEvoLink(time_scale=SCALE, eta_bias=1 / 3, progress="none", seed=4) as mock,
        EvoLinkClient(mock.api_key, base_url=mock.url, poll=policy) as client,
    ):
        request = RawRequest(
            "seedance-2.0-image-to-video",
            {"prompt": "a lighthouse at dusk", "image_urls": ["https://example.com/frame.jpg"]},
        )

        async def one() -> str:
            task = await client.submit(request)
            await client.wait(task)
            return task.id

        await asyncio.gather(*(one() for _ in range(16)))
        later = await asyncio.gather(*(one() for _ in range(8)))

    seen, blind, late, blind_late = [], [], [], []
    for task_id in later:
        state = mock.tasks[task_id]
        polls = mock.stats.polls[task_id]
        seen.append(len(polls))
        # The same task under the planner without calibration (pure, so its
        # schedule is computed, not timed): the mock's reads start from the
        # task's creation, as does this schedule.
        count, when = blind_schedule(policy, state)
        blind.append(count)
        late.append((polls[-1] - state.finishes_at) / state.duration)
        blind_late.append((when - (state.finishes_at - state.created_at)) / state.duration)
    # Far fewer reads than the planner alone (about 12 against 29), and the
    # finish still seen soon: within the latency target on average, and
    # no task much later than the blind planner finds its worst one (19 %).
    assert statistics.mean(seen) < 0.7 * statistics.mean(blind)
    assert statistics.mean(late) <= 0.1
    assert max(late) <= max(0.25, max(blind_late))


def test_calibration_is_a_frozen_value() -> None:
    calibration = taught(lognormal(10, bias=1.0, sigma=0.3))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        calibration.shift = 1.0  # type: ignore[misc]


# -- the fewest-polls schedule --------------------------------------------------


def brute_force(points: list[float], latency: float, share: float) -> float:
    """Fewest expected polls over every schedule of polls at points + latency."""
    ends = sorted(points)
    candidates = sorted({p + latency for p in ends} | {ends[-1]})
    allowed = int(len(ends) * share)
    best = math.inf
    for size in range(1, len(candidates) + 1):
        for times in itertools.combinations(candidates, size):
            if times[-1] < ends[-1]:
                continue
            polls, late = 0, 0
            for end in ends:
                k = bisect.bisect_left(times, end)
                polls += k + 1
                late += times[k] - end > latency + 1e-12
            if late <= allowed:
                best = min(best, polls / len(ends))
    return best


def expected(points: list[float], times: tuple[float, ...], latency: float) -> tuple[float, int]:
    polls, late = 0, 0
    for end in points:
        k = bisect.bisect_left(times, end)
        polls += k + 1
        late += times[k] - end > latency + 1e-12
    return polls / len(points), late


@pytest.mark.parametrize("seed", range(6))
def test_fewest_polls_matches_a_brute_force_search(seed: int) -> None:
    rng = random.Random(seed)
    points = [rng.lognormvariate(0.0, 0.5) for _ in range(rng.randint(5, 9))]
    share = rng.choice([0.0, 0.15, 0.3])
    latency = rng.choice([0.05, 0.2, 0.5])
    times = fewest_polls(points, latency, share=share)
    polls, late = expected(points, times, latency)
    assert late <= int(len(points) * share)
    assert polls == pytest.approx(brute_force(points, latency, share))


def test_fewest_polls_of_edge_cases() -> None:
    assert fewest_polls([], 0.1) == ()
    assert fewest_polls([1.0, 2.0], 0.0) == ()
    assert fewest_polls([1.0], 0.1) == pytest.approx((1.1,))
    # Evenly spread durations, none late: polls `latency` apart across them
    # (plus the gap between two points, which no task falls in).
    points = [i / 100 for i in range(1, 101)]
    times = fewest_polls(points, 0.1, share=0.0)
    assert all(b - a <= 0.1 + 0.01 + 1e-9 for a, b in itertools.pairwise(times))
    assert times[-1] >= 1.0


def test_running_tasks_lengthen_a_flat_models_schedule() -> None:
    # The tasks that finished so far were the short ones; many still run
    # past 2x the estimate. Counting them moves the schedule out.
    finished_only = Calibrator(SPREAD)
    with_running = Calibrator(SPREAD)
    rng = random.Random(2)
    for calibrator in (finished_only, with_running):
        for _ in range(40):
            duration = 100.0 * math.exp(rng.gauss(0.0, 0.2))
            calibrator.learn("m", Finished(estimate=100.0, duration=duration, flat=True))
    assert with_running.wants_running("m")
    with_running.running("m", [math.log(2.2)] * 40)
    plain, counted = finished_only.get("m"), with_running.get("m")
    assert plain is not None and counted is not None
    assert plain.schedule and counted.schedule
    assert plain.schedule[-1] < 2.0 < counted.schedule[-1]
    assert not with_running.wants_running("m")  # until RESCHEDULE more tasks


# -- snapshot and restore ---------------------------------------------------------


def test_a_snapshot_restores_the_same_calibration() -> None:
    calibrator = Calibrator(SPREAD)
    for sample in lognormal(60, bias=2.0, sigma=0.4):
        calibrator.learn("a", sample)
    for sample in lognormal(10, bias=0.5, sigma=0.2, seed=2):
        calibrator.learn("b", attrs.evolve(sample, flat=True))
    data = json.loads(json.dumps(calibrator.snapshot()))  # JSON-ready
    again = Calibrator(SPREAD)
    assert again.restore(data) == 2
    for model in ("a", "b"):
        before, after = calibrator.get(model), again.get(model)
        assert before is not None and after is not None
        assert after.shift == pytest.approx(before.shift)
        assert after.spread == pytest.approx(before.spread)
        assert after.cdf == pytest.approx(before.cdf)
        assert after.flat == before.flat
        assert after.level == before.level and after.line == before.line


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"version": 99, "models": {}},
        {"version": 1, "models": []},
        {"version": 1, "models": {"m": {"weight": "x"}}},
        {"version": 1, "models": {"m": None}},
    ],
)
def test_an_unreadable_snapshot_restores_nothing(data: object) -> None:
    calibrator = Calibrator(SPREAD)
    assert calibrator.restore(data) == 0
    assert calibrator.get("m") is None


def test_a_bad_model_in_a_snapshot_leaves_the_others() -> None:
    calibrator = Calibrator(SPREAD)
    for sample in lognormal(20, bias=1.5, sigma=0.3):
        calibrator.learn("good", sample)
    data = calibrator.snapshot()
    bad = dict(data["models"]["good"])
    for field, value in [
        ("mean", math.inf),
        ("variance", -1.0),
        ("histogram", [1.0] * 3),
        ("histogram", [-1.0] * len(bad["histogram"])),
        ("level", [[1.0, 0.0]] * 4),
        ("weight", True),
        ("line", "no"),
    ]:
        data["models"]["bad"] = {**bad, field: value}
        again = Calibrator(SPREAD)
        assert again.restore(data) == 1, field
        assert again.get("bad") is None and again.get("good") is not None


# -- kept in the batch journal ---------------------------------------------------


async def test_a_resumed_run_starts_calibrated(journal_target: JournalTarget) -> None:
    # Run 1 learns that the estimates are a third of the real run times; the
    # journal keeps that. Run 2, on a fresh client, resumes the run with new
    # jobs: they are planned from the kept calibration before any of them
    # finished, so the server reads them far less often than the planner
    # alone would.
    policy = attrs.evolve(PollPolicy().scaled(SCALE), max_polls_per_second=10_000.0)

    def jobs(first: int, count: int) -> list[dict[str, object]]:
        return [
            {
                "id": f"job-{n}",
                "model": "seedance-2.0-image-to-video",
                "prompt": "a lighthouse at dusk",
                "image_urls": ["https://example.com/frame.jpg"],
            }
            for n in range(first, first + count)
        ]

    async with MockEvoLink(time_scale=SCALE, eta_bias=1 / 3, progress="none", seed=6) as mock:
        async with EvoLinkClient(mock.api_key, base_url=mock.url, poll=policy) as client:
            first = await client.batch(jobs(0, 16), **journal_target.batch_options()).results()
        assert all(outcome.ok for outcome in first)
        async with EvoLinkClient(mock.api_key, base_url=mock.url, poll=policy) as client:
            both = await client.batch(jobs(0, 22), **journal_target.batch_options()).results()
    assert [outcome.resumed for outcome in both] == [True] * 16 + [False] * 6
    assert mock.stats.tasks_created == 22  # nothing created twice

    seen, blind = [], []
    for outcome in both[16:]:
        assert outcome.task is not None
        state = mock.tasks[outcome.task.id]
        seen.append(len(mock.stats.polls[outcome.task.id]))
        blind.append(blind_schedule(policy, state)[0])
    assert statistics.mean(seen) < 0.7 * statistics.mean(blind)


def test_a_task_found_at_its_first_poll_still_teaches_its_bracket() -> None:
    # Short tasks that finished before the first poll are only known to be
    # shorter than it: they are shared out over that bracket, not left out
    # (leaving them out would teach that no task is that short).
    short = [Finished(estimate=100.0, duration=25.0, within=(0.0, 50.0), flat=True)] * 30
    calibration = taught(lognormal(30, bias=1.0, sigma=0.2) + short)
    assert calibration.cdf is not None
    # Half the tasks (and the prior's tail) below 0.6 of the estimate.
    assert 1.0 - calibration.survival(math.log(0.6)) == pytest.approx(0.5, abs=0.1)
    assert calibration.shift < -0.2
    assert finished(start(POLICY, started_at=0.0, estimated_time=100.0), at=40.0) == Finished(
        estimate=100.0, duration=20.0, within=(0.0, 40.0)
    )


def test_a_poll_the_ceiling_forced_does_not_skip_the_schedule() -> None:
    calibration = Calibration(spread=0.3, cdf=(0.0, 1.0), flat=True, schedule=(1.0, 1.1, 1.2))
    policy = PollPolicy(max_interval=40.0, jitter=0.0)
    state = start(policy, started_at=0.0, estimated_time=100.0)
    first = next_poll_at(policy, state, now=0.0, u=0.5, calibration=calibration)
    assert first == pytest.approx(40.0)  # the ceiling, well before 100 s
    state = observe(state, at=first, progress=0, status="processing")
    second = next_poll_at(policy, state, now=first, u=0.5, calibration=calibration)
    state = observe(state, at=second, progress=0, status="processing")
    third = next_poll_at(policy, state, now=second, u=0.5, calibration=calibration)
    assert (second, third) == pytest.approx((80.0, 100.0))
    # A poll a little early (by jitter) stood for the scheduled time just
    # ahead; jitter never takes a poll past the schedule's time.
    jittered = attrs.evolve(policy, jitter=0.1)
    state = observe(state, at=109.5, progress=0, status="processing")
    assert next_poll_at(jittered, state, now=109.5, u=1.0, calibration=calibration) == (
        pytest.approx(120.0)
    )
    assert next_poll_at(jittered, state, now=109.5, u=0.0, calibration=calibration) == (
        pytest.approx(109.5 + 0.9 * 10.5)
    )


def test_under_pressure_a_schedule_is_followed_sparser() -> None:
    calibration = Calibration(
        spread=0.3, cdf=(0.0, 1.0), flat=True, schedule=tuple(1.0 + i / 10 for i in range(10))
    )
    state = observe(
        start(POLICY, started_at=0.0, estimated_time=100.0), at=100.0, progress=0, status="x"
    )
    full = next_poll_at(POLICY, state, now=100.0, u=0.5, calibration=calibration)
    quarter = next_poll_at(POLICY, state, now=100.0, u=0.5, pressure=0.25, calibration=calibration)
    assert (full, quarter) == pytest.approx((110.0, 120.0))
