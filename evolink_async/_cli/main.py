"""
The `evolink-async` argument parser and dispatch.

One function per command adds its parser (`_add_<command>`); its handler
imports the command's module (`_cli/<command>.py`) only when it runs, so a
command loads only what it uses (the mock server, `rich`).
`models` and `validate` work offline; `generate`, `wait`, `download`,
`task` and `credits` call the API (key from `--api-key-file` or
`EVOLINK_API_KEY`, see `apikey.py`; base URL from `--base-url` or the
environment); `mock-server` runs the fake API; `batch` runs a jobs file;
`demo` runs the example jobs against an embedded mock; `report` draws a run
from its journal.

Every command ends the same way on a closed output (`... | head`: one line
on stderr, exit 141, as a shell reports SIGPIPE) and on Ctrl-C (one line,
exit 130; `batch` and `generate` first say what is left and how to go on),
never with a traceback.

Exit codes: 0 success, 1 the input has problems (`validate`), the API
refused or a task did not complete, 2 usage errors (bad arguments,
unreadable file; nothing was sent), 130 interrupted, 141 output closed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, TypeAlias

from .._version import __version__
from .apikey import add_key_options

if TYPE_CHECKING:
    # Subscripted only for the type checker: argparse's class is not generic at run time.
    _Commands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["main"]

Handler = Callable[[argparse.Namespace], int]

#: Exit codes a shell gives a process ended by SIGINT and by SIGPIPE (128 + signal).
EXIT_INTERRUPTED: Final = 130
EXIT_BROKEN_PIPE: Final = 141


def main(argv: list[str] | None = None) -> int:
    """
    Run `evolink-async` with `argv` (default: `sys.argv[1:]`); return the exit code.

    Argument errors print argparse's usage message and return 2 (rather than
    exiting), so the function can be called from tests and other programs.
    A closed stdout returns 141 and Ctrl-C 130, each after one line on stderr.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version or a usage error
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    prog = f"evolink-async {getattr(args, 'command_name', '')}".rstrip()
    try:
        code = handler(args)
        # Output still buffered would meet a closed pipe at exit, out of reach.
        sys.stdout.flush()
    except BrokenPipeError:
        _detach_stdout()
        _say(f"{prog}: output closed early (broken pipe)")
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        _say(f"{prog}: interrupted")
        return EXIT_INTERRUPTED
    return code


