"""
`evolink-async download TASK_ID DEST`: save a completed task's video.

One GET of the task (a fresh result URL: they expire after a day), then
`client.download`: to DEST itself, or to `DEST/TASK_ID.mp4` when DEST is a
directory (or is written with a trailing `/`), through a temporary file
renamed once whole, so DEST is never half a video. The saved path goes to
stdout (`--json`: the task's record with it).

Exit codes: 0 saved; 1 the task has no video (still running, failed,
cancelled), is unknown, or the download failed; 2 bad arguments or DEST
exists (without `--overwrite`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from .._errors import EvoLinkError
from .._text import printable
from .._values import TaskStatus
from .calls import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    api_client,
    print_json,
    problem_lines,
    say,
    task_record,
)
from .display import credits_text

__all__ = ["run"]

_PROG = "evolink-async download"


def run(args: argparse.Namespace) -> int:
    """Run `evolink-async download` with parsed `args`; return the exit code."""
    try:
        client = api_client(args, _PROG)
    except UsageError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    dest: str = args.dest

    async def main() -> int:
        async with client:
            task = await client.get_task(args.task_id)
            if task.status is not TaskStatus.COMPLETED or task.video_url is None:
                state = f"{task.status.value} {task.progress}%"
                if task.error is not None:
                    state += f" [{task.error.code}] {task.error.message}"
                say(f"{_PROG}: {task.id} has no video: it is {state}")
                if not task.is_terminal:
                    say(f"{_PROG}: follow it: evolink-async wait {task.id} --download DIR")
                return EXIT_FAILED
            try:
                path = await client.download(task, dest, overwrite=args.overwrite)
            except FileExistsError as exc:
                say(f"{_PROG}: {exc}".replace("pass overwrite=True", "add --overwrite"))
                return EXIT_USAGE
            size = (await asyncio.to_thread(path.stat)).st_size
            if args.json:
                print_json({**task_record(task, path), "bytes": size})
            else:
                used = task.usage.credits_used if task.usage is not None else None
                paid = f", {credits_text(used)} credits" if used else ""
                say(f"saved {task.id} ({size:,} bytes{paid})")
                print(printable(path), flush=True)
            return EXIT_OK

    wants_folder = dest.endswith(("/", os.sep)) or Path(dest).is_dir()
    if not wants_folder and not Path(dest).parent.is_dir():
        print(f"{_PROG}: {Path(dest).parent}: no such directory", file=sys.stderr)
        return EXIT_USAGE
    try:
        return asyncio.run(main())
    except EvoLinkError as exc:
        for line in problem_lines(_PROG, exc):
            say(line)
        return EXIT_FAILED
