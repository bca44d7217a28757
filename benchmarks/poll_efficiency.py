"""
Poll efficiency: how many reads our task watcher spends per task, and how late
it notices a task has finished, against fixed-interval pollers, an oracle and
the poll bound (the fewest polls of any schedule without progress information).

Every contender runs against MockEvoLink at time scale 0.01 (seedance-2.0
image-to-video: estimated 165 s -> 1.65 s, the "ETA" below), lognormal run
times (or a mixture of two), progress as the scenario says. Per task it reports:

- polls/task: reads of the task the mock served (`mock.stats.polls`), the
  final, terminal read included; mean and 95th percentile over tasks.
- detection latency: the loop time `wait` returned minus the mock's
  `finishes_at` for the task, both on the loop clock, as % of the nominal ETA
  (1.65 s, the true mean, also where the reported estimate is off).
- bound: `poll_bound.bound` on the run times the mock drew for that run's
  tasks (`finishes_at - created_at`, in units of the nominal ETA) at the
  row's own p95 latency: the fewest expected polls per task of any fixed
  schedule (the same poll times for every task, no progress read) that
  detects 95 % of these very tasks within that latency. ratio = polls/task
  mean / bound. A fixed poller is such a schedule, so its ratio is >= 1; a
  poller that reads progress (or the estimate) can go below 1.

Contenders:

- ours: `EvoLinkClient.wait` with the default `PollPolicy`, every time field
  scaled by 0.01 (min 2 s, max 60 s, default estimate 120 s), poll budget
  10,000/s so it never binds; all waits gathered on one client.
- fixed N s: plain aiohttp GETs every N s x 0.01 after submit, until
  terminal (what EvoLink's own clients do, with N = 5, 10, 15). The polls
  keep to a fixed grid (submit + k x N s) so that loop lag delays a poll but
  does not thin the poller out, as it would at 1/100 scale with
  `sleep(N s)` after each reply.
- oracle: sleeps until the mock's `finishes_at`, then one GET: 1 poll, and a
  latency that is the measurement floor (HTTP round trip + loop lag).

Every contender submits with `EvoLinkClient.submit`, tasks arriving at a
steady `--rate` per second (concurrency ~ rate x 1.65 s, low enough that the
loop lag p99 stays at a few ms; the table shows it, `!` above 10 ms). Each
scenario+contender runs alone, one after another, against its own fresh mock
with the same seed, so every contender sees the same task run times.

Scenarios (progress in the mock's uneven coarse steps unless said):

- A sigma 0.3, estimate right; B sigma 0.8; C sigma 0.3, reported estimate 10x
  too high (`eta_bias=10`); D as A with the batch endpoint on
  (`PollPolicy(batch_endpoint=True)`).
- E as A with linear progress (`progress="linear"`); F as A with no progress
  (`progress="none"`: 0 until the end).
- G estimate 3x too high (`eta_bias=3`), H the same without progress; I
  estimate 3x too low (`eta_bias=1/3`), J the same without progress.
- K as B without progress.
- L bimodal: 80 % of tasks at 0.6x the mean, 20 % at 2.5x, sigma 0.3 each
  (`duration_mixture=((0.8, 0.6), (0.2, 2.5))`, reported estimate the
  mean); M the same without progress.

Only our watcher reads progress and the reported estimate, so the fixed
pollers and the oracle run once per duration distribution (in A, B and L) and
every other scenario shows the rows of the one with the same seed and
distribution: the very same tasks and run times (checked: the drawn run
times must match). In D a "poll round" is one read of every unfinished task,
so requests per task per poll round = (poll requests / tasks) / (reads /
tasks) = poll requests / task reads: 1.0 for any poller that GETs each task,
1/k when k tasks share each batch call.

Targets (reported, never asserted; exit code 0 unless the run crashed):
A: ours <= 1/3 of the 5 s poller's polls/task, p95 latency <= the 10 s
poller's; A-D: ours no worse than the 15 s poller in polls/task (mean) and p95
latency; D: < 0.2 requests per task per poll round. Every scenario: ours at
most 1.5x the bound at its own p95 latency, not dominated (no fixed poller has
both fewer polls/task and a lower p95 latency; `dominated` in the table), and
p95 latency at most 10 % of the ETA. E (linear progress): at most 4
polls/task at a p95 latency under 3 %.

Run (from the repository root):

    .venv/bin/python benchmarks/poll_efficiency.py             # full, about 7 minutes
    .venv/bin/python benchmarks/poll_efficiency.py --smoke     # ~20 tasks, seconds
    .venv/bin/python benchmarks/poll_efficiency.py --tasks 400 --seed 7 --scenarios AFJ

`--smoke` runs scenario A only, with its contenders side by side (each on its
own mock) to finish in seconds: it checks the benchmark and the bound work,
its figures are not for reading.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import aiohttp
import attrs
from _common import percentile
from poll_bound import bound

from evolink_async import EvoLinkClient, PollPolicy, Task, TaskStatus
from evolink_async.testing import MockEvoLink

#: Mock durations and every poll time field are multiplied by this.
SCALE: Final = 0.01
MODEL: Final = "seedance-2.0-image-to-video"
IMAGE: Final = "https://example.com/first-frame.jpg"
#: The mock's estimated time for MODEL (unscaled seconds) and its scaled value.
NOMINAL_ESTIMATE: Final = 165.0
ETA: Final = NOMINAL_ESTIMATE * SCALE
GET_ROUTE: Final = "GET /v1/tasks/{id}"
BATCH_ROUTE: Final = "POST /v1/tasks/batch"
TERMINAL: Final = frozenset({"completed", "failed", "cancelled"})
#: Loop-lag probe period (seconds).
LAG_TICK: Final = 0.005
#: A run whose loop lag p99 exceeds this (seconds; 0.6 % of ETA) is flagged:
#: CPU contention, not the contender, shaped its figures.
LAG_WARN: Final = 0.010
#: No single contender run may take longer than this (seconds): a hang is a crash.
RUN_LIMIT: Final = 300.0

#: The default PollPolicy with every time field scaled; the budget never binds.
OUR_POLICY: Final = PollPolicy(
    min_interval=2.0 * SCALE,
    max_interval=60.0 * SCALE,
    default_estimate=120.0 * SCALE,
    max_polls_per_second=10_000.0,
)


@dataclass(frozen=True)
class Scenario:
    """
    One mock configuration. `like` names the scenario whose fixed pollers and
    oracle ran on the same tasks (same seed, same run times); None: its own.
    """

    key: str
    title: str
    sigma: float
    eta_bias: float = 1.0
    batch: bool = False
    progress: Literal["steps", "linear", "none"] = "steps"
    mixture: tuple[tuple[float, float], ...] | None = None
    like: str | None = None


@dataclass(frozen=True)
class Contender:
    """One way of waiting for a task: ours, a fixed-interval poller, or the oracle."""

    name: str
    kind: Literal["ours", "fixed", "oracle"]
    interval: float = 0.0  # unscaled seconds, for "fixed"


#: 80 % of tasks at 0.6x the mean run time, 20 % at 2.5x.
BIMODAL: Final = ((0.8, 0.6), (0.2, 2.5))
SCENARIOS: Final = (
    Scenario("A", "sigma 0.3, estimate right", 0.3),
    Scenario("B", "sigma 0.8, estimate right", 0.8),
    Scenario("C", "sigma 0.3, reported estimate 10x too high", 0.3, eta_bias=10.0, like="A"),
    Scenario("D", "sigma 0.3, batch endpoint on", 0.3, batch=True, like="A"),
    Scenario("E", "sigma 0.3, linear progress", 0.3, progress="linear", like="A"),
    Scenario("F", "sigma 0.3, no progress", 0.3, progress="none", like="A"),
    Scenario("G", "sigma 0.3, reported estimate 3x too high", 0.3, eta_bias=3.0, like="A"),
    Scenario(
        "H", "sigma 0.3, estimate 3x too high, no progress", 0.3, 3.0, progress="none", like="A"
    ),
    Scenario("I", "sigma 0.3, reported estimate 3x too low", 0.3, eta_bias=1 / 3, like="A"),
    Scenario(
        "J", "sigma 0.3, estimate 3x too low, no progress", 0.3, 1 / 3, progress="none", like="A"
    ),
    Scenario("K", "sigma 0.8, no progress", 0.8, progress="none", like="B"),
    Scenario("L", "bimodal: 80 % at 0.6x, 20 % at 2.5x, sigma 0.3", 0.3, mixture=BIMODAL),
    Scenario("M", "bimodal, no progress", 0.3, mixture=BIMODAL, progress="none", like="L"),
)
BY_KEY: Final = {scenario.key: scenario for scenario in SCENARIOS}
#: Ours at most this many times the bound at its own p95 latency.
BOUND_RATIO: Final = 1.5
#: Ours' p95 latency at most this, % of the ETA.
LATENCY_TARGET: Final = 10.0
OURS: Final = Contender("ours", "ours")
FIXED: Final = tuple(Contender(f"fixed {n} s", "fixed", float(n)) for n in (5, 10, 15))
ORACLE: Final = Contender("oracle", "oracle")


@dataclass
class Result:
    """What one contender did in one scenario."""

    contender: Contender
    polls: list[int]
    latencies: list[float]  # seconds
    poll_requests: int
    batch_requests: int
    lag: list[float] = field(default_factory=list)  # loop lag samples, seconds
    #: The run times the mock drew for these tasks, in units of the nominal ETA.
    durations: list[float] = field(default_factory=list)
    #: The scenario whose run these figures come from (another one's, for shared rows).
    ran_in: str = ""
    _bound: float | None = None

    @property
    def lagged(self) -> bool:
        return percentile(self.lag, 99) > LAG_WARN

    @property
    def reads(self) -> int:
        return sum(self.polls)

    @property
    def polls_mean(self) -> float:
        return sum(self.polls) / len(self.polls)

    @property
    def polls_p95(self) -> float:
        return percentile([float(p) for p in self.polls], 95)

    def latency_pct(self, q: float) -> float:
        """The q-th percentile of detection latency, in % of the nominal ETA."""
        return 100.0 * percentile(self.latencies, q) / ETA

    @property
    def bound(self) -> float:
        """The poll bound on these tasks at this row's p95 latency (computed once)."""
        if self._bound is None:
            self._bound = bound(self.durations, self.latency_pct(95) / 100.0)
        return self._bound

    @property
    def ratio(self) -> float:
        """Polls/task mean over the bound at this row's p95 latency."""
        return self.polls_mean / self.bound

    @property
    def requests_per_task(self) -> float:
        return self.poll_requests / len(self.polls)

    @property
    def requests_per_round(self) -> float:
        """Poll requests per task per poll round = poll requests / task reads."""
        return self.poll_requests / self.reads if self.reads else math.nan


