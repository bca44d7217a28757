"""
JSONL job files: which lines are jobs, what is wrong with each, how many there are.

A job file holds one JSON object per line. Blank lines and lines starting
with `#` are skipped; line numbers count every line from 1, so a problem
points at the line an editor shows. This module owns only what is about the
file: text encoding (UTF-8, with or without a byte-order mark), JSON syntax,
"a job is an object", and ids used twice. Everything about one job's contents
(its id, model, metadata and fields) is decided by
`evolink_async._batch.jobs.read_job`, the reader `client.batch` uses, so
`validate`, `batch` and `client.batch` accept and refuse the same jobs.

Image fields may name local files by a path relative to the job file
(`"image_urls": ["frames/cat.png"]`): `read_job` is handed the file's folder
(`base`) and turns each such string into a `pathlib.Path` there, checked at
once and uploaded before the create, so a job file runs the same from any
working directory. URLs stay URLs.

Files are streamed: only the ids seen so far are kept, so a million-line file
never sits in memory.

A line fails alone, whatever it holds: anything `json.loads` refuses (bad
syntax, a number over the interpreter's digit limit, nesting past its
recursion limit) and anything `read_job` refuses (a lone surrogate, NaN,
deep nesting) is a problem of that line, never an exception, and every
problem is printed through `printable`, so no job line can drive the terminal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Final

import attrs

from .._batch.jobs import Job, job_id_of, json_kind, read_job
from .._errors import ValidationError
from .._text import printable

__all__ = [
    "JobCheck",
    "JobLines",
    "check_job_lines",
    "count_jobs",
    "folder_of",
    "precheck",
    "problem_lines",
]

_BOM: Final = b"\xef\xbb\xbf"


@attrs.frozen(kw_only=True)
class JobCheck:
    """
    The verdict on one job line: its number, its id (if any) and its problems.

    `job` is the `Job` read from the line when it has no problem (None
    otherwise), so a caller that runs the line never reads it a second time.
    """

    line: int
    id: str | None
    problems: tuple[str, ...]
    job: Job | None = attrs.field(default=None, repr=False, eq=False)

    @property
    def ok(self) -> bool:
        """True when the job has no problem."""
        return not self.problems


def _job_lines(lines: Iterable[bytes]) -> Iterator[tuple[int, str | UnicodeDecodeError]]:
    """
    (line number, text) for each job line; the error instead when it is not UTF-8.

    The one place that decides which lines are jobs: blank (Unicode
    whitespace) and `#` lines are not. A byte-order mark is allowed on line 1.
    """
    for number, raw in enumerate(lines, start=1):
        data = raw.removeprefix(_BOM) if number == 1 else raw
        try:
            text = data.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            yield number, exc
            continue
        if text and not text.startswith("#"):
            yield number, text


def check_job_lines(lines: Iterable[bytes], *, base: Path | None = None) -> Iterator[JobCheck]:
    """
    Check JSONL job lines one by one, as they are read.

    `base` is the folder relative image paths are read against (the job
    file's); without it an image field takes URLs only.

    Every job line yields one `JobCheck` before the next line is read; blank
    and `#` lines yield nothing. Only the ids seen so far are kept in memory,
    to report duplicates. Jobs without an id are not compared: the runner
    names them by their content when it runs them.
    """
    first_seen: dict[str, int] = {}
    for number, text in _job_lines(lines):
        if isinstance(text, UnicodeDecodeError):
            yield JobCheck(line=number, id=None, problems=(f"not UTF-8 text ({text.reason})",))
            continue
        try:
            item = json.loads(text)
        except json.JSONDecodeError as exc:
            problem = f"invalid JSON: {exc.msg} (column {exc.colno})"
            yield JobCheck(line=number, id=None, problems=(problem,))
            continue
        except RecursionError:
            problem = "invalid JSON: nested too deep to read"
            yield JobCheck(line=number, id=None, problems=(problem,))
            continue
        except ValueError as exc:  # e.g. an integer over the interpreter's digit limit
            problem = f"invalid JSON: {str(exc).partition(';')[0]}"
            yield JobCheck(line=number, id=None, problems=(problem,))
            continue
        if not isinstance(item, dict):
            problem = f"a job must be a JSON object, not {json_kind(item)}"
            yield JobCheck(line=number, id=None, problems=(problem,))
            continue
        job: Job | None = None
        problems: list[str] = []
        try:
            job = read_job(item, base=base)
        except ValidationError as exc:
            problems = [str(problem) for problem in exc.problems]
        except Exception as exc:  # a reader bug must still fail only this line
            problems = [f"unreadable job ({type(exc).__name__})"]
        job_id = job.id if job is not None else _shown_id(item.get("id"))
        if job_id is not None:
            if job_id in first_seen:
                duplicate = f"duplicate id {job_id!r} (first used on line {first_seen[job_id]})"
                problems.insert(0, duplicate)
            else:
                first_seen[job_id] = number
        yield JobCheck(
            line=number, id=job_id, problems=tuple(problems), job=None if problems else job
        )


def _shown_id(value: object) -> str | None:
    """The id of a job `read_job` refused, when the id itself was fine."""
    try:
        return job_id_of(value)
    except Exception:  # refused (a ValidationError), or unreadable
        return None


def count_jobs(path: Path) -> int:
    """Job lines in `path` (by the same rule as `check_job_lines`), not checked."""
    with path.open("rb") as stream:
        return sum(1 for _ in _job_lines(stream))


def precheck(path: Path, report: Callable[[JobCheck], None]) -> tuple[int, int]:
    """Check every line of `path` (for `--strict`); report each bad one; (jobs, bad)."""
    jobs = bad = 0
    with path.open("rb") as stream:
        for check in check_job_lines(stream, base=folder_of(path)):
            jobs += 1
            if not check.ok:
                bad += 1
                report(check)
    return jobs, bad


class JobLines:
    """
    The jobs of a JSONL file, read lazily each time it is iterated.

    A line with problems is handed to `on_bad` and skipped. `on_start` is
    called as each iteration begins: the batch runner reads its first job
    only once it holds its journal, so that is when a run has started.
    """

    def __init__(
        self,
        path: Path,
        on_bad: Callable[[JobCheck], None],
        *,
        on_start: Callable[[], None] | None = None,
    ) -> None:
        self.path = path
        self._on_bad = on_bad
        self._on_start = on_start

    def __iter__(self) -> Iterator[Job]:
        if self._on_start is not None:
            self._on_start()
        with self.path.open("rb") as stream:
            for check in check_job_lines(stream, base=folder_of(self.path)):
                if check.job is None:
                    self._on_bad(check)
                    continue
                yield check.job


def folder_of(path: Path) -> Path:
    """
    The folder relative image paths of the job file `path` are read against:
    absolute, so the paths (and the job fingerprints the journal keeps) do not
    depend on the working directory.
    """
    return path.parent.absolute()


def problem_lines(name: str, check: JobCheck) -> list[str]:
    """
    The lines that report a bad job line: `FILE:LINE: id=ID: problem`, one
    per problem, control characters escaped (`printable`).
    """
    where = f"{name}:{check.line}:"
    if check.id is not None:
        where += f" id={check.id}:"
    return [printable(f"{where} {problem}") for problem in check.problems]
