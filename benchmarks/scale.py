"""
Scale: 10,000 and 100,000 tasks watched at once by one client: memory,
event-loop lag, and the poll rate against the client's poll budget.

Each size runs in processes of its own: a fresh MockEvoLink (spawned; its URL
comes back through a pipe) and a fresh client process, so the client's
figures are its own. The client creates N tasks with `client.submit` (64 in
flight) and hands each, as soon as it exists, to the client's task watcher:

- watcher path (default above 10,000 tasks):
  `client._watcher.watch(task.id, initial=task, started_at=..., listener=...)`,
  what the batch runner does: one small record per task in a heap, no
  coroutine per task; the listener counts completions.
- batch path (default up to 10,000 tasks): the product path,
  `client.batch(jobs, concurrency=64, max_active=N)`, outcomes read with
  `async for`.

The mock's tasks run long enough that all N are watched at once: mean
duration `max(60 s x scale, 3 x N / 1,500 creates/s)` (lognormal, sigma
0.2, so even the quickest task outlives the creates; `--duration` sets it),
at time scale `--scale` (1.0: real time; every `PollPolicy` time field is
scaled alike). The poll budget is `--budget` polls/s (default 1,000: 50x
the default policy's 20/s, which could not poll 100,000 tasks even once
within a benchmark).

Per size it reports:

- memory of the client process: RSS before the first create, RSS when the
  most tasks were watched at once, peak RSS (VmHWM at the end), and
  (RSS all watched - RSS start) / N as KB per watched task; and where those
  bytes are, once the last task is created, from 1,000 watched entries
  (`sys.getsizeof` of the objects each reaches through containers and the
  SDK's records, an object shared by several counted once over the sample;
  listeners themselves are the caller's, not counted): the last reply as
  the task keeps it for `Task.raw`, the rest of the `Task`, the planner's
  state, the `WatchEntry` with its lists and numbers, and the watcher's id
  table and heap (their size / watched tasks).
- event-loop lag: a probe sleeps 10 ms again and again and records how late
  it wakes, p50/p99/max over the whole run (creates included) and p99 after
  the last create (watching only).
- polling: polls sent by the watcher (`polls_sent`, which the mock's GET
  count confirms) per second, mean over the run and the most in any 1 s
  window, against the budget; polls per task; backlog: how far behind its
  schedule the watcher fell at worst (now - the earliest due poll).
- lateness: when the client saw each task finish minus when it finished on
  the mock (both on CLOCK_MONOTONIC, which the two processes share):
  p50/p99/max, and how many tasks were seen more than `max_interval`
  (60 s x scale) late. The planner never waits longer than `max_interval`
  between two polls of a task, so such a task was late because of the
  budget (polls queued behind it), not its plan.

Targets (reported, not asserted; exit code 0 unless a run crashed):
100,000 watched tasks under 500 MB peak RSS; loop lag p99 under 100 ms.

Run (from the repository root):

    .venv/bin/python benchmarks/scale.py                       # 10k and 100k, ~8 minutes
    .venv/bin/python benchmarks/scale.py --smoke               # 1,000 tasks, scale 0.05, < 20 s
    .venv/bin/python benchmarks/scale.py --tasks 20000 --tasks 50000 --budget 2000
    .venv/bin/python benchmarks/scale.py --tasks 100000 --path batch

`--smoke` checks the benchmark works; its figures are not for reading.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import enum
import gc
import heapq
import itertools
import math
import multiprocessing
import os
import platform
import sys
import time
import traceback
import types
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext
from typing import Any, Final, Literal

from _common import MockProcess, peak_rss_mb, percentile, receive, rss_mb, run_mock

from evolink_async import EvoLinkClient, PollPolicy, Task, TaskStatus
from evolink_async.testing import MockEvoLink

MODEL: Final = "seedance-2.0-image-to-video"
IMAGE: Final = "https://example.com/first-frame.jpg"
DEFAULT_SIZES: Final = (10_000, 100_000)
SMOKE_SIZE: Final = 1_000
SMOKE_SCALE: Final = 0.05
#: Polls per second of the whole client (the default policy allows 20).
DEFAULT_BUDGET: Final = 1_000.0
#: Creates in flight at once (the client's max_concurrency too).
CONCURRENCY: Final = 64
#: Creates per second assumed when sizing task durations (a slow machine
#: does ~1,500; tasks last three times the create phase).
CREATE_RATE_GUESS: Final = 1_500.0
#: Shortest mean task duration, unscaled seconds.
MIN_DURATION: Final = 60.0
DURATION_SIGMA: Final = 0.2
#: At or below this many tasks the default path is the batch runner.
BATCH_PATH_LIMIT: Final = 10_000
LAG_TICK: Final = 0.010
SAMPLE_EVERY: Final = 0.5
RSS_TARGET_MB: Final = 500.0
LAG_TARGET_MS: Final = 100.0
#: Watched entries whose objects are sized for the breakdown of memory.
FOOTPRINT_SAMPLE: Final = 1_000
#: The parts of that breakdown, in the order they are sized (an object is
#: counted in the first part that reaches it).
PARTS: Final = ("raw", "task", "planner state", "entry", "watcher tables")

Path = Literal["watcher", "batch"]


# -- memory ---------------------------------------------------------------------

#: Not followed when sizing: shared by every task (classes, code, enum members).
_SHARED_KINDS: Final = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    enum.Enum,
)
#: What a task holds in its `raw` slot, without parsing it (on a build that
#: keeps the reply's bytes, `Task.raw` is a descriptor in front of the slot).
_RAW_SLOT: Final[Any] = vars(Task)["raw"].__get__(None, Task)


_CONTAINERS: Final = (tuple, list, dict, set, frozenset)


def _sized(roots: Iterable[object], seen: set[int]) -> int:
    """
    Bytes of the objects reachable from `roots` not in `seen` (added to it),
    following containers and the SDK's own records; any other object (a
    cancel scope while a poll is in flight, an exception) counts at its own
    size, unfollowed, and what `_SHARED_KINDS` names not at all.
    """
    total = 0
    stack = list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _SHARED_KINDS):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        kind = type(obj)
        if kind in _CONTAINERS or kind.__module__.startswith("evolink_async"):
            stack.extend(gc.get_referents(obj))
            if isinstance(obj, dict):
                # The collector does not visit a dict's str keys (no cycle runs through a str).
                stack.extend(obj)
    return total


def footprint(client: EvoLinkClient) -> dict[str, float]:
    """Bytes per watched task by part (see the module docstring), from a sample."""
    watcher = client._watcher
    entries = list(itertools.islice(watcher._entries.values(), FOOTPRINT_SAMPLE))
    if not entries:
        return {}
    tasks = [entry.latest for entry in entries if entry.latest is not None]
    seen: set[int] = {id(watcher)}
    sizes = {
        "raw": _sized((_RAW_SLOT.__get__(task, Task) for task in tasks), seen),
        "task": _sized(tasks, seen),
        "planner state": _sized((entry.state for entry in entries), seen),
        "entry": _sized(entries, seen),
    }
    per_task = {part: size / len(entries) for part, size in sizes.items()}
    heap = watcher._heap
    watched = max(1, watcher.watched)
    # The heap's tuples hold the entry's own due time and number (counted above).
    per_task["watcher tables"] = (
        sys.getsizeof(watcher._entries) + sys.getsizeof(heap) + sys.getsizeof((0, 0, 0)) * len(heap)
    ) / watched
    return per_task


# -- the mock process -----------------------------------------------------------


def _mock_main(conn: Connection, options: dict[str, Any]) -> None:
    """Serve a MockEvoLink until asked for its figures; send them and stop."""
    run_mock(conn, options, _figures)


def _figures(mock: MockEvoLink) -> dict[str, Any]:
    return {
        "requests": dict(mock.stats.requests),
        "finishes": {task_id: task.finishes_at for task_id, task in mock.tasks.items()},
    }


@dataclass(frozen=True)
class MockFigures:
    """What the mock counted: requests per route, and when each task ended."""

    requests: dict[str, int]
    finishes: dict[str, float]


def mock_figures(mock: MockProcess) -> MockFigures:
    """Collect the mock's figures and stop it."""
    data = mock.ask("figures", 120.0)
    mock.close()
    return MockFigures(requests=dict(data["requests"]), finishes=dict(data["finishes"]))