# -- waiting, one coroutine per task ------------------------------------------

#: Waits for one submitted task; returns the loop time it knew the task ended.
Waiter = Callable[[Task], Awaitable[float]]


def our_waiter(client: EvoLinkClient) -> Waiter:
    async def wait(task: Task) -> float:
        done = await client.wait(task)
        returned = asyncio.get_running_loop().time()
        if done.status is not TaskStatus.COMPLETED:
            raise RuntimeError(f"task {done.id} ended {done.status.value}")
        return returned

    return wait


async def _read_status(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url) as response:
        if response.status != 200:
            raise RuntimeError(f"GET {url}: HTTP {response.status}")
        body: Any = await response.json()
    status = body.get("status") if isinstance(body, dict) else None
    if isinstance(status, str):
        return status
    raise RuntimeError(f"GET {url}: no status in {body!r}")


def fixed_waiter(session: aiohttp.ClientSession, base_url: str, interval: float) -> Waiter:
    async def wait(task: Task) -> float:
        loop = asyncio.get_running_loop()
        url = f"{base_url}/v1/tasks/{task.id}"
        # A fixed grid (submit + k * interval), not sleep(interval) after each
        # reply: at 1/100 scale a few ms of loop lag per sleep would otherwise
        # thin the poller out by 10-25 %, far more than a real one drifts by.
        due = loop.time()
        while True:
            due += interval
            late = loop.time() - due
            if late > interval:
                due += math.floor(late / interval) * interval  # skip missed slots
            await asyncio.sleep(max(0.0, due - loop.time()))
            status = await _read_status(session, url)
            if status in TERMINAL:
                returned = loop.time()
                if status != "completed":
                    raise RuntimeError(f"task {task.id} ended {status}")
                return returned

    return wait