def _detach_stdout() -> None:
    """
    Point stdout at /dev/null, so the interpreter's last flush of what is
    still buffered cannot fail again on the closed pipe (the fix the Python
    docs give for SIGPIPE).
    """
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _say(line: str) -> None:
    """One line on stderr, unless stderr is gone too."""
    with contextlib.suppress(OSError, ValueError):
        print(line, file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evolink-async",
        description="Asyncio SDK, task watcher and batch runner for EvoLink's video API.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_generate(commands)
    _add_wait(commands)
    _add_download(commands)
    _add_batch(commands)
    _add_demo(commands)
    _add_validate(commands)
    _add_models(commands)
    _add_task(commands)
    _add_credits(commands)
    _add_mock_server(commands)
    _add_journal(commands)
    _add_report(commands)
    return parser


def _add_api_options(parser: argparse.ArgumentParser) -> None:
    add_key_options(parser)
    parser.add_argument(
        "--base-url", metavar="URL", help="API base URL (default: EVOLINK_BASE_URL or the real API)"
    )


def _add_time_scale(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--time-scale",
        type=float,
        metavar="X",
        help="the X of a `mock-server --time-scale X` at --base-url (polling scaled to match)",
    )


def _add_json(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON")


# ---------------------------------------------------------------- generate, wait, download


def _add_generate(commands: _Commands) -> None:
    parser = commands.add_parser(
        "generate",
        help="make one video: create a task, follow it, print (or download) the result",
        description=(
            "Create one task of MODEL, show its progress until it ends, then print the "
            "video URL (with --download DIR: save the video there and print its path). "
            "--image takes a URL or a local file (uploaded first); give it once per image "
            "(a model with a first and a last frame takes two). Any other field: "
            "--field NAME=VALUE, VALUE read as JSON when it parses (5, true, "
            '["a","b"]) and as text otherwise (`evolink-async models MODEL` lists the '
            "fields). Progress goes to stderr, the result to stdout. Ctrl-C stops "
            "following; the task goes on on the server (`evolink-async wait TASK_ID`). "
            "Exit codes: 0 completed, 1 failed, cancelled or refused, 2 bad arguments "
            "(nothing was sent), 130 interrupted."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="the model id (see `evolink-async models`)")
    parser.add_argument("--prompt", metavar="TEXT", help="what the video shows")
    parser.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="URL|PATH",
        help="an input image: an https URL or a local file (repeat for more images)",
    )
    parser.add_argument(
        "--field",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any other field of the model (repeat for more)",
    )
    _add_follow_options(parser)
    parser.set_defaults(handler=_run_generate, command_name="generate")


def _add_follow_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--download", metavar="DIR", help="save the video in DIR (as TASK_ID.mp4)")
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="stop following after this long (the task goes on on the server)",
    )
    _add_json(parser, "the result")
    _add_time_scale(parser)
    _add_api_options(parser)


def _run_generate(args: argparse.Namespace) -> int:
    from . import generate

    return generate.run(args)


def _add_wait(commands: _Commands) -> None:
    parser = commands.add_parser(
        "wait",
        help="follow a task until it ends; print (or download) the result",
        description=(
            "Follow TASK_ID (made by `generate`, `batch` or any program) with live "
            "progress until it completes, fails or is cancelled, then print the video "
            "URL (with --download DIR: save the video and print its path). "
            "Exit codes: 0 completed, 1 failed, cancelled, unknown or timed out, "
            "2 bad arguments, 130 interrupted."
        ),
    )
    parser.add_argument("task_id", metavar="TASK_ID")
    _add_follow_options(parser)
    parser.set_defaults(handler=_run_wait, command_name="wait")


def _run_wait(args: argparse.Namespace) -> int:
    from . import wait

    return wait.run(args)


def _add_download(commands: _Commands) -> None:
    parser = commands.add_parser(
        "download",
        help="save a completed task's video to a file",
        description=(
            "Save the video of TASK_ID to DEST: a file path, or a directory (then "
            "DEST/TASK_ID.mp4), through a temporary file renamed once whole. An expired "
            "result URL is renewed; a task still running is an error (follow it with "
            "`evolink-async wait TASK_ID --download DIR`). Exit codes: 0 saved, 1 the task "
            "has no video (yet) or the download failed, 2 bad arguments or DEST exists."
        ),
    )
    parser.add_argument("task_id", metavar="TASK_ID")
    parser.add_argument("dest", metavar="DEST", help="a file or a directory")
    parser.add_argument("--overwrite", action="store_true", help="replace DEST if it exists")
    _add_json(parser, "the saved file")
    _add_api_options(parser)
    parser.set_defaults(handler=_run_download, command_name="download")


def _run_download(args: argparse.Namespace) -> int:
    from . import download

    return download.run(args)


# ---------------------------------------------------------------- batch


def _add_batch(commands: _Commands) -> None:
    parser = commands.add_parser(
        "batch",
        help="run every job of a JSONL file",
        description=(
            "Create, watch and (with --download) download every job of JOBS.jsonl "
            '(one JSON object per line: {"id": ..., "model": ..., "metadata": {...}, '
            "<the model's fields>}; blank lines and # comments are skipped). "
            "Every task id is journalled as it is created (by default in "
            "JOBS.jsonl.journal beside the file), so an interrupted run picks up "
            "where it stopped when run again with the same journal, without "
            "creating or paying for any task twice. Ctrl-C stops starting jobs "
            "and prints how to resume; Ctrl-C again quits at once. "
            "Exit codes: 0 every job completed, 1 some job did not, "
            "2 usage error (nothing was sent), 130 interrupted."
        ),
    )
    parser.add_argument("jobs", metavar="JOBS.jsonl", help="one job per line")
    parser.add_argument(
        "--out", metavar="PATH", help="write one JSON result per job here, as each finishes"
    )
    parser.add_argument(
        "--concurrency", type=int, metavar="N", help="creates in flight at once (default 16)"
    )
    parser.add_argument(
        "--journal",
        metavar="PATH",
        help=(
            "the resume journal: a file (default: JOBS.jsonl.journal; with --mock: none), or "
            "postgresql://... shared by every machine running the same --run-id"
        ),
    )
    parser.add_argument(
        "--run-id",
        metavar="R",
        help="names the run (required with a PostgreSQL journal): its jobs' keys derive from it",
    )
    parser.add_argument(
        "--lease",
        type=float,
        metavar="SECONDS",
        help="PostgreSQL journal: a silent process's jobs are taken over after this (default 60)",
    )
    parser.add_argument(
        "--creates-per-second",
        type=float,
        metavar="N",
        help="PostgreSQL journal: creates/s for the API key, shared by every machine of the run",
    )
    parser.add_argument(
        "--polls-per-second",
        type=float,
        metavar="N",
        help="PostgreSQL journal: polls/s for the API key, shared (with --creates-per-second)",
    )
    parser.add_argument("--download", metavar="DIR", help="download every video here")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="check every line first; any bad line fails the run before anything is sent",
    )
    parser.add_argument(
        "--mock", action="store_true", help="run against an embedded mock server (no key)"
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        metavar="X",
        # The default quoted here is `batch.MOCK_TIME_SCALE`, not imported:
        # that would load the batch command to parse any command.
        help=(
            "clock of the mock: with --mock (default 0.02: a 165 s task takes 3.3 s), or the "
            "X given to a `mock-server --time-scale X` at --base-url; polling is scaled to match"
        ),
    )
    parser.add_argument(
        "--progress-every",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="seconds between progress lines when stdout is not a terminal (default 5)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="print every job as it ends, not only failures"
    )
    _add_api_options(parser)
    parser.set_defaults(handler=_run_batch, command_name="batch")


