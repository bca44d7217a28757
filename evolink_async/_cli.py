"""
The `evolink-async` command line.

One function per subcommand adds its parser (`_add_<command>`) and one runs
it (`_run_<command>`), so each command can grow on its own. `models` and
`validate` work offline; `task` and `credits` call the API (key and base URL
from options or the environment); `mock-server` runs the fake API; `demo`
hands over to `evolink_async._demo.main(args)`; `batch` to
`evolink_async._cli_batch.run(args)`.

Exit codes: 0 success, 1 the input has problems (`validate`), the API
refused (`task`, `credits`) or a job did not complete (`batch`), 2 usage
errors (bad arguments, unreadable file, unavailable command), 130
interrupted (`batch`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import attrs

from ._errors import Problem, ValidationError
from ._models import MODELS, ModelSpec, build_request, model_specs
from ._models.rules import did_you_mean
from ._version import __version__

__all__ = ["JobCheck", "check_job_lines", "main"]

Handler = Callable[[argparse.Namespace], int]

#: Keys of a job line that are not request fields (as the batch runner reads them).
_JOB_KEYS = ("id", "model", "metadata")

_JSON_TYPES: dict[type, str] = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


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
    return parser


def _not_available(args: argparse.Namespace) -> int:
    print(f"evolink-async {args.command_name}: not available yet", file=sys.stderr)
    return 2


# ---------------------------------------------------------------- batch


def _add_batch(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
        help="the resume journal (default: JOBS.jsonl.journal; with --mock: none)",
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
    # Imported lazily: the batch command pulls in the client and the mock server.
    from . import _cli_batch

    return _cli_batch.run(args)


# ---------------------------------------------------------------- demo


def _add_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("demo", help="run the example batch against the mock server")
    parser.set_defaults(handler=_run_demo, command_name="demo")


def _run_demo(args: argparse.Namespace) -> int:
    # Imported lazily: the demo pulls in the client and the mock server.
    try:
        demo = importlib.import_module("evolink_async._demo")
    except ModuleNotFoundError as exc:
        if exc.name != "evolink_async._demo":
            raise
        return _not_available(args)
    result: int = demo.main(args)
    return result


# ---------------------------------------------------------------- validate


def _add_validate(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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


@attrs.frozen(kw_only=True)
class JobCheck:
    """The verdict on one job line: its number, its id (if any) and its problems."""

    line: int
    id: str | None
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when the job has no problem."""
        return not self.problems


def _job_problems(job: dict[str, Any]) -> list[str]:
    """The problems of one parsed job object (the id is checked by the caller)."""
    model = job.get("model")
    if "model" not in job:
        return ['missing "model" (the model id)']
    if not isinstance(model, str):
        return [f"model={model!r}: must be a model id string"]
    if model not in MODELS:
        hint = did_you_mean(model, tuple(MODELS))
        return [f"model={model!r}: unknown model;{hint} known models: {', '.join(MODELS)}"]
    metadata = job.get("metadata")
    problems = []
    if metadata is not None and not isinstance(metadata, dict):
        problems.append(f"metadata={metadata!r}: must be a JSON object")
    params = {key: value for key, value in job.items() if key not in _JOB_KEYS}
    try:
        build_request(model, params)
    except ValidationError as exc:
        return problems + [str(problem) for problem in exc.problems]
    return problems


def _job_id(job: dict[str, Any]) -> tuple[str | None, str | None]:
    """(the id as text, or None; a problem with it, or None)."""
    if "id" not in job:
        return None, None
    value = job["id"]
    if isinstance(value, str) and value.strip():
        return value, None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value), None
    return None, str(Problem(field="id", value=value, rule="must be a non-empty string"))


def check_job_lines(lines: Iterable[bytes]) -> Iterator[JobCheck]:
    """
    Check JSONL job lines one by one, as they are read.

    Blank lines and lines starting with `#` are skipped; every other line is a
    job and yields one `JobCheck` (line numbers count every line from 1).
    Only the ids seen so far are kept in memory, to report duplicates.
    """
    first_seen: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        data = raw[3:] if number == 1 and raw.startswith(b"\xef\xbb\xbf") else raw
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield JobCheck(line=number, id=None, problems=(f"not UTF-8 text ({exc.reason})",))
            continue
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            job = json.loads(stripped)
        except json.JSONDecodeError as exc:
            yield JobCheck(
                line=number, id=None, problems=(f"invalid JSON: {exc.msg} (column {exc.colno})",)
            )
            continue
        if not isinstance(job, dict):
            kind = _JSON_TYPES.get(type(job), type(job).__name__)
            yield JobCheck(
                line=number, id=None, problems=(f"a job must be a JSON object, not {kind}",)
            )
            continue
        job_id, id_problem = _job_id(job)
        problems = [id_problem] if id_problem else []
        if job_id is not None:
            if job_id in first_seen:
                problems.append(
                    f"duplicate id {job_id!r} (first used on line {first_seen[job_id]})"
                )
            else:
                first_seen[job_id] = number
        problems.extend(_job_problems(job))
        yield JobCheck(line=number, id=job_id, problems=tuple(problems))


