"""
`evolink-async batch JOBS.jsonl`: a JSONL file of jobs through the batch runner.

    evolink-async batch jobs.jsonl --out results.jsonl --download videos/

- **Reading.** The file is streamed one line at a time (a million-line file
  never sits in memory) through the checks of `evolink-async validate`
  (`check_job_lines`). A bad line is reported on stderr with its line
  number, gets an `"invalid"` line in `--out`, and is skipped. With
  `--strict` the whole file is checked first, and any bad line ends the run
  (exit 2) before anything is sent or paid for.
- **Journal.** Every run has one, so every run can be resumed: `--journal
  PATH`, or by default `JOBS.jsonl.journal` beside the jobs file. (With
  `--mock` the default is none: the embedded mock and its tasks end with the
  process.) Running the same file again with the same journal re-attaches to
  tasks already created, re-reports finished jobs (`"resumed": true`) and
  creates only what was never created: no task is paid for twice.
- **Results.** `--out` gets one JSON object per job, written and flushed as
  each job ends: `job_id`, `model`, `task_id`, `status`, `ok`, `video_url`,
  `path`, `error_code`, `error_message`, `credits_reserved`, `credits_used`,
  `resumed`, `metadata` (and `line` for a skipped bad line). `status` is
  `completed`, `failed`, `cancelled`, `download_failed` (the task completed,
  the file could not be fetched), `error` (no task: the API refused the
  create), `not_submitted` (the run stopped first) or `invalid` (a bad line).
  A resumed run writes the file afresh, with every job in it.
- **Progress.** A live display (`rich`) when stdout is a terminal: counts per
  state, credits, throughput, ETA. Otherwise, or without `rich`, a plain line
  every `--progress-every` seconds. Failed jobs are always listed; `-v` lists
  every job.
- **Ctrl-C.** The first stops starting jobs: creates already sent finish and
  are journalled, tasks already created keep running on the server (their ids
  are in the journal), and the command prints how to resume, then exits 130.
  A second Ctrl-C quits at once (the journal is consistent at every instant).
- **Exit codes.** 0 every job completed; 1 some job did not (or a line was
  skipped); 2 usage error, nothing sent; 130 interrupted.

The API key (from `--api-key` or `EVOLINK_API_KEY`) is never printed, nor
written to the journal or the results.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

import attrs

from ._batch.jobs import BatchStats, JobOutcome
from ._batch.journal import JournalError
from ._cli import JobCheck, check_job_lines
from ._client import EvoLinkClient
from ._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    ClientClosedError,
    EvoLinkError,
    NotSubmittedError,
    TaskCancelledError,
    TaskFailedError,
    ValidationError,
)
from ._values import TaskStatus
from ._watch.policy import PollPolicy

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

__all__ = [
    "BatchReport",
    "JobLines",
    "Options",
    "ResultsFile",
    "execute",
    "make_display",
    "outcome_record",
    "run",
    "scaled_poll",
]

#: `--mock` runs the mock this much faster than real time: a 165 s task takes 3.3 s.
DEFAULT_MOCK_TIME_SCALE: Final = 0.02
EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130
_BOM: Final = b"\xef\xbb\xbf"
_PROG: Final = "evolink-async batch"


class UsageError(Exception):
    """A bad option or unreadable input: reported in one line, exit 2."""


# ---------------------------------------------------------------- options


@attrs.frozen(kw_only=True)
class Options:
    """The batch command's options, checked (see `Options.from_args`)."""

    jobs: Path
    out: Path | None = None
    concurrency: int | None = None
    journal: Path | None = None
    download: Path | None = None
    strict: bool = False
    mock: bool = False
    time_scale: float | None = None
    progress_every: float = 5.0
    verbose: bool = False
    api_key: str | None = attrs.field(default=None, repr=False)
    api_key_given: bool = False
    base_url: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Options:
        """
        Check the parsed arguments and fill in the defaults.

        Raises:
            UsageError: an option is out of range, a file cannot be used, or
                no API key is configured (without --mock).
        """
        if args.jobs == "-":
            raise UsageError("JOBS.jsonl must be a file, not stdin (a resume reads it again)")
        jobs = Path(args.jobs)
        if not jobs.exists():
            raise UsageError(f"cannot read {jobs}: no such file")
        if not jobs.is_file():
            raise UsageError(f"cannot read {jobs}: not a file")
        if args.concurrency is not None and args.concurrency < 1:
            raise UsageError(f"--concurrency {args.concurrency}: must be at least 1")
        if args.time_scale is not None and not args.time_scale > 0:
            raise UsageError(f"--time-scale {args.time_scale}: must be > 0")
        if not args.progress_every > 0:
            raise UsageError(f"--progress-every {args.progress_every}: must be > 0")
        download = Path(args.download) if args.download else None
        if download is not None and download.exists() and not download.is_dir():
            raise UsageError(f"--download {download}: exists and is not a directory")
        out = Path(args.out) if args.out else None
        if out is not None and out.is_dir():
            raise UsageError(f"--out {out}: is a directory")
        if args.mock and args.base_url:
            raise UsageError("--mock runs its own server; leave out --base-url")
        key = args.api_key or os.environ.get("EVOLINK_API_KEY") or None
        if not args.mock and key is None:
            raise UsageError(
                "no API key: pass --api-key KEY or set EVOLINK_API_KEY "
                "(or add --mock to try it against a local mock server)"
            )
        if args.journal:
            journal: Path | None = Path(args.journal)
        else:
            journal = None if args.mock else jobs.with_name(jobs.name + ".journal")
        if journal is not None and journal.is_dir():
            raise UsageError(f"--journal {journal}: is a directory")
        named = [("JOBS.jsonl", jobs), ("--out", out), ("--journal", journal)]
        seen: dict[Path, str] = {}
        for option, path in named:
            if path is None:
                continue
            resolved = path.resolve()
            if resolved in seen:
                raise UsageError(f"{option} {path}: the same file as {seen[resolved]}")
            seen[resolved] = option
        time_scale = args.time_scale
        if args.mock and time_scale is None:
            time_scale = DEFAULT_MOCK_TIME_SCALE
        return cls(
            jobs=jobs,
            out=out,
            concurrency=args.concurrency,
            journal=journal,
            download=download,
            strict=args.strict,
            mock=args.mock,
            time_scale=time_scale,
            progress_every=args.progress_every,
            verbose=args.verbose,
            api_key=None if args.mock else key,
            api_key_given=bool(args.api_key),
            base_url=args.base_url,
        )