def _run_batch(args: argparse.Namespace) -> int:
    from . import batch

    return batch.run(args)


# ---------------------------------------------------------------- demo


def _add_demo(commands: _Commands) -> None:
    parser = commands.add_parser(
        "demo",
        help="run the example batch against the mock server",
        description=(
            "Run the bundled example jobs (every model; some fail or are cancelled on "
            "purpose) through the batch runner against an embedded mock of the API: no "
            "key, no network. The videos, the results, the journal and a report page are "
            "kept in --output (default demo-output/), emptied of the last demo's files "
            "first. --write-jobs FILE writes the example jobs to FILE instead, to edit "
            "and run with `evolink-async batch FILE`."
        ),
    )
    parser.add_argument(
        "--output",
        metavar="DIR",
        default="demo-output",
        help="where the demo keeps what it made (default: demo-output)",
    )
    parser.add_argument(
        "--write-jobs",
        metavar="FILE",
        help="write the example jobs to FILE ('-' for stdout) and stop",
    )
    parser.set_defaults(handler=_run_demo, command_name="demo")


def _run_demo(args: argparse.Namespace) -> int:
    from . import demo

    return demo.run(args)


# ---------------------------------------------------------------- validate


def _add_validate(commands: _Commands) -> None:
    parser = commands.add_parser(
        "validate",
        help="check every job of a JSONL file, sending nothing",
        description=(
            "Check every job of JOBS.jsonl (one JSON object per line: "
            '{"id": ..., "model": ..., <params>}; blank lines and # comments are '
            "skipped) and print each problem with its line number. Exit 1 if any "
            "job is invalid."
        ),
    )
    parser.add_argument("jobs", metavar="JOBS.jsonl", help="the jobs file ('-' for stdin)")
    _add_json(parser, "one line per bad job and a summary line")
    parser.set_defaults(handler=_run_validate, command_name="validate")


def _run_validate(args: argparse.Namespace) -> int:
    from . import validate

    return validate.run(args)


# ---------------------------------------------------------------- models, task, credits


def _add_models(commands: _Commands) -> None:
    parser = commands.add_parser(
        "models",
        help="list the models, their fields, defaults and limits",
        description=(
            "The models this SDK validates, read from its request classes. "
            "Unset fields are not sent; the API then applies the default shown."
        ),
    )
    parser.add_argument("model", nargs="?", help="show only this model id")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=_run_models, command_name="models")


def _run_models(args: argparse.Namespace) -> int:
    from . import info

    return info.run_models(args)


def _add_task(commands: _Commands) -> None:
    parser = commands.add_parser(
        "task",
        help="show one task",
        description=(
            "One GET of TASK_ID: its status, progress, video URL, credits and error "
            "(--json: the reply's task object as received)."
        ),
    )
    parser.add_argument("task_id", metavar="TASK_ID")
    parser.add_argument("--json", action="store_true", help="print the task's JSON as received")
    _add_api_options(parser)
    parser.set_defaults(handler=_run_task, command_name="task")


def _run_task(args: argparse.Namespace) -> int:
    from . import info

    return info.run_task(args)


def _add_credits(commands: _Commands) -> None:
    parser = commands.add_parser(
        "credits",
        help="show the account's credits",
        description="The account's remaining and used credits (and the key's own limit, if any).",
    )
    _add_json(parser, "the balance")
    _add_api_options(parser)
    parser.set_defaults(handler=_run_credits, command_name="credits")


def _run_credits(args: argparse.Namespace) -> int:
    from . import info

    return info.run_credits(args)


# ---------------------------------------------------------------- mock-server


