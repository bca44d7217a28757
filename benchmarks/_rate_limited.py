"""
Part 3 of `batch_throughput.py`: a key with a real rate limit.

The mock meters one API key with token buckets (`RateLimit`): by default 20
creates/s and 100 reads/s, a second of burst each, 429 + Retry-After beyond
them. 2,000 jobs whose tasks run about 60 s (the mock's lognormal spread,
sigma 0.3) go through `client.batch` in one process, then in two processes
on the same key (each half the jobs, no shared budget: each finds its share
from the 429s). Time is scaled by `--rate-scale` (default 0.5): tasks run
30 s and the buckets hold 40 creates/s and 200 reads/s, so tasks in flight,
polls per task and every ratio are as at real time.

With a PostgreSQL URL (`shared`), the two processes run once more with a
`SharedBudget` whose rates (twice the key's limits) are ceilings: the
processes together cut the shared rates to the limits on 429s.

Next to each, a fixed poller (plain aiohttp, the same process count) that
spends the same number of read requests: creates paced at exactly the
create limit (it is told the limit), then one GET per task every T seconds
from a random phase, T chosen so that its reads match ours (from the task
durations ours' run drew: the mock's seed gives both runs the same ones); a
429 waits its Retry-After and retries.

Counted by the mock, on its clock: polls let through per second as a share
of the read limit, over the seconds in which enough tasks wait to use the
whole limit (tasks waiting x 1 / min_interval >= the limit): the mean and
the worst tenth of those seconds; creates per second over the create phase
(first to last create) as a share of the create limit; 429s as a share of
all requests; detection latency (from a task's finish to the first read
that saw it) p50/p95 in % of the estimate.

Targets (reported): polls >= 80 % of the read limit while tasks wait,
creates >= 90 % of the create limit, 429s < 1 % of requests, p95 latency
below the fixed poller's, one and two processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext
from typing import TYPE_CHECKING, Any, Final

import aiohttp
from _common import MockProcess, percentile, receive, run_mock

if TYPE_CHECKING:
    from evolink_async.testing import MockEvoLink

MODEL: Final = "wan2.5-image-to-video"
IMAGE: Final = "https://example.com/first-frame.jpg"
#: Seconds a task runs, unscaled (the estimate the mock reports).
ESTIMATE: Final = 60.0
CREATES_PER_SECOND: Final = 20.0
READS_PER_SECOND: Final = 100.0
JOBS: Final = 2_000
SCALE: Final = 0.5
#: The policy's floor between two polls of one task, unscaled (the default).
MIN_INTERVAL: Final = 2.0
CREATE_ROUTE: Final = "POST /v1/videos/generations"
READ_ROUTE: Final = "GET /v1/tasks/{id}"
TERMINAL: Final = frozenset({"completed", "failed", "cancelled"})
RUN_LIMIT: Final = 1800.0


@dataclass(frozen=True)
class Plan:
    """The scenario's sizes: jobs, time scale, and the key's limits at real time."""

    jobs: int = JOBS
    scale: float = SCALE
    creates_per_second: float = CREATES_PER_SECOND
    reads_per_second: float = READS_PER_SECOND
    concurrency: int = 64

    @property
    def create_limit(self) -> float:
        """Creates per (real) second the mock allows: the limit, scaled with time."""
        return self.creates_per_second / self.scale

    @property
    def read_limit(self) -> float:
        return self.reads_per_second / self.scale


@dataclass(frozen=True)
class Spec:
    """What one client process runs (pickled to it)."""

    kind: str
    url: str
    api_key: str
    first: int
    count: int
    plan: Plan
    #: The fixed poller's interval and create rate (this process's share).
    interval: float = 0.0
    create_rate: float = 0.0
    #: Ours with a `SharedBudget` in this PostgreSQL database (None: none).
    shared: str | None = None
    budget_name: str = "rate-limited"


@dataclass(frozen=True)
class Outcome:
    """One contender's run, as the mock counted it."""

    kind: str
    processes: int
    completed: int
    requests: int
    reads: int
    refused_reads: int
    refused_creates: int
    creates_per_second: float
    polls_share_mean: float
    polls_share_low: float
    busy_seconds: int
    latency_p50: float
    latency_p95: float
    task_seconds: float
    seconds: float

    @property
    def refused_share(self) -> float:
        return (self.refused_reads + self.refused_creates) / max(1, self.requests)


