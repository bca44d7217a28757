"""
What a batch run takes and gives: `Job`, `JobOutcome`, `BatchStats`, and the
one reader of a job dict.

`read_job` is the only place that decides whether a job dict
(`{"id": ..., "model": ..., "metadata": ..., <fields>}`) is a job.
`client.batch`, `evolink-async validate` and `evolink-async batch` all call
it, so a job one of them accepts the others accept too, and every problem of a
job is reported at once, each naming its field, its value and the rule.

A job must also be something JSON, the journal and a terminal can hold: no
string with a lone surrogate (no UTF-8 can write it), no NaN or infinity,
no nesting deeper than `MAX_JOB_DEPTH`. `read_job` refuses anything else
with a `ValidationError`, and `job_stand_in` names any item, however
hostile, without raising: one bad job never ends a run.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import re
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any, Final, TypeAlias

import attrs

from .. import _models
from .._checked import checked_arguments
from .._errors import EvoLinkError, Problem, ValidationError
from .._models.rules import did_you_mean
from .._numbers import is_whole
from .._text import printable
from .._values import Task, TaskStatus
from .records import outcome_record

__all__ = [
    "JOB_KEYS",
    "MAX_JOB_DEPTH",
    "BatchStats",
    "Job",
    "JobItem",
    "JobOutcome",
    "JobSource",
    "fingerprint",
    "iterate_jobs",
    "job_id_of",
    "job_stand_in",
    "looks_like_url",
    "read_job",
]

#: A URL's scheme and colon (RFC 3986); two letters at least, so that a
#: Windows drive (`C:\frames\cat.png`) reads as a path.
_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")
#: Keys of a job dict that are not request fields.
JOB_KEYS: Final = frozenset({"id", "model", "metadata"})
#: Levels of objects and arrays a job may nest: far more than any request or
#: metadata needs, and far below the interpreter's recursion limit, which
#: `json.dumps`, `repr` and the journal would otherwise meet mid-run.
MAX_JOB_DEPTH: Final = 100


def _freeze(value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValidationError(
            [Problem(field="metadata", value=value, rule="must be a mapping (a JSON object)")]
        )
    return dict(value)


def _check_request(_: object, __: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, _models.ModelRequest | _models.RawRequest):
        rule = "must be a request object (SeedanceImageToVideo(...), RawRequest(...), ...)"
        raise ValidationError([Problem(field="request", value=value, rule=rule)])


def _check_id(_: object, __: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not (isinstance(value, str) and value.strip()):
        rule = "a job id must be a non-empty string"
        raise ValidationError([Problem(field="id", value=value, rule=rule)])


@checked_arguments
@attrs.frozen
class Job:
    """
    One unit of work for the batch runner.

    Args:
        request: a request object (`SeedanceImageToVideo(...)`, `RawRequest(...)`).
        id: a name unique within the run, used for the journal, the download
            file name and results; default: derived from the request's content.
        metadata: anything of yours, carried to the outcome untouched.
    """

    request: _models.Request = attrs.field(validator=_check_request)
    id: str | None = attrs.field(default=None, validator=_check_id)
    metadata: Mapping[str, Any] | None = attrs.field(default=None, converter=_freeze)


#: One item of `client.batch(jobs)`: a `Job`, or a job dict. A `JobDict` (one
#: `TypedDict` per model, told apart by `model`) is what type checkers can
#: check key by key: annotate a list with it (`jobs: list[JobDict]`) and an
#: editor flags a misspelt field, a bad value or an unknown model id. Any other
#: mapping (JSON read from a file, a dict built at run time) is taken too, and
#: `read_job` checks every item alike.
JobItem: TypeAlias = Job | _models.JobDict | Mapping[str, Any]
JobSource: TypeAlias = Iterable[JobItem] | AsyncIterable[JobItem]


async def iterate_jobs(jobs: JobSource) -> AsyncIterator[JobItem]:
    """The items of a sync or async job source, one at a time, as read."""
    if isinstance(jobs, AsyncIterable):
        async for item in jobs:
            yield item
    else:
        for item in jobs:
            yield item


@attrs.frozen(kw_only=True)
class JobOutcome:
    """
    How one job ended.

    Attributes:
        job: the job, with its id filled in.
        task: the final task snapshot, or None if no task was created.
        error: what went wrong (`TaskFailedError`, `TaskCancelledError`,
            `ValidationError`, an `APIError`, ...), or None.
        path: the downloaded video, when the run downloads.
        resumed: True when the outcome comes from the journal of an earlier run.
    """

    job: Job
    task: Task | None = None
    error: EvoLinkError | None = None
    path: Path | None = None
    resumed: bool = False
    index: int = attrs.field(default=-1, repr=False)

    @property
    def ok(self) -> bool:
        """True when the task completed (and, if downloading, the file is on disk)."""
        return (
            self.error is None
            and self.task is not None
            and (self.task.status is TaskStatus.COMPLETED)
        )

    @property
    def job_id(self) -> str:
        """The job's id."""
        return self.job.id or ""

    def to_record(self) -> dict[str, Any]:
        """
        The one flat, JSON-ready record of this outcome (an `--out` line).

        Keys: `job_id`, `model`, `task_id`, `status` (`completed`, `failed`,
        `cancelled`, `download_failed`, `not_submitted` or `error`), `ok`,
        `video_url`, `path`, `error_code`, `error_message`,
        `credits_reserved`, `credits_used`, `resumed`, `metadata`.
        """
        return outcome_record(
            job_id=self.job_id,
            model=self.job.request.model,
            task=self.task,
            error=self.error,
            path=self.path,
            resumed=self.resumed,
            metadata=self.job.metadata,
        )


