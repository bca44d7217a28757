"""
Finding a key's rate limit: `RateControl` against a simulated token-bucket
server (no clock, no server), then the watcher, the batch runner and the
transport against the mock's per-key limit over HTTP.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import os
import random
import time
from dataclasses import dataclass, field

import attrs
import pytest

from evolink_async import SharedBudget, TaskStatus, Wan25ImageToVideo
from evolink_async._watch.budget import MAX_PRESSURE, Pressure
from evolink_async._watch.rate import DECREASE, FLOOR_SHARE, PROBE, SIT, RateControl
from evolink_async.testing import Fault, MockEvoLink, RateLimit

from .conftest import FAST_POLL, FAST_RETRY, make_client

GET_TASK = "GET /v1/tasks/{id}"
CREATE = "POST /v1/videos/generations"
MODEL = "wan2.5-image-to-video"
IMAGE = "https://x.io/a.png"

pytestmark = pytest.mark.anyio

# -- a simulated server ------------------------------------------------------


@dataclass
class Bucket:
    """The server's token bucket for one key: `rate` a second, `burst` seconds of them."""

    rate: float
    burst: float = 1.0
    tokens: float = field(init=False)
    stamp: float = 0.0

    def __post_init__(self) -> None:
        self.tokens = self.capacity

    @property
    def capacity(self) -> float:
        return max(1.0, self.rate * self.burst)

    def take(self, now: float) -> float:
        """0 when a token was taken, else the seconds until one (the Retry-After)."""
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


@dataclass
class Client:
    """One client of the key: paced by its controller, with endless demand."""

    control: RateControl
    next_send: float = 0.0
    in_flight: int = 0
    through: int = 0
    refused: int = 0


@dataclass
class Run:
    clients: list[Client]
    #: (second, requests the server let through in it)
    per_second: list[int]

    @property
    def through(self) -> int:
        return sum(c.through for c in self.clients)

    @property
    def refused(self) -> int:
        return sum(c.refused for c in self.clients)

    @property
    def refused_share(self) -> float:
        return self.refused / (self.through + self.refused)

    def rate(self, start: int, end: int) -> float:
        """Requests let through per second over seconds [start, end)."""
        return sum(self.per_second[start:end]) / (end - start)


def simulate(
    limit: float,
    seconds: int,
    *,
    clients: int = 1,
    latency: float = 0.005,
    start: float = 20.0,
    ceiling: float | None = None,
    demand: float = math.inf,
    change: tuple[float, float] | None = None,
    stray: float = 0.0,
    step: float = 0.0005,
    leaves: tuple[int, float] | None = None,
) -> Run:
    """
    `clients` clients with `demand` requests a second each (endless by
    default), paced by their controllers, against one token bucket of
    `limit` a second; `change` = (time, new limit); `stray` the share of
    requests refused at random besides (a server's hiccups); `leaves` =
    (client, time) it stops sending at.
    """
    rng = random.Random(7)
    server = Bucket(limit)
    run = Run(
        [Client(RateControl(start=start, ceiling=ceiling)) for _ in range(clients)],
        [0] * seconds,
    )
    replies: list[tuple[float, int, int, float]] = []  # (time, seq, client, retry_after)
    seq = 0
    wanted = [0.0] * clients
    steps = int(seconds / step)
    for tick in range(steps):
        now = tick * step
        if change is not None and now >= change[0]:
            server.rate = change[1]
            change = None
        while replies and replies[0][0] <= now:
            _, _, index, retry_after = heapq.heappop(replies)
            client = run.clients[index]
            client.in_flight -= 1
            if retry_after:
                client.control.rate_limited(
                    now, in_flight=client.in_flight, retry_after=retry_after
                )
            else:
                client.control.accepted(now)
        # Turns rotate, so no client always comes first at a shared instant.
        for offset in range(clients):
            index = (tick + offset) % clients
            client = run.clients[index]
            control = client.control
            if leaves is not None and index == leaves[0] and now >= leaves[1]:
                continue
            wanted[index] = min(wanted[index] + demand * step, 2.0)
            if wanted[index] < 1.0 or now < control.blocked:
                continue
            if now < client.next_send:
                control.waited(now)
                continue
            # The client's own pacer: a tenth of a second of burst at most.
            client.next_send = max(client.next_send, now - 0.1) + 1.0 / control.rate
            wanted[index] -= 1.0
            control.sent(now)
            retry_after = server.take(now)
            if not retry_after and rng.random() < stray:
                retry_after = 0.001
            if retry_after:
                client.refused += 1
            else:
                client.through += 1
                run.per_second[int(now)] += 1
            client.in_flight += 1
            seq += 1
            heapq.heappush(replies, (now + latency, seq, index, retry_after))
    return run


