"""
The one flat record of a job's outcome: what `JobOutcome.to_record()` returns,
what `evolink-async batch --out` writes a line of, and what
`evolink-async journal export` would write.

The schema is the attrs class `OutcomeRecord`, declared once; a line of the
jobs file that could not be read gets the same record with status `invalid`
(plus its line number).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from .._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    ClientClosedError,
    EvoLinkError,
    NotSubmittedError,
    TaskCancelledError,
    TaskFailedError,
    ValidationError,
)
from .._values import Task, TaskStatus

__all__ = ["OutcomeRecord", "error_code", "error_message", "invalid_record", "outcome_record"]


@attrs.frozen(kw_only=True)
class OutcomeRecord:
    """One job's outcome, flat and JSON-ready; field order is the record's key order."""

    job_id: str | None
    model: str | None
    task_id: str | None
    status: str
    ok: bool
    video_url: str | None
    path: str | None
    error_code: str | None
    error_message: str | None
    credits_reserved: float | None
    credits_used: float | None
    resumed: bool
    metadata: dict[str, Any] | None


def outcome_status(task: Task | None, error: EvoLinkError | None) -> str:
    """
    The record's `status`: `completed`, `failed`, `cancelled`,
    `download_failed` (completed, but the file did not arrive),
    `not_submitted` (the run stopped first) or `error` (no task outcome).
    """
    if error is None and task is not None and task.status is TaskStatus.COMPLETED:
        return "completed"
    if isinstance(error, TaskFailedError):
        return "failed"
    if isinstance(error, TaskCancelledError):
        return "cancelled"
    if task is not None and task.status is TaskStatus.COMPLETED:
        return "download_failed"
    if task is not None and task.status in (TaskStatus.FAILED, TaskStatus.CANCELLED):
        return task.status.value
    if isinstance(error, NotSubmittedError):
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
    if isinstance(error, NotSubmittedError):
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


def outcome_record(
    *,
    job_id: str,
    model: str,
    task: Task | None,
    error: EvoLinkError | None,
    path: Path | None,
    resumed: bool,
    metadata: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The record of one outcome, as a dict in the schema's key order."""
    usage = task.usage if task is not None else None
    record = OutcomeRecord(
        job_id=job_id,
        model=model,
        task_id=task.id if task is not None else None,
        status=outcome_status(task, error),
        ok=error is None and task is not None and task.status is TaskStatus.COMPLETED,
        video_url=task.video_url if task is not None else None,
        path=str(path) if path is not None else None,
        error_code=error_code(error),
        error_message=error_message(error),
        credits_reserved=usage.credits_reserved if usage is not None else None,
        credits_used=usage.credits_used if usage is not None else None,
        resumed=resumed,
        metadata=dict(metadata) if metadata is not None else None,
    )
    return attrs.asdict(record, recurse=False)


def invalid_record(*, line: int, job_id: str | None, problems: tuple[str, ...]) -> dict[str, Any]:
    """The record of a job line that could not be read: status `invalid`, plus `line`."""
    record = OutcomeRecord(
        job_id=job_id,
        model=None,
        task_id=None,
        status="invalid",
        ok=False,
        video_url=None,
        path=None,
        error_code="invalid_job",
        error_message="; ".join(problems),
        credits_reserved=None,
        credits_used=None,
        resumed=False,
        metadata=None,
    )
    return {**attrs.asdict(record, recurse=False), "line": line}