def scaled_poll(time_scale: float) -> PollPolicy:
    """
    A `PollPolicy` for a mock whose clock runs `time_scale` times real time.

    The defaults (2 s floor, 60 s ceiling, 120 s assumed estimate, 20 polls
    per second) all scale by the same factor, so polling behaves as it would
    against the real API, only faster.
    """
    return PollPolicy(
        min_interval=2.0 * time_scale,
        max_interval=60.0 * time_scale,
        default_estimate=120.0 * time_scale,
        max_polls_per_second=20.0 / time_scale,
    )


def resume_command(options: Options) -> str:
    """The command line that resumes a run made with `options` (never with the key)."""
    parts = ["evolink-async", "batch", str(options.jobs)]
    if options.journal is not None:
        parts += ["--journal", str(options.journal)]
    if options.out is not None:
        parts += ["--out", str(options.out)]
    if options.download is not None:
        parts += ["--download", str(options.download)]
    if options.concurrency is not None:
        parts += ["--concurrency", str(options.concurrency)]
    if options.base_url is not None:
        parts += ["--base-url", options.base_url]
    if options.time_scale is not None and not options.mock:
        parts += ["--time-scale", f"{options.time_scale:g}"]
    command = shlex.join(parts)
    if options.api_key_given:
        command += " --api-key ..."
    return command


# ---------------------------------------------------------------- reading jobs


def _checked(lines: Iterable[bytes]) -> Iterator[tuple[JobCheck, dict[str, Any] | None]]:
    """(verdict, the parsed job or None if it has problems) for each job line."""
    current = b""
    number = 0

    def tee() -> Iterator[bytes]:
        nonlocal current, number
        for number, raw in enumerate(lines, start=1):  # noqa: B007 -- read by the loop below
            current = raw
            yield raw

    # `check_job_lines` yields each line's verdict before it reads the next
    # line, so `current` is the line just checked.
    for check in check_job_lines(tee()):
        if check.line != number:
            raise RuntimeError(f"check_job_lines read ahead (line {check.line}, at {number})")
        if not check.ok:
            yield check, None
            continue
        raw = current.removeprefix(_BOM) if check.line == 1 else current
        job: dict[str, Any] = json.loads(raw)
        yield check, job