# -- the client process ---------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """What one client process runs (pickled to it)."""

    url: str
    api_key: str
    tasks: int
    path: Path
    scale: float
    budget: float
    limit: float


@dataclass
class Sample:
    """The client's state at one moment (loop clock)."""

    at: float
    watched: int
    polls: int
    rss_mb: float
    backlog: float


@dataclass
class ClientFigures:
    """What one client process measured (sent back as a plain dict)."""

    tasks: int
    path: str
    began: float
    created_by: float
    ended: float
    rss_start_mb: float
    peak_rss_mb: float = 0.0
    completed: int = 0
    failed: int = 0
    lag: list[tuple[float, float]] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    seen: dict[str, float] = field(default_factory=dict)
    polls_sent: int = 0
    #: Pauses of full (generation 2) garbage collections, seconds.
    gc_pauses: list[float] = field(default_factory=list)
    #: Bytes per watched task by part (PARTS), once every task is created.
    footprint: dict[str, float] = field(default_factory=dict)


class Probe:
    """Loop lag (a LAG_TICK sleeper) and state samples every SAMPLE_EVERY."""

    def __init__(self, client: EvoLinkClient, figures: ClientFigures) -> None:
        self._client = client
        self._figures = figures
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._lag()), loop.create_task(self._sample())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.sample()

    async def _lag(self) -> None:
        loop = asyncio.get_running_loop()
        lag = self._figures.lag
        while True:
            planned = loop.time() + LAG_TICK
            await asyncio.sleep(LAG_TICK)
            now = loop.time()
            lag.append((now, max(0.0, now - planned)))

    async def _sample(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(SAMPLE_EVERY)

    def sample(self) -> None:
        now = asyncio.get_running_loop().time()
        if not self._figures.footprint and not math.isnan(self._figures.created_by):
            self._figures.footprint = footprint(self._client)
        watcher = self._client._watcher
        heap = watcher._heap
        # Drop stale heap heads the way the dispatcher does; read the earliest due time.
        while heap and heap[0][2].seq != heap[0][1]:
            heapq.heappop(heap)
        backlog = max(0.0, now - heap[0][0]) if heap else 0.0
        self._figures.samples.append(
            Sample(now, watcher.watched, watcher.polls_sent, rss_mb(), backlog)
        )


async def run_client(spec: Spec) -> ClientFigures:
    s = spec.scale
    policy = PollPolicy(
        min_interval=2.0 * s,
        max_interval=60.0 * s,
        default_estimate=120.0 * s,
        max_polls_per_second=spec.budget,
    )
    loop = asyncio.get_running_loop()
    gc_began = 0.0

    def on_gc(phase: str, info: dict[str, int]) -> None:
        nonlocal gc_began
        if info["generation"] != 2:
            return
        if phase == "start":
            gc_began = time.perf_counter()
        else:
            figures.gc_pauses.append(time.perf_counter() - gc_began)

    figures = ClientFigures(
        tasks=spec.tasks,
        path=spec.path,
        began=loop.time(),
        created_by=math.nan,
        ended=math.nan,
        rss_start_mb=rss_mb(),
    )
    async with EvoLinkClient(
        spec.api_key,
        base_url=spec.url,
        files_base_url=spec.url,
        max_concurrency=CONCURRENCY,
        poll=policy,
    ) as client:
        probe = Probe(client, figures)
        probe.start()
        gc.callbacks.append(on_gc)
        try:
            async with asyncio.timeout(spec.limit):
                if spec.path == "batch":
                    await _through_batch(client, spec, figures)
                else:
                    await _through_watcher(client, spec, figures)
        finally:
            figures.ended = loop.time()
            gc.callbacks.remove(on_gc)
            await probe.stop()
            figures.polls_sent = client._watcher.polls_sent
    figures.peak_rss_mb = peak_rss_mb()
    return figures


async def _through_watcher(client: EvoLinkClient, spec: Spec, figures: ClientFigures) -> None:
    """Create every task; hand each to the watcher with a counting listener."""
    from evolink_async._watch.watcher import WatchEntry

    loop = asyncio.get_running_loop()
    watcher = client._watcher
    all_seen = asyncio.Event()
    seen = figures.seen

    def listener(entry: WatchEntry) -> None:
        if not entry.done:
            return
        seen[entry.task_id] = loop.time()
        latest = entry.latest
        if entry.error is None and latest is not None and latest.status is TaskStatus.COMPLETED:
            figures.completed += 1
        else:
            figures.failed += 1
        if len(seen) == spec.tasks:
            all_seen.set()

    next_index = 0

    async def creator() -> None:
        nonlocal next_index
        while next_index < spec.tasks:
            index = next_index
            next_index += 1
            started = loop.time()
            task = await client.submit(MODEL, prompt=f"scale task {index}", image_urls=[IMAGE])
            watcher.watch(task.id, initial=task, started_at=started, listener=listener)

    await asyncio.gather(*(creator() for _ in range(min(CONCURRENCY, spec.tasks))))
    figures.created_by = loop.time()
    await all_seen.wait()


async def _jobs(count: int) -> AsyncIterator[dict[str, Any]]:
    for index in range(count):
        yield {
            "id": f"job-{index:07d}",
            "model": MODEL,
            "prompt": f"scale task {index}",
            "image_urls": [IMAGE],
        }


async def _through_batch(client: EvoLinkClient, spec: Spec, figures: ClientFigures) -> None:
    """`client.batch` over N jobs with `max_active=N`; outcomes as they come."""
    loop = asyncio.get_running_loop()
    run = client.batch(_jobs(spec.tasks), concurrency=CONCURRENCY, max_active=spec.tasks)
    async with run:
        async for outcome in run:
            if outcome.task is not None:
                figures.seen[outcome.task.id] = loop.time()
            if outcome.ok:
                figures.completed += 1
            else:
                figures.failed += 1
            if math.isnan(figures.created_by) and run.stats.submitted >= spec.tasks:
                figures.created_by = loop.time()
    if math.isnan(figures.created_by):
        figures.created_by = loop.time()


def _client_main(conn: Connection, spec: Spec) -> None:
    try:
        figures = asyncio.run(run_client(spec))
        # Plain data only: this module is `__mp_main__` here, `__main__` there.
        conn.send({"figures": dataclasses.asdict(figures)})
    except BaseException:
        conn.send({"error": traceback.format_exc()})
        raise
    finally:
        conn.close()


# -- one size: two processes ------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """How one size is run."""

    tasks: int
    path: Path
    scale: float
    budget: float
    duration: float  # mean task duration, real seconds

    @property
    def max_interval(self) -> float:
        return 60.0 * self.scale

    @property
    def limit(self) -> float:
        """Seconds the client may take before the run counts as hung."""
        create = self.tasks / 200.0  # a very slow machine
        return create + 3 * self.duration + 3 * self.tasks / self.budget + 120.0


@dataclass
class Result:
    plan: Plan
    client: ClientFigures
    mock: MockFigures
    lateness: list[float]  # seconds, one per task seen finished

    def lag_ms(self, q: float, *, watching_only: bool = False) -> float:
        after = self.client.created_by if watching_only else -math.inf
        return 1000.0 * percentile([lag for at, lag in self.client.lag if at >= after], q)

    @property
    def lag_max_ms(self) -> float:
        return 1000.0 * max((lag for _, lag in self.client.lag), default=math.nan)

    @property
    def most_watched(self) -> Sample:
        return max(self.client.samples, key=lambda sample: (sample.watched, -sample.at))

    @property
    def kb_per_task(self) -> float:
        grown = self.most_watched.rss_mb - self.client.rss_start_mb
        return 1024.0 * grown / max(1, self.most_watched.watched)

    @property
    def create_seconds(self) -> float:
        return self.client.created_by - self.client.began

    @property
    def polls(self) -> int:
        return self.client.polls_sent

    @property
    def poll_seconds(self) -> float:
        """From the first poll sent to the last sample."""
        first = next((s.at for s in self.client.samples if s.polls > 0), math.nan)
        return self.client.ended - first

    @property
    def poll_rate(self) -> float:
        return self.polls / self.poll_seconds if self.poll_seconds > 0 else math.nan

    @property
    def max_rate(self) -> float:
        """The most polls in any window of about 1 s (two sample periods)."""
        samples = self.client.samples
        step = max(1, round(1.0 / SAMPLE_EVERY))
        rates = [
            (b.polls - a.polls) / (b.at - a.at)
            for a, b in zip(samples, samples[step:], strict=False)
            if b.at > a.at
        ]
        return max(rates, default=math.nan)

    @property
    def behind_rate(self) -> float:
        """Polls/s over the sample periods the watcher was behind its schedule."""
        min_interval = 2.0 * self.plan.scale
        polls = seconds = 0.0
        samples = self.client.samples
        for a, b in itertools.pairwise(samples):
            if a.backlog > min_interval and b.backlog > min_interval:
                polls += b.polls - a.polls
                seconds += b.at - a.at
        return polls / seconds if seconds > 0 else math.nan

    @property
    def behind_seconds(self) -> float:
        min_interval = 2.0 * self.plan.scale
        samples = self.client.samples
        return sum(
            b.at - a.at
            for a, b in itertools.pairwise(samples)
            if a.backlog > min_interval and b.backlog > min_interval
        )

    @property
    def budget_use(self) -> float:
        """
        Polls sent / polls the budget allowed: a token bucket of `budget`
        tokens a second that starts full (1 s of budget), from the last
        sample before the first poll to the end. At most 1 if it held.
        """
        samples = self.client.samples
        first = next((i for i, s in enumerate(samples) if s.polls > 0), None)
        if first is None:
            return 0.0
        start = samples[max(0, first - 1)].at
        budget = self.plan.budget
        return self.polls / (budget * (self.client.ended - start) + max(1.0, budget))

    @property
    def backlog_max(self) -> float:
        return max((s.backlog for s in self.client.samples), default=math.nan)

    @property
    def late_by_budget(self) -> int:
        return sum(late > self.plan.max_interval for late in self.lateness)


def run_size(ctx: SpawnContext, plan: Plan, seed: int) -> Result:
    mock = MockProcess(
        ctx,
        _mock_main,
        {
            "time_scale": plan.scale,
            "seed": seed,
            "duration_sigma": DURATION_SIGMA,
            "estimated_times": {MODEL: plan.duration / plan.scale},
            "keep_requests": 0,
            "credits": 1e12,
        },
    )
    try:
        spec = Spec(
            url=mock.url,
            api_key=mock.api_key,
            tasks=plan.tasks,
            path=plan.path,
            scale=plan.scale,
            budget=plan.budget,
            limit=plan.limit,
        )
        conn, child = ctx.Pipe()
        process = ctx.Process(target=_client_main, args=(child, spec), name="client")
        process.start()
        child.close()
        try:
            reply = receive(conn, plan.limit + 120.0, f"{plan.tasks:,}-task client")
        finally:
            process.join(60.0)
            if process.is_alive():
                process.terminate()
        data = dict(reply["figures"])
        data["samples"] = [Sample(**sample) for sample in data["samples"]]
        client = ClientFigures(**data)
        figures = mock_figures(mock)
    finally:
        mock.close()
    lateness = [
        seen - figures.finishes[task_id]
        for task_id, seen in client.seen.items()
        if task_id in figures.finishes
    ]
    return Result(plan=plan, client=client, mock=figures, lateness=lateness)


# -- reporting --------------------------------------------------------------------


def print_tables(results: Sequence[Result]) -> None:
    print(
        "\n| tasks | path | create s | most watched | RSS start MB | RSS all watched MB |"
        " peak RSS MB | KB/task | lag p50 / p99 / max ms | lag p99 watching ms |"
        " full GCs (longest ms) |"
    )
    print(
        "|------:|------|---------:|-------------:|-------------:|-------------------:|"
        "------------:|--------:|-----------------------:|--------------------:|"
        "----------------------:|"
    )
    for r in results:
        c = r.client
        print(
            f"| {c.tasks:,} | {c.path} | {r.create_seconds:.1f} | {r.most_watched.watched:,} |"
            f" {c.rss_start_mb:.0f} | {r.most_watched.rss_mb:.0f} | {c.peak_rss_mb:.0f} |"
            f" {r.kb_per_task:.2f} | {r.lag_ms(50):.1f} / {r.lag_ms(99):.1f} /"
            f" {r.lag_max_ms:.0f} | {r.lag_ms(99, watching_only=True):.1f} |"
            f" {len(c.gc_pauses)} ({1000 * max(c.gc_pauses, default=0.0):.0f}) |"
        )
    print(
        "\n| tasks | task s (mean) | budget polls/s | polls/s mean | max 1 s | of allowed |"
        " behind s | polls/s behind | polls/task | backlog max s | late p50 / p99 / max s |"
        " late > max_interval |"
    )
    print(
        "|------:|--------------:|---------------:|-------------:|--------:|-----------:|"
        "---------:|---------------:|-----------:|--------------:|-----------------------:|"
        "--------------------:|"
    )
    for r in results:
        c = r.client
        print(
            f"| {c.tasks:,} | {r.plan.duration:.0f} | {r.plan.budget:,.0f} |"
            f" {r.poll_rate:,.0f} | {r.max_rate:,.0f} | {r.budget_use:.2f} |"
            f" {r.behind_seconds:.0f} | {r.behind_rate:,.0f} |"
            f" {r.polls / c.tasks:.2f} | {r.backlog_max:.1f} | {percentile(r.lateness, 50):.1f} /"
            f" {percentile(r.lateness, 99):.1f} / {max(r.lateness, default=math.nan):.1f} |"
            f" {r.late_by_budget:,} ({100 * r.late_by_budget / max(1, len(r.lateness)):.0f}%) |"
        )
    print("\nBytes per watched task, by part (sizes of a sample of entries) and from RSS:")
    print(
        f"\n| tasks | {' | '.join(PARTS)} | sum | from RSS |\n|------:|"
        + "------:|" * (len(PARTS) + 2)
    )
    for r in results:
        parts = r.client.footprint
        cells = " | ".join(f"{parts[part]:,.0f}" if part in parts else "-" for part in PARTS)
        print(
            f"| {r.client.tasks:,} | {cells} | {sum(parts.values()):,.0f} |"
            f" {1024 * r.kb_per_task:,.0f} |"
        )
    for r in results:
        c = r.client
        gets = r.mock.requests.get("GET /v1/tasks/{id}", 0)
        creates = r.mock.requests.get("POST /v1/videos/generations", 0)
        print(
            f"  {c.tasks:,}: {c.completed:,} completed, {c.failed:,} failed, {len(c.seen):,} seen;"
            f" mock served {creates:,} creates, {gets:,} task reads (watcher sent"
            f" {r.polls:,}); ran {c.ended - c.began:.0f} s"
        )


def summary(results: Sequence[Result]) -> str:
    parts: list[str] = []
    verdicts: list[bool] = []
    for r in results:
        rss_ok = r.client.peak_rss_mb < RSS_TARGET_MB
        lag_ok = r.lag_ms(99) < LAG_TARGET_MS
        verdicts += [rss_ok, lag_ok]
        parts.append(
            f"{r.client.tasks:,} watched: peak RSS {r.client.peak_rss_mb:.0f} MB"
            f" ({r.kb_per_task:.1f} KB/task) {'PASS' if rss_ok else 'FAIL'}, loop lag p99"
            f" {r.lag_ms(99):.1f} ms {'PASS' if lag_ok else 'FAIL'}, {r.poll_rate:,.0f}"
            f" polls/s (max {r.max_rate:,.0f} in 1 s) of {r.plan.budget:,.0f}"
            f" ({r.budget_use:.2f} of allowed),"
            f" {r.late_by_budget:,} tasks late by the budget"
        )
    verdict = "PASS" if all(verdicts) else "FAIL"
    return (
        f"summary: {'; '.join(parts)}; targets (< {RSS_TARGET_MB:.0f} MB,"
        f" lag p99 < {LAG_TARGET_MS:.0f} ms) {verdict}"
    )


# -- main -------------------------------------------------------------------------


def plans(args: argparse.Namespace) -> list[Plan]:
    result = []
    for tasks in args.tasks:
        path: Path = (
            args.path
            if args.path != "auto"
            else ("batch" if tasks <= BATCH_PATH_LIMIT else "watcher")
        )
        duration = args.duration or max(MIN_DURATION * args.scale, 3 * tasks / CREATE_RATE_GUESS)
        result.append(Plan(tasks, path, args.scale, args.budget, duration))
    return result


def main(args: argparse.Namespace) -> None:
    print(
        f"# scale: {', '.join(f'{n:,}' for n in args.tasks)} tasks watched at once;"
        f" budget {args.budget:,.0f} polls/s, time scale {args.scale:g}, seed {args.seed};"
        " mock and client in processes of their own"
    )
    print(
        f"# python {platform.python_version()} on {platform.machine()},"
        f" {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    ctx = multiprocessing.get_context("spawn")
    results: list[Result] = []
    began = time.perf_counter()
    for plan in plans(args):
        result = run_size(ctx, plan, args.seed)
        results.append(result)
        print(
            f"  ran {plan.tasks:,} tasks ({plan.path} path) in"
            f" {result.client.ended - result.client.began:.0f} s;"
            f" load average {os.getloadavg()[0]:.2f}",
            flush=True,
        )
    print_tables(results)
    print(f"\n(ran in {time.perf_counter() - began:.0f} s)")
    print(summary(results))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument(
        "--tasks",
        type=int,
        action="append",
        help="tasks watched at once; repeat for several sizes (default 10000 and 100000)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=DEFAULT_BUDGET,
        help=f"poll budget, polls/s (default {DEFAULT_BUDGET:g})",
    )
    parser.add_argument(
        "--path",
        choices=("auto", "watcher", "batch"),
        default="auto",
        help=f"watcher or client.batch (default auto: batch up to {BATCH_PATH_LIMIT:,} tasks)",
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="time scale of the mock and the policy (1.0)"
    )
    parser.add_argument(
        "--duration", type=float, default=None, help="mean task duration, real seconds"
    )
    parser.add_argument("--seed", type=int, default=1, help="mock seed (default 1)")
    parser.add_argument(
        "--smoke", action="store_true", help=f"{SMOKE_SIZE:,} tasks at scale {SMOKE_SCALE:g}"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.tasks = [min(SMOKE_SIZE, *(args.tasks or [SMOKE_SIZE]))]
        args.scale = SMOKE_SCALE
    elif not args.tasks:
        args.tasks = list(DEFAULT_SIZES)
    if min(args.tasks) < 1 or not args.budget > 0 or not args.scale > 0:
        parser.error("--tasks must be >= 1, --budget and --scale > 0")
    if args.duration is not None and not args.duration > 0:
        parser.error("--duration must be > 0")
    return args


if __name__ == "__main__":
    main(parse_args(sys.argv[1:]))
