"""
What the journal keeps of an outcome, and what a re-run does with it.

- `journal_record` / `read_record`: the outcome record written by the
  journal's `finished` write (the task JSON as received, the downloaded path,
  the error's class name, message, status and code), and the outcome read
  back from it. Error classes are found by name in a fixed table, so a
  renamed exception cannot change what a resume does.
- `is_final`: whether an outcome is final (journalled; a re-run leaves the job
  alone), or belongs to this run only (a re-run re-attaches to the task).
- `worth_resending`: whether a create that failed should be sent again by a
  re-run (with the same Idempotency-Key, so never billed twice).

A record never holds the API key: only what the server returned about the
task and the SDK's own error texts.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import anyio

from .. import _errors
from .._convert import MalformedResponseError, structure_task
from .._errors import (
    APIConnectionError,
    APIError,
    ClientClosedError,
    EvoLinkError,
    MalformedReplyError,
    NotFoundError,
    RateLimitError,
    ServerError,
    TaskCancelledError,
    TaskFailedError,
    ValidationError,
)
from .._values import Task
from .jobs import Job, JobOutcome

if TYPE_CHECKING:
    from .._api.endpoints import Endpoints
    from .journal import JournalEntry
    from .store import JobJournal

__all__ = ["is_final", "journal_record", "read_record", "resumed_outcome", "worth_resending"]

#: The `APIError` classes a record may name, by name.
_API_ERRORS: Final[Mapping[str, type[APIError]]] = {
    cls.__name__: cls
    for cls in (
        _errors.APIError,
        _errors.BadRequestError,
        _errors.IdempotencyConflictError,
        _errors.AuthenticationError,
        _errors.InsufficientCreditsError,
        _errors.PermissionDeniedError,
        _errors.NotFoundError,
        _errors.RequestTooLargeError,
        _errors.RateLimitError,
        _errors.ServerError,
    )
}


def journal_record(
    task: Task | None, error: EvoLinkError | None, path: Path | None
) -> dict[str, Any]:
    """
    The journal's outcome record: JSON, no secrets.

    A task whose reply JSON cannot be written again (nested deeper than the
    encoder goes; some Pythons read deeper than they write) is kept as the
    fields a resume needs: id, status, progress, results, usage and error.
    """
    record: dict[str, Any] = {"task": _task_json(task) if task is not None else None}
    if path is not None:
        record["path"] = str(path)
    if error is not None:
        record["error"] = {
            "type": type(error).__name__,
            "message": getattr(error, "message", None) or str(error),
            "status": getattr(error, "status", None),
            "code": getattr(error, "code", None),
        }
    return record


def read_record(record: Mapping[str, Any]) -> tuple[Task | None, EvoLinkError | None, Path | None]:
    """(task, error, path) of an outcome record, as an earlier run wrote it."""
    raw_task = record.get("task")
    task: Task | None = None
    if isinstance(raw_task, Mapping):
        try:
            task = structure_task(raw_task)
        except MalformedResponseError:
            task = None
    path_text = record.get("path")
    path = Path(path_text) if isinstance(path_text, str) else None
    return task, _error(record.get("error"), task), path


def _task_json(task: Task) -> dict[str, Any]:
    raw = dict(task.raw)
    try:
        json.dumps(raw)
    except (RecursionError, ValueError, TypeError):
        raw = {"id": task.id, "status": task.status.value, "progress": task.progress}
        if task.results:
            raw["results"] = list(task.results)
        for key in ("usage", "error", "model", "created"):
            value = task.raw.get(key)
            try:
                json.dumps(value)
            except (RecursionError, ValueError, TypeError):
                continue
            raw[key] = value
    return raw


def _error(record: object, task: Task | None) -> EvoLinkError | None:
    if not isinstance(record, Mapping):
        return None
    kind = str(record.get("type"))
    if kind == "TaskFailedError" and task is not None:
        return TaskFailedError(task)
    if kind == "TaskCancelledError" and task is not None:
        return TaskCancelledError(task)
    message = str(record.get("message") or "error recorded by an earlier run")
    cls = _API_ERRORS.get(kind)
    if cls is not None:
        status = record.get("status")
        code = record.get("code")
        return cls(
            message,
            status=status if isinstance(status, int) else 0,
            code=code if isinstance(code, str | int) else None,
        )
    if kind == "ValidationError":
        return ValidationError(message)
    return EvoLinkError(message)


def worth_resending(error: EvoLinkError) -> bool:
    """
    True when a re-run should send the create again (with the same key): the
    server may have made the task (a dropped connection, an unreadable reply,
    the client closed while the create was out), or refused for a reason
    that may pass (5xx, 429, a key or permission problem being fixed).
    """
    transient = ServerError | RateLimitError | APIConnectionError | MalformedReplyError
    return isinstance(error, transient | ClientClosedError) or (
        isinstance(error, APIError) and error.status in (0, 401, 403, 408, 409)
    )


def is_final(error: EvoLinkError | None) -> bool:
    """
    True when an outcome is final for the journal; otherwise a re-run
    re-attaches to the task (the wait ended for a reason of this run: the
    client closed, a key was refused, the download failed).
    """
    return error is None or isinstance(
        error, TaskFailedError | TaskCancelledError | NotFoundError | ValidationError
    )


async def resumed_outcome(
    job: Job,
    index: int,
    entry: JournalEntry,
    *,
    journal: JobJournal,
    endpoints: Endpoints,
    download: Callable[[Job, Task], Awaitable[Path]] | None,
) -> JobOutcome:
    """
    The outcome of a job an earlier run finished, from its journal entry;
    with `download`, its video is fetched again (from a fresh read of the
    task) when the file is missing, and the new outcome journalled.
    """
    assert entry.outcome is not None
    task, error, path = read_record(entry.outcome)
    if (
        download is not None
        and error is None
        and task is not None
        and (path is None or not await anyio.Path(path).exists())
    ):
        try:
            fresh = await endpoints.get_task(task.id)
            path = await download(job, fresh)
            task = fresh
        except _errors.EvoLinkError as exc:
            error = exc
        assert job.id is not None
        await journal.finished(job.id, journal_record(task, error, path))
    return JobOutcome(job=job, task=task, error=error, path=path, resumed=True, index=index)
