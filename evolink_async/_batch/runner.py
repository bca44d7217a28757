"""
The batch runner: many jobs, one client, nothing lost, nothing paid twice.

    run = client.batch(jobs, concurrency=8, journal="jobs.journal", download_dir="out/")
    async for outcome in run:          # in completion order
        ...

How a run flows:

- Jobs are read lazily, one at a time, only when there is room: at most
  `concurrency` creates in flight, at most `max_active` tasks created and not
  yet finished. A million-line job file never sits in memory.
- Each job is first *claimed* in the journal (an SQLite file; an ephemeral
  one when no journal is asked for), which refuses a job id seen twice in a
  run and says what earlier runs already did with it.
- Before a create is sent, the job's Idempotency-Key is journalled; when the
  task id comes back, it is journalled too. A re-run therefore re-sends the
  create with the same key (the server replays it: no second task) or
  re-attaches to the task.
- Every created task is handed to the client's shared watcher as a listener,
  not a coroutine of its own.
- The run is built from the client's parts (endpoints, uploads, downloader,
  watcher), never from the client itself: a create tells the run whether it
  met a 429, and the run hands the watcher the time it sent the create.
- Creates are paced at the rate the server allows (`limiter.CreatePacer`):
  a 429 on a create sets the rate just under what the server was measured
  to let through, and it probes upward now and then; the client's HTTP
  layer holds every create until a 429's Retry-After has passed.
- A 402 (no credits) stops creating at once; tasks already created are still
  watched to the end.
- Finished tasks are downloaded (bounded concurrency, atomic files, expired
  URLs refreshed), their outcome journalled, then handed to the consumer.
- The journal keeps what the watcher learned of each model (`learned.py`):
  a resumed run starts calibrated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import anyio
import anyio.abc
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .. import _models
from .._api.downloads import Downloader, safe_filename
from .._api.endpoints import Endpoints
from .._api.pacing import CREATE
from .._api.uploads import Uploads
from .._errors import (
    APIError,
    ClientClosedError,
    EvoLinkError,
    InsufficientCreditsError,
    NotSubmittedError,
    TaskCancelledError,
    TaskFailedError,
    ValidationError,
)
from .._numbers import is_whole
from .._values import Task
from .._watch.watcher import WatchEntry, Watcher
from .jobs import (
    BatchStats,
    Job,
    JobOutcome,
    JobSource,
    fingerprint,
    iterate_jobs,
    job_stand_in,
    read_job,
)
from .keys import check_run_id, derive_key
from .learned import Learned
from .limiter import CreatePacer, CreateSlots
from .resume import is_final, journal_record, resumed_outcome, worth_resending
from .shared_budget import Budget
from .store import (
    DEFAULT_LEASE,
    JobJournal,
    check_lease,
    is_database_url,
    journal_name,
    make_journal,
    open_journal,
)

__all__ = ["DEFAULT_MAX_ACTIVE", "BatchRun"]

logger = logging.getLogger("evolink_async")

#: Tasks created and not yet finished, at most, by default: enough to keep a
#: provider busy, few enough that a million-job run stays within memory.
DEFAULT_MAX_ACTIVE: Final = 10_000
#: Outcomes waiting for the consumer before the run holds back.
_OUTCOME_BUFFER: Final = 256


@attrs.define(eq=False)
class _Active:
    """A job whose task is being watched."""

    job: Job
    index: int
    key: str
    entry: WatchEntry | None = None
    callback: Callable[[WatchEntry], None] | None = None


class BatchRun:
    """
    A batch of jobs run on one client; made by `EvoLinkClient.batch`.

    Iterate it (`async for outcome in run`) for outcomes in completion order,
    or `await run.results()` for all of them in input order (held in memory:
    for very large runs, iterate). It starts on first use. `run.stats`
    counts as it goes; `run.stop()` stops reading new jobs (created tasks are
    not waited for: re-run with the same journal to pick them up).

    Leaving the `async for` loop early (`break`, an exception in its body)
    stops the run as `stop()` does: no new create is sent, creates already on
    their way finish and are journalled, and their tasks go on on the server
    (a re-run with the same journal picks them up). Python notices the loop
    is left when it drops the loop's iterator, at once in CPython; to be
    explicit, or when keeping the iterator, use `async with run:` (which
    cancels the run on exit) or `contextlib.aclosing(aiter(run))`.
    """

    def __init__(
        self,
        jobs: JobSource,
        *,
        endpoints: Endpoints,
        uploads: Uploads,
        downloader: Downloader,
        watcher: Watcher,
        concurrency: int,
        journal: str | Path | None,
        download_dir: str | Path | None,
        max_active: int = DEFAULT_MAX_ACTIVE,
        run_id: str | None = None,
        lease: float = DEFAULT_LEASE,
        budget: Budget | None = None,
    ) -> None:
        if run_id is not None:
            check_run_id(run_id)
        self._lease = check_lease(lease)
        if is_database_url(journal) and run_id is None:
            make_journal(str(journal), run_id=None)  # raises: the run id is required
        if budget is not None and not isinstance(budget, Budget):
            raise ValidationError(f"budget={budget!r}: must be a SharedBudget or None")
        if not is_whole(concurrency) or concurrency < 1:
            raise ValidationError(f"concurrency={concurrency!r}: must be a whole number >= 1")
        if not is_whole(max_active) or max_active < 1:
            raise ValidationError(f"max_active={max_active!r}: must be a whole number >= 1")
        self._endpoints = endpoints
        self._uploads = uploads
        self._downloader = downloader
        self._watcher = watcher
        self._jobs = jobs
        self._journal_name = journal_name(journal)
        #: Jobs another live process held when claimed: re-checked until done.
        self._held: list[tuple[Job, int]] = []
        self._download_dir = Path(download_dir) if download_dir is not None else None
        self._limiter = CreateSlots(concurrency)
        # Creates per second, paced in the client's transport (retries too),
        # shared by every run of the client: one key, one create rate.
        pacer = endpoints.transport.pace(CREATE, CreatePacer())
        assert isinstance(pacer, CreatePacer)
        self._pacer = pacer
        self._max_active = max_active
        self._budget = budget
        #: Names the run in every derived Idempotency-Key; the journal's
        #: own when none is given (see `_open_journal`).
        self.run_id = run_id
        self.stats = BatchStats(concurrency=concurrency)
        self._runner: asyncio.Task[None] | None = None
        self._send: MemoryObjectSendStream[JobOutcome] | None = None
        self._receive: MemoryObjectReceiveStream[JobOutcome] | None = None
        self._stop_reading = False
        self._stopping = False
        self._active: dict[str, _Active] = {}
        self._active_changed = asyncio.Event()
        self._finished: deque[_Active] = deque()
        self._finished_ready = asyncio.Event()
        self._iterated = False
        self._collecting = False
        self._journal: JobJournal | None = None
        self._learned: Learned | None = None
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._error: BaseException | None = None
        self._abandoned = False

    # -- consumer side -----------------------------------------------------

    def __aiter__(self) -> AsyncIterator[JobOutcome]:
        return self._outcomes()

    async def _outcomes(self) -> AsyncIterator[JobOutcome]:
        """
        The outcomes for `async for`, as a generator, so that leaving the loop
        (`break`, an exception in its body) is seen: Python closes the
        generator as soon as the loop drops it, and the run then stops.
        """
        if self._collecting:
            raise RuntimeError("results() is already consuming this run")
        self._iterated = True
        finished = False
        try:
            while True:
                try:
                    outcome = await self._next()
                except StopAsyncIteration:
                    finished = True
                    return
                yield outcome
        finally:
            if not finished:
                self._leave()

    def _leave(self) -> None:
        """The consumer left: create nothing more; let creates in flight finish."""
        runner = self._runner
        if runner is None or runner.done():
            return
        self._abandoned = True
        self.stop("the loop over the run was left")
        if self._receive is not None:
            # Nobody reads outcomes now: sends are dropped (they are journalled).
            self._receive.close()

    async def __anext__(self) -> JobOutcome:
        if self._collecting:
            raise RuntimeError("results() is already consuming this run")
        self._iterated = True
        return await self._next()

    async def _next(self) -> JobOutcome:
        receive = self._start()
        try:
            return await receive.receive()
        except anyio.EndOfStream:
            receive.close()
            await self._join()
            raise StopAsyncIteration from None
        except BaseException:
            await self.aclose()
            raise

    async def results(self) -> list[JobOutcome]:
        """
        Run to the end; every outcome in input order.

        Raises:
            RuntimeError: the run was already iterated.
        """
        if self._iterated:
            raise RuntimeError("this run was iterated with `async for`; its outcomes are gone")
        self._collecting = True
        outcomes: list[JobOutcome] = []
        while True:
            try:
                outcomes.append(await self._next())
            except StopAsyncIteration:
                break
        outcomes.sort(key=lambda outcome: outcome.index)
        return outcomes

    def stop(self, reason: str = "stopped") -> None:
        """
        Stop reading new jobs; end the run once creates in flight are journalled.

        Tasks already created keep running on the server; the journal has
        their ids, so a re-run with the same journal picks them up.
        """
        self._stop_reading = True
        self._stopping = True
        if self.stats.stopped_reason is None:
            self.stats.stopped_reason = reason
        self._active_changed.set()
        self._finished_ready.set()
        self._limiter.wake()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel the run if it is still going, and release what it holds."""
        runner = self._runner
        if runner is not None and not runner.done():
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        if self._receive is not None:
            self._receive.close()

    def _start(self) -> MemoryObjectReceiveStream[JobOutcome]:
        if self._receive is None:
            self._send, self._receive = anyio.create_memory_object_stream[JobOutcome](
                _OUTCOME_BUFFER
            )
            self._runner = asyncio.get_running_loop().create_task(
                self._run(), name="evolink-async batch"
            )
        return self._receive

    async def _join(self) -> None:
        runner = self._runner
        if runner is not None:
            await runner
        if self._error is not None:
            raise self._error

    # -- the run -----------------------------------------------------------

    async def _run(self) -> None:
        assert self._send is not None
        send = self._send
        try:
            # A run that fails before its task group still ends the stream,
            # so the consumer sees the error instead of waiting forever.
            self._journal = await self._open_journal()
            self._learned = Learned(self._journal, self._watcher.learning.calibrator)
            await self._learned.restore()  # a resumed run starts calibrated
            sent = self._watcher.polls_sent  # the report's polls over time: this run's
            self._journal.count_polls(lambda: self._watcher.polls_sent - sent)
            if self._budget is not None:
                self._watcher.poll_gates.append(self._budget)
                self._pacer.gates.append(self._budget)  # told of create 429s
            async with send, anyio.create_task_group() as group:
                group.start_soon(self._finisher, group, send)
                await self._produce(group, send)
                # Reading is over: wait for the active tasks, then let the
                # finisher drain and stop.
                while (self._active or self._limiter.in_use) and not self._stopping:
                    self._active_changed.clear()
                    await self._active_changed.wait()
                self._stopping = True
                self._finished_ready.set()
        except Exception as exc:
            # The task group wraps the one error that ended the run (a
            # JournalError, say); the consumer gets that error itself.
            error = _sole_error(exc)
            self._error = error
            if not self._abandoned:
                if error is exc:
                    raise
                # Its own cause kept; the group it came in is no news.
                raise error from error.__cause__
            logger.warning("batch run left by its consumer ended with an error: %r", error)
        finally:
            send.close()
            self.stats.finished_at = time.monotonic()
            watcher = self._watcher
            if self._budget is not None and self._budget in watcher.poll_gates:
                watcher.poll_gates.remove(self._budget)
                self._pacer.gates.remove(self._budget)
            for active in list(self._active.values()):
                if active.entry is not None:
                    watcher.unwatch(active.entry, self._listener(active))
            self._active.clear()
            if self._journal is not None:
                with anyio.CancelScope(shield=True):
                    if self._learned is not None:
                        await self._learned.save()
                    await self._journal.close()
            if self._tempdir is not None:
                self._tempdir.cleanup()

    async def _open_journal(self) -> JobJournal:
        journal, self.run_id, self._tempdir = await open_journal(
            self._journal_name, run_id=self.run_id, lease=self._lease
        )
        if self._download_dir is not None:
            await anyio.Path(self._download_dir).mkdir(parents=True, exist_ok=True)
        return journal

    async def _produce(
        self, group: anyio.abc.TaskGroup, send: MemoryObjectSendStream[JobOutcome]
    ) -> None:
        index = 0
        async for item in iterate_jobs(self._jobs):
            if self._reading_stopped():
                break
            while len(self._active) + self._limiter.in_use >= self._max_active:
                self._active_changed.clear()
                await self._active_changed.wait()
                if self._reading_stopped():
                    return
            if not await self._limiter.acquire(self._reading_stopped):
                break
            if self._reading_stopped():
                self._limiter.release()
                break
            self.stats.read += 1
            group.start_soon(self._start_job, item, index, send)
            index += 1
        await self._take_over(group, send)

    async def _take_over(
        self, group: anyio.abc.TaskGroup, send: MemoryObjectSendStream[JobOutcome]
    ) -> None:
        """
        Stay while other processes hold jobs of this run: re-check them every
        few seconds, and take over those whose owner's lease lapsed.
        """
        pause = min(max(self._lease / 6, 0.05), 5.0)
        while not self._reading_stopped():
            if not self._held:
                if not self._limiter.in_use:
                    return
                # A claim still under way may yet find its job held.
                self._active_changed.clear()
                await self._active_changed.wait()
                continue
            await anyio.sleep(pause)
            held, self._held = self._held, []
            for position, (job, index) in enumerate(held):
                if self._reading_stopped() or not await self._limiter.acquire(
                    self._reading_stopped
                ):
                    self._held.extend(held[position:])
                    break
                group.start_soon(self._start_job, job, index, send, True)

    def _reading_stopped(self) -> bool:
        return self._stop_reading

    async def _start_job(
        self,
        item: Job | Mapping[str, Any],
        index: int,
        send: MemoryObjectSendStream[JobOutcome],
        again: bool = False,
    ) -> None:
        self.stats.creating += 1
        try:
            outcome = await self._submit(item, index, again)
        finally:
            self.stats.creating -= 1
            self._limiter.release()
            self._active_changed.set()
        if outcome is not None:
            if outcome.resumed:
                self.stats.resumed += 1
            else:
                self.stats.errors += 1
            await _deliver(send, outcome)

    async def _submit(
        self, item: Job | Mapping[str, Any], index: int, again: bool = False
    ) -> JobOutcome | None:
        """Create (or re-attach) the job's task; an outcome when it ends here."""
        assert self._journal is not None
        journal = self._journal
        try:
            job = read_job(item)
        except ValidationError as exc:
            return JobOutcome(job=job_stand_in(item), error=exc, index=index)
        except Exception as exc:  # a hostile item (a raising mapping) fails alone
            error = ValidationError(f"unreadable job ({type(exc).__name__})")
            return JobOutcome(job=job_stand_in(item), error=error, index=index)
        try:
            body = _models.request_body(job.request, paths=True)
            job_print = fingerprint(body)
        except Exception as exc:  # a value JSON cannot hold fails this job alone
            error = exc if isinstance(exc, ValidationError) else ValidationError(str(exc))
            return JobOutcome(job=job, error=error, index=index)
        job_id = job.id or f"job-{job_print[:16]}"
        job = attrs.evolve(job, id=job_id)
        claim = await journal.claim(job_id, job_print, again=again)
        first, entry = claim.first, claim.entry
        if claim.held:
            self._held.append((job, index))
            return None
        if claim.elsewhere:  # another process of this run finished it: its outcome
            return None
        if not first:
            error = ValidationError(
                f"job id {job_id!r} appears twice in this run; ids must be unique"
            )
            return JobOutcome(job=job, error=error, index=index)
        if entry is not None and entry.fingerprint != job_print:
            error = ValidationError(
                f"job {job_id!r} differs from the job the journal recorded under that id; "
                "give it a new id (or use a new journal)"
            )
            return JobOutcome(job=job, error=error, index=index)
        if entry is not None and entry.outcome is not None:
            return await resumed_outcome(
                job,
                index,
                entry,
                journal=journal,
                endpoints=self._endpoints,
                download=self._download if self._download_dir is not None else None,
            )
        if entry is not None and entry.task_id is not None:
            return self._watch(job, index, entry.idempotency_key, entry.task_id, None, None)
        if self._stop_reading:
            return JobOutcome(job=job, error=_not_submitted(self.stats.stopped_reason), index=index)
        try:
            request, uploads = await self._uploads.resolve(
                job.request, entry.uploads if entry is not None else None
            )
            payload = json.dumps(_models.request_body(request), separators=(",", ":")).encode()
        except EvoLinkError as exc:
            return JobOutcome(job=job, error=exc, index=index)
        assert self.run_id is not None
        # A key recorded earlier wins: journals from before derived keys
        # hold random ones, and their tasks were created under those.
        key = (
            entry.idempotency_key
            if entry is not None
            else derive_key(self.run_id, job_id, job_print)
        )
        if entry is None:
            await journal.begin(job_id, key, job_print, uploads or None)
        if self._budget is not None:
            await self._budget.take_create()
        started = asyncio.get_running_loop().time()
        try:
            created = await self._endpoints.create_task(payload, idempotency_key=key)
        except InsufficientCreditsError as exc:
            self._stop_reading = True
            self.stats.stopped_reason = "insufficient credits (HTTP 402): top up, then re-run"
            logger.warning("no credits left: the batch stops creating tasks")
            return JobOutcome(job=job, error=exc, index=index)
        except EvoLinkError as exc:
            if not worth_resending(exc):
                await journal.finished(job_id, journal_record(None, exc, None))
            return JobOutcome(job=job, error=exc, index=index)
        task = created.task
        await journal.created(job_id, task.id)
        return self._watch(job, index, key, task.id, task, started)

    def _watch(
        self,
        job: Job,
        index: int,
        key: str,
        task_id: str,
        task: Task | None,
        started_at: float | None,
    ) -> JobOutcome | None:
        """Hand the task to the watcher; an outcome only if that is impossible."""
        assert job.id is not None
        active = _Active(job=job, index=index, key=key)
        self._active[job.id] = active
        try:
            active.entry = self._watcher.watch(
                task_id, initial=task, started_at=started_at, listener=self._listener(active)
            )
        except ClientClosedError as exc:
            # The task id is journalled: a re-run re-attaches to it.
            del self._active[job.id]
            return JobOutcome(job=job, task=task, error=exc, index=index)
        self.stats.submitted += 1
        if task is not None and task.usage is not None and task.usage.credits_reserved:
            self.stats.credits_reserved += task.usage.credits_reserved
        return None

    def _listener(self, active: _Active) -> Callable[[WatchEntry], None]:
        if active.callback is None:

            def on_change(entry: WatchEntry) -> None:
                if entry.done:
                    self._finished.append(active)
                    self._finished_ready.set()

            active.callback = on_change
        return active.callback

    async def _finisher(
        self, group: anyio.abc.TaskGroup, send: MemoryObjectSendStream[JobOutcome]
    ) -> None:
        limiter = anyio.CapacityLimiter(max(4, self._limiter.ceiling))
        while True:
            while self._finished:
                active = self._finished.popleft()
                await limiter.acquire_on_behalf_of(active)
                group.start_soon(self._finish, active, send, limiter)
            if self._stopping and not self._finished:
                return
            self._finished_ready.clear()
            await self._finished_ready.wait()

    async def _finish(
        self,
        active: _Active,
        send: MemoryObjectSendStream[JobOutcome],
        limiter: anyio.CapacityLimiter,
    ) -> None:
        try:
            assert active.entry is not None
            assert active.job.id is not None
            error: EvoLinkError | None = None
            task = active.entry.latest
            try:
                task = active.entry.outcome()
            except EvoLinkError as exc:
                error = exc
            path = None
            if error is None and task is not None and self._download_dir is not None:
                try:
                    path = await self._download(active.job, task)
                except EvoLinkError as exc:
                    error = exc
            self._count(task, error)
            assert self._journal is not None
            if is_final(error):
                record = journal_record(task, error, path)
                await self._journal.finished(active.job.id, record, polls=active.entry.state.polls)
                assert self._learned is not None
                await self._learned.save(unless_recent=True)
            self._active.pop(active.job.id, None)
            self._active_changed.set()
            await _deliver(
                send,
                JobOutcome(job=active.job, task=task, error=error, path=path, index=active.index),
            )
        finally:
            limiter.release_on_behalf_of(active)

    def _count(self, task: Task | None, error: EvoLinkError | None) -> None:
        stats = self.stats
        if isinstance(error, TaskFailedError):
            stats.failed += 1
        elif isinstance(error, TaskCancelledError):
            stats.cancelled += 1
        elif error is None and task is not None:
            stats.completed += 1
        else:
            stats.failed += 1
        if task is not None and task.usage is not None and task.usage.credits_used:
            stats.credits_used += task.usage.credits_used

    async def _download(self, job: Job, task: Task) -> Path:
        assert self._download_dir is not None
        assert job.id is not None
        dest = self._download_dir / safe_filename(job.id, suffix=".mp4")
        # A run killed mid-download leaves its temporary file behind, and so
        # does one killed between publishing the video and removing it: clean
        # up first, even when the video is already there.
        async for stale in anyio.Path(self._download_dir).glob(f".{dest.name}.*.part"):
            with contextlib.suppress(OSError):
                await stale.unlink()
        if await anyio.Path(dest).exists():
            self.stats.downloaded += 1
            return dest
        url = task.video_url
        if url is None:
            raise APIError("completed task has no result URL", status=0)
        path = await self._downloader.download(task.id, url, dest, overwrite=False)
        self.stats.downloaded += 1
        return path


async def _deliver(send: MemoryObjectSendStream[JobOutcome], outcome: JobOutcome) -> None:
    """Hand an outcome to the consumer; dropped when the consumer has left."""
    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
        await send.send(outcome)


def _sole_error(error: Exception) -> Exception:
    """The one exception inside (nested) groups of one, else `error` itself."""
    while isinstance(error, ExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


def _not_submitted(reason: str | None) -> NotSubmittedError:
    return NotSubmittedError(f"not submitted: {reason or 'the run was stopped'}")
