"""
The mock's task-life knobs, read over HTTP with a real client: how progress
moves (`progress="steps" | "linear" | "none"`) and run times drawn from a
mixture of lognormals (`duration_mixture`).
"""

from __future__ import annotations

import asyncio
import math
import re
import statistics
from collections.abc import AsyncIterator
from typing import Final

import pytest

from evolink_async import EvoLinkClient, Task, TaskStatus
from evolink_async.testing import MockEvoLink, MockTask

from .conftest import make_client

pytestmark = pytest.mark.anyio

MODEL: Final = "seedance-2.0-image-to-video"
IMAGE = "https://example.com/first-frame.jpg"
#: seedance's estimated time (unscaled seconds) for the default 5 s of video.
ESTIMATE = 165.0
#: Long enough to read a task several times while it processes (about 1.5 s
#: of it), short enough to wait for its end.
SCALE = 0.01
GET_TASK = "GET /v1/tasks/{id}"


@pytest.fixture
async def linear() -> AsyncIterator[MockEvoLink]:
    async with MockEvoLink(time_scale=SCALE, seed=5, progress="linear") as server:
        yield server


async def submit(client: EvoLinkClient, prompt: str = "a lighthouse at dusk") -> Task:
    return await client.submit(MODEL, prompt=prompt, image_urls=[IMAGE])


async def read_until_done(
    client: EvoLinkClient, mock: MockEvoLink, task_id: str
) -> list[tuple[float, Task]]:
    """Every read of `task_id` until it is terminal, with the loop time the mock rendered it at."""
    reads: list[tuple[float, Task]] = []
    while True:
        snapshot = await client.get_task(task_id)
        reads.append((mock.stats.polls[task_id][-1], snapshot))
        if snapshot.is_terminal:
            return reads
        await asyncio.sleep(0.03)


def linear_value(task: MockTask, at: float) -> int:
    """What linear progress should be at loop time `at` while `task` processes."""
    window = task.created_at + task.duration - task.started_at
    return math.floor(100 * (at - task.started_at) / window)


async def test_linear_progress_is_the_elapsed_share_of_the_processing_window(
    linear: MockEvoLink,
) -> None:
    async with make_client(linear) as client:
        task_id = (await submit(client)).id
        reads = await read_until_done(client, linear, task_id)
    task = linear.tasks[task_id]
    processing = [(at, t) for at, t in reads if t.status is TaskStatus.PROCESSING]
    assert len(processing) >= 2
    for at, snapshot in processing:
        assert snapshot.progress == linear_value(task, at)
    first, last = processing[0], processing[-1]
    assert last[1].progress > first[1].progress
    # Equal shares of time give equal shares of progress (within the floor).
    rate = (last[1].progress - first[1].progress) / (last[0] - first[0])
    window = task.finishes_at - task.started_at
    assert rate == pytest.approx(100 / window, abs=2 / (last[0] - first[0]))
    assert all(t.progress == 0 for _, t in reads if t.status is TaskStatus.PENDING)
    assert reads[-1][1].status is TaskStatus.COMPLETED
    assert reads[-1][1].progress == 100
    assert len(linear.stats.polls[task_id]) == len(reads)


async def test_linear_progress_of_a_failed_task_stops_where_it_ended(linear: MockEvoLink) -> None:
    async with make_client(linear) as client:
        task_id = (await submit(client, "a storm mock:fail=service_error")).id
        reads = await read_until_done(client, linear, task_id)
        task = linear.tasks[task_id]
        end = reads[-1][1]
        assert end.status is TaskStatus.FAILED
        assert end.progress == linear_value(task, task.finishes_at) < 100
        assert (await client.get_task(task_id)).progress == end.progress


async def test_no_progress_stays_zero_until_the_task_completes() -> None:
    async with (
        MockEvoLink(time_scale=SCALE, seed=6, progress="none") as mock,
        make_client(mock) as client,
    ):
        task_id = (await submit(client)).id
        reads = await read_until_done(client, mock, task_id)
        failed_id = (await submit(client, "a storm mock:fail=service_error")).id
        failed = await read_until_done(client, mock, failed_id)
    statuses = [t.status for _, t in reads]
    assert statuses.count(TaskStatus.PROCESSING) >= 3
    assert [t.progress for _, t in reads[:-1]] == [0] * (len(reads) - 1)
    assert reads[-1][1].status is TaskStatus.COMPLETED
    assert reads[-1][1].progress == 100
    assert failed[-1][1].status is TaskStatus.FAILED
    assert [t.progress for _, t in failed] == [0] * len(failed)