# -- the mock process -------------------------------------------------------------


def _mock_process(conn: Connection, options: dict[str, Any]) -> None:
    run_mock(conn, options, _report)


def _report(mock: MockEvoLink) -> dict[str, Any]:
    """What the scenario needs, computed where the times are (the mock's clock)."""
    stats = mock.stats
    created: list[float] = []
    latencies: list[float] = []
    waiting: list[tuple[float, float]] = []  # (created, seen finished)
    task_seconds = 0.0
    estimate = None
    for task_id, task in mock.tasks.items():
        created.append(task.created_at)
        task_seconds += task.finishes_at - task.created_at
        estimate = task.estimated_time
        seen = next(
            (t for t in sorted(stats.polls.get(task_id, ())) if t >= task.finishes_at), None
        )
        if seen is not None:
            latencies.append(seen - task.finishes_at)
            waiting.append((task.created_at, seen))
    polls = sorted(t for times in stats.polls.values() for t in times)
    return {
        "requests": sum(stats.requests.values()),
        "reads": stats.requests.get(READ_ROUTE, 0),
        "refused": dict(stats.rate_limited),
        "created": sorted(created),
        "latencies": latencies,
        "waiting": waiting,
        "polls": polls,
        "task_seconds": task_seconds,
        "estimate": estimate,
    }


def _outcome(
    kind: str, processes: int, plan: Plan, data: dict[str, Any], seconds: float
) -> Outcome:
    created: list[float] = data["created"]
    span = created[-1] - created[0] if len(created) > 1 else math.nan
    creates_rate = (len(created) - 1) / span if span > 0 else math.nan
    # Polls let through in each second, and the tasks waiting in it.
    polls: list[float] = data["polls"]
    start = created[0] if created else 0.0
    end = max((seen for _, seen in data["waiting"]), default=start)
    seconds_n = max(1, int(end - start))
    per_second = [0] * seconds_n
    for t in polls:
        index = int(t - start)
        if 0 <= index < seconds_n:
            per_second[index] += 1
    waiting = [0.0] * seconds_n
    for began, seen in data["waiting"]:
        for index in range(max(0, int(began - start)), min(seconds_n, int(seen - start) + 1)):
            waiting[index] += 1
    min_interval = MIN_INTERVAL * plan.scale
    busy = [
        per_second[i] / plan.read_limit
        for i in range(seconds_n)
        if waiting[i] / min_interval >= plan.read_limit
    ]
    estimate = float(data["estimate"] or ESTIMATE * plan.scale)
    latencies = [100.0 * x / estimate for x in data["latencies"]]
    refused: dict[str, int] = data["refused"]
    return Outcome(
        kind=kind,
        processes=processes,
        completed=len(data["latencies"]),
        requests=int(data["requests"]),
        reads=int(data["reads"]),
        refused_reads=refused.get(READ_ROUTE, 0),
        refused_creates=refused.get(CREATE_ROUTE, 0),
        creates_per_second=creates_rate,
        polls_share_mean=sum(busy) / len(busy) if busy else math.nan,
        polls_share_low=percentile(busy, 10),
        busy_seconds=len(busy),
        latency_p50=percentile(latencies, 50),
        latency_p95=percentile(latencies, 95),
        task_seconds=float(data["task_seconds"]),
        seconds=seconds,
    )


# -- the client processes -----------------------------------------------------------


def _job(index: int) -> dict[str, Any]:
    return {
        "id": f"rl-{index:06d}",
        "model": MODEL,
        "prompt": f"job {index}",
        "image_urls": [IMAGE],
    }


async def _run_ours(spec: Spec) -> int:
    from evolink_async import PollPolicy, SharedBudget

    s = spec.plan.scale
    policy = PollPolicy(
        min_interval=MIN_INTERVAL * s,
        max_interval=60.0 * s,
        default_estimate=120.0 * s,
        max_polls_per_second=None,
    )
    jobs = (_job(i) for i in range(spec.first, spec.first + spec.count))
    done = 0
    # Twice the key's limits: where the shared rates start, and their ceilings.
    budget = (
        SharedBudget(
            spec.shared,
            creates_per_second=2 * spec.plan.create_limit,
            polls_per_second=2 * spec.plan.read_limit,
            name=spec.budget_name,
        )
        if spec.shared
        else None
    )
    async with contextlib.AsyncExitStack() as stack:
        if budget is not None:
            await stack.enter_async_context(budget)
        client = await stack.enter_async_context(_client(spec, policy))
        run = client.batch(jobs, concurrency=spec.plan.concurrency, budget=budget)
        async with run, asyncio.timeout(RUN_LIMIT):
            async for outcome in run:
                done += outcome.ok
    return done


