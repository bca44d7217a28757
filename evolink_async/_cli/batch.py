"""
`evolink-async batch JOBS.jsonl`: a JSONL file of jobs through the batch runner.

    evolink-async batch jobs.jsonl --out results.jsonl --download videos/

- **Reading.** The file is streamed one line at a time (a million-line file
  never sits in memory) through the checks of `evolink-async validate`
  (`jobfile.check_job_lines`, which reads each job with `read_job`, as
  `client.batch` does). A bad line is reported on stderr with its line
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
  A resumed run writes the file afresh, with every job in it, once it holds
  the journal: a run refused at the start (another run holds the journal,
  the file is not a journal) leaves the last results as they were.
- **One run per journal.** A second run on a journal in use is refused at
  once (exit 2), before anything is sent.
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
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import attrs

from .._batch.jobs import BatchStats, JobOutcome
from .._batch.pgjournal import safe_url
from .._batch.records import invalid_record
from .._batch.shared_budget import SharedBudget
from .._batch.store import DEFAULT_LEASE, is_database_url
from .._client import EvoLinkClient
from .._errors import AuthenticationError, EvoLinkError, JournalError, ValidationError
from .._text import printable
from .._watch.policy import PollPolicy
from .apikey import KeyOptionError, resolve_key
from .calls import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UsageError
from .display import Display, Progress, credits_text, make_display, seconds_text
from .jobfile import JobCheck, JobLines, count_jobs, precheck, problem_lines
from .records import ResultsFile

__all__ = [
    "EXIT_INTERRUPTED",
    "MOCK_TIME_SCALE",
    "BatchReport",
    "Options",
    "UsageError",
    "execute",
    "resume_command",
    "run",
]

#: The mock's clock against real time, for `--mock` and the demo: a 165 s task
#: takes 3.3 s, long enough to watch, short enough to wait for. The `--time-scale`
#: help in `main.py` quotes it.
MOCK_TIME_SCALE: Final = 0.02
_PROG: Final = "evolink-async batch"


@attrs.frozen(kw_only=True)
class Options:
    """The batch command's options, checked (see `Options.from_args`)."""

    jobs: Path
    out: Path | None = None
    concurrency: int | None = None
    #: A file, or a `postgresql://` URL (then `run_id` is set).
    journal: Path | str | None = None
    run_id: str | None = None
    lease: float | None = None
    #: With a PostgreSQL journal: one key's creates/s and polls/s, shared.
    creates_per_second: float | None = None
    polls_per_second: float | None = None
    download: Path | None = None
    strict: bool = False
    mock: bool = False
    time_scale: float | None = None
    progress_every: float = 5.0
    verbose: bool = False
    api_key: str | None = attrs.field(default=None, repr=False)
    api_key_given: bool = False
    api_key_file: Path | None = None
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
        try:
            key = None if args.mock else resolve_key(args, _PROG)
        except KeyOptionError as exc:
            raise UsageError(str(exc)) from None
        if not args.mock and key is None:
            raise UsageError(
                "no API key: set EVOLINK_API_KEY or pass --api-key-file PATH "
                "(or add --mock to try it against a local mock server)"
            )
        if args.lease is not None and not args.lease > 0:
            raise UsageError(f"--lease {args.lease}: must be > 0")
        for flag, rate in (
            ("--creates-per-second", args.creates_per_second),
            ("--polls-per-second", args.polls_per_second),
        ):
            if rate is not None and not 0 < rate < float("inf"):
                raise UsageError(f"{flag} {rate}: must be a number > 0")
            if rate is not None and not is_database_url(args.journal):
                raise UsageError(
                    f"{flag}: the budget is shared through the journal's database: "
                    "needs --journal postgresql://..."
                )
        if args.polls_per_second is not None and args.creates_per_second is None:
            raise UsageError("--polls-per-second: give --creates-per-second too")
        shared: str | None = None
        if is_database_url(args.journal):
            shared = args.journal
            if not args.run_id:
                raise UsageError(
                    "--journal postgresql://...: needs --run-id R (the same on every machine)"
                )
        if shared is not None:
            journal: Path | None = None
        elif args.journal:
            journal = Path(args.journal)
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
            time_scale = MOCK_TIME_SCALE
        return cls(
            jobs=jobs,
            out=out,
            concurrency=args.concurrency,
            journal=shared if shared is not None else journal,
            run_id=args.run_id or None,
            lease=args.lease,
            creates_per_second=args.creates_per_second,
            polls_per_second=args.polls_per_second,
            download=download,
            strict=args.strict,
            mock=args.mock,
            time_scale=time_scale,
            progress_every=args.progress_every,
            verbose=args.verbose,
            api_key=None if args.mock else key,
            api_key_given=bool(args.api_key),
            api_key_file=Path(args.api_key_file) if args.api_key_file else None,
            base_url=args.base_url,
        )