def _add_mock_server(commands: _Commands) -> None:
    parser = commands.add_parser(
        "mock-server",
        help="run the mock EvoLink API locally",
        description=(
            "Serve the mock EvoLink API (tasks, results, the files API, callbacks) on "
            "127.0.0.1 until Ctrl-C, and print the EVOLINK_* variables that point a "
            "program at it. Faults: --fault-rate P gives that share of API requests one "
            "of the --faults kinds, drawn at random; --failure-rate P fails that share "
            "of tasks."
        ),
    )
    parser.add_argument("--port", type=int, default=0, metavar="N", help="port (default: any)")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="X",
        help="multiply every duration by X (0.01: a 165 s task takes 1.65 s)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for durations and faults")
    parser.add_argument(
        "--api-key",
        metavar="KEY",
        help="the key the mock accepts (default: the mock's fixed fake key)",
    )
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="share of API requests (0-1) that get a random fault (default 0)",
    )
    parser.add_argument(
        "--faults",
        metavar="KINDS",
        default="rate_limit,server_error,drop_before,slow",
        help=(
            "the fault kinds --fault-rate draws from, comma-separated: rate_limit, "
            "server_error, drop_before, drop_after, slow (default: all but drop_after)"
        ),
    )
    parser.add_argument(
        "--failure-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="share of tasks (0-1) that fail with a random error code (default 0)",
    )
    _add_json(parser, "the URLs and key (one line, once serving)")
    parser.add_argument(
        "--creates-per-second",
        type=float,
        default=None,
        metavar="N",
        help="per-key limit on creates: 429 with Retry-After past it (default: none)",
    )
    parser.add_argument(
        "--reads-per-second",
        type=float,
        default=None,
        metavar="N",
        help="per-key limit on task reads: 429 with Retry-After past it (default: none)",
    )
    parser.set_defaults(handler=_run_mock_server, command_name="mock-server")


def _run_mock_server(args: argparse.Namespace) -> int:
    from . import mock_server

    return mock_server.run(args)


# ---------------------------------------------------------------- journal


def _add_journal(commands: _Commands) -> None:
    parser = commands.add_parser(
        "journal",
        help="look into a batch journal (SQLite file or postgresql://...)",
        description="Read a batch journal: counts by state, or one record per job.",
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION")
    status = actions.add_parser(
        "status",
        help="jobs by state, and stalled leases (PostgreSQL: a silent process's jobs)",
        description=(
            "How many jobs of the journal are begun (no task yet), created (no outcome "
            "yet) and finished; with PostgreSQL also the stalled leases."
        ),
    )
    _add_json(status, "the counts")
    export = actions.add_parser(
        "export",
        help="one JSON record per job (as `--out` writes them) to FILE",
        description="Write one JSON line per journalled job, the record `batch --out` writes.",
    )
    for action in (status, export):
        action.add_argument("journal", metavar="JOURNAL", help="a journal file or a URL")
        action.add_argument("--run-id", metavar="R", help="the run (required with PostgreSQL)")
        action.add_argument(
            "--lease",
            type=float,
            metavar="SECONDS",
            help="a job whose owner was silent this long is stalled (default 60)",
        )
    export.add_argument("--out", metavar="FILE", required=True, help="write the records here")
    status.set_defaults(handler=_run_journal, command_name="journal status")
    export.set_defaults(handler=_run_journal, command_name="journal export")
    parser.set_defaults(handler=lambda _args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _run_journal(args: argparse.Namespace) -> int:
    from . import journal

    return journal.run(args)


# ---------------------------------------------------------------- report


def _add_report(commands: _Commands) -> None:
    parser = commands.add_parser(
        "report",
        help="a picture of a batch run from its journal (one HTML page)",
        description=(
            "Read a batch journal (taking no lock: a run may still be writing it) and write one "
            "self-contained HTML page with --html: the jobs on a timeline, coloured by "
            "outcome; creates and outcomes over time; polls over time; latency per model; "
            "failures by code; credits. Without --html the figures are printed (as JSON "
            "with --json). JOURNAL is a journal file, or a postgresql:// URL with --run-id "
            "R: the run's jobs and the polls of all its processes."
        ),
    )
    parser.add_argument(
        "journal", metavar="JOURNAL", help="the journal of a batch run: a file or a URL"
    )
    parser.add_argument("--run-id", metavar="R", help="the run (required with PostgreSQL)")
    parser.add_argument("--html", metavar="FILE", help="write the page here")
    parser.add_argument("--title", metavar="TEXT", help="the page's title")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.set_defaults(handler=_run_report, command_name="report")


def _run_report(args: argparse.Namespace) -> int:
    from . import report

    return report.run(args)
