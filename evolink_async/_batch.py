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
- A 429 on a create halves the number of creates in flight; each create that
  goes through without one wins a little back (additive increase,
  multiplicative decrease). The client's HTTP layer also honours Retry-After.
- A 402 (no credits) stops creating at once; tasks already created are still
  watched to the end.
- Finished tasks are downloaded (bounded concurrency, atomic files, expired
  URLs refreshed), their outcome journalled, then handed to the consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

import anyio
import anyio.abc
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from . import _models
from ._download import download_video, safe_filename
from ._errors import (
    APIConnectionError,
    APIError,
    ClientClosedError,
    EvoLinkError,
    InsufficientCreditsError,
    NotFoundError,
    NotSubmittedError,
    RateLimitError,
    ServerError,
    TaskCancelledError,
    TaskFailedError,
    ValidationError,
)
from ._journal import Journal, JournalEntry
from ._results import Task, TaskStatus

if TYPE_CHECKING:
    from ._client import EvoLinkClient
    from ._watch import _Entry

__all__ = ["BatchRun", "BatchStats", "Job", "JobOutcome"]

logger = logging.getLogger("evolink_async")

#: Tasks created and not yet finished, at most, by default: enough to keep a
#: provider busy, few enough that a million-job run stays within memory.
DEFAULT_MAX_ACTIVE: Final = 10_000
#: Outcomes waiting for the consumer before the run holds back.
_OUTCOME_BUFFER: Final = 256
#: Keys of a job dict that are not request fields.
JOB_KEYS: Final = frozenset({"id", "model", "metadata"})


