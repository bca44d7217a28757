"""
The figures of a batch run, gathered in one pass over its journal.

`evolink-async report` draws them (`report.py`); this module reads them: a
journal file with `read_entries` and `read_poll_samples` (read-only, no
lock), or one run of a PostgreSQL journal, opened as `journal status` opens
it (`PgJournal`: the reader joins the run as a process that claims nothing,
and is marked ended when it closes), its entries and every process's poll
samples read a page at a time. Both give the same figures for the same kind
of run, whatever order the journal lists its jobs in. Outcomes
are read as a resume reads them (`read_record`) and named as `--out` names
them (`outcome_status`, `error_code`), so every screen says the same.
"""

from __future__ import annotations

import collections
import hashlib
import heapq
import math
from collections.abc import AsyncIterable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import attrs

from .._batch.journal import JournalEntry, JournalError, _reading, read_entries, read_poll_samples
from .._batch.pgjournal import PgJournal
from .._batch.polls import PollSample
from .._batch.records import error_code, error_message, outcome_status
from .._batch.resume import read_record
from .._batch.store import DEFAULT_LEASE
from .._text import printable
from . import charts

__all__ = [
    "MAX_FAILURE_ROWS",
    "MAX_TIMELINE",
    "RunSummary",
    "ranked",
    "read_database",
    "read_file",
    "summarize",
]

#: Jobs drawn on the timeline at most: more bars than pixel rows say nothing more.
MAX_TIMELINE: Final = 400
#: Failed jobs listed in the table at most (the chart counts them all).
MAX_FAILURE_ROWS: Final = 50


@attrs.define(kw_only=True)
class _Model:
    jobs: int = 0
    completed: int = 0
    credits_reserved: float = 0.0
    credits_used: float = 0.0
    latencies: list[float] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class _Failure:
    job_id: str
    model: str
    status: str
    code: str
    message: str


_Item = tuple[str, str, float | None, float | None, float | None]


@attrs.define(kw_only=True)
class RunSummary:
    """The figures of a run, gathered in one pass over its journal."""

    jobs: int = 0
    outcomes: collections.Counter[str] = attrs.field(factory=collections.Counter)
    credits_reserved: float = 0.0
    credits_used: float = 0.0
    models: dict[str, _Model] = attrs.field(factory=dict)
    failure_codes: collections.Counter[str] = attrs.field(factory=collections.Counter)
    #: Per code, the message of its failed job with the first job id.
    failure_examples: dict[str, str] = attrs.field(factory=dict)
    #: The failed jobs with the first `MAX_FAILURE_ROWS` job ids, by job id.
    failures: list[_Failure] = attrs.field(factory=list)
    creates: list[float] = attrs.field(factory=list)
    finishes: list[float] = attrs.field(factory=list)
    #: An even sample of the jobs for the timeline: (job id, status, begun, created, finished).
    sample: list[_Item] = attrs.field(factory=list)
    timed: int = 0
    first: float | None = None
    last: float | None = None
    #: Poll requests sent, per sample: (when, how many since the process's last sample).
    polls: list[tuple[float, int]] = attrs.field(factory=list)
    #: Poll requests sent by all processes; None: the journal keeps no poll samples.
    polls_sent: int | None = None
    #: Reads of each task, summed, over the jobs whose outcome keeps the count.
    task_polls: int = 0
    polled_tasks: int = 0

    @property
    def polls_per_task(self) -> float | None:
        """Reads per task, over the tasks whose count the journal keeps."""
        return self.task_polls / self.polled_tasks if self.polled_tasks else None

    @property
    def span(self) -> float:
        """Seconds from the first to the last moment the journal recorded."""
        if self.first is None or self.last is None:
            return 0.0
        return self.last - self.first

    def to_json(self) -> dict[str, Any]:
        """The figures as JSON (what `--json` prints)."""
        return {
            "jobs": self.jobs,
            "outcomes": dict(self.outcomes),
            "credits_reserved": self.credits_reserved,
            "credits_used": self.credits_used,
            "started_at": _iso(self.first),
            "ended_at": _iso(self.last),
            "seconds": round(self.span, 3),
            "polls_sent": self.polls_sent,
            "task_polls": self.task_polls if self.polled_tasks else None,
            "polls_per_task": _rounded(self.polls_per_task)
            if self.polls_per_task is not None
            else None,
            "failures_by_code": dict(ranked(self.failure_codes)),
            "models": {
                model: {
                    "jobs": row.jobs,
                    "completed": row.completed,
                    "credits_reserved": row.credits_reserved,
                    "credits_used": row.credits_used,
                    "latency_median": _rounded(charts.quantile(sorted(row.latencies), 0.5)),
                    "latency_p90": _rounded(charts.quantile(sorted(row.latencies), 0.9)),
                }
                for model, row in sorted(self.models.items())
            },
        }