# -- the controller alone ------------------------------------------------------


@pytest.mark.parametrize("limit", [20.0, 100.0, 400.0])
def test_one_client_finds_the_limit_and_rarely_meets_a_429(limit: float) -> None:
    run = simulate(limit, 60)
    # From the tenth second on it uses the limit, with no more than 1 % of
    # requests refused over the whole run (the discovery included).
    assert run.rate(10, 60) >= 0.93 * limit
    assert run.rate(10, 60) <= 1.02 * limit
    assert run.refused_share < 0.01
    control = run.clients[0].control
    assert control.limit == pytest.approx(limit, rel=0.1)


@pytest.mark.parametrize("limit", [100.0, 400.0])
def test_two_clients_on_one_key_share_it_without_many_429s(limit: float) -> None:
    run = simulate(limit, 60, clients=2)
    assert run.rate(10, 60) >= 0.93 * limit
    assert run.refused_share < 0.01
    # Neither starves.
    assert all(c.through > 0.2 * limit * 60 / 2 for c in run.clients)


@pytest.mark.parametrize("limit", [40.0, 200.0])
def test_a_share_another_client_leaves_is_taken_up_within_seconds(limit: float) -> None:
    # Two clients on the key until one stops at 30 s: the one left was cut
    # to its share, and climbs back to the whole limit.
    run = simulate(limit, 60, clients=2, start=50.0, leaves=(0, 30.0))
    assert run.rate(10, 30) >= 0.93 * limit
    assert run.rate(40, 60) >= 0.93 * limit
    assert run.refused_share < 0.015
    assert run.clients[1].control.rate >= 0.9 * limit


def test_a_limit_that_rises_is_found_within_seconds() -> None:
    run = simulate(100.0, 60, change=(30.0, 200.0))
    assert run.rate(20, 30) >= 0.93 * 100
    # A halving-and-+2%-per-request controller takes minutes; this one a few
    # seconds of probing.
    assert run.rate(45, 60) >= 0.9 * 200
    assert run.refused_share < 0.01


def test_a_limit_that_falls_is_followed_down() -> None:
    run = simulate(200.0, 60, change=(30.0, 100.0))
    assert run.rate(35, 60) >= 0.93 * 100
    assert run.rate(35, 60) <= 1.02 * 100
    assert run.refused_share < 0.01


def test_stray_429s_do_not_wear_the_rate_down_to_nothing() -> None:
    # No limit in reach, but 5 % of requests refused at random: to the
    # controller that looks like a limit a little under the rate, so it
    # comes down, but never under a quarter of where it started.
    run = simulate(100_000.0, 20, start=100.0, stray=0.05)
    assert run.clients[0].control.rate >= 100.0 * FLOOR_SHARE
    assert run.rate(10, 20) >= 0.9 * 100.0 * FLOOR_SHARE


def test_a_rate_that_is_not_used_does_not_grow() -> None:
    # 30 requests a second wanted, never waiting for a start rate of 40.
    run = simulate(1000.0, 20, start=40.0, demand=30.0)
    control = run.clients[0].control
    assert control.rate == 40.0
    assert run.refused == 0
    assert run.rate(5, 20) == pytest.approx(30.0, rel=0.05)


def test_the_ceiling_is_never_passed() -> None:
    run = simulate(1000.0, 20, start=10.0, ceiling=50.0)
    assert run.clients[0].control.rate == 50.0
    assert run.rate(5, 20) <= 50.0 * 1.01
    assert run.refused == 0


def test_a_429_blocks_for_its_retry_after_and_cuts_once_per_burst() -> None:
    control = RateControl(start=100.0)
    control.sent(0.0)
    control.rate_limited(1.0, in_flight=5, retry_after=0.25)
    assert control.blocked == 1.25
    assert control.rate == 50.0  # nothing measured yet: halved
    # The five on their way before the cut meet 429s too: no further cut.
    for _ in range(5):
        control.rate_limited(1.01, in_flight=0, retry_after=0.25)
    assert control.rate == 50.0
    assert control.cuts == 1
    assert control.rate_limited_count == 6


def test_a_measured_cut_sits_just_under_the_measured_rate() -> None:
    control = RateControl(start=200.0)
    control.waited(0.0)
    control.rate_limited(0.0, in_flight=0, retry_after=None)
    # 61 let through in the next second, then a 429: 60 a second measured.
    for k in range(61):
        control.accepted(k / 61)
    control.rate_limited(1.0, in_flight=0, retry_after=None)
    assert control.limit == pytest.approx(60.0)
    assert control.rate == pytest.approx(SIT * 60.0)


