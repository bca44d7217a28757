"""
The `evolink-async` argument parser and dispatch.

One function per command adds its parser (`_add_<command>`); its handler
imports the command's module (`_cli/<command>.py`) only when it runs, so a
command loads only what it uses (the mock server, `rich`).
`models` and `validate` work offline; `task` and `credits` call the API (key
and base URL from options or the environment); `mock-server` runs the fake
API; `batch` runs a jobs file; `demo` runs the example jobs against an
embedded mock.

Exit codes: 0 success, 1 the input has problems (`validate`), the API
refused (`task`, `credits`) or a job did not complete (`batch`), 2 usage
errors (bad arguments, unreadable file), 130 interrupted (`batch`, `demo`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

from .._version import __version__

if TYPE_CHECKING:
    # Subscripted only for the type checker: argparse's class is not generic at run time.
    _Commands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["main"]

Handler = Callable[[argparse.Namespace], int]


def main(argv: list[str] | None = None) -> int:
    """
    Run `evolink-async` with `argv` (default: `sys.argv[1:]`); return the exit code.

    Argument errors print argparse's usage message and return 2 (rather than
    exiting), so the function can be called from tests and other programs.
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
    return handler(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evolink-async",
        description="Asyncio SDK, task watcher and batch runner for EvoLink's video API.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
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
    parser.add_argument(
        "--api-key", metavar="KEY", help="API key (default: the EVOLINK_API_KEY variable)"
    )
    parser.add_argument(
        "--base-url", metavar="URL", help="API base URL (default: EVOLINK_BASE_URL or the real API)"
    )


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
    parser = commands.add_parser("demo", help="run the example batch against the mock server")
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
    parser = commands.add_parser("task", help="show one task")
    parser.add_argument("task_id", metavar="TASK_ID")
    parser.add_argument("--json", action="store_true", help="print the task's JSON as received")
    _add_api_options(parser)
    parser.set_defaults(handler=_run_task, command_name="task")


def _run_task(args: argparse.Namespace) -> int:
    from . import info

    return info.run_task(args)


def _add_credits(commands: _Commands) -> None:
    parser = commands.add_parser("credits", help="show the account's credits")
    _add_api_options(parser)
    parser.set_defaults(handler=_run_credits, command_name="credits")


def _run_credits(args: argparse.Namespace) -> int:
    from . import info

    return info.run_credits(args)


# ---------------------------------------------------------------- mock-server


def _add_mock_server(commands: _Commands) -> None:
    parser = commands.add_parser("mock-server", help="run the mock EvoLink API locally")
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
        "status", help="jobs by state, and stalled leases (PostgreSQL: a silent process's jobs)"
    )
    export = actions.add_parser(
        "export", help="one JSON record per job (as `--out` writes them) to FILE"
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
            "Read a batch journal (read-only: a run may still hold it) and write one "
            "self-contained HTML page with --html: the jobs on a timeline, coloured by "
            "outcome; creates and outcomes over time; latency per model; failures by "
            "code; credits. Without --html the figures are printed (as JSON with --json)."
        ),
    )
    parser.add_argument("journal", metavar="JOURNAL", help="the journal file of a batch run")
    parser.add_argument("--html", metavar="FILE", help="write the page here")
    parser.add_argument("--title", metavar="TEXT", help="the page's title")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.set_defaults(handler=_run_report, command_name="report")


def _run_report(args: argparse.Namespace) -> int:
    from . import report

    return report.run(args)