@attrs.define(kw_only=True)
class BatchStats:
    """
    Live counts of a run; read `run.stats` at any time.

    `read` counts jobs read; `creating` is creates in flight now;
    `submitted` counts tasks created in this run (re-attached ones included);
    `pending` is tasks created and not finished; `errors` is jobs that ended
    without a task outcome (bad parameters, API refusals); `resumed` is jobs
    whose outcome came from the journal.
    """

    read: int = 0
    creating: int = 0
    submitted: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    errors: int = 0
    resumed: int = 0
    downloaded: int = 0
    credits_reserved: float = 0.0
    credits_used: float = 0.0
    started_at: float = attrs.field(factory=time.monotonic)
    finished_at: float | None = None
    stopped_reason: str | None = None
    concurrency: int = 0

    @property
    def pending(self) -> int:
        """Tasks created and not finished yet."""
        return max(0, self.submitted - self.completed - self.failed - self.cancelled)

    @property
    def finished(self) -> int:
        """Jobs with an outcome."""
        return self.completed + self.failed + self.cancelled + self.errors + self.resumed

    @property
    def elapsed(self) -> float:
        """Seconds since the run started (until it ended)."""
        return (self.finished_at or time.monotonic()) - self.started_at

    @property
    def throughput(self) -> float:
        """Jobs finished per second so far."""
        elapsed = self.elapsed
        return self.finished / elapsed if elapsed > 0 else 0.0


def job_id_of(value: object) -> str | None:
    """
    A job dict's `id` as text: a non-blank string, or a whole number.

    Raises:
        ValidationError: any other value (blank, a float, a list, a string
            with a lone surrogate, a number too long to write, ...).
    """
    if value is None:
        return None
    rule = "a job id must be a non-empty string or number"
    if isinstance(value, str) and value.strip():
        if _writable(value):
            return value
        rule = "a job id must be valid Unicode text (it holds a lone surrogate)"
    elif is_whole(value):
        try:
            # `int.__repr__`: the digits, whatever an int subclass's __str__ says.
            return int.__repr__(value)
        except ValueError:  # over the interpreter's limit on digits
            rule = "a job id number must be short enough to write out"
    raise ValidationError([Problem(field="id", value=value, rule=rule)])


