"""
Batch throughput: 10,000 jobs through `client.batch` against MockEvoLink, next
to the same workload written by hand with `asyncio.gather`, a semaphore and
fixed 5 s polling; then peak memory of the batch runner as the job file grows.

Every run gets its own processes: a fresh MockEvoLink (same seed, so the same
task run times) in one, the client in another, so the client's figures are
its own. Time is scaled (default 0.01: seedance-2.0 image-to-video, estimated
165 s, runs in about 1.65 s; a 5 s poll interval becomes 50 ms).

Contenders (part 1):

- ours: `EvoLinkClient(max_concurrency=C, poll=PollPolicy(...))` with every
  time field of the default policy scaled (min 2 s, max 60 s, default
  estimate 120 s) and a poll budget of `--budget` polls/s (default: the
  default 20/s, scaled, i.e. 20 / scale); `client.batch(jobs, concurrency=C)`
  reading the jobs lazily from a generator of dicts, outcomes counted as they
  come (`async for`).
- baseline: plain aiohttp, `asyncio.gather` over one coroutine per job, each
  `async with semaphore(C): POST create`, then (outside the semaphore, like
  typical user code) `sleep(5 s x scale)` + `GET /v1/tasks/{id}` until the
  task is terminal. aiohttp's default connector caps it at 100 connections.

Per contender: jobs/s (jobs / seconds from the first job read to the last
outcome), total requests the mock served (from the mock's own counters) and
per job, peak RSS of the client process (VmHWM; the RSS after imports, before
the workload, in brackets), and event-loop lag: a probe sleeps 10 ms again and
again and records how late it wakes (p50/p99/max).

Part 2, memory flatness: the batch runner alone (same client settings, mock
batch endpoint on, `max_active` at its default 10,000, time scale
`--flat-scale`, so tasks live long enough for the runner to reach
`max_active`) reading N jobs lazily from a JSON-lines file on disk, N =
20,000 and 100,000 (and 1,000,000 with `--million`), each N in fresh
processes. The table gives peak RSS, jobs/s, the most tasks in flight and
the most jobs read but not finished (bounded by `max_active` + concurrency,
whatever N); under it, the peak RSS after every tenth of the largest run.

Targets (reported, not asserted; exit code 0 unless a run crashed): ours
>= 0.9 x the baseline's jobs/s with >= 3x fewer requests; ours peak RSS
< 200 MB; ours loop lag p99 < 100 ms. Part 2: memory flat, i.e. over the
second half of the largest run peak RSS grows by < 64 bytes per job
(keeping each job's outcome would cost ~2.2 KB, its dict alone ~0.4 KB);
jobs read and not finished <= max_active + concurrency.

Run (from the repository root):

    .venv/bin/python benchmarks/batch_throughput.py              # full, a few minutes
    .venv/bin/python benchmarks/batch_throughput.py --smoke      # 500 jobs, < 30 s
    .venv/bin/python benchmarks/batch_throughput.py --million    # part 2 up to 1M jobs
    .venv/bin/python benchmarks/batch_throughput.py --jobs 2000 --concurrency 32 --seed 7

Part 3, a rate-limited key (`_rate_limited.py` tells it in full): token
buckets of 20 creates/s and 100 reads/s, 2,000 jobs of 60 s, in one process
and in two on the same key, time scaled by `--rate-scale` (0.5); each next
to a fixed poller spending the same number of reads. Targets: polls >= 80 %
of the read limit while tasks wait, creates >= 90 % of the create limit,
429s < 1 % of requests, p95 detection latency below the fixed poller's.

    .venv/bin/python benchmarks/batch_throughput.py --only rate   # part 3 alone, ~8 min

With `EVOLINK_TEST_PG` (a PostgreSQL URL) part 3 adds the two processes with a
`SharedBudget` (ceilings at twice the limits): the processes find the key's
limits together.

`--smoke` checks the benchmark works (500 jobs per contender, part 2 at 500
and 2,500 jobs, part 3 at 60 jobs of 3 s on a 40/200 per second key, one
process); its
figures are not for reading.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import multiprocessing
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import _rate_limited
import aiohttp
from _common import MockProcess, peak_rss_mb, percentile, receive, rss_mb, run_mock

if TYPE_CHECKING:
    from evolink_async.testing import MockEvoLink

# Nothing from evolink_async is imported at module level: every run happens
# in a spawned process that imports this module, and the baseline's RSS
# should not carry the SDK's imports.

#: Default time scale: mock durations and every poll time field are multiplied by it.
SCALE: Final = 0.01
#: Default time scale of part 2 (tasks ~8 s: long enough to fill `max_active`).
FLAT_SCALE: Final = 0.05
MODEL: Final = "seedance-2.0-image-to-video"
IMAGE: Final = "https://example.com/first-frame.jpg"
CREATE_PATH: Final = "/v1/videos/generations"
TERMINAL: Final = frozenset({"completed", "failed", "cancelled"})
#: The baseline's poll interval, unscaled seconds.
BASELINE_INTERVAL: Final = 5.0
#: The default poll budget (polls/s of one client) at real time.
DEFAULT_BUDGET: Final = 20.0
#: Loop-lag probe period (seconds).
LAG_TICK: Final = 0.010
#: No run may take longer than this (seconds): a hang is a crash.
RUN_LIMIT: Final = 3600.0
#: Part 2 sizes: default, with --million, with --smoke.
FLAT_SIZES: Final = (20_000, 100_000)
MILLION_SIZES: Final = (20_000, 100_000, 1_000_000)
SMOKE_FLAT_SIZES: Final = (500, 2_500)
#: Part 2 under --smoke: short tasks and a small `max_active`, to finish in seconds.
SMOKE_FLAT_SCALE: Final = 0.002
SMOKE_MAX_ACTIVE: Final = 250
#: The batch runner's default `max_active`.
MAX_ACTIVE: Final = 10_000
#: Part 2 target: peak RSS growth per extra job, bytes.
FLAT_BYTES_PER_JOB: Final = 64.0

Kind = Literal["ours", "baseline"]


@dataclass(frozen=True)
class Spec:
    """What one client process runs (pickled to it)."""

    kind: Kind
    url: str
    api_key: str
    jobs: int
    concurrency: int
    scale: float
    budget: float
    max_active: int
    batch_endpoint: bool
    jsonl: str | None


@dataclass(frozen=True)
class ClientResult:
    """What one client process measured (sent back as a dict)."""

    kind: str
    jobs: int
    completed: int
    failed: int
    seconds: float
    rss_start_mb: float
    peak_rss_mb: float
    lag_p50_ms: float
    lag_p99_ms: float
    lag_max_ms: float
    lag_samples: int
    max_pending: int = 0
    max_read_ahead: int = 0
    #: (jobs finished, peak RSS MB so far) at every tenth of the run (ours only).
    checkpoints: tuple[tuple[int, float], ...] = ()

    @property
    def jobs_per_second(self) -> float:
        return self.jobs / self.seconds if self.seconds > 0 else math.nan


@dataclass(frozen=True)
class MockResult:
    """What the mock process counted."""

    requests: dict[str, int]
    tasks_created: int

    @property
    def total(self) -> int:
        return sum(self.requests.values())


@dataclass(frozen=True)
class Run:
    client: ClientResult
    mock: MockResult

    @property
    def requests_per_job(self) -> float:
        return self.mock.total / self.client.jobs


# -- memory ---------------------------------------------------------------------


# -- the mock process -----------------------------------------------------------


def _mock_process(conn: Connection, options: dict[str, Any]) -> None:
    """Run a MockEvoLink until told to stop; then send its counters back."""
    run_mock(conn, options, _counters)


def _counters(mock: MockEvoLink) -> dict[str, Any]:
    return {"requests": dict(mock.stats.requests), "tasks_created": mock.stats.tasks_created}


def mock_result(mock: MockProcess) -> MockResult:
    """Collect the mock's counters and stop it."""
    data = mock.ask("stats", 60.0)
    mock.close()
    return MockResult(
        requests={str(k): int(v) for k, v in data["requests"].items()},
        tasks_created=int(data["tasks_created"]),
    )