def count_jobs(path: Path) -> int:
    """Job lines in `path` (neither blank nor `#` comments), read fast, unchecked."""
    count = 0
    with path.open("rb") as stream:
        for raw in stream:
            line = raw.strip().removeprefix(_BOM)
            if line and not line.startswith(b"#"):
                count += 1
    return count


def precheck(path: Path, report: Callable[[JobCheck], None]) -> tuple[int, int]:
    """Check every line of `path` (for --strict); report each bad one; (jobs, bad)."""
    jobs = bad = 0
    with path.open("rb") as stream:
        for check, job in _checked(stream):
            jobs += 1
            if job is None:
                bad += 1
                report(check)
    return jobs, bad


class JobLines:
    """
    The jobs of a JSONL file as dicts, read lazily each time it is iterated.

    A line with problems is handed to `on_bad` and skipped.
    """

    def __init__(self, path: Path, on_bad: Callable[[JobCheck], None]) -> None:
        self.path = path
        self._on_bad = on_bad

    def __iter__(self) -> Iterator[dict[str, Any]]:
        with self.path.open("rb") as stream:
            for check, job in _checked(stream):
                if job is None:
                    self._on_bad(check)
                    continue
                yield job


def problem_lines(name: str, check: JobCheck) -> list[str]:
    """`validate`-style lines for a bad job line: `FILE:LINE: id=ID: problem`."""
    where = f"{name}:{check.line}:"
    if check.id is not None:
        where += f" id={check.id}:"
    return [f"{where} {problem}" for problem in check.problems]


# ---------------------------------------------------------------- results


def _is_not_submitted(error: EvoLinkError | None) -> bool:
    return isinstance(error, NotSubmittedError)


def outcome_status(outcome: JobOutcome) -> str:
    """The `status` of an outcome in --out (see the module docstring)."""
    error = outcome.error
    if outcome.ok:
        return "completed"
    if isinstance(error, TaskFailedError):
        return "failed"
    if isinstance(error, TaskCancelledError):
        return "cancelled"
    task = outcome.task
    if task is not None and task.status is TaskStatus.COMPLETED:
        return "download_failed"
    if task is not None and task.status in (TaskStatus.FAILED, TaskStatus.CANCELLED):
        return task.status.value
    if _is_not_submitted(error):
        return "not_submitted"
    return "error"


def error_code(error: EvoLinkError | None) -> str | None:
    """A short machine-readable code for an outcome's error."""
    if error is None:
        return None
    if isinstance(error, TaskFailedError):
        return error.code or "unknown_error"
    if isinstance(error, TaskCancelledError):
        return "cancelled"
    if isinstance(error, APIError):
        code = error.code
        return str(code) if code else f"http_{error.status}"
    if isinstance(error, ValidationError):
        return "invalid_request"
    if isinstance(error, ClientClosedError):
        return "client_closed"
    if isinstance(error, APITimeoutError):
        return "timeout"
    if isinstance(error, APIConnectionError):
        return "connection_error"
    if _is_not_submitted(error):
        return "not_submitted"
    return "error"


def error_message(error: EvoLinkError | None) -> str | None:
    """The human-readable message of an outcome's error."""
    if error is None:
        return None
    if isinstance(error, TaskFailedError):
        return error.message or str(error)
    message = getattr(error, "message", None)
    return message if isinstance(message, str) and message else str(error)


def outcome_record(outcome: JobOutcome) -> dict[str, Any]:
    """The --out line of one outcome, as a JSON-ready dict."""
    task = outcome.task
    usage = task.usage if task is not None else None
    return {
        "job_id": outcome.job_id,
        "model": outcome.job.request.model,
        "task_id": task.id if task is not None else None,
        "status": outcome_status(outcome),
        "ok": outcome.ok,
        "video_url": task.video_url if task is not None else None,
        "path": str(outcome.path) if outcome.path is not None else None,
        "error_code": error_code(outcome.error),
        "error_message": error_message(outcome.error),
        "credits_reserved": usage.credits_reserved if usage is not None else None,
        "credits_used": usage.credits_used if usage is not None else None,
        "resumed": outcome.resumed,
        "metadata": dict(outcome.job.metadata) if outcome.job.metadata is not None else None,
    }