def test_the_probe_is_gentle_first_and_steep_later() -> None:
    control = RateControl(start=100.0)
    control.waited(0.0)
    control.rate_limited(0.0, in_flight=0, retry_after=None)
    held = control.rate
    # A blind cut probes at once: +0.5 % after one saturated second.
    control.waited(0.9)
    control.accepted(1.0)
    assert control.rate == pytest.approx(held * math.exp(PROBE / 2), rel=1e-3)
    control.waited(9.9)
    control.accepted(10.0)
    assert control.rate == pytest.approx(held * math.exp(PROBE * 100 / 2), rel=1e-3)


def test_a_share_measured_over_a_changing_interval_cuts_blind() -> None:
    # Between two 429s 40 s apart only 20 requests came through for this
    # client: others used the key in between, more at times, less at
    # others. Sitting under 0.5/s would starve it; the cut is the blind one,
    # and the rate probes back up at once.
    control = RateControl(start=100.0, floor=1.0)
    control.waited(0.0)
    control.rate_limited(0.0, in_flight=0, retry_after=None)
    for k in range(20):
        control.accepted(2.0 * (k + 1))
    before = control.rate
    control.rate_limited(41.0, in_flight=0, retry_after=None)
    assert control.limit == pytest.approx(19 / 41)
    assert control.rate == pytest.approx(before * DECREASE)
    control.waited(41.5)
    control.accepted(42.0)
    assert control.rate > before * DECREASE


def test_a_small_share_probes_towards_its_reach_as_fast_as_a_whole_limit() -> None:
    # Cut once blind from 200/s (its reach: 100/s), then measured at 20/s:
    # held 300 requests at the reach (3 s), not 300 of its own (15 s) ...
    control = RateControl(start=200.0, floor=1.0)
    control.waited(0.0)
    control.rate_limited(0.0, in_flight=0, retry_after=None)
    now = 0.0
    for _ in range(40):
        now += 1 / 21
        control.waited(now)
        control.accepted(now)
    control.rate_limited(now + 1 / 21, in_flight=0, retry_after=None)
    held = control.rate
    assert held == pytest.approx(SIT * 20.0, rel=0.05)
    cut_at = now = now + 1 / 21
    while control.rate == held:
        now += 1 / 20
        control.waited(now)
        control.accepted(now)
    assert 2.5 <= now - cut_at < 4.0
    # ... then adds the reach's growth to the held rate: +100 * (e**0.5 - 1)
    # after 10 s of probing, where a rate on its own would be x1.65.
    probe_from = now
    while now - probe_from < 10.0:
        now += 1 / 20
        control.waited(now)
        control.accepted(now)
    growth = math.expm1(PROBE * (now - probe_from) ** 2 / 2)
    assert control.rate == pytest.approx(held + 100.0 * growth, rel=0.01)


def _calm_windows(pressure: Pressure, ceiling: float, windows: int, now: float = 0.0) -> float:
    """One-second windows at half of a 100/s budget (min_interval 1 s), from `now`."""
    for _ in range(windows * 50):
        now += 1 / 50
        pressure.sent(now, late=False, budget=100.0, min_interval=1.0, ceiling=ceiling)
    return now


def test_spare_budget_below_the_servers_limit_is_spent_on_denser_polls() -> None:
    # Where the budget is the server's own limit, half of it unused is
    # latency given away: the pressure rises past the policy's plan ...
    found = Pressure()
    now = _calm_windows(found, MAX_PRESSURE, 40)
    assert found.value == MAX_PRESSURE
    # ... where it is the policy's ceiling, the policy's plan is the most.
    capped = Pressure()
    _calm_windows(capped, 1.0, 40)
    assert capped.value == 1.0
    # A ceiling that drops (a policy budget again) brings it down.
    _calm_windows(found, 1.0, 10, now)
    assert found.value == 1.0


# -- over HTTP, against the mock's per-key limit -----------------------------------


async def test_a_watcher_polls_at_the_read_limit_the_mock_sets() -> None:
    reads = 60.0
    # 120 tasks of about 2.4 s, each polled at most every 40 ms: they want far
    # more than 60 reads a second, and no budget of the policy's own.
    poll = attrs.evolve(FAST_POLL, max_polls_per_second=None, min_interval=0.04)
    limit = RateLimit(reads_per_second=reads)
    async with MockEvoLink(time_scale=0.02, rate_limit=limit) as mock:
        async with make_client(mock, poll=poll, max_concurrency=64) as client:
            tasks = await asyncio.gather(*(client.submit(_job()) for _ in range(120)))
            done = await asyncio.gather(*(client.wait(t) for t in tasks))
        budget = client._watcher.poll_rate
    assert all(t.status is TaskStatus.COMPLETED for t in done)
    reads_seen = mock.stats.requests[GET_TASK]
    refused = mock.stats.rate_limited[GET_TASK]
    # The watcher rose from its start (50/s) past the limit, met it, and
    # polled just under it: few reads refused, the rate found near the limit.
    assert budget.cuts >= 1
    assert refused <= 0.03 * reads_seen
    assert 0.6 * reads <= budget.rate <= 1.2 * reads
    # What the server let through, in its busiest second: most of the limit.
    times = sorted(t for task in tasks for t in mock.stats.polls[task.id])
    assert _busiest_second(times) >= 0.8 * reads


