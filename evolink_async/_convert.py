"""
The one cattrs converter: API JSON <-> values, built by `make_converter()`.

Replies are read tolerantly, because the API's own examples disagree on which
fields are present: anything but a task's `id` and `status` may be missing,
numbers may come as strings, unknown fields are kept in `raw` (a task read
from a reply keeps the reply's bytes, which `Task.raw` parses when first
read). Only a reply that cannot be a task at all (no id, no status, a list
where an object goes) raises, and then as `MalformedResponseError`, which the
reply decoder turns into an `APIError` carrying the HTTP status and request id.

As cattrs' own `preconf` modules do, the converter is made by a function
(`make_converter()`, once, into `CONVERTER`); nothing is registered on import
and cattrs' global converter is never used. cattrs generates the hooks where
the class matches the JSON (`UploadedFile` in, the `--out` record out, with
tolerant leaf hooks for text and numbers). Two hooks are written by hand:
`Task`, read on every poll, where the hand-written reader measured 6.6 us per
reply against 10.3 us for a cattrs-generated one of only its flat fields
(2026-12-01, Python 3.11, under load; the ratio is what matters); and
`Credits`, whose reply nests the values under `data.user` and `data.token`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override

from ._values import (
    RETRYABLE_ERROR_CODES,
    Credits,
    ReplyJSON,
    Task,
    TaskError,
    TaskStatus,
    UploadedFile,
    Usage,
)

__all__ = ["CONVERTER", "MalformedResponseError", "make_converter", "structure_task"]


class MalformedResponseError(ValueError):
    """A reply that cannot be read as the value it should be (internal)."""


def _number(value: object) -> float | None:
    """A finite float from a JSON number or numeric string, else None."""
    # Fast paths for what `json.loads` gives (exact types: bool is not int here).
    if type(value) is int:
        return _int_float(value)
    if type(value) is float:
        return value if math.isfinite(value) else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return _int_float(value)
    if isinstance(value, float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return result if math.isfinite(result) else None


def _int_float(value: int) -> float | None:
    """An int as a float; None for one beyond the float range (a hostile reply)."""
    try:
        return float(value)
    except OverflowError:
        return None


def _text(value: object) -> str | None:
    if value is None or type(value) is str:
        return value
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if type(value) is dict:
        return value
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return value
    raise MalformedResponseError(f"{what} is a {type(value).__name__}, expected an object")


def _progress(value: object) -> int:
    if type(value) is int and 0 <= value <= 100:
        return value
    number = _number(value)
    if number is None:
        return 0
    return int(min(100.0, max(0.0, number)))


def _timestamp(value: object) -> datetime | None:
    number = _number(value)
    if number is None:
        return None
    return _datetime(number)


@functools.lru_cache(maxsize=1024)
def _datetime(number: float) -> datetime | None:
    # Cached: a task's `created` is the same on every poll, and tasks created
    # in the same second share one value (datetimes are immutable).
    try:
        return datetime.fromtimestamp(number, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _duration(value: object) -> float | None:
    # Durations repeat (a model's estimate, a video's length): one float per
    # distinct number, from a bounded table, instead of 24 bytes on every task.
    if type(value) is int or type(value) is float:
        shared = _durations.get(value)
        if shared is not None:
            return shared
    number = _read_duration(value)
    if number is not None and number > 0.0 and (type(value) is int or type(value) is float):
        if len(_durations) >= _MAX_DURATIONS:
            _durations.clear()
        _durations[value] = number
    return number


_MAX_DURATIONS = 1024
_durations: dict[object, float] = {}


def _read_duration(value: object) -> float | None:
    if type(value) is int:
        return _int_float(value) if value >= 0 else None
    if type(value) is float:
        return value if 0.0 <= value < math.inf else None
    if value is None:
        return None
    number = _number(value)
    if number is None or number < 0:
        return None
    return number


def _usage(value: object) -> Usage:
    data = value if type(value) is dict else _mapping(value, "usage")
    get = data.get
    billing_rule = get("billing_rule")
    reserved = get("credits_reserved")
    used = get("credits_used")
    user_group = get("user_group")
    # What JSON gives (str, finite float, None) goes as it is; the rest
    # through the tolerant readers.
    key = (
        billing_rule if type(billing_rule) is str else _text(billing_rule),
        reserved if type(reserved) is float and math.isfinite(reserved) else _number(reserved),
        used if used is None else _number(used),
        user_group if type(user_group) is str else _text(user_group),
    )
    # Usage values repeat (every poll of a task, most tasks of a batch):
    # share one immutable object per distinct value, in a bounded table.
    usage = _usages.get(key)
    if usage is None:
        if len(_usages) >= _MAX_USAGES:
            _usages.clear()
        billing_rule, credits_reserved, credits_used, user_group = key
        usage = _usages[key] = Usage(
            billing_rule=billing_rule,
            credits_reserved=credits_reserved,
            credits_used=credits_used,
            user_group=user_group,
        )
    return usage


_MAX_USAGES = 4096
_usages: dict[tuple[str | None, float | None, float | None, str | None], Usage] = {}


def _task_error(value: object) -> TaskError | None:
    if value is None:
        return None
    if isinstance(value, str):
        return TaskError(code=None, message=value)
    data = _mapping(value, "error")
    code = _text(data.get("code"))
    return TaskError(
        code=code,
        message=_text(data.get("message")) or "",
        retryable=code in RETRYABLE_ERROR_CODES,
        suggestion=_text(data.get("suggestion")),
    )


def _results(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list | tuple):
        return tuple(item for item in value if isinstance(item, str) and item)
    raise MalformedResponseError(f"results is a {type(value).__name__}, expected a list of URLs")


#: Beyond this many seconds from 1970 no float or datetime holds a time.
_MAX_SECONDS: Final = 10**15

_STATUSES: dict[object, TaskStatus] = {member.value: member for member in TaskStatus}


#: Replies with more `{` and `[` than this keep `raw` as parsed: bytes are
#: read again on first use, so they are kept only where nesting is far from
#: any recursion limit (a task reply has three to five).
MAX_LAZY_NESTING: Final = 64

_MAX_MODELS = 1024
_models: dict[str, str] = {}


def _model(value: str) -> str:
    """One shared string per model id (every watched task names one of a few)."""
    shared = _models.get(value)
    if shared is None:
        if len(_models) >= _MAX_MODELS:
            _models.clear()
        shared = _models[value] = value
    return shared


def structure_task(
    data: object,
    request_id: str | None = None,
    *,
    source: bytes | None = None,
    expected_id: str | None = None,
) -> Task:
    """
    Read one task object; `request_id` is the id of the reply it came in.

    `source` is `data` as the reply's JSON text: the task keeps it, and
    `Task.raw` is parsed from it when first read (memory: a watched task's
    last reply as bytes, not as dicts). `expected_id` is the id the caller
    asked for; when the reply's id equals it, the task shares that string.

    Raises:
        MalformedResponseError: not an object, or no usable `id` / `status`.
    """
    # Every poll of every watched task comes through here: the common JSON
    # types take the short way (`type(x) is ...`), anything else the helpers.
    if type(data) is not dict and not isinstance(data, Mapping):
        raise MalformedResponseError(f"expected a task object, got {type(data).__name__}")
    get = data.get
    task_id = get("id")
    if (type(task_id) is not str and not isinstance(task_id, str)) or not task_id:
        raise MalformedResponseError("task reply has no 'id'")
    status = get("status")
    if type(status) is not str and not isinstance(status, str):
        raise MalformedResponseError(f"task {task_id} reply has no 'status'")
    info = get("task_info")
    if type(info) is not dict:
        info = _mapping(info, "task_info")
    can_cancel = info.get("can_cancel")
    status_member = _STATUSES.get(status) or TaskStatus.parse(status)
    # The API only documents `error` on failed tasks; some gateways send
    # `"error": null` or an empty object on others. Keep it only when it says
    # something.
    raw_error = get("error")
    error = None if raw_error is None else _task_error(raw_error)
    if error is not None and error.code is None and not error.message:
        error = None
    raw_usage = get("usage")
    raw_results = get("results")
    created = get("created")
    model = get("model")
    progress = get("progress")
    if expected_id is not None and task_id == expected_id:
        task_id = expected_id
    # `Any`: a `ReplyJSON` stands in the slot for the mapping it holds.
    raw: Any = data
    if source is not None and source.count(b"{") + source.count(b"[") <= MAX_LAZY_NESTING:
        raw = source if type(source) is ReplyJSON else ReplyJSON(source)
    if status_member is TaskStatus.COMPLETED:
        progress = 100
    elif type(progress) is not int or not 0 <= progress <= 100:
        progress = _progress(progress)
    return Task(
        id=task_id,
        status=status_member,
        progress=progress,
        model=_model(model) if type(model) is str else _text(model),
        # The usual `created` (an int of seconds) goes straight to the cache.
        created=_datetime(float(created))
        if type(created) is int and -_MAX_SECONDS < created < _MAX_SECONDS
        else _timestamp(created),
        estimated_time=_duration(
            info["estimated_time"] if "estimated_time" in info else get("estimated_time")
        ),
        can_cancel=can_cancel if can_cancel is True or can_cancel is False else None,
        video_duration=_duration(info.get("video_duration")),
        results=() if raw_results is None else _results(raw_results),
        usage=None if raw_usage is None else _usage(raw_usage),
        error=error,
        raw=raw,
        request_id=request_id,
    )


def _structure_credits(data: object, _: type) -> Credits:
    body = _mapping(data, "credits reply")
    inner = _mapping(body.get("data", body), "credits data")
    user = _mapping(inner.get("user"), "credits user")
    token = _mapping(inner.get("token"), "credits token")
    unlimited = token.get("unlimited_credits")
    return Credits(
        remaining_credits=_number(user.get("remaining_credits")),
        used_credits=_number(user.get("used_credits")),
        token_remaining_credits=_number(token.get("remaining_credits")),
        token_used_credits=_number(token.get("used_credits")),
        token_unlimited_credits=unlimited if isinstance(unlimited, bool) else None,
        raw=inner,
    )


def _whole_or_none(value: object, _: type) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def _required_text(value: object, _: type) -> str:
    text = _text(value)
    if not text:
        raise MalformedResponseError(f"expected text, got {type(value).__name__}")
    return text


def configure_converter(converter: cattrs.Converter) -> None:
    """Register the SDK's hooks on `converter`."""
    converter.register_structure_hook(Task, lambda data, _: structure_task(data))
    converter.register_structure_hook(Credits, _structure_credits)
    # Leaf hooks for the generated ones: tolerant, like the hand-written readers.
    converter.register_structure_hook(str, _required_text)
    converter.register_structure_hook(str | None, lambda value, _: _text(value))
    converter.register_structure_hook(int | None, _whole_or_none)
    fields = make_dict_structure_fn(UploadedFile, converter, raw=override(omit=True))

    def structure_uploaded(data: object, cls: type) -> UploadedFile:
        inner = _mapping(data, "upload data")
        try:
            value = fields(inner, UploadedFile)
        except (KeyError, MalformedResponseError):
            raise MalformedResponseError("upload reply has no 'file_id' / 'file_url'") from None
        return attrs.evolve(value, raw=inner)

    converter.register_structure_hook(UploadedFile, structure_uploaded)


def make_converter() -> cattrs.Converter:
    """A converter that reads replies tolerantly and writes records."""
    # Errors come out as they are (no ExceptionGroup of every field), so a
    # bad reply is one MalformedResponseError naming what was wrong.
    converter = cattrs.Converter(detailed_validation=False)
    configure_converter(converter)
    return converter


#: The SDK's converter, made once.
CONVERTER: Final = make_converter()
