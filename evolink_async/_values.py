"""
What the API returns, as frozen values: `Task` and the pieces it is made of,
`Credits` and `UploadedFile`.

Parsing lives in `_convert.py`; these classes only hold data.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeVar

import attrs

__all__ = [
    "RETRYABLE_ERROR_CODES",
    "Credits",
    "ReplyJSON",
    "Task",
    "TaskError",
    "TaskStatus",
    "UploadedFile",
    "Usage",
]

_EMPTY: Mapping[str, Any] = MappingProxyType({})

C = TypeVar("C", bound=type)

#: Error codes of failed tasks that are worth resubmitting: capacity and
#: timeout problems on the provider's side, as EvoLink's own MCP server treats
#: them. Everything else (content policy, bad images, ...) fails again.
RETRYABLE_ERROR_CODES: frozenset[str] = frozenset(
    {
        "generation_timeout",
        "quota_exceeded",
        "resource_exhausted",
        "service_error",
        "service_unavailable",
    }
)


class TaskStatus(enum.StrEnum):
    """
    A task's state; the values are the API's own strings.

    `UNKNOWN` stands for any status string this SDK does not know yet; the
    original string stays in `Task.raw["status"]`, and waiting goes on.
    """

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        """True for `COMPLETED`, `FAILED` and `CANCELLED`: nothing changes after these."""
        return self in _TERMINAL

    @classmethod
    def parse(cls, value: str) -> TaskStatus:
        """
        The member for an API status string; `UNKNOWN` for strings not known.
        """
        member = _BY_VALUE.get(value)
        if member is None:
            member = _BY_VALUE.get(value.strip().lower())
        return TaskStatus.UNKNOWN if member is None else member


_TERMINAL = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})
_BY_VALUE: dict[str, TaskStatus] = {m.value: m for m in TaskStatus if m is not TaskStatus.UNKNOWN}


@attrs.frozen(kw_only=True, slots=True)
class Usage:
    """
    Billing of one task, as the API reports it.

    `credits_reserved` is held when the task is created; `credits_used` (seen
    on finished tasks) is what was finally charged. Any field may be None when
    the reply leaves it out.
    """

    billing_rule: str | None = None
    credits_reserved: float | None = None
    credits_used: float | None = None
    user_group: str | None = None


@attrs.frozen(kw_only=True, slots=True)
class TaskError:
    """
    Why a task failed: the server's `code` and `message`.

    `retryable` is True for the codes worth resubmitting
    (`RETRYABLE_ERROR_CODES`: timeouts and capacity problems).
    """

    code: str | None = None
    message: str = ""
    retryable: bool = False
    suggestion: str | None = None


class ReplyJSON(bytes):
    """
    A task's JSON as the reply sent it (internal): what `Task.raw` is read
    from, on first use.

    The converter stores this in a task's `raw` slot instead of the parsed
    object: kept as dicts of boxed values, a watched task's last reply costs
    about six times its bytes (2.0 kB for a 335-byte reply), on every
    watched task, and few callers ever look at `raw`. A class of its own so
    that no value a caller passes as `raw` is ever mistaken for one.
    """

    __slots__ = ()


class _RawFromJSON:
    """
    `Task.raw`: the slot's value, with a `ReplyJSON` parsed on first read
    and the result kept in the slot (so `task.raw is task.raw`, as for a
    mapping passed in).

    Everything that reads the field (attrs' `__getstate__` for pickling,
    `attrs.asdict`, `attrs.evolve`, cattrs' generated unstructure hooks)
    goes through `getattr`, so it sees the mapping, never the bytes.
    """

    __slots__ = ("_slot",)

    def __init__(self, slot: Any) -> None:
        self._slot = slot

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        if instance is None:
            return self._slot
        value = self._slot.__get__(instance, owner)
        if type(value) is ReplyJSON:
            # Bytes `json.loads` read once already when the reply came, and
            # kept only when shallow (see `structure_task`): this reads them
            # again into a mapping equal to that one, with no recursion
            # limit near.
            value = json.loads(value)
            self._slot.__set__(instance, value)
        return value

    def __set__(self, instance: object, value: object) -> None:
        self._slot.__set__(instance, value)

    def __delete__(self, instance: object) -> None:
        self._slot.__delete__(instance)


def _raw_read_on_demand(cls: C) -> C:
    """Put `_RawFromJSON` in front of the `raw` slot attrs made for `cls`."""
    setattr(cls, "raw", _RawFromJSON(cls.__dict__["raw"]))  # noqa: B010 -- mypy refuses `cls.raw = ...` on a TypeVar
    return cls


@_raw_read_on_demand
@attrs.frozen(kw_only=True, slots=True)
class Task:
    """
    One snapshot of a generation task, as `POST /v1/videos/generations` or
    `GET /v1/tasks/{id}` returned it.

    Snapshots never change; reading the task again gives a new one. Fields the
    reply left out are None (or empty); `raw` keeps the JSON exactly as
    received, unknown fields included. `request_id` is the server's id of the
    reply the snapshot came from (`X-Request-Id` / `X-Oneapi-Request-Id`, for
    support tickets), None for a callback body or a reply without one; it is
    left out of equality, like `raw`.

    The SDK keeps the reply's bytes and parses `raw` from them the first
    time it is read: a watched task then costs a fraction of the memory.
    """

    id: str
    status: TaskStatus
    progress: int = 0
    model: str | None = None
    created: datetime | None = None
    estimated_time: float | None = None
    can_cancel: bool | None = None
    video_duration: float | None = None
    results: tuple[str, ...] = ()
    usage: Usage | None = None
    error: TaskError | None = None
    raw: Mapping[str, Any] = attrs.field(default=_EMPTY, eq=False, repr=False)
    request_id: str | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def video_url(self) -> str | None:
        """The generated video's URL (`results[0]`), or None before completion."""
        return self.results[0] if self.results else None

    @property
    def is_terminal(self) -> bool:
        """True once the task is completed, failed or cancelled."""
        return self.status.is_terminal

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Task:
        """
        A `Task` from the API's JSON (a reply or a callback body).

        Raises:
            APIError: `data` lacks a usable `id` or `status`, or a field has
                a type no tolerant reading can make sense of.
        """
        from ._convert import structure_task

        return structure_task(data)


@attrs.frozen(kw_only=True, slots=True)
class Credits:
    """
    The account's credit balance from `GET /v1/credits`.

    `remaining_credits` and `used_credits` are the user's; `token_*` are the
    API key's own limits when it has any; `raw` is the reply's `data`.
    """

    remaining_credits: float | None = None
    used_credits: float | None = None
    token_remaining_credits: float | None = None
    token_used_credits: float | None = None
    token_unlimited_credits: bool | None = None
    raw: Mapping[str, Any] = attrs.field(default=_EMPTY, eq=False, repr=False)


@attrs.frozen(kw_only=True, slots=True)
class UploadedFile:
    """
    A file stored by EvoLink's files API, valid for 72 hours.

    Put `file_url` in a request's image field.
    """

    file_id: str
    file_url: str
    download_url: str | None = None
    file_name: str | None = None
    original_name: str | None = None
    file_size: int | None = None
    mime_type: str | None = None
    upload_path: str | None = None
    upload_time: str | None = None
    expires_at: str | None = None
    raw: Mapping[str, Any] = attrs.field(default=_EMPTY, eq=False, repr=False)