# -- the client process ---------------------------------------------------------


class LagProbe:
    """Sleeps LAG_TICK again and again, recording how late it wakes."""

    def __init__(self, on_tick: Callable[[], None] | None = None) -> None:
        self.samples: list[float] = []
        self._on_tick = on_tick
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            planned = loop.time() + LAG_TICK
            await asyncio.sleep(LAG_TICK)
            self.samples.append(max(0.0, loop.time() - planned))
            if self._on_tick is not None:
                self._on_tick()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def summary(self) -> dict[str, float]:
        ms = [1000.0 * s for s in self.samples]
        return {
            "lag_p50_ms": percentile(ms, 50),
            "lag_p99_ms": percentile(ms, 99),
            "lag_max_ms": max(ms, default=math.nan),
            "lag_samples": len(ms),
        }


def job_dict(index: int) -> dict[str, Any]:
    """One job as a line of a job file would hold it."""
    return {
        "id": f"job-{index:07d}",
        "model": MODEL,
        "prompt": f"benchmark job {index}",
        "image_urls": [IMAGE],
    }


def generated_jobs(count: int) -> Iterator[dict[str, Any]]:
    return (job_dict(i) for i in range(count))


def file_jobs(path: str, count: int) -> Iterator[dict[str, Any]]:
    """The first `count` jobs of a JSON-lines file, read one line at a time."""
    with open(path, encoding="utf-8") as lines:
        for line in itertools.islice(lines, count):
            job: dict[str, Any] = json.loads(line)
            yield job