def resume_command(options: Options) -> str:
    """The command line that resumes a run made with `options` (never with the key)."""
    parts = ["evolink-async", "batch", str(options.jobs)]
    if options.journal is not None:
        parts += ["--journal", _shown(options.journal)]
    if options.run_id is not None:
        parts += ["--run-id", options.run_id]
    if options.lease is not None:
        parts += ["--lease", str(options.lease)]
    if options.creates_per_second is not None:
        parts += ["--creates-per-second", f"{options.creates_per_second:g}"]
    if options.polls_per_second is not None:
        parts += ["--polls-per-second", f"{options.polls_per_second:g}"]
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
    if options.api_key_file is not None:
        command += " " + shlex.join(["--api-key-file", str(options.api_key_file)])
    elif options.api_key_given:
        command += " --api-key ..."
    return command


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
    journal: Path | str | None = None,
    download: Path | None = None,
    run_id: str | None = None,
    lease: float | None = None,
    budget: SharedBudget | None = None,
    total: int | None = None,
    on_outcome: Callable[[JobOutcome], None] | None = None,
    on_interrupt: Callable[[], str] | None = None,
    on_start: Callable[[], None] | None = None,
) -> BatchReport:
    """
    Run the jobs of `jobs` on `client`, showing progress and writing results.

    Bad lines are reported on stderr, written to `results` and skipped. The
    first SIGINT stops the run (`BatchRun.stop`); the second prints
    `on_interrupt()` and exits the process at once with code 130.
    `on_start()` is called once the run has its journal and reads the first
    line, before anything is written to `results`.

    Returns:
        The counts; `report.exit_code` is the command's exit code.
    """
    progress = display.progress
    progress.total = total
    report = BatchReport(progress=progress)

    def on_bad(check: JobCheck) -> None:
        progress.skipped += 1
        results.write(invalid_record(line=check.line, job_id=check.id, problems=check.problems))
        for line in problem_lines(str(jobs), check):
            print(f"{line} (line skipped)", file=sys.stderr, flush=True)

    run = client.batch(
        JobLines(jobs, on_bad, on_start=on_start),
        concurrency=concurrency,
        journal=journal,
        download_dir=download,
        run_id=run_id,
        lease=DEFAULT_LEASE if lease is None else lease,
        budget=budget,
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
                results.write(outcome.to_record())
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
    headline = f"{jobs} jobs in {seconds_text(stats.elapsed)}: "
    if report.interrupted:
        style = "bold yellow"
        of = f" of {progress.total}" if progress.total is not None else ""
        headline = f"Interrupted after {seconds_text(stats.elapsed)}: {jobs}{of} jobs ended: "
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
        where.append(f"journal: {_shown(options.journal)}")
    if where:
        lines.append(("   ".join(where), "dim"))
    if isinstance(options.journal, Path):
        page = options.journal.parent / "report.html"
        command = shlex.join(["evolink-async", "report", str(options.journal), "--html", str(page)])
        lines.append((f"a picture of the run: {command}", "dim"))
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
    # Imported here: only --mock needs the mock server.
    from ..testing import MockEvoLink

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
    problem = _unwritable(options.out)
    if problem is not None:
        print(f"{_PROG}: cannot write {options.out}: {problem}", file=sys.stderr)
        return EXIT_USAGE
    started = False

    def on_start() -> None:
        # The run holds its journal: only now is --out emptied, so a run
        # refused at the start leaves the last results alone.
        nonlocal started
        if not started:
            started = True
            results.open()

    try:
        async with contextlib.AsyncExitStack() as stack:
            poll = PollPolicy().scaled(options.time_scale) if options.time_scale else None
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
            budget = _budget(options)
            if budget is not None:
                await stack.enter_async_context(budget)
            report = await execute(
                client,
                options.jobs,
                display=display,
                results=results,
                concurrency=options.concurrency,
                journal=options.journal,
                download=options.download,
                run_id=options.run_id,
                lease=options.lease,
                budget=budget,
                total=total,
                on_interrupt=lambda: _interrupt_hint(options, display.progress.stats, total),
                on_start=on_start,
            )
    except ValidationError as exc:
        # Before any job: an option the runner refused.
        display.abort()
        print(f"{_PROG}: {printable(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except JournalError as exc:
        display.abort()
        if not started:  # refused at the start: nothing was sent
            print(f"{_PROG}: {printable(exc)}; nothing was sent", file=sys.stderr)
            return EXIT_USAGE
        print(f"{_PROG}: the run stopped: {printable(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:
        raise  # stdout closed (`| head`): `main` ends the command
    except (EvoLinkError, OSError) as exc:
        display.abort()
        print(f"{_PROG}: the run stopped: {printable(exc)}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        results.close()
    display.summary(_summary(report, options))
    if report.interrupted:
        sys.stdout.flush()
        sys.stderr.write("\n" + _interrupt_hint(options, report.progress.stats, total))
        sys.stderr.flush()
    return report.exit_code


def _shown(journal: Path | str) -> str:
    """A journal as printed: a database URL without its password."""
    return safe_url(journal) if isinstance(journal, str) else str(journal)


def _unwritable(path: Path | None) -> str | None:
    """Why `path` cannot be written, or None; an existing file is left as it is."""
    if path is None:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


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
            f"\n{_PROG}: interrupted after {seconds_text(time.monotonic() - started)}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


def _budget(options: Options) -> SharedBudget | None:
    """The shared budget `--creates-per-second` asks for, in the journal's database."""
    if options.creates_per_second is None or not isinstance(options.journal, str):
        return None
    return SharedBudget(
        options.journal,
        creates_per_second=options.creates_per_second,
        polls_per_second=options.polls_per_second,
    )
