"""
`evolink-async wait TASK_ID`: follow one task to its end; print or save its video.

`follow` is also how `generate` ends: it waits through the client's watcher
(polling planned from the task's estimate and progress) with live progress
on stderr (`taskview`), then prints the result on stdout: the video URL, or
with `--download DIR` the path of the saved `DIR/TASK_ID.mp4`, or with
`--json` the task's record (`calls.task_record`). A failed or cancelled task
prints its code and message and exits 1; `--timeout` ends the wait (not the
task) with exit 1 and the command that picks it up again; Ctrl-C does the
same with exit 130.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
from pathlib import Path

from .._api.downloads import target_path
from .._client import EvoLinkClient
from .._errors import (
    EvoLinkError,
    TaskCancelledError,
    TaskFailedError,
    WaitTimeoutError,
)
from .._text import printable
from .._values import Task
from .calls import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    UserInterruptError,
    api_client,
    interruptible,
    print_json,
    problem_lines,
    report_failure,
    say,
    task_record,
)
from .display import credits_text, seconds_text
from .taskview import TaskView, make_task_view

__all__ = ["follow", "resume_hint", "run"]

_PROG = "evolink-async wait"


def resume_hint(task_id: str, args: argparse.Namespace) -> str:
    """The command that follows `task_id` again, with the options that matter."""
    parts = ["evolink-async", "wait", task_id]
    if getattr(args, "download", None):
        parts += ["--download", args.download]
    if getattr(args, "base_url", None):
        parts += ["--base-url", args.base_url]
    if getattr(args, "time_scale", None) is not None:
        parts += ["--time-scale", f"{args.time_scale:g}"]
    return printable(shlex.join(parts))


async def follow(
    client: EvoLinkClient,
    task: Task | str,
    args: argparse.Namespace,
    view: TaskView,
    *,
    prog: str,
) -> int:
    """
    Wait for `task` with progress on `view`, then print (or save) the result.

    Returns:
        The exit code: 0 completed (and saved, with `--download`), 1 not.
    """
    task_id = task.id if isinstance(task, Task) else task
    try:
        try:
            done = await client.wait(task, timeout=args.timeout, on_progress=view.update)
        finally:
            view.close()
    except (TaskFailedError, TaskCancelledError) as exc:
        ended = exc.task
        if isinstance(exc, TaskFailedError):
            again = " (resubmitting may work)" if exc.retryable else ""
            say(f"{prog}: {ended.id} failed: [{exc.code}] {exc.message}{again}")
        else:
            say(f"{prog}: {ended.id} was cancelled")
        if args.json:
            print_json(task_record(ended))
        return EXIT_FAILED
    except WaitTimeoutError as exc:
        last = exc.task
        state = f"{last.status.value} {last.progress}%" if last is not None else "not finished"
        say(
            f"{prog}: {task_id} is still {state} after {seconds_text(args.timeout)}; "
            f"it goes on on the server: {resume_hint(task_id, args)}"
        )
        return EXIT_FAILED
    path = None
    if args.download:
        try:
            path = await save(client, done, Path(args.download), view)
        except EvoLinkError as exc:
            for line in problem_lines(prog, exc):
                say(line)
            say(f"{prog}: the task completed; try again with: evolink-async download {done.id} DIR")
            return EXIT_FAILED
    usage = done.usage
    used = f", {credits_text(usage.credits_used)} credits" if usage and usage.credits_used else ""
    view.say(f"{done.id} completed{used}")
    if args.json:
        print_json(task_record(done, path))
    else:
        print(printable(path if path is not None else done.video_url or ""), flush=True)
    return EXIT_OK


async def save(client: EvoLinkClient, task: Task, folder: Path, view: TaskView) -> Path:
    """Save `task`'s video as `folder/<task id>.mp4`; a file already there is kept."""
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    path = target_path(folder, task.id)
    if await asyncio.to_thread(path.exists):
        # Written whole or not at all (`client.download` renames a finished
        # temporary file), so a file there is this task's video.
        view.say(f"kept the file already there: {path}")
        return path
    return await client.download(task, path)


def run(args: argparse.Namespace) -> int:
    """Run `evolink-async wait` with parsed `args`; return the exit code."""
    if args.timeout is not None and not args.timeout > 0:
        print(f"{_PROG}: --timeout {args.timeout}: must be > 0", file=sys.stderr)
        return EXIT_USAGE
    try:
        client = api_client(args, _PROG)
    except UsageError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr)
        return EXIT_USAGE

    async def main() -> int:
        async with client:
            view = make_task_view(sys.stderr)
            view.say(f"following {args.task_id}")
            return await interruptible(follow(client, args.task_id, args, view, prog=_PROG))

    try:
        return asyncio.run(main())
    except EvoLinkError as exc:
        return report_failure(_PROG, exc)
    except (UserInterruptError, KeyboardInterrupt):
        say(
            f"{_PROG}: interrupted; the task goes on on the server: "
            f"{resume_hint(args.task_id, args)}"
        )
        return EXIT_INTERRUPTED
