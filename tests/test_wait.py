"""wait / generate through the shared watcher, against MockEvoLink over real HTTP."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
from aiohttp import web

from evolink_async import (
    EvoLinkClient,
    NotFoundError,
    PollPolicy,
    RawRequest,
    Task,
    TaskCancelledError,
    TaskFailedError,
    TaskStatus,
    WaitTimeoutError,
)
from evolink_async._watch.budget import EASE, MIN_PRESSURE, Pressure
from evolink_async.testing import Fault, MockEvoLink

from .conftest import FAST_POLL, TIME_SCALE, make_client

pytestmark = pytest.mark.anyio

GET_TASK = "GET /v1/tasks/{id}"
BATCH = "POST /v1/tasks/batch"


def job(prompt: str = "A cat playing piano") -> RawRequest:
    return RawRequest(
        "wan2.5-image-to-video", {"prompt": prompt, "image_urls": ["https://example.com/cat.png"]}
    )


def client_side_tasks() -> set[asyncio.Task[Any]]:
    """Every running task except the mock server's own connection handlers."""
    return {task for task in asyncio.all_tasks() if "aiohttp/web_protocol" not in _code_file(task)}


def _code_file(task: asyncio.Task[Any]) -> str:
    code = getattr(task.get_coro(), "cr_code", None)
    return code.co_filename if code is not None else ""


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