async def test_steps_stay_the_default_and_progress_modes_draw_the_same_run_times() -> None:
    durations: dict[str, list[float]] = {}
    for mode in ("steps", "linear", "none"):
        options = {} if mode == "steps" else {"progress": mode}
        async with MockEvoLink(time_scale=SCALE, seed=9, **options) as mock:  # type: ignore[arg-type]
            async with make_client(mock) as client:
                for index in range(12):
                    await submit(client, f"task {index}")
                await asyncio.sleep(0.9)  # a little over half the mean run time
                reads = [await client.get_task(task_id) for task_id in mock.tasks]
            assert mock.progress == mode
            durations[mode] = [task.duration for task in mock.tasks.values()]
            for snapshot in reads:
                task = mock.tasks[snapshot.id]
                at = mock.stats.polls[snapshot.id][-1]
                assert task.progress_mode == mode
                if snapshot.status is TaskStatus.COMPLETED:
                    assert snapshot.progress == 100
                elif snapshot.status is TaskStatus.PENDING or mode == "none":
                    assert snapshot.progress == 0
                elif mode == "linear":
                    assert snapshot.progress == linear_value(task, at)
                else:
                    assert snapshot.progress in (0, *task.progress_values)
            assert {t.status for t in reads} >= {TaskStatus.PROCESSING}
    assert durations["linear"] == durations["steps"] == durations["none"]


async def test_a_mixture_draws_run_times_around_each_factor_in_its_share() -> None:
    mixture = ((0.8, 0.6), (0.2, 2.5))
    async with (
        MockEvoLink(
            time_scale=0.001, seed=11, duration_sigma=0.1, duration_mixture=mixture, eta_bias=2.0
        ) as mock,
        make_client(mock) as client,
    ):
        created = await asyncio.gather(*(submit(client, f"task {i}") for i in range(400)))
    mean = ESTIMATE * 0.001
    ratios = [mock.tasks[task.id].duration / mean for task in created]
    short = [r for r in ratios if r < 1.2]
    long = [r for r in ratios if r >= 1.2]
    assert len(short) + len(long) == 400
    # 80 % +- 4 standard deviations of a binomial share over 400 tasks.
    assert len(long) / 400 == pytest.approx(0.2, abs=0.08)
    assert statistics.median(short) == pytest.approx(0.6, rel=0.05)
    assert statistics.median(long) == pytest.approx(2.5, rel=0.05)
    assert max(short) < 0.6 * math.exp(0.5) < 2.5 * math.exp(-0.5) < min(long)
    # The server reports the unmixed mean x eta_bias: it cannot know the component.
    assert {task.estimated_time for task in created} == {round(mean * 2.0, 3)}
    assert mock.stats.tasks_created == 400
    assert mock.duration_mixture == mixture


async def test_a_mixture_set_later_reaches_new_tasks_only() -> None:
    async with (
        MockEvoLink(time_scale=0.001, seed=3, duration_sigma=0.0) as mock,
        make_client(mock) as client,
    ):
        before = await submit(client)
        mock.duration_mixture = ((3.0, 4.0),)
        after = await submit(client)
    mean = ESTIMATE * 0.001
    assert mock.duration_mixture == ((1.0, 4.0),)
    assert mock.tasks[before.id].duration == pytest.approx(mean)
    assert mock.tasks[after.id].duration == pytest.approx(4.0 * mean)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"progress": "smooth"}, "progress must be one of 'steps', 'linear', 'none'"),
        ({"progress": None}, "progress must be one of"),
        ({"duration_mixture": ()}, "non-empty sequence of (weight, factor) pairs"),
        ({"duration_mixture": "0.8,0.6"}, "non-empty sequence of (weight, factor) pairs"),
        ({"duration_mixture": ((0.8, 0.6, 1.0),)}, "got the item (0.8, 0.6, 1.0)"),
        ({"duration_mixture": ((0.8, "0.6"),)}, "of finite numbers"),
        ({"duration_mixture": ((math.nan, 0.6),)}, "of finite numbers"),
        ({"duration_mixture": ((True, 0.6),)}, "of finite numbers"),
        ({"duration_mixture": ((0.8, 0.6), (0.0, 2.5))}, "weights and factors must be > 0"),
        ({"duration_mixture": ((0.8, -0.6),)}, "weights and factors must be > 0"),
    ],
)
def test_task_life_knobs_are_checked(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        MockEvoLink(**options)  # type: ignore[arg-type]


def test_task_life_knobs_set_later_are_checked() -> None:
    mock = MockEvoLink()
    with pytest.raises(ValueError, match="progress must be one of"):
        mock.progress = "linearly"
    with pytest.raises(ValueError, match="must be > 0"):
        mock.duration_mixture = ((1.0, 0.0),)
    assert mock.progress == "steps"
    assert mock.duration_mixture is None
