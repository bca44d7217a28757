"""
`WatchEntry`: what the task watcher knows of one watched task id, and who
listens to it; the handle `Watcher.watch` returns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from .._errors import TaskCancelledError, TaskFailedError
from .._values import Task, TaskStatus
from . import planner

if TYPE_CHECKING:
    from opentelemetry.context import Context

__all__ = ["Listener", "WatchEntry"]

Listener = Callable[["WatchEntry"], None]


class WatchEntry:
    """
    One watched task id: what is known of it and who listens; the handle
    `Watcher.watch` returns.

    `seq` is the entry's current slot in the watcher's heap: a heap item whose
    number differs is stale (0 while a poll is in flight, -1 once dropped).
    """

    __slots__ = (
        "_traces",
        "done",
        "due",
        "error",
        "errors",
        "hinted",
        "last_poll",
        "latest",
        "listeners",
        "malformed",
        "needs_origin",
        "polling",
        "scope",
        "seq",
        "state",
        "task_id",
    )

    def __init__(self, task_id: str, state: planner.PollState) -> None:
        self.task_id = task_id
        self.state = state
        self.latest: Task | None = None
        # A tuple, replaced when a listener comes or goes (both rare): one
        # listener in a tuple is 48 bytes, in a list 88, on every watched task.
        self.listeners: tuple[Listener, ...] = ()
        self.done = False
        self.error: Exception | None = None
        self.due = 0.0
        self.last_poll: float | None = None
        self.seq = 0
        self.errors = 0
        self.malformed = 0
        self.polling = False
        self.hinted = False
        self.needs_origin = False
        self.scope: anyio.CancelScope | None = None
        # Made on first use: only listeners that watch while tracing have one,
        # and an empty list on each of 100,000 watched tasks is 5.6 MB.
        self._traces: list[tuple[Listener, Context]] | None = None

    @property
    def interval(self) -> float:
        """
        Seconds from the last poll (from the task's start, before any) to the
        one planned: computed, not kept (a float is 24 bytes a watched task).
        """
        since = self.last_poll
        return max(0.0, self.due - (self.state.started_at if since is None else since))

    @property
    def traces(self) -> list[tuple[Listener, Context]]:
        """(listener, its trace context) for listeners that watched while tracing."""
        traces = self._traces
        if traces is None:
            traces = self._traces = []
        return traces

    @traces.setter
    def traces(self, value: list[tuple[Listener, Context]]) -> None:
        self._traces = value

    def outcome(self) -> Task:
        """The completed task of a finished entry, or raise what ended it."""
        if self.error is not None:
            raise self.error
        task = self.latest
        if task is None:  # pragma: no cover -- a finished entry always has a snapshot or error
            raise RuntimeError("entry finished without a snapshot")
        if task.status is TaskStatus.FAILED:
            raise TaskFailedError(task)
        if task.status is TaskStatus.CANCELLED:
            raise TaskCancelledError(task)
        return task