async def run_ours(spec: Spec) -> dict[str, Any]:
    from evolink_async import EvoLinkClient, PollPolicy

    s = spec.scale
    policy = PollPolicy(
        min_interval=2.0 * s,
        max_interval=60.0 * s,
        default_estimate=120.0 * s,
        max_polls_per_second=spec.budget,
        batch_endpoint=spec.batch_endpoint,
    )
    jobs = file_jobs(spec.jsonl, spec.jobs) if spec.jsonl else generated_jobs(spec.jobs)
    rss_start = rss_mb()
    completed = failed = max_pending = max_read_ahead = 0
    every = max(1, spec.jobs // 10)
    checkpoints: list[tuple[int, float]] = []
    async with EvoLinkClient(
        spec.api_key,
        base_url=spec.url,
        files_base_url=spec.url,
        max_concurrency=spec.concurrency,
        poll=policy,
    ) as client:
        run = client.batch(jobs, concurrency=spec.concurrency, max_active=spec.max_active)

        def sample() -> None:
            nonlocal max_pending, max_read_ahead
            stats = run.stats
            max_pending = max(max_pending, stats.pending)
            max_read_ahead = max(max_read_ahead, stats.read - stats.finished)

        probe = LagProbe(sample)
        probe.start()
        began = time.perf_counter()
        try:
            async with run, asyncio.timeout(RUN_LIMIT):
                async for outcome in run:
                    if outcome.ok:
                        completed += 1
                    else:
                        failed += 1
                    sample()
                    if (completed + failed) % every == 0:
                        checkpoints.append((completed + failed, peak_rss_mb()))
        finally:
            seconds = time.perf_counter() - began
            await probe.stop()
    return {
        "kind": spec.kind,
        "jobs": completed + failed,
        "completed": completed,
        "failed": failed,
        "seconds": seconds,
        "rss_start_mb": rss_start,
        "max_pending": max_pending,
        "max_read_ahead": max_read_ahead,
        "checkpoints": tuple(checkpoints),
        **probe.summary(),
    }


async def run_baseline(spec: Spec) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {spec.api_key}"}
    create_url = spec.url + CREATE_PATH
    interval = BASELINE_INTERVAL * spec.scale
    rss_start = rss_mb()
    probe = LagProbe()
    async with aiohttp.ClientSession(headers=headers) as session:
        semaphore = asyncio.Semaphore(spec.concurrency)

        async def one(index: int) -> bool:
            async with semaphore, session.post(create_url, json=job_body(index)) as reply:
                if reply.status != 200:
                    raise RuntimeError(f"create: HTTP {reply.status}: {await reply.text()}")
                task_id = (await reply.json())["id"]
            task_url = f"{spec.url}/v1/tasks/{task_id}"
            while True:
                await asyncio.sleep(interval)
                async with session.get(task_url) as reply:
                    if reply.status != 200:
                        raise RuntimeError(f"poll: HTTP {reply.status}: {await reply.text()}")
                    status = (await reply.json())["status"]
                if status in TERMINAL:
                    return bool(status == "completed")

        probe.start()
        began = time.perf_counter()
        try:
            async with asyncio.timeout(RUN_LIMIT):
                done = await asyncio.gather(*(one(i) for i in range(spec.jobs)))
        finally:
            seconds = time.perf_counter() - began
            await probe.stop()
    completed = sum(done)
    return {
        "kind": spec.kind,
        "jobs": len(done),
        "completed": completed,
        "failed": len(done) - completed,
        "seconds": seconds,
        "rss_start_mb": rss_start,
        **probe.summary(),
    }


def job_body(index: int) -> dict[str, Any]:
    """The create body of job `index` (the job dict less its id)."""
    body = job_dict(index)
    del body["id"]
    return body


def _client_process(conn: Connection, spec: Spec) -> None:
    try:
        runner = run_ours if spec.kind == "ours" else run_baseline
        result = asyncio.run(runner(spec))
        result["peak_rss_mb"] = peak_rss_mb()
        conn.send({"result": result})
    except BaseException:
        conn.send({"error": traceback.format_exc()})
        raise
    finally:
        conn.close()


# -- orchestration (the parent process) -----------------------------------------


def run_isolated(
    ctx: multiprocessing.context.SpawnContext,
    kind: Kind,
    *,
    seed: int,
    scale: float,
    jobs: int,
    concurrency: int,
    budget: float,
    max_active: int = MAX_ACTIVE,
    batch_endpoint: bool = False,
    jsonl: str | None = None,
) -> Run:
    """One contender: a fresh mock process, a client process, counters from both."""
    options = {
        "time_scale": scale,
        "seed": seed,
        "keep_requests": 0,
        "batch_endpoint": batch_endpoint,
        "credits": 1e12,
    }
    mock = MockProcess(ctx, _mock_process, options)
    try:
        spec = Spec(
            kind=kind,
            url=mock.url,
            api_key=mock.api_key,
            jobs=jobs,
            concurrency=concurrency,
            scale=scale,
            budget=budget,
            max_active=max_active,
            batch_endpoint=batch_endpoint,
            jsonl=jsonl,
        )
        conn, child = ctx.Pipe()
        process = ctx.Process(target=_client_process, args=(child, spec), name=kind)
        process.start()
        child.close()
        try:
            reply = receive(conn, RUN_LIMIT + 60.0, f"{kind} run")
        finally:
            process.join(30.0)
            if process.is_alive():
                process.terminate()
        result = dict(reply["result"])
        result["checkpoints"] = tuple(tuple(c) for c in result.get("checkpoints", ()))
        client = ClientResult(**result)
        return Run(client=client, mock=mock_result(mock))
    finally:
        mock.close()


def write_job_file(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        for index in range(count):
            out.write(json.dumps(job_dict(index), separators=(",", ":")))
            out.write("\n")


# -- reporting ------------------------------------------------------------------


def print_throughput(runs: Sequence[Run]) -> None:
    print(
        "\n| contender | jobs | seconds | jobs/s | total requests | requests/job |"
        " peak RSS MB (start) | loop lag p50 / p99 / max ms |"
    )
    print(
        "|-----------|-----:|--------:|-------:|---------------:|-------------:|"
        "--------------------:|----------------------------:|"
    )
    for run in runs:
        c = run.client
        print(
            f"| {c.kind:<9} | {c.jobs:,} | {c.seconds:.1f} | {c.jobs_per_second:.0f} |"
            f" {run.mock.total:,} | {run.requests_per_job:.2f} |"
            f" {c.peak_rss_mb:.0f} ({c.rss_start_mb:.0f}) |"
            f" {c.lag_p50_ms:.1f} / {c.lag_p99_ms:.1f} / {c.lag_max_ms:.0f} |"
        )
    for run in runs:
        c, m = run.client, run.mock
        detail = ", ".join(f"{route} {count:,}" for route, count in sorted(m.requests.items()))
        print(
            f"  {c.kind}: {c.completed} completed, {c.failed} failed;"
            f" {m.tasks_created:,} tasks created; mock saw {detail}"
        )


@dataclass(frozen=True)
class FlatPlan:
    """Part 2: job counts, time scale and `max_active` of the memory runs."""

    sizes: tuple[int, ...]
    scale: float
    max_active: int

    @property
    def budget(self) -> float:
        return DEFAULT_BUDGET / self.scale


def print_flatness(plan: FlatPlan, runs: Sequence[Run]) -> None:
    print(
        "\n| N jobs | peak RSS MB (start) | jobs/s | seconds | requests/job |"
        " most in flight | most read, not finished |"
    )
    print(
        "|-------:|--------------------:|-------:|--------:|-------------:|"
        "---------------:|------------------------:|"
    )
    for size, run in zip(plan.sizes, runs, strict=True):
        c = run.client
        print(
            f"| {size:,} | {c.peak_rss_mb:.0f} ({c.rss_start_mb:.0f}) | {c.jobs_per_second:.0f} |"
            f" {c.seconds:.1f} | {run.requests_per_job:.2f} | {c.max_pending:,} |"
            f" {c.max_read_ahead:,} |"
        )
    last = runs[-1].client
    marks = ", ".join(f"{done:,}: {mb:.0f}" for done, mb in last.checkpoints)
    print(f"\npeak RSS MB so far, by jobs finished, in the {plan.sizes[-1]:,}-job run: {marks}")


def plateau(client: ClientResult) -> tuple[float, int, float, int, float]:
    """Peak RSS at half and at the end of a run: (bytes per job between, ...)."""
    marks = client.checkpoints
    half_done, half_mb = min(marks, key=lambda m: abs(m[0] - client.jobs / 2))
    end_done, end_mb = marks[-1]
    per_job = (end_mb - half_mb) * 1024 * 1024 / max(1, end_done - half_done)
    return per_job, half_done, half_mb, end_done, end_mb


@dataclass(frozen=True)
class Check:
    ok: bool
    text: str


def throughput_checks(ours: Run, baseline: Run) -> list[Check]:
    o, b = ours.client, baseline.client
    ratio = o.jobs_per_second / b.jobs_per_second
    fewer = baseline.mock.total / ours.mock.total
    return [
        Check(
            ratio >= 0.9,
            f"throughput: ours {o.jobs_per_second:.0f} jobs/s >= 0.9 x baseline"
            f" {b.jobs_per_second:.0f} ({ratio:.2f}x)",
        ),
        Check(
            fewer >= 3.0,
            f"requests: ours {ours.mock.total:,} vs baseline {baseline.mock.total:,}:"
            f" {fewer:.1f}x fewer (>= 3x)",
        ),
        Check(o.peak_rss_mb < 200.0, f"peak RSS: ours {o.peak_rss_mb:.0f} MB < 200 MB"),
        Check(o.lag_p99_ms < 100.0, f"loop lag p99: ours {o.lag_p99_ms:.1f} ms < 100 ms"),
        Check(
            o.failed == 0 and b.failed == 0 and o.jobs == b.jobs,
            f"outcomes: ours {o.completed}/{o.jobs} completed, baseline {b.completed}/{b.jobs}",
        ),
    ]


def memory_checks(plan: FlatPlan, flat: Sequence[Run], concurrency: int) -> list[Check]:
    first, last = flat[0].client, flat[-1].client
    across = (last.peak_rss_mb - first.peak_rss_mb) * 1024 * 1024
    across /= max(1, plan.sizes[-1] - plan.sizes[0])
    per_job, half_done, half_mb, end_done, end_mb = plateau(last)
    bound = max(r.client.max_read_ahead for r in flat)
    limit = plan.max_active + concurrency
    return [
        Check(
            per_job < FLAT_BYTES_PER_JOB,
            f"memory flat: in the {plan.sizes[-1]:,}-job run peak RSS {half_mb:.1f} MB after"
            f" {half_done:,} jobs, {end_mb:.1f} MB after {end_done:,}: {per_job:.1f} bytes per"
            f" job (< {FLAT_BYTES_PER_JOB:g}); across runs {first.peak_rss_mb:.0f} MB at"
            f" {plan.sizes[0]:,} -> {last.peak_rss_mb:.0f} MB at {plan.sizes[-1]:,},"
            f" {across:.0f} bytes per extra job",
        ),
        Check(
            bound <= limit,
            f"lazy reading: at most {bound:,} jobs read and not finished"
            f" (<= max_active + concurrency = {limit:,})",
        ),
        Check(
            all(
                r.client.failed == 0 and r.client.jobs == n
                for r, n in zip(flat, plan.sizes, strict=True)
            ),
            "memory runs: every job completed",
        ),
    ]


def summary(
    runs: Sequence[Run],
    flat: Sequence[Run],
    limited: Sequence[_rate_limited.Outcome],
    checks: Sequence[Check],
    *,
    smoke: bool,
) -> str:
    parts: list[str] = []
    if runs:
        ours, baseline = runs
        o, b = ours.client, baseline.client
        parts.append(
            f"{o.jobs} jobs: ours {o.jobs_per_second:.0f} jobs/s vs baseline"
            f" {b.jobs_per_second:.0f} ({o.jobs_per_second / b.jobs_per_second:.2f}x),"
            f" {ours.requests_per_job:.2f} vs {baseline.requests_per_job:.2f} requests/job"
            f" ({baseline.mock.total / ours.mock.total:.1f}x fewer), peak RSS"
            f" {o.peak_rss_mb:.0f} vs {b.peak_rss_mb:.0f} MB, lag p99 {o.lag_p99_ms:.1f} vs"
            f" {b.lag_p99_ms:.1f} ms"
        )
    if flat:
        by_n = ", ".join(f"{r.client.jobs:,}: {r.client.peak_rss_mb:.0f} MB" for r in flat)
        parts.append(f"peak RSS by N {by_n} ({plateau(flat[-1].client)[0]:.0f} B/job at the end)")
    for mine, fixed in zip(limited[::2], limited[1::2], strict=True):
        parts.append(
            f"rate-limited {mine.kind} x{mine.processes}: polls {mine.polls_share_mean:.0%}"
            f" of the read limit, 429s {mine.refused_share:.2%}, p95 {mine.latency_p95:.1f} %"
            f" vs fixed {fixed.latency_p95:.1f} %"
        )
    passed = sum(c.ok for c in checks)
    verdict = "PASS" if passed == len(checks) else "FAIL"
    if smoke:
        verdict += " (smoke size: figures not for reading)"
    return f"summary: {'; '.join(parts)}; targets {passed}/{len(checks)} {verdict}"


# -- main -----------------------------------------------------------------------


def main(args: argparse.Namespace) -> None:
    ctx = multiprocessing.get_context("spawn")
    budget = args.budget if args.budget is not None else DEFAULT_BUDGET / args.scale
    print(
        f"# batch throughput: {args.jobs} jobs, concurrency {args.concurrency}, seed {args.seed},"
        f" time scale {args.scale:g}, ours' poll budget {budget:g}/s"
    )
    print(
        f"# python {platform.python_version()} on {platform.machine()},"
        f" {os.cpu_count()} CPUs; mock and client in separate processes"
    )
    began = time.perf_counter()
    checks: list[Check] = []
    runs: list[Run] = []
    if args.only in (None, "throughput"):
        kinds: tuple[Kind, ...] = ("ours", "baseline")
        for kind in kinds:
            runs.append(
                run_isolated(
                    ctx,
                    kind,
                    seed=args.seed,
                    scale=args.scale,
                    jobs=args.jobs,
                    concurrency=args.concurrency,
                    budget=budget,
                )
            )
            print(f"  ({kind} done after {time.perf_counter() - began:.0f} s)", flush=True)
        print(f"\n## 1. {args.jobs} jobs, concurrency {args.concurrency}")
        print_throughput(runs)
        checks += throughput_checks(runs[0], runs[1])

    flat: list[Run] = []
    if args.only in (None, "memory"):
        if args.smoke:
            plan = FlatPlan(SMOKE_FLAT_SIZES, SMOKE_FLAT_SCALE, SMOKE_MAX_ACTIVE)
        else:
            sizes = MILLION_SIZES if args.million else FLAT_SIZES
            plan = FlatPlan(sizes, args.flat_scale, MAX_ACTIVE)
        with tempfile.TemporaryDirectory(prefix="batch-throughput-") as tmp:
            path = Path(tmp) / "jobs.jsonl"
            write_job_file(path, max(plan.sizes))
            for size in plan.sizes:
                flat.append(
                    run_isolated(
                        ctx,
                        "ours",
                        seed=args.seed,
                        scale=plan.scale,
                        jobs=size,
                        concurrency=args.concurrency,
                        budget=plan.budget,
                        max_active=plan.max_active,
                        batch_endpoint=True,
                        jsonl=str(path),
                    )
                )
                print(
                    f"  ({size:,} jobs done after {time.perf_counter() - began:.0f} s)", flush=True
                )
        print(
            f"\n## 2. memory: ours, jobs read lazily from a {max(plan.sizes):,}-line file,"
            f" max_active {plan.max_active:,}, time scale {plan.scale:g}, batch endpoint on,"
            f" budget {plan.budget:g}/s"
        )
        print_flatness(plan, flat)
        checks += memory_checks(plan, flat, args.concurrency)

    limited: list[_rate_limited.Outcome] = []
    if args.only in (None, "rate"):
        rate_plan = _rate_limited.Plan(jobs=args.rate_jobs, scale=args.rate_scale)
        if args.smoke:
            rate_plan = _rate_limited.Plan(
                jobs=60, scale=0.05, creates_per_second=2.0, reads_per_second=10.0
            )
        limited = _rate_limited.run_all(
            ctx,
            rate_plan,
            seed=args.seed,
            processes_each=(1,) if args.smoke else (1, 2),
            shared=None if args.smoke else os.environ.get("EVOLINK_TEST_PG"),
            log=lambda text: print(text, flush=True),
        )
        _rate_limited.print_table(rate_plan, limited)
        checks += [Check(ok, text) for ok, text in _rate_limited.checks(rate_plan, limited)]

    print(f"\n(ran in {time.perf_counter() - began:.0f} s)\n\n## targets")
    for check in checks:
        print(f"{'PASS' if check.ok else 'FAIL'}  {check.text}")
    print(summary(runs, flat, limited, checks, smoke=args.smoke))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs per contender (10,000)")
    parser.add_argument("--concurrency", type=int, default=64, help="creates in flight (64)")
    parser.add_argument("--seed", type=int, default=1, help="mock seed (1)")
    parser.add_argument("--scale", type=float, default=SCALE, help=f"time scale ({SCALE:g})")
    parser.add_argument(
        "--budget", type=float, default=None, help="ours' polls/s (default 20 / scale)"
    )
    parser.add_argument(
        "--flat-scale", type=float, default=FLAT_SCALE, help=f"part 2 time scale ({FLAT_SCALE:g})"
    )
    parser.add_argument("--million", action="store_true", help="part 2 up to 1,000,000 jobs")
    parser.add_argument(
        "--only", choices=("throughput", "memory", "rate"), help="run part 1, 2 or 3 only"
    )
    parser.add_argument(
        "--rate-jobs", type=int, default=_rate_limited.JOBS, help="part 3 jobs (2,000)"
    )
    parser.add_argument(
        "--rate-scale",
        type=float,
        default=_rate_limited.SCALE,
        help=f"part 3 time scale ({_rate_limited.SCALE:g})",
    )
    parser.add_argument("--smoke", action="store_true", help="500 jobs, part 2 at 500/2,500")
    args = parser.parse_args(argv)
    if args.smoke:
        args.jobs = min(args.jobs, 500)
    if args.jobs < 1 or args.concurrency < 1 or not args.scale > 0 or not args.flat_scale > 0:
        parser.error("--jobs and --concurrency must be >= 1, scales > 0")
    return args


if __name__ == "__main__":
    main(parse_args(sys.argv[1:]))