def invalid_record(check: JobCheck) -> dict[str, Any]:
    """The --out line of a skipped bad line."""
    return {
        "job_id": check.id,
        "model": None,
        "task_id": None,
        "status": "invalid",
        "ok": False,
        "video_url": None,
        "path": None,
        "error_code": "invalid_job",
        "error_message": "; ".join(check.problems),
        "credits_reserved": None,
        "credits_used": None,
        "resumed": False,
        "metadata": None,
        "line": check.line,
    }


class ResultsFile:
    """--out: one JSON line per job, flushed as written; nothing when no path."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._file: TextIO | None = None

    def open(self) -> None:
        """Create (or empty) the file; its directory too."""
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        """Append one record and flush it to the OS (a crash loses no written line)."""
        if self._file is not None:
            self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._file.flush()

    def close(self) -> None:
        """Close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None


# ---------------------------------------------------------------- progress


def _seconds(value: float) -> str:
    value = max(0.0, value)
    if value < 60:
        return f"{value:.0f}s" if value >= 10 else f"{value:.1f}s"
    minutes, seconds = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def credits_text(value: float) -> str:
    """Credits as `1,240` (or `12.5`)."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _size_text(size: int) -> str:
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


@attrs.define(kw_only=True)
class Progress:
    """What a display shows: the run's live stats plus what the CLI counts."""

    stats: BatchStats = attrs.field(factory=BatchStats)
    total: int | None = None
    skipped: int = 0
    stopping: str | None = None

    @property
    def done(self) -> int:
        """Jobs with an outcome, skipped lines included."""
        return self.stats.finished + self.skipped

    def rate(self) -> float:
        """Jobs finished per second in this run (journalled outcomes not counted)."""
        stats = self.stats
        elapsed = stats.elapsed
        worked = stats.finished - stats.resumed
        return worked / elapsed if elapsed > 0 and worked > 0 else 0.0

    def eta(self) -> float | None:
        """Seconds left at the current pace, when the total is known."""
        if self.total is None:
            return None
        remaining = max(0, self.total - self.done)
        if remaining == 0:
            return 0.0
        rate = self.rate()
        return remaining / rate if rate > 0 else None

    def line(self) -> str:
        """The plain progress line: `[12s] 40 read, 35 created, 20 completed, ...`."""
        stats = self.stats
        read = f"{stats.read} of {self.total} read" if self.total else f"{stats.read} read"
        parts = [
            read,
            f"{stats.submitted} created",
            f"{stats.completed} completed",
            f"{stats.failed} failed",
        ]
        extras = (
            (stats.cancelled, "cancelled"),
            (stats.errors, "errors"),
            (stats.resumed, "resumed"),
            (self.skipped, "skipped"),
        )
        parts += [f"{count} {label}" for count, label in extras if count]
        parts.append(f"{stats.pending} pending")
        parts.append(
            f"credits {credits_text(stats.credits_reserved)} reserved"
            f"/{credits_text(stats.credits_used)} used"
        )
        rate = self.rate()
        if rate:
            parts.append(f"{rate:.1f} jobs/s")
        eta = self.eta()
        if eta is not None and self.done < (self.total or 0):
            parts.append(f"ETA {_seconds(eta)}")
        return f"[{_seconds(stats.elapsed)}] " + ", ".join(parts)


@attrs.frozen(kw_only=True)
class OutcomeLine:
    """The parts of one finished job's line on screen."""

    status: str
    job_id: str
    model: str
    credits: str
    path: str
    problem: str
    resumed: bool

    @classmethod
    def of(cls, outcome: JobOutcome, *, relative_to: Path | None = None) -> OutcomeLine:
        """The line of `outcome`; file paths shown relative to `relative_to` if given."""
        status = outcome_status(outcome)
        task = outcome.task
        used = task.usage.credits_used if task is not None and task.usage is not None else None
        path = ""
        if outcome.path is not None:
            path = str(outcome.path)
            if relative_to is not None and outcome.path.is_relative_to(relative_to):
                path = str(outcome.path.relative_to(relative_to))
            with contextlib.suppress(OSError):
                path += f" ({_size_text(outcome.path.stat().st_size)})"
        problem = ""
        if not outcome.ok:
            code = error_code(outcome.error)
            if status == "cancelled":
                problem = "cancelled on the server"
            else:
                message = error_message(outcome.error) or ""
                problem = f"[{code}] {message}" if code else message
        return cls(
            status=status,
            job_id=outcome.job_id,
            model=outcome.job.request.model,
            credits=f"{credits_text(used)} credits" if used else "",
            path=path,
            problem=problem,
            resumed=outcome.resumed,
        )

    @property
    def detail(self) -> str:
        """What follows the model: credits and file, or the problem."""
        text = f"{self.credits:>11}  {self.path}" if not self.problem else self.problem
        if self.resumed:
            text += "  (from the journal)"
        return text.rstrip()