def _freeze(value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    return None if value is None else dict(value)


@attrs.frozen
class Job:
    """
    One unit of work for the batch runner.

    Args:
        request: a request object (`SeedanceImageToVideo(...)`, `RawRequest(...)`).
        id: a name unique within the run, used for the journal, the download
            file name and results; default: derived from the request's content.
        metadata: anything of yours, carried to the outcome untouched.
    """

    request: _models.Request
    id: str | None = None
    metadata: Mapping[str, Any] | None = attrs.field(default=None, converter=_freeze)


@attrs.frozen(kw_only=True)
class JobOutcome:
    """
    How one job ended.

    Attributes:
        job: the job, with its id filled in.
        task: the final task snapshot, or None if no task was created.
        error: what went wrong (`TaskFailedError`, `TaskCancelledError`,
            `ValidationError`, an `APIError`, ...), or None.
        path: the downloaded video, when the run downloads.
        resumed: True when the outcome comes from the journal of an earlier run.
    """

    job: Job
    task: Task | None = None
    error: EvoLinkError | None = None
    path: Path | None = None
    resumed: bool = False
    index: int = attrs.field(default=-1, repr=False)

    @property
    def ok(self) -> bool:
        """True when the task completed (and, if downloading, the file is on disk)."""
        return (
            self.error is None
            and self.task is not None
            and (self.task.status is TaskStatus.COMPLETED)
        )

    @property
    def job_id(self) -> str:
        """The job's id."""
        return self.job.id or ""


@attrs.define(kw_only=True)
class BatchStats:
    """
    Live counts of a run; read `run.stats` at any time.

    `read` counts jobs read; `creating` is creates in flight now;
    `submitted` counts tasks created in this run (re-attached ones included);
    `pending` is tasks created and not finished; `errors` is jobs that ended
    without a task outcome (bad parameters, API refusals); `resumed` is jobs
    whose outcome came from the journal.
    """

    read: int = 0
    creating: int = 0
    submitted: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    errors: int = 0
    resumed: int = 0
    downloaded: int = 0
    credits_reserved: float = 0.0
    credits_used: float = 0.0
    started_at: float = attrs.field(factory=time.monotonic)
    finished_at: float | None = None
    stopped_reason: str | None = None
    concurrency: int = 0

    @property
    def pending(self) -> int:
        """Tasks created and not finished yet."""
        return max(0, self.submitted - self.completed - self.failed - self.cancelled)

    @property
    def finished(self) -> int:
        """Jobs with an outcome."""
        return self.completed + self.failed + self.cancelled + self.errors + self.resumed

    @property
    def elapsed(self) -> float:
        """Seconds since the run started (until it ended)."""
        return (self.finished_at or time.monotonic()) - self.started_at

    @property
    def throughput(self) -> float:
        """Jobs finished per second so far."""
        elapsed = self.elapsed
        return self.finished / elapsed if elapsed > 0 else 0.0


class _Limiter:
    """A concurrency limit that can shrink and grow while in use (AIMD)."""

    def __init__(self, limit: int) -> None:
        self.ceiling = limit
        self.limit = limit
        self.lowest = limit
        self.in_use = 0
        self._successes = 0
        self._changed = asyncio.Event()

    async def acquire(self, stopped: Callable[[], bool]) -> bool:
        """Take a slot; False (and no slot) if `stopped()` turns true first."""
        while self.in_use >= self.limit:
            if stopped():
                return False
            self._changed.clear()
            await self._changed.wait()
        self.in_use += 1
        return True

    def wake(self) -> None:
        self._changed.set()

    def release(self) -> None:
        self.in_use -= 1
        self._changed.set()

    def decrease(self) -> None:
        self.limit = max(1, self.limit // 2)
        self.lowest = min(self.lowest, self.limit)
        self._successes = 0

    def increase(self) -> None:
        if self.limit >= self.ceiling:
            return
        self._successes += 1
        if self._successes >= self.limit:
            self._successes = 0
            self.limit += 1
            self._changed.set()


@attrs.define(eq=False)
class _Active:
    """A job whose task is being watched."""

    job: Job
    index: int
    key: str
    entry: _Entry | None = None
    callback: Callable[[_Entry], None] | None = None


JobSource = Iterable[Job | Mapping[str, Any]] | AsyncIterable[Job | Mapping[str, Any]]


class BatchRun:
    """
    A batch of jobs run on one client; made by `EvoLinkClient.batch`.

    Iterate it (`async for outcome in run`) for outcomes in completion order,
    or `await run.results()` for all of them in input order (held in memory:
    for very large runs, iterate). It starts on first use; `async with run:`
    makes sure it is stopped and cleaned up if you leave early. `run.stats`
    counts as it goes; `run.stop()` stops reading new jobs (created tasks are
    not waited for: re-run with the same journal to pick them up).
    """

    def __init__(
        self,
        client: EvoLinkClient,
        jobs: JobSource,
        *,
        concurrency: int | None,
        journal: str | Path | None,
        download_dir: str | Path | None,
        max_active: int = DEFAULT_MAX_ACTIVE,
    ) -> None:
        concurrency = client.max_concurrency if concurrency is None else concurrency
        if not _whole(concurrency) or concurrency < 1:
            raise ValidationError(f"concurrency={concurrency!r}: must be a whole number >= 1")
        if not _whole(max_active) or max_active < 1:
            raise ValidationError(f"max_active={max_active!r}: must be a whole number >= 1")
        self._client = client
        self._jobs = jobs
        self._journal_path = Path(journal) if journal is not None else None
        self._download_dir = Path(download_dir) if download_dir is not None else None
        self._limiter = _Limiter(concurrency)
        self._max_active = max_active
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
        self._downloads = asyncio.Semaphore(max(2, concurrency // 4))
        self._journal: Journal | None = None
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._error: BaseException | None = None

    # -- consumer side -----------------------------------------------------

    def __aiter__(self) -> Self:
        return self

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
            self._error = exc
            raise
        finally:
            send.close()
            self.stats.finished_at = time.monotonic()
            watcher = self._client._watcher
            for active in list(self._active.values()):
                if active.entry is not None:
                    watcher.unwatch(active.entry, self._listener(active))
            self._active.clear()
            if self._journal is not None:
                with anyio.CancelScope(shield=True):
                    await self._journal.close()
            if self._tempdir is not None:
                self._tempdir.cleanup()

    async def _open_journal(self) -> Journal:
        if self._journal_path is not None:
            journal = Journal(self._journal_path, durable=True)
        else:
            self._tempdir = tempfile.TemporaryDirectory(prefix="evolink-batch-")
            journal = Journal(Path(self._tempdir.name) / "ledger.sqlite", durable=False)
        try:
            await journal.open()
        except Exception as exc:
            raise ValidationError(f"journal={self._journal_path}: {exc}") from None
        if self._download_dir is not None:
            await anyio.Path(self._download_dir).mkdir(parents=True, exist_ok=True)
        return journal

    async def _produce(
        self, group: anyio.abc.TaskGroup, send: MemoryObjectSendStream[JobOutcome]
    ) -> None:
        index = 0
        async for item in _iterate(self._jobs):
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

    def _reading_stopped(self) -> bool:
        return self._stop_reading

    async def _start_job(
        self,
        item: Job | Mapping[str, Any],
        index: int,
        send: MemoryObjectSendStream[JobOutcome],
    ) -> None:
        self.stats.creating += 1
        try:
            outcome = await self._submit(item, index)
        finally:
            self.stats.creating -= 1
            self._limiter.release()
            self._active_changed.set()
        if outcome is not None:
            if outcome.resumed:
                self.stats.resumed += 1
            else:
                self.stats.errors += 1
            await send.send(outcome)

    async def _submit(self, item: Job | Mapping[str, Any], index: int) -> JobOutcome | None:
        """Create (or re-attach) the job's task; an outcome when it ends here."""
        assert self._journal is not None
        journal = self._journal
        try:
            job = _as_job(item)
        except ValidationError as exc:
            return JobOutcome(job=_broken_job(item), error=exc, index=index)
        try:
            body = _models.request_body(job.request, paths=True)
        except (ValidationError, TypeError, ValueError) as exc:
            error = exc if isinstance(exc, ValidationError) else ValidationError(str(exc))
            return JobOutcome(job=job, error=error, index=index)
        fingerprint = _fingerprint(body)
        job_id = job.id or f"job-{fingerprint[:16]}"
        job = attrs.evolve(job, id=job_id)
        first, entry = await journal.claim(job_id)
        if not first:
            error = ValidationError(
                f"job id {job_id!r} appears twice in this run; ids must be unique"
            )
            return JobOutcome(job=job, error=error, index=index)
        if entry is not None and entry.fingerprint != fingerprint:
            error = ValidationError(
                f"job {job_id!r} differs from the job the journal recorded under that id; "
                "give it a new id (or use a new journal)"
            )
            return JobOutcome(job=job, error=error, index=index)
        if entry is not None and entry.outcome is not None:
            return await self._resumed(job, index, entry)
        if entry is not None and entry.task_id is not None:
            return self._watch(job, index, entry.idempotency_key, entry.task_id, None)
        if self._stop_reading:
            return JobOutcome(job=job, error=_not_submitted(self.stats.stopped_reason), index=index)
        request = job.request
        uploads: dict[str, str] | None = None
        paths = _models.local_files(request)
        if paths:
            try:
                request, uploads = await self._uploaded(request, paths, entry)
            except EvoLinkError as exc:
                return JobOutcome(job=job, error=exc, index=index)
        key = entry.idempotency_key if entry is not None else _new_key()
        if entry is None:
            await journal.begin(job_id, key, fingerprint, uploads)
        transport = self._client._transport
        limited_before = transport.rate_limited
        try:
            task = await self._client.submit(request, idempotency_key=key)
        except InsufficientCreditsError as exc:
            self._stop_reading = True
            self.stats.stopped_reason = "insufficient credits (HTTP 402): top up, then re-run"
            logger.warning("no credits left: the batch stops creating tasks")
            return JobOutcome(job=job, error=exc, index=index)
        except EvoLinkError as exc:
            if isinstance(exc, RateLimitError) or transport.rate_limited > limited_before:
                self._limiter.decrease()
            if not _worth_resending(exc):
                await journal.finished(job_id, _record(job, None, exc, None))
            return JobOutcome(job=job, error=exc, index=index)
        if transport.rate_limited > limited_before:
            self._limiter.decrease()
            logger.info("rate limited: batch creates in flight now %d", self._limiter.limit)
        else:
            self._limiter.increase()
        await journal.created(job_id, task.id)
        return self._watch(job, index, key, task.id, task)

    async def _uploaded(
        self,
        request: _models.Request,
        paths: tuple[Path, ...],
        entry: JournalEntry | None,
    ) -> tuple[_models.Request, dict[str, str]]:
        """
        The request with its local files replaced by URLs, and the URLs.

        A job journalled before a crash reuses the URLs recorded then: a
        fresh upload would get new URLs, so the re-sent create would differ
        from the first and the server would refuse its key.
        """
        recorded = entry.uploads if entry is not None and entry.uploads else {}
        urls = {path: recorded[str(path)] for path in paths if str(path) in recorded}
        missing = [path for path in paths if path not in urls]
        if missing:
            urls.update(await self._client._upload_paths(missing))
        return _models.replace_files(request, urls), {str(path): urls[path] for path in paths}

    def _watch(
        self, job: Job, index: int, key: str, task_id: str, task: Task | None
    ) -> JobOutcome | None:
        """Hand the task to the watcher; an outcome only if that is impossible."""
        assert job.id is not None
        active = _Active(job=job, index=index, key=key)
        self._active[job.id] = active
        try:
            active.entry = self._client._watcher.watch(
                task_id,
                initial=task,
                # Taken, not read: the runner is the only reader of a task it
                # created, and a long run must not keep every submit time.
                started_at=self._client._submitted.pop(task_id, None),
                listener=self._listener(active),
            )
        except ClientClosedError as exc:
            # The task id is journalled: a re-run re-attaches to it.
            del self._active[job.id]
            return JobOutcome(job=job, task=task, error=exc, index=index)
        self.stats.submitted += 1
        if task is not None and task.usage is not None and task.usage.credits_reserved:
            self.stats.credits_reserved += task.usage.credits_reserved
        return None

    def _listener(self, active: _Active) -> Callable[[_Entry], None]:
        if active.callback is None:

            def on_change(entry: _Entry) -> None:
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
                from ._watch import outcome_of

                task = outcome_of(active.entry)
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
            if _final(error):
                await self._journal.finished(active.job.id, _record(active.job, task, error, path))
            self._active.pop(active.job.id, None)
            self._active_changed.set()
            await send.send(
                JobOutcome(job=active.job, task=task, error=error, path=path, index=active.index)
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
        if await anyio.Path(dest).exists():
            self.stats.downloaded += 1
            return dest
        # A run killed mid-download leaves its temporary file behind.
        async for stale in anyio.Path(self._download_dir).glob(f".{dest.name}.*.part"):
            with contextlib.suppress(OSError):
                await stale.unlink()
        url = task.video_url
        if url is None:
            raise APIError("completed task has no result URL", status=0)
        client = self._client

        async def refresh() -> str | None:
            return (await client.get_task(task.id)).video_url

        transport = client._transport
        timeout = transport.timeout
        async with self._downloads:
            path = await download_video(
                transport.download_session,
                url,
                dest,
                overwrite=False,
                retry=client.retry,
                read_timeout=timeout.sock_read or timeout.total or 30.0,
                refresh_url=refresh,
            )
        self.stats.downloaded += 1
        return path

    async def _resumed(self, job: Job, index: int, entry: JournalEntry) -> JobOutcome:
        outcome = entry.outcome
        assert outcome is not None
        raw_task = outcome.get("task")
        task = Task.from_json(raw_task) if isinstance(raw_task, Mapping) else None
        error = _error_from_record(outcome.get("error"), task)
        path_text = outcome.get("path")
        path = Path(path_text) if isinstance(path_text, str) else None
        wants_file = error is None and task is not None and self._download_dir is not None
        if (
            wants_file
            and task is not None
            and (path is None or not await anyio.Path(path).exists())
        ):
            try:
                fresh = await self._client.get_task(task.id)
                path = await self._download(job, fresh)
                task = fresh
            except EvoLinkError as exc:
                error = exc
            assert self._journal is not None
            assert job.id is not None
            await self._journal.finished(job.id, _record(job, task, error, path))
        return JobOutcome(job=job, task=task, error=error, path=path, resumed=True, index=index)


async def _iterate(jobs: JobSource) -> AsyncIterator[Job | Mapping[str, Any]]:
    if isinstance(jobs, AsyncIterable):
        async for item in jobs:
            yield item
    else:
        for item in jobs:
            yield item


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_job(item: Job | Mapping[str, Any]) -> Job:
    if isinstance(item, Job):
        job_id: object = item.id
        if job_id is not None and (not isinstance(job_id, str) or not job_id):
            raise ValidationError(f"id={item.id!r}: a job id must be a non-empty string")
        return item
    if not isinstance(item, Mapping):
        raise ValidationError(f"a job must be a Job or a dict, not {type(item).__name__}")
    job_id = item.get("id")
    if job_id is not None:
        if isinstance(job_id, bool) or not isinstance(job_id, str | int) or job_id == "":
            raise ValidationError(f"id={job_id!r}: a job id must be a non-empty string or number")
        job_id = str(job_id)
    model = item.get("model")
    if not isinstance(model, str) or not model:
        raise ValidationError(f"model={model!r}: every job needs a model id")
    metadata = item.get("metadata")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise ValidationError(f"metadata={metadata!r}: must be an object")
    params = {key: value for key, value in item.items() if key not in JOB_KEYS}
    return Job(_models.build_request(model, params), id=job_id, metadata=metadata)


def _broken_job(item: object) -> Job:
    """A stand-in job for an outcome of a job that could not be read."""
    if isinstance(item, Mapping):
        params = {key: value for key, value in item.items() if key not in JOB_KEYS}
        job_id = item.get("id")
        return Job(
            _models.RawRequest(str(item.get("model") or "unknown"), params),
            id=str(job_id) if job_id is not None else None,
        )
    return Job(_models.RawRequest("unknown", {}))


def _fingerprint(body: Mapping[str, Any]) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _new_key() -> str:
    from ._client import new_idempotency_key

    return new_idempotency_key()


def _worth_resending(error: EvoLinkError) -> bool:
    """True when a re-run should send the create again (with the same key)."""
    return isinstance(error, ServerError | RateLimitError | APIConnectionError) or (
        isinstance(error, APIError) and error.status in (0, 401, 403, 408, 409)
    )


def _final(error: EvoLinkError | None) -> bool:
    """
    True when an outcome is final for the journal; otherwise a re-run
    re-attaches to the task (the wait ended for a reason of this run: the
    client closed, a key was refused, the download failed).
    """
    return error is None or isinstance(
        error, TaskFailedError | TaskCancelledError | NotFoundError | ValidationError
    )


def _not_submitted(reason: str | None) -> NotSubmittedError:
    return NotSubmittedError(f"not submitted: {reason or 'the run was stopped'}")


def _record(
    job: Job, task: Task | None, error: EvoLinkError | None, path: Path | None
) -> dict[str, Any]:
    """The journal's outcome record: JSON, no secrets."""
    record: dict[str, Any] = {"task": dict(task.raw) if task is not None else None}
    if path is not None:
        record["path"] = str(path)
    if error is not None:
        record["error"] = {
            "type": type(error).__name__,
            "message": getattr(error, "message", None) or str(error),
            "status": getattr(error, "status", None),
            "code": getattr(error, "code", None),
        }
    return record


def _error_from_record(record: object, task: Task | None) -> EvoLinkError | None:
    if not isinstance(record, Mapping):
        return None
    kind = record.get("type")
    if kind == "TaskFailedError" and task is not None:
        return TaskFailedError(task)
    if kind == "TaskCancelledError" and task is not None:
        return TaskCancelledError(task)
    message = str(record.get("message") or "error recorded by an earlier run")
    from . import _errors

    cls = getattr(_errors, str(kind), None)
    if isinstance(cls, type) and issubclass(cls, APIError):
        status = record.get("status")
        code = record.get("code")
        return cls(
            message,
            status=status if isinstance(status, int) else 0,
            code=code if isinstance(code, str | int) else None,
        )
    if isinstance(cls, type) and issubclass(cls, ValidationError):
        return ValidationError(message)
    return EvoLinkError(message)