def read_job(item: object, *, base: Path | None = None) -> Job:
    """
    The `Job` for a job dict (or a `Job`, checked), with every problem at once.

    With `base` (the folder of the job file a dict was read from), a string in
    an image field that is not a URL names a local file relative to `base`:
    it becomes a `pathlib.Path` (checked now, uploaded before the create), as
    a `Path` given in Python is.

    Raises:
        ValidationError: the item is not a job; `problems` lists each broken
            rule (id, model, metadata, and every field rule of the model).
    """
    if isinstance(item, Job):
        given: object = item.id
        if given is not None and not (isinstance(given, str) and given.strip()):
            rule = "a job id must be a non-empty string"
            raise ValidationError([Problem(field="id", value=given, rule=rule)])
        if isinstance(given, str) and not _writable(given):
            rule = "a job id must be valid Unicode text (it holds a lone surrogate)"
            raise ValidationError([Problem(field="id", value=given, rule=rule)])
        if _model_of(item.request) is None:
            rule = "must be a request object (a model's class or RawRequest)"
            raise ValidationError([Problem(field="request", value=item.request, rule=rule)])
        return item
    if not isinstance(item, Mapping):
        raise ValidationError(f"a job must be a Job or a JSON object, not {json_kind(item)}")
    unheld = _unheld_value(item)
    if unheld is not None:
        # Nothing else is read: the rules below would meet the same value.
        raise ValidationError([unheld])
    problems: list[Problem] = []
    job_id: str | None = None
    try:
        job_id = job_id_of(item.get("id"))
    except ValidationError as exc:
        problems.extend(exc.problems)
    metadata = item.get("metadata")
    if metadata is not None and not isinstance(metadata, Mapping):
        problems.append(Problem(field="metadata", value=metadata, rule="must be a JSON object"))
    model = item.get("model")
    request: _models.Request | None = None
    if "model" not in item:
        problems.append(Problem(field=None, value=None, rule='missing "model" (the model id)'))
    elif not isinstance(model, str):
        problems.append(Problem(field="model", value=model, rule="must be a model id string"))
    elif model not in _models.MODELS:
        hint = did_you_mean(model, tuple(_models.MODELS))
        rule = f"unknown model;{hint} known models: {', '.join(_models.MODELS)}"
        problems.append(Problem(field="model", value=model, rule=rule))
    else:
        params = {key: value for key, value in item.items() if key not in JOB_KEYS}
        if base is not None:
            params = _local_files(model, params, base)
        try:
            request = _models.build_request(model, params)
        except ValidationError as exc:
            problems.extend(exc.problems)
    if problems or request is None:
        raise ValidationError(problems, model=model if isinstance(model, str) else None)
    return Job(request, id=job_id, metadata=metadata)


def looks_like_url(text: str) -> bool:
    """True when `text` starts with a URL scheme (`https:`, `data:`...), so it is no file path."""
    return _SCHEME.match(text) is not None


def _local_files(model: str, params: dict[str, Any], base: Path) -> dict[str, Any]:
    """`params` with the non-URL strings of `model`'s image fields as paths under `base`."""

    def local(value: object) -> object:
        if isinstance(value, str) and value.strip() and not looks_like_url(value):
            return base / value
        return value

    for name in _image_fields(model):
        value = params.get(name)
        if isinstance(value, list):
            params[name] = [local(item) for item in value]
        elif value is not None:
            params[name] = local(value)
    return params


@functools.cache
def _image_fields(model: str) -> tuple[str, ...]:
    """The fields of `model` that take a local file (`FieldSpec.local_file`)."""
    return tuple(f.name for f in _models.MODELS[model].spec().fields if f.local_file)