#: Width of the model column: the longest known model id.
_MODEL_WIDTH: Final = 32


class Display:
    """
    The plain display: progress lines every `every` seconds, one line per
    failed job (per job with `verbose`), notes; all on `out` (stdout).
    """

    def __init__(self, out: TextIO, *, every: float, verbose: bool, title: str) -> None:
        self.out = out
        self.every = every
        self.verbose = verbose
        self.title = title
        self.progress = Progress()
        #: Show downloaded files relative to this directory (None: as given).
        self.paths_relative_to: Path | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._id_width = 18

    def start(self) -> None:
        """Start showing progress (inside the running loop)."""
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            self.print(self.progress.line())

    def print(self, text: str, style: str = "") -> None:
        """One line of output."""
        self.out.write(text + "\n")
        self.out.flush()

    def note(self, text: str) -> None:
        """A remark about the run (a Ctrl-C, a skipped line...)."""
        self.print(text, "yellow")

    def outcome(self, outcome: JobOutcome) -> None:
        """Show a finished job (only failures unless verbose)."""
        if outcome.ok and not self.verbose:
            return
        line = OutcomeLine.of(outcome, relative_to=self.paths_relative_to)
        self._id_width = max(self._id_width, min(len(line.job_id), 40))
        self.print(
            f"  {line.status:<10} {line.job_id:<{self._id_width}}  "
            f"{line.model:<{_MODEL_WIDTH}}  {line.detail}".rstrip()
        )

    def stop(self) -> None:
        """Stop the periodic lines and print the last one."""
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
            self.print(self.progress.line())

    def abort(self) -> None:
        """Leave the terminal usable before exiting at once."""
        self.out.flush()

    def summary(self, lines: list[tuple[str, str]]) -> None:
        """Print the closing summary: (text, style) lines."""
        for text, style in lines:
            self.print(text, style)


_STATUS_STYLE: Final = {
    "completed": ("✓", "green"),
    "failed": ("✗", "red"),
    "cancelled": ("⊘", "yellow"),
    "download_failed": ("✗", "red"),
    "error": ("✗", "red"),
    "not_submitted": ("·", "dim"),
}