def _rounded(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 3)


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, tz=UTC).isoformat(timespec="seconds")


def _seconds(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def summarize(
    entries: Iterable[JournalEntry], polls: Iterable[PollSample] | None = None
) -> RunSummary:
    """
    The figures of a run from its journal entries (and poll samples), in one pass.

    Memory stays small however long the run: one number per create, finish,
    completed job and poll sample, and a fixed-size sample of jobs for the
    timeline. Nothing depends on the order of the entries (a file gives them
    as first recorded, PostgreSQL by job id): the timeline's jobs are those
    whose ids hash lowest (an even sample, the same on every reading), the
    failed jobs listed and each code's example are the first by job id.
    Without `polls`, or with none, there is no poll data.
    """
    summary, gathering = RunSummary(), _Gathering()
    _add_polls(summary, polls or ())
    for entry in entries:
        _add_entry(summary, gathering, entry)
    return _finish(summary, gathering)


def ranked(counts: collections.Counter[str]) -> list[tuple[str, int]]:
    """`counts` by count, most first, ties by name (the same order whatever was read first)."""
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


@attrs.define
class _Gathering:
    """What `summarize` keeps while it reads, beyond the figures."""

    #: The timeline's candidates, a heap: (-hash of the job id, job id, arrival, item).
    sample: list[tuple[int, str, int, _Item]] = attrs.field(factory=list)
    #: Per failure code, the job id its example comes from.
    example_ids: dict[str, str] = attrs.field(factory=dict)


def _finish(summary: RunSummary, gathering: _Gathering) -> RunSummary:
    summary.sample = [item for *_, item in sorted(gathering.sample, reverse=True)]
    summary.failures = sorted(summary.failures, key=lambda f: f.job_id)[:MAX_FAILURE_ROWS]
    return summary


def _rank(job_id: str) -> int:
    """A job's place in the timeline's sample: a hash, so the sample is even and repeatable."""
    return int.from_bytes(hashlib.blake2b(job_id.encode(), digest_size=8).digest(), "big")


async def _summarize_stream(
    entries: AsyncIterable[JournalEntry], polls: Iterable[PollSample] | None = None
) -> RunSummary:
    """`summarize` of entries read as they come (a PostgreSQL journal's pages)."""
    summary, gathering = RunSummary(), _Gathering()
    _add_polls(summary, polls or ())
    async for entry in entries:
        _add_entry(summary, gathering, entry)
    return _finish(summary, gathering)


def _add_entry(summary: RunSummary, gathering: _Gathering, entry: JournalEntry) -> None:
    """One journalled job into the figures."""
    summary.jobs += 1
    begun, created, finished = (
        _seconds(entry.begun_at),
        _seconds(entry.created_at),
        _seconds(entry.finished_at),
    )
    if entry.outcome is None:
        status = "running" if entry.task_id is not None else "creating"
        finished = None
        task = None
        error = None
    else:
        task, error, _ = read_record(entry.outcome)
        status = outcome_status(task, error)
    summary.outcomes[status] += 1
    if entry.polls is not None:
        summary.task_polls += entry.polls
        summary.polled_tasks += 1
    model = printable(task.model) if task is not None and task.model else "unknown"
    row = summary.models.setdefault(model, _Model())
    row.jobs += 1
    if task is not None and task.usage is not None:
        reserved = task.usage.credits_reserved or 0.0
        used = task.usage.credits_used or 0.0
        row.credits_reserved += reserved
        row.credits_used += used
        summary.credits_reserved += reserved
        summary.credits_used += used
    if status == "completed":
        row.completed += 1
        if created is not None and finished is not None and finished >= created:
            row.latencies.append(finished - created)
    elif entry.outcome is not None:
        code = error_code(error) or status
        summary.failure_codes[code] += 1
        message = error_message(error) or ""
        example = gathering.example_ids.get(code)
        if example is None or entry.job_id < example:
            gathering.example_ids[code] = entry.job_id
            summary.failure_examples[code] = message
        summary.failures.append(
            _Failure(job_id=entry.job_id, model=model, status=status, code=code, message=message)
        )
        if len(summary.failures) >= 2 * MAX_FAILURE_ROWS:  # keep the first by job id
            summary.failures.sort(key=lambda f: f.job_id)
            del summary.failures[MAX_FAILURE_ROWS:]
    if created is not None:
        summary.creates.append(created)
    if finished is not None:
        summary.finishes.append(finished)
    moments = [m for m in (begun, created, finished) if m is not None]
    if moments:
        summary.timed += 1
        low, high = min(moments), max(moments)
        summary.first = low if summary.first is None else min(summary.first, low)
        summary.last = high if summary.last is None else max(summary.last, high)
        item = (entry.job_id, status, begun, created, finished)
        candidate = (-_rank(entry.job_id), entry.job_id, summary.timed, item)
        if len(gathering.sample) < MAX_TIMELINE:
            heapq.heappush(gathering.sample, candidate)
        elif candidate > gathering.sample[0]:  # hashes lower than the highest kept
            heapq.heapreplace(gathering.sample, candidate)


def _add_polls(summary: RunSummary, samples: Iterable[PollSample]) -> None:
    """Each process's cumulative counts as polls per sample, and their sum."""
    last: dict[str, int] = {}
    for sample in samples:
        before = last.get(sample.owner, 0)
        if sample.sent > before:
            summary.polls.append((sample.at.timestamp(), sample.sent - before))
        last[sample.owner] = max(before, sample.sent)
    if last:
        summary.polls_sent = sum(last.values())


async def read_database(url: str, run_id: str) -> tuple[str, RunSummary]:
    """
    The figures of run `run_id` in the PostgreSQL journal `url`, and where (no password).

    Entries are read a page at a time (a run may go on meanwhile), the poll
    samples of every process of the run before them.

    Raises:
        JournalError: the database cannot be reached or read, or holds no job of the run.
    """
    journal = PgJournal(url, run_id=run_id, lease=DEFAULT_LEASE)
    try:
        try:
            await journal.open()
        except ValueError:
            # asyncpg's own reading of the URL refused it (a port that is not a
            # number, a bracket left open); its words may quote the URL's text.
            raise JournalError(f"{journal.where}: not a usable PostgreSQL URL") from None
        polls = await journal.poll_samples()
        summary = await _summarize_stream(journal.entries(), polls)
    finally:
        await journal.close()
    if summary.jobs == 0:
        raise JournalError(
            f"{journal.where}: no job of run {run_id!r} in this journal (is the run id right?)"
        )
    return journal.where, summary


def _check_run(path: Path, run_id: str) -> None:
    """
    Refuse `run_id` if the journal file at `path` belongs to another run.

    Raises:
        JournalError: another run's journal (or not a journal).
    """
    with _reading(path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        row = (
            db.execute("SELECT value FROM meta WHERE key = 'run_id'").fetchone()
            if "meta" in tables
            else None
        )
    if row is not None and row[0] != run_id:
        raise JournalError(f"{path}: the journal of run {row[0]!r}, not {run_id!r}")


def read_file(path: Path, run_id: str | None = None) -> RunSummary:
    """
    The figures of the journal file at `path`, read-only (a run may hold it).

    Raises:
        JournalError: the file is missing or not a journal, or `run_id` is
            given and the journal is another run's.
    """
    if run_id is not None:
        _check_run(path, run_id)
    return summarize(read_entries(path), read_poll_samples(path))
