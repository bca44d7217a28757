"""
`evolink-async journal status|export JOURNAL [--run-id R]`: read a batch journal.

- `status`: how many jobs are begun (key journalled, no task yet), created
  (task id journalled, no outcome yet) and finished; with PostgreSQL also the
  stalled leases (unfinished jobs whose process has been silent longer than
  the lease: the next process of the run takes them over) and the jobs given
  back by a process that stopped.
- `export --out FILE`: one JSON line per job, the record `JobOutcome.to_record()`
  gives (and `batch --out` writes); a job without an outcome yet has status
  `pending` and, once created, its task id.

Both journals: an SQLite file (held while read: not while a run holds it)
or a `postgresql://` URL with `--run-id`. Exit 0, or 2 when the journal
cannot be read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any, Final

from .._batch.jobs import Job, JobOutcome
from .._batch.resume import read_record
from .._batch.store import DEFAULT_LEASE, JobJournal, is_database_url, open_journal
from .._errors import EvoLinkError
from .._models import RawRequest
from .._text import printable, printable_json

__all__ = ["entry_record", "run"]

_EXIT_OK: Final = 0
_EXIT_USAGE: Final = 2


def run(args: argparse.Namespace) -> int:
    """Run `journal status` or `journal export` from parsed arguments; the exit code."""
    prog = f"evolink-async {args.command_name}"
    name: str | Path = args.journal
    if not is_database_url(name):
        name = Path(name)
        if not name.is_file():
            print(f"{prog}: {name}: no such journal file", file=sys.stderr)
            return _EXIT_USAGE
    elif not args.run_id:
        print(f"{prog}: a PostgreSQL journal needs --run-id R", file=sys.stderr)
        return _EXIT_USAGE
    if args.lease is not None and not args.lease > 0:
        print(f"{prog}: --lease {args.lease}: must be > 0", file=sys.stderr)
        return _EXIT_USAGE
    lease = DEFAULT_LEASE if args.lease is None else args.lease
    try:
        if args.command_name == "journal export":
            return asyncio.run(_export(name, args.run_id, lease, Path(args.out)))
        return asyncio.run(_status(name, args.run_id, lease, as_json=args.json))
    except BrokenPipeError:
        raise  # stdout closed (`| head`): `main` ends the command
    except (EvoLinkError, OSError) as exc:
        print(f"{prog}: {printable(str(exc))}", file=sys.stderr)
        return _EXIT_USAGE


async def _opened(name: str | Path, run_id: str | None, lease: float) -> tuple[JobJournal, str]:
    journal, bound, _ = await open_journal(name, run_id=run_id, lease=lease)
    return journal, bound


async def _status(
    name: str | Path, run_id: str | None, lease: float, *, as_json: bool = False
) -> int:
    journal, bound = await _opened(name, run_id, lease)
    try:
        counts = await journal.counts()
    finally:
        await journal.close()
    total = sum(counts.get(state, 0) for state in ("begun", "created", "finished"))
    if as_json:
        record = {"journal": journal.where, "run_id": bound, "jobs": total, **counts}
        print(printable_json(json.dumps(record, ensure_ascii=False)))
        return _EXIT_OK
    print(f"journal: {journal.where}")
    print(f"run: {bound}")
    print(
        f"jobs: {total}: {counts['begun']} begun (no task yet), "
        f"{counts['created']} created (no outcome yet), {counts['finished']} finished"
    )
    if "stalled" in counts:
        print(
            f"stalled leases: {counts['stalled']} (unfinished, their process silent over "
            f"{lease:g} s: the next process of the run takes them over)"
        )
        print(f"given back: {counts.get('released', 0)} (by a process that stopped)")
    return _EXIT_OK


async def _export(name: str | Path, run_id: str | None, lease: float, out: Path) -> int:
    journal, _ = await _opened(name, run_id, lease)
    try:
        with out.open("w", encoding="utf-8") as stream:
            async for entry in journal.entries():
                record = entry_record(entry.job_id, entry.task_id, entry.outcome)
                stream.write(json.dumps(record, separators=(",", ":")) + "\n")
    finally:
        await journal.close()
    return _EXIT_OK


def entry_record(
    job_id: str, task_id: str | None, outcome: dict[str, Any] | Any | None
) -> dict[str, Any]:
    """
    The `to_record()` of one journalled job: its outcome, or `pending`.

    The journal keeps neither the job's model nor its metadata: the model is
    the task's when the outcome has one, and `metadata` is None.
    """
    if outcome is None:
        stand_in = JobOutcome(job=Job(RawRequest("unknown", {}), id=job_id))
        record = stand_in.to_record()
        record.update(status="pending", task_id=task_id, error_code=None, error_message=None)
        return record
    task, error, path = read_record(outcome)
    model = task.model if task is not None and task.model else "unknown"
    job = Job(RawRequest(model, {}), id=job_id)
    return JobOutcome(job=job, task=task, error=error, path=path).to_record()