async def test_generate_returns_the_completed_task(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    task = await client.generate(job())

    assert task.status is TaskStatus.COMPLETED
    assert task.progress == 100
    assert task.video_url is not None and task.video_url.startswith(mock.url)
    assert mock.tasks[task.id].final_status == "completed"
    polls = mock.stats.polls[task.id]
    assert 1 <= len(polls) <= 12
    # Detected after the mock finished it, and not long after.
    finished = mock.tasks[task.id].finishes_at
    assert polls[-1] >= finished
    assert all(gap >= FAST_POLL.min_interval * 0.999 for gap in gaps(polls))


async def test_on_progress_sees_each_change_once_sync_and_async(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    seen_sync: list[tuple[str, int]] = []
    seen_async: list[tuple[str, int]] = []

    def on_sync(task: Task) -> None:
        seen_sync.append((task.status.value, task.progress))

    async def on_async(task: Task) -> None:
        await asyncio.sleep(0)
        seen_async.append((task.status.value, task.progress))

    task = await client.submit(job())
    await asyncio.gather(
        client.wait(task, on_progress=on_sync), client.wait(task, on_progress=on_async)
    )

    for seen in (seen_sync, seen_async):
        assert seen[0] == ("pending", 0)
        assert seen[-1] == ("completed", 100)
        assert len(seen) == len(set(seen)), "a snapshot was reported twice"
        assert [p for _, p in seen] == sorted(p for _, p in seen)
    assert len(mock.stats.polls[task.id]) >= len(seen_sync) - 1


async def test_failed_task_raises_task_failed_error(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    with pytest.raises(TaskFailedError) as info:
        await client.generate(job("mock:fail=content_policy_violation a refused prompt"))
    error = info.value
    assert error.code == "content_policy_violation"
    assert error.retryable is False
    assert error.task.status is TaskStatus.FAILED
    assert mock.tasks[error.task.id].final_status == "failed"


async def test_retryable_failure_codes_are_marked(client: EvoLinkClient) -> None:
    with pytest.raises(TaskFailedError) as info:
        await client.generate(job("mock:fail=service_unavailable"))
    assert info.value.retryable is True
    assert "worth resubmitting" in str(info.value)


async def test_cancelled_task_raises_task_cancelled_error(client: EvoLinkClient) -> None:
    with pytest.raises(TaskCancelledError) as info:
        await client.generate(job("mock:cancel"))
    assert info.value.task.status is TaskStatus.CANCELLED


async def test_timeout_carries_the_last_snapshot_and_the_task_goes_on(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    task = await client.submit(job())
    with pytest.raises(WaitTimeoutError) as info:
        await client.wait(task, timeout=0.01)
    error = info.value
    assert isinstance(error, TimeoutError)
    assert error.task is not None and error.task.id == task.id
    assert not error.task.is_terminal
    done = await client.wait(task.id)
    assert done.status is TaskStatus.COMPLETED


async def test_many_waiters_on_one_id_share_one_poll_stream(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    task = await client.submit(job())
    results = await asyncio.gather(*(client.wait(task.id) for _ in range(20)))

    assert {r.id for r in results} == {task.id}
    polls = mock.stats.polls[task.id]
    assert all(gap >= FAST_POLL.min_interval * 0.999 for gap in gaps(polls))
    # One stream: the count is what a single waiter makes, not 20 times that.
    assert len(polls) <= 12


async def test_wait_by_id_and_on_a_finished_snapshot(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    task = await client.submit(job())
    done = await client.wait(task.id)
    polls_before = len(mock.stats.polls[task.id])
    again = await client.wait(done)
    assert again is done
    assert len(mock.stats.polls[task.id]) == polls_before


async def test_transient_poll_errors_never_end_the_wait(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    task = await client.submit(job())
    mock.inject(Fault.SERVER_ERROR, route=GET_TASK, times=3, status=503)
    mock.inject(Fault.DROP_BEFORE, route=GET_TASK, times=2)
    mock.inject(Fault.SLOW, route=GET_TASK, delay=0.3)
    async with make_client(mock, timeout=0.1) as impatient:
        done = await impatient.wait(task)
    assert done.status is TaskStatus.COMPLETED
    assert mock.stats.faults_injected["server_error"] == 3
    assert mock.stats.faults_injected["drop_before"] == 2


async def test_unknown_status_keeps_waiting(client: EvoLinkClient, mock: MockEvoLink) -> None:
    task = await client.submit(job())
    odd = {"id": task.id, "status": "queued_for_gpu", "progress": 5}
    mock.inject(Fault.REPLY, route=GET_TASK, status=200, body=odd, times=2)
    seen: list[TaskStatus] = []
    done = await client.wait(task, on_progress=lambda t: seen.append(t.status))
    assert done.status is TaskStatus.COMPLETED
    assert TaskStatus.UNKNOWN in seen


async def test_404_after_the_task_existed_ends_the_wait(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    task = await client.submit(job())
    gone = {"error": {"code": "not_found", "message": "task expired", "type": "not_found_error"}}
    mock.inject(Fault.REPLY, route=GET_TASK, status=404, body=gone)
    with pytest.raises(NotFoundError, match=task.id):
        await client.wait(task)


async def test_cancelling_a_waiter_stops_its_polling_and_leaks_no_task(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    await client.get_credits()  # the session exists before counting tasks
    baseline = client_side_tasks()
    slow = attrs.evolve(FAST_POLL)
    tasks = [await client.submit(job()) for _ in range(5)]
    waiters = [asyncio.create_task(client.wait(t)) for t in tasks]
    while sum(len(mock.stats.polls.get(t.id, [])) for t in tasks) < 3:
        await asyncio.sleep(0.005)
    for waiter in waiters:
        waiter.cancel()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    for _ in range(100):
        if client_side_tasks() <= baseline:
            break
        await asyncio.sleep(0.001)
    assert client_side_tasks() == baseline
    assert client._watcher.watched == 0
    polls = sum(len(mock.stats.polls.get(t.id, [])) for t in tasks)
    await asyncio.sleep(slow.max_interval * 2)
    assert sum(len(mock.stats.polls.get(t.id, [])) for t in tasks) == polls


async def test_cancelling_one_waiter_leaves_the_others(client: EvoLinkClient) -> None:
    task = await client.submit(job())
    first = asyncio.create_task(client.wait(task))
    second = asyncio.create_task(client.wait(task))
    await asyncio.sleep(0.01)
    first.cancel()
    done = await second
    assert done.status is TaskStatus.COMPLETED
    assert first.cancelled()


@pytest.mark.slow
async def test_budget_is_respected_with_2000_tasks(mock: MockEvoLink) -> None:
    budget = 400.0
    poll = attrs.evolve(FAST_POLL, max_polls_per_second=budget)
    pressures = []
    async with make_client(mock, poll=poll, max_concurrency=64) as client:
        tasks = await asyncio.gather(*(client.submit(job()) for _ in range(2000)))
        waits = asyncio.gather(*(client.wait(t) for t in tasks))
        while not waits.done():
            pressures.append(client._watcher.pressure)
            await asyncio.sleep(0.01)
        await waits
    # 2000 tasks want far more than 400 polls/s: the watcher plans sparser.
    assert min(pressures) < 0.5
    times = sorted(t for task in tasks for t in mock.stats.polls[task.id])
    assert len(times) >= 2000
    # Any two-second window holds at most two seconds of budget, the bucket's
    # burst (a tenth of a second's worth), and the polls dispatched in budget
    # that queued behind the 64 request slots (under load they reach the
    # server bunched together).
    window_max = 0
    start = 0
    for end, when in enumerate(times):
        while when - times[start] > 2.0:
            start += 1
        window_max = max(window_max, end - start + 1)
    assert window_max <= 2 * budget + budget / 10 + 64
    span = times[-1] - times[0]
    assert len(times) <= budget * span + budget + 5


async def test_429_on_polls_slows_the_whole_watcher_once_per_burst(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    tasks = [await client.submit(job()) for _ in range(3)]
    mock.inject(Fault.RATE_LIMIT, route=GET_TASK, times=2, retry_after=0.01)
    waits = [asyncio.create_task(client.wait(t)) for t in tasks]
    budget = client._watcher.poll_rate
    # Until the server has sent both 429s and the watcher has read them.
    while mock.stats.faults_injected["rate_limit"] < 2 or budget.rate_limited_count < 2:
        await asyncio.sleep(0.002)
    # Two 429s with nothing let through between them: one cut, by half (no
    # rate was measured), however many polls were in flight.
    assert budget.rate_limited_count == 2
    assert budget.cuts == 1
    assert FAST_POLL.max_polls_per_second is not None
    assert budget.rate == pytest.approx(FAST_POLL.max_polls_per_second / 2)
    done = await asyncio.gather(*waits)
    assert all(t.status is TaskStatus.COMPLETED for t in done)
    assert budget.cuts == 1


async def test_batch_endpoint_reads_many_tasks_per_request(mock: MockEvoLink) -> None:
    poll = attrs.evolve(FAST_POLL, batch_endpoint=True)
    async with make_client(mock, poll=poll) as client:
        tasks = await asyncio.gather(*(client.submit(job()) for _ in range(60)))
        done = await asyncio.gather(*(client.wait(t) for t in tasks))
    assert all(t.status is TaskStatus.COMPLETED for t in done)
    assert mock.stats.requests[GET_TASK] == 0
    batches = mock.stats.requests[BATCH]
    reads = sum(len(mock.stats.polls[t.id]) for t in tasks)
    assert 0 < batches < reads / 2
    assert all(len(r.json["task_ids"]) <= 50 for r in mock.requests_log if r.route == BATCH)


async def test_batch_endpoint_falls_back_to_single_reads_for_good() -> None:
    async with MockEvoLink(time_scale=TIME_SCALE, batch_endpoint=False) as mock:
        poll = attrs.evolve(FAST_POLL, batch_endpoint=True)
        async with make_client(mock, poll=poll) as client:
            tasks = await asyncio.gather(*(client.submit(job()) for _ in range(5)))
            done = await asyncio.gather(*(client.wait(t) for t in tasks))
    assert all(t.status is TaskStatus.COMPLETED for t in done)
    assert mock.stats.requests[BATCH] == 1
    assert mock.stats.requests[GET_TASK] >= 5


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback webhook receiver; the list collects the bodies it got."""
    bodies: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        bodies.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/hook", bodies
    finally:
        await runner.cleanup()


async def test_callback_wakes_a_waiter_with_fewer_polls(
    receiver: tuple[str, list[dict[str, Any]]],
) -> None:
    url, bodies = receiver
    # The estimate is 10x too high, so the planner alone would poll late.
    async with (
        MockEvoLink(time_scale=TIME_SCALE, eta_bias=10.0, callback_target=url) as mock,
        # A ceiling well above the run time, so a plan misled by the estimate
        # really is late.
        make_client(mock, poll=attrs.evolve(FAST_POLL, max_interval=1.0)) as client,
    ):
        params = {
            "prompt": "A cat playing piano",
            "image_urls": ["https://example.com/cat.png"],
            "callback_url": "https://example.com/hooks/evolink",
        }
        hinted = await client.submit(RawRequest("wan2.5-image-to-video", params))
        plain = await client.submit(job())
        waiter = asyncio.create_task(client.wait(hinted))
        plain_waiter = asyncio.create_task(client.wait(plain))
        while not bodies:
            await asyncio.sleep(0.002)
        handled_at = asyncio.get_running_loop().time()
        client.handle_callback(bodies[0])
        done = await waiter
        await plain_waiter
    assert done.status is TaskStatus.COMPLETED

    def lateness(task_id: str) -> float:
        """Detection delay as a share of the task's real run time."""
        state = mock.tasks[task_id]
        return (mock.stats.polls[task_id][-1] - state.finishes_at) / state.duration

    # The confirming GET came right after the callback (one loopback round
    # trip, whatever the machine's load); the planner alone, misled by the
    # estimate, found the other task much later.
    confirmed_at = mock.stats.polls[hinted.id][-1]
    plain_delay = mock.stats.polls[plain.id][-1] - mock.tasks[plain.id].finishes_at
    assert handled_at <= confirmed_at
    assert confirmed_at - handled_at < plain_delay / 2
    assert lateness(plain.id) > lateness(hinted.id)
    finished = mock.tasks[hinted.id].finishes_at
    assert len([t for t in mock.stats.polls[hinted.id] if t >= finished]) == 1


async def test_callback_body_is_not_trusted_without_a_get(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    task = await client.submit(job())
    forged = {"id": task.id, "status": "completed", "progress": 100, "results": ["https://evil"]}
    waiter = asyncio.create_task(client.wait(task))
    await asyncio.sleep(0)
    client.handle_callback(forged)
    done = await waiter
    assert done.video_url != "https://evil"
    assert done.video_url is not None and done.video_url.startswith(mock.url)


async def test_closing_the_client_ends_waits(mock: MockEvoLink) -> None:
    client = make_client(mock)
    task = await client.submit(job())
    waiter = asyncio.create_task(client.wait(task))
    await asyncio.sleep(0.005)
    await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await waiter


class Controller:
    """The watcher's pressure controller, fed polls as the watcher would for `policy`."""

    def __init__(self, policy: PollPolicy) -> None:
        self.policy = policy
        self.control = Pressure()

    @property
    def pressure(self) -> float:
        return self.control.value

    def sent(self, now: float, *, late: bool) -> None:
        assert self.policy.max_polls_per_second is not None
        self.control.sent(
            now,
            late=late,
            budget=self.policy.max_polls_per_second,
            min_interval=self.policy.min_interval,
        )


def watcher_for(policy: PollPolicy) -> Controller:
    return Controller(policy)


def run_windows(
    watcher: Controller, *, windows: int, polls: int, late: int = 0, start: float = 0.0
) -> float:
    """`windows` one-second windows of `polls` evenly spaced polls, `late` of them late."""
    now = start
    for _ in range(windows):
        for index in range(polls):
            now += 1.0 / polls
            watcher.sent(now, late=index < late)
    return now


def test_pressure_falls_while_the_budget_is_nearly_spent_and_comes_back_when_calm() -> None:
    # Budget 100/s, min_interval 1 s: a window is one second (100 polls' worth).
    watcher = watcher_for(PollPolicy(min_interval=1.0, max_polls_per_second=100.0))
    assert watcher.pressure == 1.0
    now = run_windows(watcher, windows=3, polls=98)
    # Windows run from poll to poll, so three seconds close two of them.
    assert watcher.pressure == pytest.approx(EASE**2)
    now = run_windows(watcher, windows=40, polls=98, start=now)
    assert watcher.pressure == pytest.approx(MIN_PRESSURE)
    # 90 % of the budget: neither busy nor calm, the pressure holds.
    now = run_windows(watcher, windows=5, polls=90, start=now)
    assert watcher.pressure == pytest.approx(MIN_PRESSURE)
    now = run_windows(watcher, windows=40, polls=30, start=now)
    assert watcher.pressure == 1.0


def test_late_polls_raise_the_pressure_even_with_budget_to_spare() -> None:
    watcher = watcher_for(PollPolicy(min_interval=1.0, max_polls_per_second=100.0))
    run_windows(watcher, windows=6, polls=40, late=10)
    assert watcher.pressure < 1.0
    calm = watcher_for(PollPolicy(min_interval=1.0, max_polls_per_second=100.0))
    run_windows(calm, windows=6, polls=40, late=0)
    assert calm.pressure == 1.0


def test_a_window_is_long_enough_to_hold_many_polls() -> None:
    # Budget 10/s: a window is 10 s (100 polls' worth), not min_interval (1 s).
    watcher = watcher_for(PollPolicy(min_interval=1.0, max_polls_per_second=10.0))
    run_windows(watcher, windows=9, polls=10)
    assert watcher.pressure == 1.0  # 100 % used, but the window is still open
    run_windows(watcher, windows=2, polls=10, start=9.0)
    assert watcher.pressure == pytest.approx(EASE)