def oracle_waiter(session: aiohttp.ClientSession, mock: MockEvoLink) -> Waiter:
    async def wait(task: Task) -> float:
        loop = asyncio.get_running_loop()
        url = f"{mock.url}/v1/tasks/{task.id}"
        finishes_at = mock.tasks[task.id].finishes_at
        await asyncio.sleep(max(0.0, finishes_at - loop.time()))
        # asyncio may wake a hair early; read again until the end is visible.
        while True:
            status = await _read_status(session, url)
            if status in TERMINAL:
                return loop.time()
            await asyncio.sleep(0)

    return wait


# -- one run: one scenario, one contender, one fresh mock ----------------------


async def _probe_lag(samples: list[float]) -> None:
    """Record how late each LAG_TICK sleep wakes: the event loop's lag."""
    loop = asyncio.get_running_loop()
    while True:
        planned = loop.time() + LAG_TICK
        await asyncio.sleep(LAG_TICK)
        samples.append(max(0.0, loop.time() - planned))


async def run_one(
    scenario: Scenario,
    contender: Contender,
    *,
    tasks: int,
    rate: float,
    seed: int,
    policy: PollPolicy | None = None,
) -> Result:
    """
    Submit `tasks` tasks at `rate` per second to a fresh mock and wait for all.

    `policy` replaces OUR_POLICY (for trying other tunings); its
    `batch_endpoint` is set from the scenario.
    """
    mock = MockEvoLink(
        time_scale=SCALE,
        seed=seed,
        duration_sigma=scenario.sigma,
        duration_mixture=scenario.mixture,
        progress=scenario.progress,
        eta_bias=scenario.eta_bias,
        batch_endpoint=scenario.batch,
        keep_requests=0,
    )
    policy = attrs.evolve(policy or OUR_POLICY, batch_endpoint=scenario.batch)
    headers = {"Authorization": f"Bearer {mock.api_key}"}
    async with (
        mock,
        EvoLinkClient(mock.api_key, base_url=mock.url, files_base_url=mock.url, poll=policy) as sdk,
        aiohttp.ClientSession(headers=headers) as session,
    ):
        waiter: Waiter
        if contender.kind == "ours":
            waiter = our_waiter(sdk)
        elif contender.kind == "fixed":
            waiter = fixed_waiter(session, mock.url, contender.interval * SCALE)
        else:
            waiter = oracle_waiter(session, mock)
        loop = asyncio.get_running_loop()
        lag: list[float] = []
        probe = asyncio.create_task(_probe_lag(lag))
        start = loop.time() + 0.05

        async def one(index: int) -> tuple[str, float]:
            await asyncio.sleep(max(0.0, start + index / rate - loop.time()))
            task = await sdk.submit(MODEL, prompt=f"benchmark task {index}", image_urls=[IMAGE])
            returned = await waiter(task)
            return task.id, returned - mock.tasks[task.id].finishes_at

        try:
            async with asyncio.timeout(RUN_LIMIT):
                done = await asyncio.gather(*(one(i) for i in range(tasks)))
        finally:
            probe.cancel()
            await asyncio.gather(probe, return_exceptions=True)
        stats = mock.stats
        drawn = [mock.tasks[task_id] for task_id, _ in done]
        return Result(
            contender=contender,
            polls=[len(stats.polls.get(task_id, ())) for task_id, _ in done],
            latencies=[latency for _, latency in done],
            poll_requests=stats.requests[GET_ROUTE] + stats.requests[BATCH_ROUTE],
            batch_requests=stats.requests[BATCH_ROUTE],
            lag=lag,
            durations=[(task.finishes_at - task.created_at) / ETA for task in drawn],
            ran_in=scenario.key,
        )