def _busiest_second(times: list[float]) -> int:
    most = start = 0
    for end, when in enumerate(times):
        while when - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def _job() -> Wan25ImageToVideo:
    return Wan25ImageToVideo(prompt="rate", image_urls=["https://x.io/a.png"])


async def test_batch_creates_stay_under_the_create_limit() -> None:
    creates = 25.0
    limit = RateLimit(creates_per_second=creates)
    jobs = [
        {"id": f"c-{n}", "model": MODEL, "prompt": "p", "image_urls": [IMAGE]} for n in range(100)
    ]
    async with (
        MockEvoLink(time_scale=0.002, rate_limit=limit) as mock,
        make_client(mock) as client,
    ):
        run = client.batch(jobs, concurrency=32)
        outcomes = await run.results()
    assert all(o.ok for o in outcomes)
    assert mock.stats.tasks_created == 100
    refused = mock.stats.rate_limited[CREATE]
    # The pacer rises from 50/s, meets the limit (a second of burst hides it
    # at first), and settles under it: a handful of 429s in all, where
    # unpaced creates meet one for every create past the burst.
    assert refused <= 8
    control = run._pacer.control
    assert control.cuts >= 1
    assert 0.6 * creates <= control.rate <= 1.2 * creates


async def test_a_read_429_does_not_hold_creates() -> None:
    async with MockEvoLink(time_scale=0.01) as mock:
        retry = attrs.evolve(FAST_RETRY, max_retry_after=60.0)
        async with make_client(mock, retry=retry) as client:
            task = await client.submit(_job())
            # A read meets a 429 that says "again in 30 s".
            mock.inject(Fault.RATE_LIMIT, route=GET_TASK, times=1, retry_after=30.0)
            read = asyncio.create_task(client.get_task(task.id))
            while mock.stats.faults_injected["rate_limit"] < 1:
                await asyncio.sleep(0.005)
            # Creates go on meanwhile; the read waits its Retry-After out.
            await asyncio.wait_for(client.submit(_job()), 10.0)
            assert mock.stats.tasks_created == 2
            assert not read.done()
            transport = client._transport
            assert transport.paused_for("read") > 20.0
            assert transport.paused_for("create") == 0.0
            read.cancel()
            await asyncio.gather(read, return_exceptions=True)
    # The server saw the one read, then the create; no second read.
    routes = [r.route for r in mock.requests_log]
    assert routes.count(GET_TASK) == 1
    assert routes.index(GET_TASK) < len(routes) - 1 == routes.index(CREATE, 1)


# -- a shared budget: the processes together find the key's limit ----------------------


async def _reported(budget: SharedBudget) -> None:
    await asyncio.gather(*budget._reports)


async def test_a_429_lowers_the_shared_rate_for_every_process(pg_url: str) -> None:
    name = f"adapt-{os.getpid()}-{time.time_ns()}"
    first = SharedBudget(pg_url, creates_per_second=40, name=name)
    second = SharedBudget(pg_url, creates_per_second=40, name=name)
    async with first, second:
        await asyncio.gather(first.take_create(), second.take_create())
        assert second.rates["create"] == 40.0  # the ceiling given, until a 429
        first.rate_limited("create")
        await _reported(first)
        await second.take_create()
        # Halved for both (nothing measured yet), and probing from there at once.
        assert second.rates["create"] == pytest.approx(20.0, rel=0.01)
        # Again at once: too few tokens went out since to measure, so no new cut.
        first.rate_limited("create")
        await _reported(first)
        assert first.reported == 2
        assert first.cuts == 1
        # 20 tokens taken by the two over about 1.6 s, then a 429: the shared
        # rate goes just under the rate they were taken at (some 13/s).
        for _ in range(10):
            await asyncio.gather(first.take_create(), second.take_create(), asyncio.sleep(0.16))
        second.rate_limited("create")
        await _reported(second)
        assert second.cuts == 1
        await first.take_create()
        assert 4.0 < first.rates["create"] < 16.0
    assert first.fallbacks == second.fallbacks == 0
