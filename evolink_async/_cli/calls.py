"""
What the commands that call the API share: the client their options describe,
their exit codes, one-line errors, and the record of one task.

- `api_client(args, prog)`: an `EvoLinkClient` with the key from
  `apikey.resolve_key`, `--base-url`, and polling scaled by `--time-scale`
  (for a `mock-server --time-scale X`).
- `task_record(task, path)`: the JSON `--json` prints for a task (the same
  keys for `generate`, `wait` and `download`), never the key.
- `problem_lines(prog, exc)`: an error as lines for stderr, one per problem
  of a `ValidationError`, escaped by `printable`.
- `interruptible(work)`: Ctrl-C cancels `work` alone and raises
  `UserInterruptError`, so the client around it still closes in a task that
  is not being cancelled (asyncio's own Ctrl-C cancels the whole main task,
  and a close awaited there is cut short, leaving its session open).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, Final, TypeVar

from .._client import EvoLinkClient
from .._errors import EvoLinkError, ValidationError
from .._text import printable, printable_json
from .._values import Task
from .._watch.policy import PollPolicy
from .apikey import KeyOptionError, resolve_key

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "UsageError",
    "UserInterruptError",
    "api_client",
    "interruptible",
    "print_json",
    "problem_lines",
    "report_failure",
    "say",
    "task_record",
]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130


T = TypeVar("T")


class UsageError(Exception):
    """A bad option or argument: reported in one line, exit 2, nothing sent."""


class UserInterruptError(Exception):
    """Ctrl-C while `interruptible` work ran: the work was cancelled, nothing else."""


async def interruptible(work: Awaitable[T]) -> T:
    """
    `await work`; the first Ctrl-C cancels it and raises `UserInterruptError`.

    A second Ctrl-C is Python's own again (KeyboardInterrupt), for a command
    stuck on its way out. Where the loop takes no signal handler (not the
    main thread), Ctrl-C is left as it is.
    """
    loop = asyncio.get_running_loop()
    job = asyncio.ensure_future(work)
    interrupted = False

    def on_sigint() -> None:
        nonlocal interrupted
        interrupted = True
        job.cancel()
        loop.remove_signal_handler(signal.SIGINT)

    installed = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGINT, on_sigint)
        installed = True
    try:
        return await job
    except asyncio.CancelledError:
        if interrupted:
            raise UserInterruptError from None
        raise
    finally:
        if installed and not interrupted:
            loop.remove_signal_handler(signal.SIGINT)


def api_client(args: argparse.Namespace, prog: str, *, need_key: bool = True) -> EvoLinkClient:
    """
    The client the options describe.

    Raises:
        UsageError: the key options cannot be used, or (with `need_key`)
            no key is configured, or `--time-scale` is not positive.
    """
    try:
        key = resolve_key(args, prog)
    except KeyOptionError as exc:
        raise UsageError(str(exc)) from None
    if need_key and key is None:
        raise UsageError("no API key: set EVOLINK_API_KEY or pass --api-key-file PATH")
    scale: float | None = getattr(args, "time_scale", None)
    if scale is not None and not scale > 0:
        raise UsageError(f"--time-scale {scale}: must be > 0")
    poll = PollPolicy().scaled(scale) if scale is not None else None
    return EvoLinkClient(key, base_url=args.base_url, poll=poll)


def task_record(task: Task, path: Path | None = None) -> dict[str, Any]:
    """One task as `--json` prints it: the figures first, the reply's task object last."""
    usage = task.usage
    error = task.error
    return {
        "task_id": task.id,
        "model": task.model,
        "status": task.status.value,
        "progress": task.progress,
        "video_url": task.video_url,
        "path": str(path) if path is not None else None,
        "credits_reserved": usage.credits_reserved if usage is not None else None,
        "credits_used": usage.credits_used if usage is not None else None,
        "error_code": error.code if error is not None else None,
        "error_message": error.message if error is not None else None,
        "task": dict(task.raw),
    }


def print_json(record: dict[str, Any]) -> None:
    """`record` on stdout as JSON, control characters escaped in JSON's own way."""
    print(printable_json(json.dumps(record, ensure_ascii=False, indent=2)), flush=True)


def problem_lines(prog: str, exc: EvoLinkError) -> list[str]:
    """`exc` as lines for stderr: one per problem of a `ValidationError`."""
    if isinstance(exc, ValidationError) and exc.problems:
        return [printable(f"{prog}: {problem}") for problem in exc.problems]
    return [printable(f"{prog}: {exc}")]


def say(text: str) -> None:
    """One line on stderr, control characters escaped."""
    print(printable(text), file=sys.stderr, flush=True)


def report_failure(prog: str, exc: EvoLinkError) -> int:
    """
    Say `exc` on stderr (`problem_lines`); the exit code: `EXIT_USAGE` for a
    `ValidationError` (raised before anything was sent), else `EXIT_FAILED`.
    """
    for line in problem_lines(prog, exc):
        say(line)
    return EXIT_USAGE if isinstance(exc, ValidationError) else EXIT_FAILED