async def run_scenario(
    scenario: Scenario,
    shared: dict[str, list[Result]],
    *,
    tasks: int,
    rate: float,
    seed: int,
    side_by_side: bool,
) -> list[Result]:
    """
    Ours on `scenario`, then the fixed pollers and the oracle of the scenario
    whose tasks it shares (run here the first time, kept in `shared`).
    """
    base = BY_KEY[scenario.like] if scenario.like else scenario
    runs: list[tuple[Scenario, Contender]] = [(scenario, OURS)]
    if base.key not in shared:
        runs += [(base, contender) for contender in (*FIXED, ORACLE)]
    if side_by_side:
        done = list(
            await asyncio.gather(
                *(run_one(s, c, tasks=tasks, rate=rate, seed=seed) for s, c in runs)
            )
        )
    else:
        done = [await run_one(s, c, tasks=tasks, rate=rate, seed=seed) for s, c in runs]
    if base.key not in shared:
        shared[base.key] = done[1:]
    ours, others = done[0], shared[base.key]
    drawn, reference = sorted(ours.durations), sorted(others[0].durations)
    if len(drawn) != len(reference) or any(
        abs(a - b) > 1e-9 for a, b in zip(drawn, reference, strict=True)
    ):
        print(
            f"! {scenario.key}: the tasks' run times differ from {base.key}'s: rows not comparable"
        )
    return [ours, *others]