class RichDisplay(Display):
    """The terminal display: a live panel (rich) with outcomes scrolling above it."""

    def __init__(self, out: TextIO, *, every: float, verbose: bool, title: str) -> None:
        super().__init__(out, every=every, verbose=verbose, title=title)
        from rich.console import Console

        self.console: Console = Console(file=out, highlight=False)
        self._live: Live | None = None

    def start(self) -> None:
        """Start the live panel."""
        from rich.live import Live

        self._live = Live(
            console=self.console,
            get_renderable=self._render,
            refresh_per_second=8,
            transient=False,
            redirect_stderr=True,
            redirect_stdout=False,
        )
        self._live.start()

    def print(self, text: str, style: str = "") -> None:
        """One line above the live panel (long lines left to the terminal to wrap)."""
        self.console.print(text, style=style or None, markup=False, highlight=False, soft_wrap=True)

    def outcome(self, outcome: JobOutcome) -> None:
        """A coloured line for a finished job (only failures unless verbose)."""
        if outcome.ok and not self.verbose:
            return
        from rich.text import Text

        line = OutcomeLine.of(outcome, relative_to=self.paths_relative_to)
        mark, style = _STATUS_STYLE.get(line.status, ("?", ""))
        self._id_width = max(self._id_width, min(len(line.job_id), 40))
        text = Text.assemble(
            (f" {mark} ", style),
            (f"{line.job_id:<{self._id_width}}", "bold"),
            "  ",
            (f"{line.status:<10}", style),
            "  ",
            (f"{line.model:<{_MODEL_WIDTH}}", "dim"),
            "  ",
            (line.detail, "dim" if outcome.ok else style),
        )
        if outcome.ok:
            text.no_wrap = True
            text.overflow = "ellipsis"
        self.console.print(text, highlight=False)

    def stop(self) -> None:
        """Draw the panel a last time and leave it on screen."""
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None

    def abort(self) -> None:
        """Stop the live panel (restores the cursor) before exiting at once."""
        self.stop()

    def summary(self, lines: list[tuple[str, str]]) -> None:
        """Print the closing summary, styled."""
        for text, style in lines:
            self.print(text, style)

    def _render(self) -> RenderableType:
        from rich.console import Group
        from rich.panel import Panel
        from rich.progress_bar import ProgressBar
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        progress = self.progress
        stats = progress.stats
        total = progress.total
        done = progress.done
        finished = stats.finished_at is not None
        head = Table.grid(padding=(0, 2))
        head.add_column(no_wrap=True)
        head.add_column(no_wrap=True)
        head.add_column(no_wrap=True, justify="right")
        bar = ProgressBar(
            total=float(total) if total else None,
            completed=float(done),
            width=36,
            pulse=not total and not finished,
        )
        count = f"{done}/{total} jobs" if total else f"{done} jobs"
        if total:
            count += f"  {100 * done // max(total, 1):>3}%"
        eta = progress.eta()
        if finished:
            verb = "stopped after" if progress.stopping else "done in"
            timing = f"{verb} {_seconds(stats.elapsed)}"
        elif eta is not None:
            timing = f"{_seconds(stats.elapsed)} elapsed, ~{_seconds(eta)} left"
        else:
            timing = f"{_seconds(stats.elapsed)} elapsed"
        head.add_row(bar, Text(count, style="bold"), Text(timing, style="cyan"))

        counts = Text()
        cells = [
            ("read", stats.read, ""),
            ("created", stats.submitted, ""),
            ("pending", stats.pending, "cyan"),
            ("completed", stats.completed, "green"),
            ("failed", stats.failed, "red" if stats.failed else ""),
            ("cancelled", stats.cancelled, "yellow" if stats.cancelled else ""),
        ]
        if stats.errors:
            cells.append(("errors", stats.errors, "red"))
        if stats.resumed:
            cells.append(("resumed", stats.resumed, "blue"))
        if progress.skipped:
            cells.append(("skipped", progress.skipped, "yellow"))
        for index, (label, value, style) in enumerate(cells):
            if index:
                counts.append("   ")
            counts.append(f"{label} ", style="dim")
            counts.append(str(value), style=style or "bold")
        money = Text()
        money.append("credits ", style="dim")
        money.append(credits_text(stats.credits_reserved), style="bold")
        money.append(" reserved, ", style="dim")
        money.append(credits_text(stats.credits_used), style="bold")
        money.append(" used", style="dim")
        rate = progress.rate()
        if rate:
            money.append("   throughput ", style="dim")
            money.append(f"{rate:.1f} jobs/s", style="bold")
        if stats.downloaded:
            money.append("   downloaded ", style="dim")
            money.append(str(stats.downloaded), style="bold")
        rows: list[RenderableType] = [head, counts, money]
        if progress.stopping:
            rows.append(Text(progress.stopping, style="yellow"))
        body: RenderableType = Group(*rows)
        if not finished:
            state = Table.grid(padding=(0, 1))
            state.add_row(Spinner("dots", style="cyan"), body)
            body = state
        return Panel(
            body,
            title=Text(f" {self.title} ", style="bold"),
            title_align="left",
            border_style="green" if finished else "blue",
            # A fixed width: a panel that resized with its numbers would jitter.
            width=min(self.console.width, 100),
            padding=(0, 1),
        )


def make_display(out: TextIO, *, every: float, verbose: bool, title: str) -> Display:
    """
    The rich live display when `out` is a terminal and `rich` is installed,
    else plain periodic lines.
    """
    interactive = out.isatty() and os.environ.get("TERM") != "dumb"
    if interactive:
        try:
            import rich  # noqa: F401 -- only checking that it is there
        except ImportError:
            interactive = False
    if interactive:
        return RichDisplay(out, every=every, verbose=verbose, title=title)
    return Display(out, every=every, verbose=verbose, title=title)