def _run_validate(args: argparse.Namespace) -> int:
    name: str = args.jobs
    try:
        stream: IO[bytes] = sys.stdin.buffer if name == "-" else Path(name).open("rb")  # noqa: SIM115 -- closed below
    except OSError as exc:
        print(f"evolink-async validate: cannot read {name}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    jobs = valid = 0
    out = sys.stdout
    try:
        for check in check_job_lines(stream):
            jobs += 1
            if check.ok:
                valid += 1
                continue
            where = f"{name}:{check.line}:"
            if check.id is not None:
                where += f" id={check.id}:"
            for problem in check.problems:
                out.write(f"{where} {problem}\n")
    except OSError as exc:
        print(f"evolink-async validate: error reading {name}: {exc}", file=sys.stderr)
        return 2
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    invalid = jobs - valid
    out.write(f"{jobs} jobs, {valid} valid, {invalid} invalid\n")
    out.flush()
    return 1 if invalid else 0


# ---------------------------------------------------------------- models


def _add_models(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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


def _default_text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _render_spec(spec: ModelSpec) -> list[str]:
    lines = [f"{spec.model}  ({spec.request_class.__name__})", f"  {spec.summary}", ""]
    rows: list[list[str]] = [["field", "type", "required", "default", "limits"]]
    rows += [
        [f.name, f.type, "yes" if f.required else "no", _default_text(f.default), f.limits]
        for f in spec.fields
    ]
    lines += [f"  {line}" for line in _table(rows)]
    lines += ["", f"  image files: {spec.image_files}"]
    lines += [f"  rule: {rule}" for rule in spec.rules]
    return lines


def _run_models(args: argparse.Namespace) -> int:
    specs = model_specs()
    if args.model is not None:
        specs = tuple(s for s in specs if s.model == args.model)
        if not specs:
            hint = did_you_mean(args.model, tuple(MODELS))
            print(
                f"evolink-async models: unknown model {args.model!r};{hint} "
                f"known models: {', '.join(MODELS)}",
                file=sys.stderr,
            )
            return 2
    if args.json:
        json.dump([s.to_json() for s in specs], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    blocks = ["\n".join(_render_spec(s)) for s in specs]
    footer = (
        "Unset fields are left out of the request; the API applies the default shown.\n"
        "URLs are absolute http(s) URLs (no data: URLs); a URL | Path field also takes a\n"
        "pathlib.Path, which is checked against the image limits and uploaded first.\n"
        "Any other model id: send it with RawRequest(model, params) (not validated)."
    )
    sys.stdout.write("\n\n".join([*blocks, footer]) + "\n")
    return 0


# ---------------------------------------------------------------- task


def _add_api_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api-key", metavar="KEY", help="API key (default: the EVOLINK_API_KEY variable)"
    )
    parser.add_argument(
        "--base-url", metavar="URL", help="API base URL (default: EVOLINK_BASE_URL or the real API)"
    )


def _call_api(args: argparse.Namespace, call: Callable[[Any], Any]) -> int:
    """Run `call(client)` on a client made from the options; print API errors, exit 1."""
    import asyncio

    from ._client import EvoLinkClient
    from ._errors import EvoLinkError

    async def run() -> None:
        async with EvoLinkClient(args.api_key, base_url=args.base_url) as client:
            await call(client)

    try:
        asyncio.run(run())
    except EvoLinkError as exc:
        print(f"evolink-async {args.command_name}: {exc}", file=sys.stderr)
        return 1
    return 0


def _add_task(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("task", help="show one task")
    parser.add_argument("task_id", metavar="TASK_ID")
    parser.add_argument("--json", action="store_true", help="print the task's JSON as received")
    _add_api_options(parser)
    parser.set_defaults(handler=_run_task, command_name="task")


def _run_task(args: argparse.Namespace) -> int:
    async def show(client: Any) -> None:
        task = await client.get_task(args.task_id)
        if args.json:
            print(json.dumps(dict(task.raw), indent=2, ensure_ascii=False))
            return
        rows = [
            ("id", task.id),
            ("model", task.model or "-"),
            ("status", task.status.value),
            ("progress", f"{task.progress}%"),
            ("created", task.created.isoformat() if task.created else "-"),
            ("estimated", f"{task.estimated_time:g}s" if task.estimated_time else "-"),
            ("video", task.video_url or "-"),
        ]
        if task.usage is not None:
            rows.append(
                (
                    "credits",
                    f"reserved {task.usage.credits_reserved}, used {task.usage.credits_used}",
                )
            )
        if task.error is not None:
            rows.append(("error", f"[{task.error.code}] {task.error.message}"))
        for name, value in rows:
            print(f"{name:<10} {value}")

    return _call_api(args, show)


# ---------------------------------------------------------------- credits


def _add_credits(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("credits", help="show the account's credits")
    _add_api_options(parser)
    parser.set_defaults(handler=_run_credits, command_name="credits")


def _run_credits(args: argparse.Namespace) -> int:
    async def show(client: Any) -> None:
        balance = await client.get_credits()
        print(f"remaining  {balance.remaining_credits}")
        print(f"used       {balance.used_credits}")
        if balance.token_unlimited_credits is False or balance.token_remaining_credits is not None:
            print(f"key limit  {balance.token_remaining_credits} remaining")

    return _call_api(args, show)


# ---------------------------------------------------------------- mock-server


def _add_mock_server(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    parser.set_defaults(handler=_run_mock_server, command_name="mock-server")


def _run_mock_server(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib

    from .testing import serve_forever

    def ready(mock: Any) -> None:
        print(f"EvoLink mock API on {mock.url}", flush=True)
        print(f"  EVOLINK_BASE_URL={mock.url} EVOLINK_API_KEY={mock.api_key}", flush=True)
        print("Ctrl-C stops it.", flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve_forever(
                port=args.port, on_ready=ready, time_scale=args.time_scale, seed=args.seed
            )
        )
    return 0