# -- reporting ----------------------------------------------------------------


def dominated_by(ours: Result, rows: Sequence[Result]) -> list[str]:
    """The fixed pollers with both fewer polls/task (mean) and a lower p95 latency than ours."""
    return [
        r.contender.name
        for r in rows
        if r.contender.kind == "fixed"
        and r.polls_mean < ours.polls_mean
        and r.latency_pct(95) < ours.latency_pct(95)
    ]


def print_table(scenario: Scenario, results: Sequence[Result], tasks: int) -> None:
    print(f"\n## {scenario.key}: {scenario.title} ({tasks} tasks, ETA {ETA:g} s)")
    batch = scenario.batch
    head = (
        f"| {'contender':<11} | polls/task mean |   p95 | latency p50 %ETA | p95 %ETA |"
        " bound at p95 | ratio | lag p99 ms |"
    )
    rule = (
        "|-------------|----------------:|------:|-----------------:|---------:|"
        "-------------:|------:|-----------:|"
    )
    if batch:
        head += " requests/task | req/task/round |"
        rule += "--------------:|---------------:|"
    print(head + " note")
    print(rule + "------")
    ours = results[0]
    for r in results:
        if r.contender.kind == "oracle":
            bound_cells = f" {'-':>12} | {'-':>5} |"
        else:
            bound_cells = f" {r.bound:12.2f} | {r.ratio:5.2f} |"
        line = (
            f"| {r.contender.name:<11} | {r.polls_mean:15.1f} | {r.polls_p95:5.1f} |"
            f" {r.latency_pct(50):16.1f} | {r.latency_pct(95):8.1f} |{bound_cells}"
            f" {1000 * percentile(r.lag, 99):9.1f}{'!' if r.lagged else ' '} |"
        )
        if batch:
            if r is ours:
                line += f" {r.requests_per_task:13.2f} | {r.requests_per_round:14.3f} |"
            else:
                line += f" {'':>13} | {'':>14} |"
        notes: list[str] = []
        if r is ours and (beaten := dominated_by(ours, results)):
            notes.append(f"dominated by {', '.join(beaten)}")
        if r.ran_in != scenario.key:
            notes.append(f"{r.ran_in}'s run, same tasks")
        print(f"{line} {'; '.join(notes)}".rstrip())
    if any(r.lagged for r in results):
        print(
            f"! loop lag p99 above {1000 * LAG_WARN:g} ms: CPU contention distorted that row;"
            " rerun on a quieter machine"
        )