def job_stand_in(item: object) -> Job:
    """
    A stand-in job for the outcome of an item `read_job` refused.

    Never raises: its id and model are the item's as text when they can be
    shown (a lone surrogate escaped), else None and `"unknown"`; its params
    are the item's fields with string keys.
    """
    job_id: str | None = None
    model = "unknown"
    params: dict[str, Any] = {}
    with contextlib.suppress(Exception):  # a hostile item: keep what can be shown
        if isinstance(item, Job):
            job_id = _usable_id(_shown(item.id))
            if _model_of(item.request) is not None:
                return attrs.evolve(item, id=job_id)
        elif isinstance(item, Mapping):
            job_id = _usable_id(_shown(item.get("id")))
            shown = _shown(item.get("model"))
            model = shown if shown and shown.strip() else "unknown"
            params = {
                key: value
                for key, value in item.items()
                if isinstance(key, str) and key not in JOB_KEYS
            }
    for fields in (params, {}):
        # Fields RawRequest refuses (not JSON) are dropped, never the id.
        with contextlib.suppress(Exception):
            return Job(_models.RawRequest(model, fields), id=job_id)
    return Job(_models.RawRequest("unknown", {}), id=job_id)


def _usable_id(text: str | None) -> str | None:
    return text if text is not None and text.strip() else None


def _shown(value: object) -> str | None:
    """`value` as text that can be written (None when it has none)."""
    if value is None:
        return None
    try:
        if isinstance(value, str):
            text = value
        elif is_whole(value):
            text = int.__repr__(value)
        else:
            text = str(value)
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    except Exception:  # a __str__ that raises, a number too long to write
        return None


def _model_of(request: object) -> str | None:
    """The model id of a request object; None for anything else."""
    with contextlib.suppress(Exception):
        model = getattr(request, "model", None)
        if isinstance(model, str) and model.strip() and _writable(model):
            return model
    return None


def _writable(text: str) -> bool:
    """True when UTF-8 can write `text` (no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _unheld_value(item: Mapping[Any, Any]) -> Problem | None:
    """
    The first value of `item` that JSON, the journal or a terminal cannot
    hold: a string (or key) with a lone surrogate, a NaN or an infinity, or
    nesting deeper than `MAX_JOB_DEPTH`. Walked without recursion, each
    object once, so neither depth nor a cycle can stop the walk itself.
    """
    seen: set[int] = set()
    stack: list[tuple[object, str, int]] = [(item, "", 0)]
    while stack:
        value, where, depth = stack.pop()
        field = where or None
        if isinstance(value, str):
            if not _writable(value):
                rule = "must be valid Unicode text (it holds a lone surrogate)"
                return Problem(field=field, value=value, rule=rule)
            continue
        if isinstance(value, float):
            if not math.isfinite(value):
                return Problem(field=field, value=value, rule="must be a finite number")
            continue
        if not isinstance(value, Mapping | list | tuple) or id(value) in seen:
            continue
        seen.add(id(value))
        if depth >= MAX_JOB_DEPTH:
            rule = f"nests more than {MAX_JOB_DEPTH} levels of objects and arrays"
            return Problem(field=field or "job", value="...", rule=rule)
        if isinstance(value, Mapping):
            for key, inner in value.items():
                if isinstance(key, str) and not _writable(key):
                    rule = "field names must be valid Unicode text (one holds a lone surrogate)"
                    return Problem(field=field, value=printable(key), rule=rule)
                name = key if isinstance(key, str) else _shown(key) or "?"
                stack.append((inner, f"{where}.{name}" if where else name, depth + 1))
        else:
            for index, inner in enumerate(value):
                stack.append((inner, f"{where}[{index}]", depth + 1))
    return None


def fingerprint(body: Mapping[str, Any]) -> str:
    """A hash of a request body as given (keys sorted): what makes a job that job."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


_JSON_KINDS: Final[Mapping[type, str]] = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def json_kind(value: object) -> str:
    """What a JSON value is, as a message says it ("an array", "null", ...)."""
    return _JSON_KINDS.get(type(value), type(value).__name__)