def _client(spec: Spec, policy: Any) -> Any:
    from evolink_async import EvoLinkClient

    return EvoLinkClient(
        spec.api_key,
        base_url=spec.url,
        files_base_url=spec.url,
        max_concurrency=spec.plan.concurrency,
        poll=policy,
    )


async def _run_fixed(spec: Spec) -> int:
    """Creates paced at the rate it is told, then a GET every `interval` per task."""
    headers = {"Authorization": f"Bearer {spec.api_key}"}
    rng = random.Random(spec.first)
    loop = asyncio.get_running_loop()
    done = 0

    async def send(session: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> Any:
        while True:
            async with session.request(method, url, **kw) as reply:
                if reply.status == 429:
                    wait = float(reply.headers.get("Retry-After", "0.1"))
                else:
                    reply.raise_for_status()
                    return await reply.json()
            await asyncio.sleep(wait)

    async def one(session: aiohttp.ClientSession, index: int, at: float) -> None:
        nonlocal done
        await asyncio.sleep(max(0.0, at - loop.time()))
        body = _job(index)
        del body["id"]
        task = await send(session, "POST", spec.url + "/v1/videos/generations", json=body)
        url = f"{spec.url}/v1/tasks/{task['id']}"
        await asyncio.sleep(rng.uniform(0.0, spec.interval))
        while True:
            status = (await send(session, "GET", url))["status"]
            if status in TERMINAL:
                done += status == "completed"
                return
            await asyncio.sleep(spec.interval)

    connector = aiohttp.TCPConnector(limit=spec.plan.concurrency)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
        began = loop.time()
        gap = 1.0 / spec.create_rate
        async with asyncio.timeout(RUN_LIMIT):
            await asyncio.gather(
                *(one(session, spec.first + k, began + k * gap) for k in range(spec.count))
            )
    return done


def _client_process(conn: Connection, spec: Spec) -> None:
    try:
        runner = _run_fixed if spec.kind == "fixed" else _run_ours
        conn.send({"result": asyncio.run(runner(spec))})
    except BaseException:
        conn.send({"error": traceback.format_exc()})
        raise
    finally:
        conn.close()


# -- orchestration ------------------------------------------------------------------


def run(
    ctx: SpawnContext,
    plan: Plan,
    kind: str,
    processes: int,
    *,
    seed: int,
    interval: float = 0.0,
    shared: str | None = None,
) -> Outcome:
    """One contender in `processes` processes on one key of a fresh mock."""
    options = {
        "time_scale": plan.scale,
        "seed": seed,
        "keep_requests": 0,
        "batch_endpoint": False,
        "credits": 1e12,
        "estimated_times": {MODEL: ESTIMATE},
        "creates_per_second": plan.create_limit,
        "reads_per_second": plan.read_limit,
    }
    mock = MockProcess(ctx, _mock_process, options)
    try:
        share = plan.jobs // processes
        name = f"rate-limited-{os.getpid()}-{time.time_ns()}"  # one bucket per run
        specs = [
            Spec(
                kind=kind,
                url=mock.url,
                api_key=mock.api_key,
                first=p * share,
                count=share if p < processes - 1 else plan.jobs - p * share,
                plan=plan,
                interval=interval,
                create_rate=plan.create_limit / processes,
                shared=shared,
                budget_name=name,
            )
            for p in range(processes)
        ]
        began = time.perf_counter()
        pipes = []
        for spec in specs:
            conn, child = ctx.Pipe()
            process = ctx.Process(target=_client_process, args=(child, spec), name=kind)
            process.start()
            child.close()
            pipes.append((conn, process))
        for conn, process in pipes:
            receive(conn, RUN_LIMIT + 60.0, f"{kind} client")
            process.join(30.0)
        seconds = time.perf_counter() - began
        data = mock.ask("stats", 120.0)
    finally:
        mock.close()
    return _outcome(kind, processes, plan, data, seconds)


def equal_interval(ours: Outcome) -> float:
    """
    The fixed interval that spends ours' reads on the same tasks: a task of
    d seconds polled every T from a random phase takes d / T + 1/2 reads.
    """
    tasks = max(1, ours.completed)
    return ours.task_seconds / max(1.0, ours.reads - ours.refused_reads - tasks / 2)


def run_all(
    ctx: SpawnContext,
    plan: Plan,
    *,
    seed: int,
    processes_each: Sequence[int] = (1, 2),
    shared: str | None = None,
    log: Any = print,
) -> list[Outcome]:
    """
    Ours and the fixed poller, in one process and in two; with `shared` (a
    PostgreSQL URL), ours in two processes with a `SharedBudget` too, next
    to the two-process fixed poller again.
    """
    outcomes = []
    for processes in processes_each:
        ours = run(ctx, plan, "ours", processes, seed=seed)
        log(f"  (rate-limited, ours x{processes} done)")
        fixed = run(ctx, plan, "fixed", processes, seed=seed, interval=equal_interval(ours))
        log(f"  (rate-limited, fixed x{processes} done)")
        outcomes += [ours, fixed]
        if shared and processes == 2:
            budgeted = run(ctx, plan, "ours+shared", processes, seed=seed, shared=shared)
            log("  (rate-limited, ours x2 with a SharedBudget done)")
            outcomes += [budgeted, fixed]
    return outcomes


def print_table(plan: Plan, outcomes: Sequence[Outcome]) -> None:
    print(
        f"\n## 3. rate-limited key: {plan.jobs:,} jobs of {ESTIMATE:g} s,"
        f" {plan.creates_per_second:g} creates/s and {plan.reads_per_second:g} reads/s"
        f" (time scale {plan.scale:g}: {plan.create_limit:g} and {plan.read_limit:g} per s)"
    )
    print(
        "\n| contender | processes | polls / read limit while tasks wait (mean, worst 10 %)"
        " | creates / create limit | 429s (reads + creates) / requests | reads |"
        " p50 / p95 latency % of estimate | seconds |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for o in outcomes:
        print(
            f"| {o.kind} | {o.processes} | {o.polls_share_mean:.0%}, {o.polls_share_low:.0%}"
            f" ({o.busy_seconds} s) | {o.creates_per_second / plan.create_limit:.0%} |"
            f" {o.refused_reads} + {o.refused_creates} / {o.requests:,}"
            f" ({o.refused_share:.2%}) | {o.reads:,} |"
            f" {o.latency_p50:.1f} / {o.latency_p95:.1f} | {o.seconds:.0f} |"
        )


def checks(plan: Plan, outcomes: Sequence[Outcome]) -> list[tuple[bool, str]]:
    """(passed, text) for each target."""
    result = []
    for ours, fixed in zip(outcomes[::2], outcomes[1::2], strict=True):
        label = f"x{ours.processes}" + (" shared" if ours.kind != "ours" else "")
        creates = ours.creates_per_second / plan.create_limit
        result += [
            (
                ours.polls_share_mean >= 0.8,
                f"rate-limited {label}: polls {ours.polls_share_mean:.0%} of the read limit"
                f" while tasks wait (>= 80 %)",
            ),
            (creates >= 0.9, f"rate-limited {label}: creates {creates:.0%} of the limit (>= 90 %)"),
            (
                ours.refused_share < 0.01,
                f"rate-limited {label}: 429s {ours.refused_share:.2%} of requests (< 1 %)",
            ),
            (
                ours.latency_p95 < fixed.latency_p95,
                f"rate-limited {label}: p95 latency {ours.latency_p95:.1f} % of the estimate <"
                f" the fixed poller's {fixed.latency_p95:.1f} % ({fixed.reads:,} reads vs"
                f" ours' {ours.reads:,})",
            ),
            (
                ours.completed == plan.jobs and fixed.completed == plan.jobs,
                f"rate-limited {label}: ours {ours.completed}/{plan.jobs} seen finished, fixed"
                f" {fixed.completed}/{plan.jobs}",
            ),
        ]
    return result