@dataclass
class Check:
    ok: bool
    text: str


def meets_bound_targets(rows: Sequence[Result]) -> tuple[bool, str]:
    """Ours' bound targets in one scenario: ratio, not dominated, p95 latency."""
    ours = rows[0]
    ratio_ok = ours.ratio <= BOUND_RATIO
    beaten = dominated_by(ours, rows)
    latency_ok = ours.latency_pct(95) <= LATENCY_TARGET
    dominance = f"dominated by {', '.join(beaten)}" if beaten else "not dominated"
    text = (
        f"ours {ours.polls_mean:.1f} polls/task = {ours.ratio:.2f}x the bound {ours.bound:.2f}"
        f" at its p95 {ours.latency_pct(95):.1f}% (<= {BOUND_RATIO:g}x"
        f" {'ok' if ratio_ok else 'WORSE'}), {dominance},"
        f" p95 <= {LATENCY_TARGET:g}% {'ok' if latency_ok else 'WORSE'}"
    )
    return ratio_ok and not beaten and latency_ok, text


def check_targets(results: dict[str, list[Result]]) -> list[Check]:
    """The targets, for the scenarios that were run."""

    def find(key: str, name: str) -> Result | None:
        for r in results.get(key, ()):
            if r.contender.name == name:
                return r
        return None

    checks: list[Check] = []
    ours_a, five, ten = find("A", "ours"), find("A", "fixed 5 s"), find("A", "fixed 10 s")
    if ours_a and five and ten:
        limit = five.polls_mean / 3
        checks.append(
            Check(
                ours_a.polls_mean <= limit,
                f"A: ours {ours_a.polls_mean:.1f} polls/task <= 1/3 of the 5 s poller's"
                f" {five.polls_mean:.1f} ({limit:.1f});"
                f" ratio {ours_a.polls_mean / five.polls_mean:.2f}",
            )
        )
        checks.append(
            Check(
                ours_a.latency_pct(95) <= ten.latency_pct(95),
                f"A: ours p95 latency {ours_a.latency_pct(95):.1f}% of ETA <= the 10 s"
                f" poller's {ten.latency_pct(95):.1f}%",
            )
        )
    for key in ("A", "B", "C", "D"):
        ours, fifteen = find(key, "ours"), find(key, "fixed 15 s")
        if ours and fifteen:
            polls_ok = ours.polls_mean <= fifteen.polls_mean
            latency_ok = ours.latency_pct(95) <= fifteen.latency_pct(95)
            checks.append(
                Check(
                    polls_ok and latency_ok,
                    f"{key}: ours vs the 15 s poller: polls/task {ours.polls_mean:.1f} <="
                    f" {fifteen.polls_mean:.1f} {'ok' if polls_ok else 'WORSE'}, p95 latency"
                    f" {ours.latency_pct(95):.1f}% <= {fifteen.latency_pct(95):.1f}%"
                    f" {'ok' if latency_ok else 'WORSE'}",
                )
            )
    ours_d = find("D", "ours")
    if ours_d:
        checks.append(
            Check(
                ours_d.requests_per_round < 0.2,
                f"D: {ours_d.requests_per_round:.3f} requests per task per poll round < 0.2"
                f" ({ours_d.requests_per_task:.2f} requests/task for"
                f" {ours_d.reads / len(ours_d.polls):.1f} reads/task,"
                f" {ours_d.reads / max(1, ours_d.batch_requests):.1f} tasks per batch call)",
            )
        )
    ours_e = find("E", "ours")
    if ours_e:
        checks.append(
            Check(
                ours_e.polls_mean <= 4.0 and ours_e.latency_pct(95) < 3.0,
                f"E: linear progress: ours {ours_e.polls_mean:.1f} polls/task <= 4 at p95"
                f" latency {ours_e.latency_pct(95):.1f}% < 3%",
            )
        )
    for key, rows in results.items():
        ok, text = meets_bound_targets(rows)
        checks.append(Check(ok, f"{key}: {text}"))
    return checks


