"""
The task watcher: one poll scheduler per client, shared by every waiter.

Deciding *when* to poll a task is the pure planner's job (`planner.py`), and
how hard the client may poll is the budget's (`budget.py`); this module is
the loop that sleeps, fetches (through the `TaskReader` it was handed: the
client's endpoints, or a fake in tests) and tells waiters. Its shape:

- Each watched task id is one small `WatchEntry` record (latest snapshot, planner
  state, listeners), in a dict and a heap ordered by next poll time. Watching
  100,000 tasks costs 100,000 records, not 100,000 coroutines.
- One dispatcher task pops due entries, takes a token from the client-wide
  budget (the rate the server allows, found by `rate.RateControl`, at most
  `PollPolicy.max_polls_per_second`) and starts a poll; at most
  `max_in_flight` polls run at once, inside one anyio task group.
- Several waiters on one id share one entry, so one poll stream.
- While polls use most of the budget or run late, tasks are planned with a
  lower `pressure` (fewer polls where finishing is unlikely), and with the
  policy's own plan again once the load falls.
- A 429 on a poll lowers the budget for the whole watcher to just under the
  rate the server was measured to allow, and nothing is polled before its
  Retry-After; the budget probes upward again after a while. Other
  transient failures (5xx, network, timeouts) reschedule the task with
  backoff and never end a wait. The backoff and its Retry-After
  rule are the SDK's one retry rule (`_api/retry.py`), from `min_interval`
  doubling up to `max_interval`, a Retry-After longer than that meaning "poll
  again after `max_interval`". A task that disappears (404), an id
  the API rejects (400), or a key it refuses (401/403) ends the waits on it.
- With `PollPolicy.batch_endpoint`, due tasks are read in groups of up to 50
  through `POST /v1/tasks/batch`; the first 404/405 from that endpoint turns
  it off for good and single GETs take over.
- Each completed task teaches its model's calibration (`learning.py`):
  the estimate's real bias and spread, the shape of the durations, whether
  and how well progress informs; the planner plans the model's next polls
  with it, and waiting tasks are planned again when it moved far.
- A callback (`hint`) makes the task due now (never sooner than
  `min_interval` after its last poll): the GET confirms before anyone trusts
  the unsigned body.
- When nobody watches anything, the dispatcher task ends; the next watch
  starts it again. It runs in a context of its own, not in the context of
  the waiter that happened to start it.
- Telemetry (when a provider is set, see `_telemetry.py`): each `wait` is an
  `evolink.wait` span; each watcher remembers the trace context of every
  listener of a task (taken when it starts watching), and each poll request
  is an `evolink.poll` span, a child of the first listener's context and
  linked to the others'; each poll request counts in `evolink.client.polls`.
- An event hook that raises during a poll ends the waits on the tasks that
  poll read, with that very exception (hooks propagate, as in httpx).
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import inspect
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final

import anyio
import anyio.abc

from .._api.endpoints import TaskReader
from .._api.hooks import raised_by_hook
from .._api.retry import RetryPolicy
from .._errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    EvoLinkError,
    MalformedReplyError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    WaitTimeoutError,
)
from .._telemetry import GLOBAL, Telemetry, mark_failed
from .._values import Task, TaskStatus
from . import planner
from .budget import LATE_FRACTION, MAX_PRESSURE, START_POLL_RATE, PollGate, Pressure, TokenBucket
from .entry import Listener, WatchEntry
from .learning import Learning
from .policy import PollPolicy
from .rate import RateControl

__all__ = ["WatchEntry", "Watcher"]

logger = logging.getLogger("evolink_async")

#: The most ids `POST /v1/tasks/batch` takes in one call (EvoLink's CLI limit).
BATCH_LIMIT: Final = 50
#: Consecutive unreadable replies for one task before its waits end with the
#: error: a gateway that keeps sending garbage is not going to get better.
MAX_MALFORMED: Final = 5
#: Callback hints remembered for ids nobody watches yet (a callback can beat
#: the `wait` call that would register the id).
MAX_HINTS: Final = 10_000


class Watcher:
    """
    Polls every watched task on its own planned schedule, within one budget.

    Not public: `EvoLinkClient.wait` and the batch runner use it.
    """

    def __init__(
        self,
        *,
        policy: PollPolicy,
        reader: TaskReader,
        max_in_flight: int,
        telemetry: Telemetry = GLOBAL,
    ) -> None:
        self.policy = policy
        self._reader = reader
        self._telemetry = telemetry
        # Backoff after a failed poll: the SDK's retry rule, on the policy's
        # own scale (from twice `min_interval`, doubling, up to `max_interval`).
        self._backoff = RetryPolicy(
            initial_backoff=2 * policy.min_interval,
            max_backoff=policy.max_interval,
            max_retry_after=policy.max_interval,
        )
        self._max_in_flight = max(1, max_in_flight)
        self._entries: dict[str, WatchEntry] = {}
        self._heap: list[tuple[float, int, WatchEntry]] = []
        self._seq = 0
        self._rng = random.Random()  # noqa: S311 -- jitter, not cryptography
        self._wakeup: asyncio.Event | None = None
        self._runner: asyncio.Task[None] | None = None
        self._in_flight = 0
        ceiling = policy.max_polls_per_second
        #: The poll rate the server allows, found from its 429s (`rate.py`).
        self._rate = RateControl(start=ceiling or START_POLL_RATE, ceiling=ceiling, what="polls")
        self._rate.max_wait = policy.max_interval  # longer Retry-Afters: see `_failed_poll`
        self._bucket: TokenBucket | None = None
        #: Budgets shared with other processes, asked after the watcher's own.
        self.poll_gates: list[PollGate] = []
        self._batch_ok = policy.batch_endpoint
        self._hints: OrderedDict[str, None] = OrderedDict()
        self._closed = False
        #: Requests sent by the watcher (single and batch), for stats.
        self.polls_sent = 0
        self._pressure = Pressure()
        #: What finished tasks taught (see `learning.py`).
        self.learning = Learning(policy)

    # -- public-ish API ------------------------------------------------------

    @property
    def watched(self) -> int:
        """How many task ids are being watched now."""
        return len(self._entries)

    @property
    def poll_rate(self) -> RateControl:
        """The poll budget: its `rate` now, the server's measured `limit`, its 429s."""
        return self._rate

    @property
    def pressure(self) -> float:
        """
        The share of `PollPolicy.latency_weight` planned with now (1.0 = the
        policy's plan; lower while the budget or the event loop is short).
        """
        return self._pressure.value

    async def wait(
        self,
        task_id: str,
        *,
        initial: Task | None,
        started_at: float | None,
        timeout: float | None,
        on_progress: Callable[[Task], Any] | None,
    ) -> Task:
        """
        Wait until `task_id` is terminal; return it completed or raise.

        Raises:
            TaskFailedError, TaskCancelledError, WaitTimeoutError, APIError.
        """
        with self._telemetry.span("evolink.wait", {"evolink.task.id": task_id}) as span:
            changed = asyncio.Event()
            entry = self.watch(
                task_id, initial=initial, started_at=started_at, listener=lambda _: changed.set()
            )
            listener = entry.listeners[-1]
            try:
                async with asyncio.timeout(timeout):
                    task = await self._follow(entry, changed, on_progress)
            except TimeoutError:
                if timeout is None:
                    raise
                raise WaitTimeoutError(task_id, timeout, entry.latest) from None
            finally:
                self.unwatch(entry, listener)
            if span is not None:
                span.set_attribute("evolink.task.status", task.status.value)
            return task

    def watch(
        self,
        task_id: str,
        *,
        initial: Task | None,
        started_at: float | None,
        listener: Listener,
    ) -> WatchEntry:
        """
        Start (or join) watching `task_id`; `listener(entry)` runs on every change.

        The listener must be quick and must not raise; `entry.done` tells when
        the task is finished (`entry.outcome()` then gives the result). The
        caller's trace context is remembered to parent the task's poll spans.
        """
        if self._closed:
            raise ClientClosedError("this EvoLinkClient is closed; create a new one")
        entry = self._entries.get(task_id)
        if entry is None:
            entry = self._new_entry(task_id, initial, started_at)
        entry.listeners = (*entry.listeners, listener)
        trace = self._telemetry.current_context()
        if trace is not None:
            entry.traces.append((listener, trace))
        if entry.done:
            listener(entry)
        return entry

    def unwatch(self, entry: WatchEntry, listener: Listener) -> None:
        """Remove one listener; drop the entry (and its in-flight poll) if it was the last."""
        listeners = entry.listeners
        if listener in listeners:
            at = listeners.index(listener)
            entry.listeners = listeners[:at] + listeners[at + 1 :]
        if entry.traces:
            entry.traces = [pair for pair in entry.traces if pair[0] is not listener]
        if not entry.listeners:
            self._drop(entry)

    def hint(self, task: Task) -> None:
        """A callback said `task` changed: poll it as soon as allowed."""
        entry = self._entries.get(task.id)
        if entry is None:
            self._hints[task.id] = None
            self._hints.move_to_end(task.id)
            while len(self._hints) > MAX_HINTS:
                self._hints.popitem(last=False)
            return
        if entry.done:
            return
        if entry.polling:
            # The read in flight may have started before the task finished:
            # read again as soon as it is back.
            entry.hinted = True
            return
        now = self._now()
        earliest = now if entry.last_poll is None else entry.last_poll + self.policy.min_interval
        if max(now, earliest) < entry.due:
            self._schedule(entry, max(now, earliest))

    async def aclose(self) -> None:
        """Stop the dispatcher; waits in progress end with a closed-client error."""
        self._closed = True
        closed = ClientClosedError("the EvoLinkClient was closed while waiting")
        for entry in list(self._entries.values()):
            self._finish(entry, closed)
        runner = self._runner
        if runner is not None and not runner.done():
            runner.cancel()
            try:
                await runner
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise

    # -- entries -------------------------------------------------------------

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _new_entry(
        self, task_id: str, initial: Task | None, started_at: float | None
    ) -> WatchEntry:
        now = self._now()
        policy = self.policy
        if initial is not None:
            origin = started_at if started_at is not None else now
            state = planner.start(policy, started_at=origin, estimated_time=initial.estimated_time)
        else:
            state = planner.start(policy, started_at=now, estimated_time=None)
        entry = WatchEntry(task_id, state)
        self._entries[task_id] = entry
        hinted = task_id in self._hints
        if hinted:
            del self._hints[task_id]
        if initial is not None:
            entry.latest = initial
            if initial.is_terminal:
                entry.done = True
                del self._entries[task_id]
                return entry
            due = now if hinted else self._plan(entry, now)
        else:
            entry.needs_origin = started_at is None
            due = now
        self._schedule(entry, due)
        self._ensure_runner()
        return entry

    def _schedule(self, entry: WatchEntry, due: float) -> None:
        self._seq += 1
        entry.seq = self._seq
        entry.due = due
        heapq.heappush(self._heap, (due, self._seq, entry))
        if self._heap[0][2] is entry and self._wakeup is not None:
            self._wakeup.set()

    def _drop(self, entry: WatchEntry) -> None:
        if self._entries.get(entry.task_id) is entry:
            del self._entries[entry.task_id]
        entry.seq = -1
        if entry.scope is not None:
            entry.scope.cancel()
        if self._wakeup is not None:
            self._wakeup.set()

    def _finish(self, entry: WatchEntry, exc: Exception | None = None) -> None:
        entry.done = True
        if isinstance(exc, EvoLinkError) or (exc is not None and raised_by_hook(exc)):
            entry.error = exc
        elif exc is not None:
            entry.error = EvoLinkError(f"waiting stopped: {exc}")
        if self._entries.get(entry.task_id) is entry:
            del self._entries[entry.task_id]
        entry.seq = -1
        self._notify(entry)

    def _notify(self, entry: WatchEntry) -> None:
        for listener in entry.listeners:  # a tuple: listeners may (un)watch meanwhile
            listener(entry)

    def _u(self) -> float:
        return self._rng.random()

    # -- waiting -------------------------------------------------------------

    async def _follow(
        self,
        entry: WatchEntry,
        changed: asyncio.Event,
        on_progress: Callable[[Task], Any] | None,
    ) -> Task:
        reported: tuple[TaskStatus, int] | None = None
        while True:
            changed.clear()
            task = entry.latest
            if on_progress is not None and task is not None:
                key = (task.status, task.progress)
                if key != reported:
                    reported = key
                    result = on_progress(task)
                    if inspect.isawaitable(result):
                        await result
                    continue
            if entry.done:
                return entry.outcome()
            await changed.wait()

    # -- the dispatcher ------------------------------------------------------

    def _ensure_runner(self) -> None:
        if self._runner is None or self._runner.done():
            self._wakeup = asyncio.Event()
            # A context of its own: the poll loop serves every waiter, so it
            # must not carry the contextvars (the current span above all) of
            # the one that happened to start it.
            self._runner = asyncio.get_running_loop().create_task(
                self._run(), name="evolink-async watcher", context=contextvars.Context()
            )

    async def _run(self) -> None:
        assert self._wakeup is not None
        wakeup = self._wakeup
        if self._bucket is None:
            self._bucket = TokenBucket(self._rate.rate, self._now())
        try:
            # A watch can arrive while the task group winds down; go round
            # again rather than leave it unpolled.
            while self._entries:
                async with anyio.create_task_group() as group:
                    await self._dispatch(group, wakeup)
        except Exception:  # pragma: no cover -- a bug here must not hang waiters silently
            logger.exception("task watcher stopped by an unexpected error")
            for entry in list(self._entries.values()):
                self._finish(entry, RuntimeError("task watcher failed"))
            raise

    async def _dispatch(self, group: anyio.abc.TaskGroup, wakeup: asyncio.Event) -> None:
        bucket = self._bucket
        assert bucket is not None
        policy = self.policy
        heap = self._heap
        while self._entries:
            wakeup.clear()
            while heap and heap[0][2].seq != heap[0][1]:
                heapq.heappop(heap)
            if not heap:
                await wakeup.wait()
                continue
            now = self._now()
            due = heap[0][0]
            if due > now:
                await _wait_event(wakeup, due - now)
                continue
            if self._in_flight >= self._max_in_flight:
                await wakeup.wait()
                continue
            control = self._rate
            budget = control.rate
            delay = control.blocked - now
            if delay <= 0:
                delay = bucket.delay(now, budget)
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            control.sent(now)
            gate = next((gate for gate in self.poll_gates if not gate.take_poll()), None)
            if gate is not None:
                await gate.refill_polls()
                continue
            due, _, entry = heapq.heappop(heap)
            if not control.growing(now):
                # (A budget still rising to the server's limit is not short.)
                self._pressure.sent(
                    now,
                    # Late: by a share of its interval, and by more than the
                    # policy's floor (a loop a few ms behind is not short).
                    late=now - due > max(LATE_FRACTION * entry.interval, policy.min_interval),
                    budget=budget,
                    min_interval=policy.min_interval,
                    ceiling=MAX_PRESSURE if policy.max_polls_per_second is None else 1.0,
                )
            batch = [entry]
            if self._batch_ok:
                batch.extend(self._also_due(now))
            for member in batch:
                member.seq = 0
                member.polling = True
            self._in_flight += 1
            self.polls_sent += 1
            group.start_soon(self._poll, batch)

    def _also_due(self, now: float) -> list[WatchEntry]:
        """Entries worth reading in the same batch call: due or nearly due."""
        heap = self._heap
        extra: list[WatchEntry] = []
        min_interval = self.policy.min_interval
        while heap and len(extra) < BATCH_LIMIT - 1:
            due, seq, entry = heap[0]
            if entry.seq != seq:
                heapq.heappop(heap)
                continue
            # Reading a task up to a third of its planned interval early costs
            # nothing extra here and saves it a request of its own later.
            early_enough = due - now <= max(min_interval, entry.interval / 3)
            rested = entry.last_poll is None or now - entry.last_poll >= min_interval
            if not (early_enough and rested):
                break
            heapq.heappop(heap)
            extra.append(entry)
        return extra

    async def _poll(self, batch: list[WatchEntry]) -> None:
        try:
            single = len(batch) == 1 and not self._batch_ok
            counters = self._telemetry.counters()
            if counters is not None:
                counters.polls.add(1, {"evolink.poll.kind": "single" if single else "batch"})
            if self._telemetry.tracer() is None:
                await (self._poll_single(batch[0]) if single else self._poll_batch(batch))
                return
            contexts = [trace for entry in batch for _, trace in entry.traces]
            attributes: dict[str, str | int] = {"evolink.poll.tasks": len(batch)}
            if len(batch) == 1:
                attributes["evolink.task.id"] = batch[0].task_id
            with self._telemetry.poll_span(contexts, attributes) as span:
                failure = await (self._poll_single(batch[0]) if single else self._poll_batch(batch))
                if span is not None and failure is not None:
                    mark_failed(span, failure)
        finally:
            self._in_flight -= 1
            for entry in batch:
                entry.polling = False
                entry.scope = None
            if self._wakeup is not None:
                self._wakeup.set()

    async def _poll_single(self, entry: WatchEntry) -> Exception | None:
        """Read one task; return the error the poll met, if any."""
        with anyio.CancelScope() as scope:
            entry.scope = scope
            try:
                task = await self._reader.poll_task(entry.task_id)
            except Exception as exc:
                if raised_by_hook(exc):
                    self._finish(entry, exc)
                elif isinstance(exc, EvoLinkError):
                    self._failed_poll([entry], exc)
                else:  # one task's bad poll must not end every wait
                    self._failed_poll([entry], _unreadable(exc))
                return exc
            else:
                self._rate.accepted(self._now())
                self._update(entry, task)
        return None

    async def _poll_batch(self, batch: list[WatchEntry]) -> Exception | None:
        """Read several tasks in one request; return the error it met, if any."""
        ids = [entry.task_id for entry in batch]
        try:
            tasks = await self._reader.poll_tasks(ids)
        except Exception as exc:
            if raised_by_hook(exc):
                for entry in batch:
                    if self._entries.get(entry.task_id) is entry:
                        self._finish(entry, exc)
            else:
                self._poll_batch_failed(batch, exc)
            return exc
        self._rate.accepted(self._now())
        by_id = {task.id: task for task in tasks}
        for entry in batch:
            task = by_id.get(entry.task_id)
            if task is not None:
                self._update(entry, task)
            elif self._entries.get(entry.task_id) is entry:
                # Left out of the batch reply: confirm with a single read.
                self._schedule(entry, self._now())
        return None

    def _poll_batch_failed(self, batch: list[WatchEntry], exc: Exception) -> None:
        """A batch read failed: fall back to single reads for good, or reschedule."""
        if isinstance(exc, APIError):
            if exc.status in (400, 404, 405):
                logger.info(
                    "POST /v1/tasks/batch unavailable (HTTP %d); polling singly", exc.status
                )
                self._batch_ok = False
                now = self._now()
                for entry in batch:
                    if self._entries.get(entry.task_id) is entry:
                        self._schedule(entry, now)
                return
            self._failed_poll(batch, exc)
        elif isinstance(exc, EvoLinkError):
            self._failed_poll(batch, exc)
        else:  # as in _poll_single
            self._failed_poll(batch, _unreadable(exc))

    def _update(self, entry: WatchEntry, task: Task) -> None:
        if self._entries.get(entry.task_id) is not entry:
            return
        now = self._now()
        entry.last_poll = now
        entry.errors = 0
        entry.malformed = 0
        policy = self.policy
        if entry.needs_origin:
            entry.needs_origin = False
            entry.state = planner.start(
                policy, started_at=_origin(task, now), estimated_time=task.estimated_time
            )
        if task.status is TaskStatus.COMPLETED:
            self.learning.learn(
                task.model, planner.finished(entry.state, at=now), self._entries, now
            )
        entry.state = planner.observe(
            entry.state,
            at=now,
            progress=task.progress,
            status=task.status.value,
            estimated_time=task.estimated_time,
        )
        previous = entry.latest
        entry.latest = task
        if task.is_terminal:
            self._finish(entry)
            for waiting in self.learning.due_replans(self._entries):
                due = self._plan(waiting, now)
                if due != waiting.due:
                    self._schedule(waiting, max(now, due))
            return
        if previous is None or (previous.status, previous.progress) != (
            task.status,
            task.progress,
        ):
            self._notify(entry)
        due = self._plan(entry, now)
        if entry.hinted:
            entry.hinted = False
            due = min(due, now + policy.min_interval)
        self._schedule(entry, due)

    # -- planning ----------------------------------------------------------

    def _plan(self, entry: WatchEntry, now: float) -> float:
        """When to poll `entry` next, by the planner, with its model's calibration."""
        return planner.next_poll_at(
            self.policy,
            entry.state,
            now=now,
            u=self._u(),
            pressure=self._pressure.value,
            calibration=self.learning.calibration(entry),
        )

    def _failed_poll(self, batch: list[WatchEntry], exc: EvoLinkError) -> None:
        now = self._now()
        policy = self.policy
        fatal = isinstance(
            exc, NotFoundError | AuthenticationError | PermissionDeniedError | BadRequestError
        )
        if isinstance(exc, RateLimitError):
            self._rate.rate_limited(now, in_flight=self._in_flight - 1, retry_after=exc.retry_after)
            for gate in self.poll_gates:
                gate.rate_limited("poll")
        elif isinstance(exc, APIError) and exc.status:
            self._rate.accepted(now)  # an answer the rate limit let through
        for entry in batch:
            if self._entries.get(entry.task_id) is not entry:
                continue
            entry.last_poll = now
            if fatal:
                if isinstance(exc, NotFoundError):
                    exc = NotFoundError(
                        f"task {entry.task_id} not found (unknown, or expired on the server)",
                        status=exc.status,
                        code=exc.code,
                        type=exc.type,
                        request_id=exc.request_id,
                        body=exc.body,
                    )
                self._finish(entry, exc)
                continue
            transient = isinstance(exc, ServerError | RateLimitError | APIConnectionError)
            if not transient:
                entry.malformed += 1
                if entry.malformed >= MAX_MALFORMED:
                    self._finish(entry, exc)
                    continue
            entry.errors += 1
            retry_after = exc.retry_after if isinstance(exc, RateLimitError) else None
            wait = self._backoff.delay(entry.errors - 1, self._u(), retry_after)
            # A Retry-After past the policy's ceiling must not park a wait:
            # poll again after `max_interval`, never sooner than the floor.
            wait = policy.max_interval if wait is None else min(policy.max_interval, wait)
            self._schedule(entry, now + max(policy.min_interval, wait))


def _unreadable(exc: Exception) -> MalformedReplyError:
    """What a reader's unexpected failure counts as: one more unreadable reply."""
    return MalformedReplyError(f"unreadable poll reply ({type(exc).__name__})")


def _origin(task: Task, now: float) -> float:
    """Loop-clock time the task was created, from its `created` timestamp."""
    if task.created is None:
        return now
    age = time.time() - task.created.timestamp()
    return now - max(0.0, age)


async def _wait_event(event: asyncio.Event, timeout: float) -> None:
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        pass