# ---------------------------------------------------------------- running


@attrs.define(kw_only=True)
class BatchReport:
    """How a batch went, for the summary and the exit code."""

    progress: Progress
    outcomes: int = 0
    ok: int = 0
    interrupted: bool = False
    auth_refused: bool = False

    @property
    def exit_code(self) -> int:
        """130 interrupted, 0 every job completed, else 1."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.ok == self.outcomes and not self.progress.skipped:
            return EXIT_OK
        return EXIT_FAILED


async def execute(
    client: EvoLinkClient,
    jobs: Path,
    *,
    display: Display,
    results: ResultsFile,
    concurrency: int | None = None,
    journal: Path | None = None,
    download: Path | None = None,
    total: int | None = None,
    on_outcome: Callable[[JobOutcome], None] | None = None,
    on_interrupt: Callable[[], str] | None = None,
) -> BatchReport:
    """
    Run the jobs of `jobs` on `client`, showing progress and writing results.

    Bad lines are reported on stderr, written to `results` and skipped. The
    first SIGINT stops the run (`BatchRun.stop`); the second prints
    `on_interrupt()` and exits the process at once with code 130.

    Returns:
        The counts; `report.exit_code` is the command's exit code.
    """
    progress = display.progress
    progress.total = total
    report = BatchReport(progress=progress)

    def on_bad(check: JobCheck) -> None:
        progress.skipped += 1
        results.write(invalid_record(check))
        for line in problem_lines(str(jobs), check):
            print(f"{line} (line skipped)", file=sys.stderr, flush=True)

    run = client.batch(
        JobLines(jobs, on_bad),
        concurrency=concurrency,
        journal=journal,
        download_dir=download,
    )
    progress.stats = run.stats
    loop = asyncio.get_running_loop()
    interrupts = 0

    def on_sigint() -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts > 1:
            display.abort()
            hint = on_interrupt() if on_interrupt is not None else ""
            sys.stderr.write(f"\n{_PROG}: interrupted again; quitting now.\n{hint}")
            sys.stderr.flush()
            os._exit(EXIT_INTERRUPTED)
        report.interrupted = True
        run.stop("interrupted")
        progress.stopping = (
            "Ctrl-C: no new jobs start; creates in flight finish and are journalled "
            "(Ctrl-C again quits at once)"
        )
        display.note(progress.stopping)

    handler_set = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        # Only in the main thread of a loop that supports signals.
        loop.add_signal_handler(signal.SIGINT, on_sigint)
        handler_set = True
    display.start()
    try:
        async with run:
            async for outcome in run:
                results.write(outcome_record(outcome))
                report.outcomes += 1
                report.ok += outcome.ok
                display.outcome(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)
                if isinstance(outcome.error, AuthenticationError) and not report.auth_refused:
                    report.auth_refused = True
                    run.stop("the API key was refused")
                    display.note("The API refused the key (HTTP 401): no new jobs are started.")
    finally:
        if handler_set:
            loop.remove_signal_handler(signal.SIGINT)
        display.stop()
    return report


def _summary(report: BatchReport, options: Options) -> list[tuple[str, str]]:
    progress = report.progress
    stats = progress.stats
    counts = [f"{stats.completed} completed", f"{stats.failed} failed"]
    if stats.cancelled:
        counts.append(f"{stats.cancelled} cancelled")
    if stats.errors:
        counts.append(f"{stats.errors} not created")
    if stats.resumed:
        counts.append(f"{stats.resumed} from the journal")
    if progress.skipped:
        counts.append(f"{progress.skipped} bad lines skipped")
    jobs = report.outcomes + progress.skipped
    style = "bold green" if report.exit_code == EXIT_OK else "bold red"
    headline = f"{jobs} jobs in {_seconds(stats.elapsed)}: "
    if report.interrupted:
        style = "bold yellow"
        of = f" of {progress.total}" if progress.total is not None else ""
        headline = f"Interrupted after {_seconds(stats.elapsed)}: {jobs}{of} jobs ended: "
    lines = [
        ("", ""),
        (headline + ", ".join(counts), style),
        (
            f"credits: {credits_text(stats.credits_reserved)} reserved, "
            f"{credits_text(stats.credits_used)} used",
            "",
        ),
    ]
    where = []
    if options.out is not None:
        where.append(f"results: {options.out}")
    if options.download is not None:
        where.append(f"videos: {options.download}/")
    if options.journal is not None:
        where.append(f"journal: {options.journal}")
    if where:
        lines.append(("   ".join(where), "dim"))
    return lines


def _interrupt_hint(options: Options, stats: BatchStats, total: int | None) -> str:
    """What was left undone, and the command that resumes it."""
    lines = []
    left = []
    if stats.pending:
        left.append(f"{stats.pending} tasks still running on the server")
    unanswered = stats.read - stats.submitted - stats.errors - stats.resumed
    if unanswered > 0:
        # Journalled with their Idempotency-Keys: a resume re-sends them, and
        # the server replays any it had already made.
        left.append(f"{unanswered} creates unanswered")
    if total is not None and total > stats.read:
        left.append(f"{total - stats.read} jobs not started")
    if left:
        lines.append("Left: " + ", ".join(left) + ".")
    if options.mock:
        lines.append(
            "The embedded mock server ends with this process, so there is nothing to "
            "resume: run the command again to start over."
        )
    else:
        lines.append(
            "Nothing is lost: every task id is in the journal. Resume (no task is created twice):"
        )
        lines.append(f"  {resume_command(options)}")
    return "\n".join(lines) + "\n"


async def _main(options: Options) -> int:
    from .testing import MockEvoLink

    display = make_display(
        sys.stdout, every=options.progress_every, verbose=options.verbose, title=_PROG
    )
    total: int | None
    if options.strict:
        jobs, bad = precheck(options.jobs, _report_to_stderr(options.jobs))
        if bad:
            print(
                f"{_PROG}: {bad} of {jobs} jobs have problems; nothing was sent (--strict)",
                file=sys.stderr,
            )
            return EXIT_USAGE
        total = jobs
    else:
        total = count_jobs(options.jobs)
    results = ResultsFile(options.out)
    try:
        results.open()
    except OSError as exc:
        print(f"{_PROG}: cannot write {options.out}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        async with contextlib.AsyncExitStack() as stack:
            poll = scaled_poll(options.time_scale) if options.time_scale else None
            concurrency = max(16, options.concurrency or 0)
            if options.mock:
                assert options.time_scale is not None
                mock = await stack.enter_async_context(MockEvoLink(time_scale=options.time_scale))
                display.note(
                    f"Embedded mock API on {mock.url} (time x{1 / options.time_scale:g}); "
                    "no key, no network."
                )
                client = EvoLinkClient(
                    mock.api_key,
                    base_url=mock.url,
                    files_base_url=mock.url,
                    poll=poll,
                    max_concurrency=concurrency,
                )
            else:
                client = EvoLinkClient(
                    options.api_key,
                    base_url=options.base_url,
                    poll=poll,
                    max_concurrency=concurrency,
                )
            await stack.enter_async_context(client)
            report = await execute(
                client,
                options.jobs,
                display=display,
                results=results,
                concurrency=options.concurrency,
                journal=options.journal,
                download=options.download,
                total=total,
                on_interrupt=lambda: _interrupt_hint(options, display.progress.stats, total),
            )
    except ValidationError as exc:
        # Before any job: the journal or an option the runner refused.
        display.abort()
        print(f"{_PROG}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (EvoLinkError, OSError, sqlite3.Error, JournalError) as exc:
        display.abort()
        print(f"{_PROG}: the run stopped: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        results.close()
    display.summary(_summary(report, options))
    if report.interrupted:
        sys.stdout.flush()
        sys.stderr.write("\n" + _interrupt_hint(options, report.progress.stats, total))
        sys.stderr.flush()
    return report.exit_code


def _report_to_stderr(path: Path) -> Callable[[JobCheck], None]:
    def report(check: JobCheck) -> None:
        for line in problem_lines(str(path), check):
            print(line, file=sys.stderr)

    return report


def run(args: argparse.Namespace) -> int:
    """Run `evolink-async batch` with parsed `args`; return the exit code."""
    try:
        options = Options.from_args(args)
    except UsageError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    started = time.monotonic()
    try:
        return asyncio.run(_main(options))
    except KeyboardInterrupt:
        # Ctrl-C before the run had started (or after it ended): nothing half done.
        print(
            f"\n{_PROG}: interrupted after {_seconds(time.monotonic() - started)}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