def summary(results: dict[str, list[Result]], checks: Sequence[Check]) -> str:
    met = [key for key, rows in results.items() if meets_bound_targets(rows)[0]]
    parts: list[str] = []
    for key, rows in results.items():
        ours = rows[0]
        flag = " dominated" if dominated_by(ours, rows) else ""
        parts.append(
            f"{key} {ours.polls_mean:.1f} at {ours.latency_pct(95):.1f}% ({ours.ratio:.2f}x){flag}"
        )
    passed = sum(c.ok for c in checks)
    verdict = "PASS" if passed == len(checks) else "FAIL"
    return (
        f"summary: ours meets ratio <= {BOUND_RATIO:g}x the bound, not dominated and p95 <="
        f" {LATENCY_TARGET:g}% in {len(met)}/{len(results)} scenarios; ours polls/task at p95"
        f" latency (x bound): {', '.join(parts)}; targets {passed}/{len(checks)} {verdict}"
    )


# -- main ---------------------------------------------------------------------


def load_average() -> str:
    """The machine's 1-minute load average and core count: how busy the CPUs were."""
    try:
        load = f"{os.getloadavg()[0]:.1f}"
    except OSError:
        load = "unknown"
    return f"load average {load} on {os.cpu_count()} cores"


async def main(args: argparse.Namespace) -> None:
    wanted = args.scenarios.upper()
    scenarios = [s for s in SCENARIOS if s.key in wanted]
    if args.smoke:
        scenarios = [SCENARIOS[0]]
    print(
        f"# poll efficiency: {args.tasks} tasks per run at {args.rate:g}/s, seed {args.seed},"
        f" time scale {SCALE:g}, {'side by side (smoke)' if args.smoke else 'one run at a time'}"
    )
    print(f"# python {platform.python_version()} on {platform.machine()}, {load_average()}")
    results: dict[str, list[Result]] = {}
    shared: dict[str, list[Result]] = {}
    began = time.perf_counter()
    for scenario in scenarios:
        runs = await run_scenario(
            scenario,
            shared,
            tasks=args.tasks,
            rate=args.rate,
            seed=args.seed,
            side_by_side=args.smoke,
        )
        results[scenario.key] = runs
        print_table(scenario, runs, args.tasks)
    print(f"\n(ran in {time.perf_counter() - began:.0f} s; {load_average()})")
    # A fixed poller is one of the schedules the bound ranges over: it cannot beat it
    # (up to the per-task jitter of submit times and loop lag).
    fixed_ratios = [
        r.ratio for runs in shared.values() for r in runs if r.contender.kind == "fixed"
    ]
    print(
        f"bound check: every fixed poller at or above the bound (lowest ratio"
        f" {min(fixed_ratios):.2f}): {'ok' if min(fixed_ratios) >= 1.0 else 'BELOW'}"
    )
    print("\n## targets")
    checks = check_targets(results)
    for check in checks:
        print(f"{'PASS' if check.ok else 'FAIL'}  {check.text}")
    print(summary(results, checks))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--tasks", type=int, default=480, help="tasks per run (default 480)")
    parser.add_argument("--seed", type=int, default=1, help="mock seed (default 1)")
    parser.add_argument(
        "--rate", type=float, default=60.0, help="tasks submitted per second (default 60)"
    )
    parser.add_argument(
        "--scenarios",
        default="".join(BY_KEY),
        help=f"which scenarios to run, e.g. AFJ (default {''.join(BY_KEY)})",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="20 tasks, scenario A, contenders side by side"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.tasks = min(args.tasks, 20)
    if args.tasks < 1 or not args.rate > 0:
        parser.error("--tasks must be >= 1 and --rate > 0")
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args(sys.argv[1:])))
