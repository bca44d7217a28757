"""
What `generate` and `wait` show while one task runs: plain lines, or a rich progress bar.

Progress goes to stderr, so stdout holds only the result (a URL, a path, or
JSON) for a script or a pipe to take. On a terminal with `rich` installed
the view is a live bar (status, percent, elapsed time); anywhere else it is
one line per change (`[12s] task-...: processing 40%`), which a log file or
CI output keeps readable. Everything the server sent goes through
`printable`.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, TextIO

from .._text import printable
from .._values import Task
from .display import seconds_text

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

__all__ = ["RichTaskView", "TaskView", "make_task_view"]


class TaskView:
    """Plain lines on `out`: one when the task is known, one per change of status or progress."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._started = time.monotonic()
        self._shown: tuple[str, int] | None = None

    def say(self, text: str) -> None:
        """One line about the task (control characters escaped)."""
        self.out.write(printable(text) + "\n")
        self.out.flush()

    def created(self, task: Task, *, what: str = "created") -> None:
        """The task exists: its id, its model and the server's estimate."""
        estimate = f", estimated {seconds_text(task.estimated_time)}" if task.estimated_time else ""
        model = f" ({task.model}{estimate})" if task.model else ""
        self.say(f"{what} {task.id}{model}")
        self.update(task)

    def update(self, task: Task) -> None:
        """A new snapshot (the `on_progress` of `client.wait`)."""
        shown = (task.status.value, task.progress)
        if shown == self._shown:
            return
        self._shown = shown
        elapsed = seconds_text(time.monotonic() - self._started)
        self.say(f"[{elapsed}] {task.id}: {task.status.value} {task.progress}%")

    def close(self) -> None:
        """Done showing (nothing to undo for plain lines)."""


class RichTaskView(TaskView):
    """A live bar on a terminal: spinner, status, bar, percent, elapsed time."""

    def __init__(self, out: TextIO) -> None:
        super().__init__(out)
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            SpinnerColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.console = Console(file=out, highlight=False)
        self._progress: Progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self._bar: TaskID | None = None

    def say(self, text: str) -> None:
        """A line above the bar."""
        self.console.print(printable(text), markup=False, highlight=False, soft_wrap=True)

    def update(self, task: Task) -> None:
        """Move the bar to the snapshot's progress; name its status."""
        description = printable(f"{task.id}  {task.status.value}")
        if self._bar is None:
            self._progress.start()
            self._bar = self._progress.add_task(description, total=100, completed=task.progress)
        else:
            self._progress.update(self._bar, description=description, completed=task.progress)

    def close(self) -> None:
        """Draw the bar a last time and leave it on screen (the cursor restored)."""
        if self._bar is not None:
            self._progress.refresh()
            self._progress.stop()
            self._bar = None


def make_task_view(out: TextIO) -> TaskView:
    """The rich bar when `out` is a terminal and `rich` is installed, else plain lines."""
    if out.isatty() and os.environ.get("TERM") != "dumb":
        try:
            import rich  # noqa: F401 -- only checking that it is there
        except ImportError:
            return TaskView(out)
        return RichTaskView(out)
    return TaskView(out)
