"""
A client's settings, from its arguments and the `EVOLINK_*` environment
variables, checked once when the client is made.

| setting | argument | environment | default |
|---|---|---|---|
| API key | `api_key` | `EVOLINK_API_KEY` | none: the first call raises `AuthenticationError` |
| API base URL | `base_url` | `EVOLINK_BASE_URL` | `https://api.evolink.ai` |
| files API URL | `files_base_url` | `EVOLINK_FILES_BASE_URL` | `https://files-api.evolink.ai` |

An argument wins over the environment; an empty one counts as not given.
Every setting is checked for its type as well as its value (a key is printable
ASCII without spaces, a base URL names a host, a timeout is finite, `poll`,
`retry` and `session` are what they say), and the message names the argument
or variable. A key is never shown in a message, even a broken one.

The checks of the client's call arguments live here too (`check_wait_options`,
`check_download_arguments`, `check_batch_arguments`): each runs before the
call sends or writes anything.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, Iterable, Mapping
from typing import Final, TypeVar
from urllib.parse import urlsplit

import aiohttp
import attrs

from ._api.retry import RetryPolicy
from ._batch.jobs import Job
from ._errors import ValidationError
from ._numbers import finite_number, is_whole
from ._values import Task
from ._watch.policy import PollPolicy

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_FILES_BASE_URL",
    "ClientConfig",
    "check_batch_arguments",
    "check_download_arguments",
    "check_wait_options",
    "client_config",
]

_T = TypeVar("_T")

DEFAULT_BASE_URL: Final = "https://api.evolink.ai"
DEFAULT_FILES_BASE_URL: Final = "https://files-api.evolink.ai"


@attrs.frozen(kw_only=True)
class ClientConfig:
    """Everything a client was configured with, resolved and checked."""

    api_key: str | None = attrs.field(repr=False)
    base_url: str
    files_base_url: str
    max_concurrency: int
    retry: RetryPolicy
    timeout: aiohttp.ClientTimeout
    poll: PollPolicy
    max_video_bytes: int
    download_timeout: float

    @property
    def read_timeout(self) -> float:
        """Seconds a download may go without data: the request timeout's read part."""
        return self.timeout.sock_read or self.timeout.total or 30.0


def client_config(
    *,
    api_key: str | None,
    base_url: str | None,
    files_base_url: str | None,
    max_concurrency: object,
    max_retries: int | None,
    timeout: float | aiohttp.ClientTimeout,
    poll: PollPolicy | None,
    retry: RetryPolicy | None,
    max_video_bytes: object,
    download_timeout: object,
    session: aiohttp.ClientSession | None = None,
) -> ClientConfig:
    """
    The settings of `EvoLinkClient(...)`.

    `session` is checked only (the transport takes it as given).

    Raises:
        ValidationError: an argument (or variable) breaks its rule; the
            message names it, its value (never a key's) and the rule.
    """
    if not is_whole(max_concurrency):
        raise ValidationError(f"max_concurrency={max_concurrency!r}: must be a whole number")
    if max_concurrency < 1:
        raise ValidationError(f"max_concurrency={max_concurrency!r}: must be at least 1")
    retry = _instance("retry", retry, RetryPolicy)
    poll = _instance("poll", poll, PollPolicy)
    session = _instance("session", session, aiohttp.ClientSession)
    if session is not None and session.closed:
        raise ValidationError("session: this aiohttp.ClientSession is closed")
    retry = retry or RetryPolicy()
    if max_retries is not None:
        # RetryPolicy's own validator names the field and the rule.
        retry = attrs.evolve(retry, max_retries=max_retries)
    if not is_whole(max_video_bytes) or max_video_bytes <= 0:
        raise ValidationError(f"max_video_bytes={max_video_bytes!r}: must be a whole number > 0")
    seconds = finite_number(download_timeout)
    if seconds is None or seconds <= 0:
        raise ValidationError(
            f"download_timeout={download_timeout!r}: must be a finite number of seconds > 0"
        )
    return ClientConfig(
        api_key=_api_key(api_key),
        base_url=_base_url("base_url", base_url, "EVOLINK_BASE_URL", DEFAULT_BASE_URL),
        files_base_url=_base_url(
            "files_base_url", files_base_url, "EVOLINK_FILES_BASE_URL", DEFAULT_FILES_BASE_URL
        ),
        max_concurrency=max_concurrency,
        retry=retry,
        timeout=_timeout(timeout),
        poll=poll or PollPolicy(),
        max_video_bytes=max_video_bytes,
        download_timeout=seconds,
    )


def _instance(name: str, value: _T | None, kind: type[_T]) -> _T | None:
    """`value` if it is None or a `kind`."""
    if value is not None and not isinstance(value, kind):
        raise ValidationError(
            f"{name}={value!r}: must be a {kind.__name__} (or None for the default), "
            f"not {type(value).__name__}"
        )
    return value


#: Names for the characters a key copied from a file or a web page picks up.
_CHARACTER_NAMES: Final = {
    "\n": "a newline",
    "\r": "a carriage return",
    "\t": "a tab",
    " ": "a space",
}


def _api_key(value: object) -> str | None:
    """The key from the argument or `EVOLINK_API_KEY`, checked; never shown in a message."""
    source = "api_key"
    if value is None:
        value, source = os.environ.get("EVOLINK_API_KEY"), "EVOLINK_API_KEY"
    if not isinstance(value, str):
        if value is None:
            return None
        raise ValidationError(f"{source}: must be a string, not {type(value).__name__}")
    for index, char in enumerate(value):
        # A header value must be visible ASCII; anything else is a paste
        # accident (a trailing newline above all) the API would only answer
        # with a 401.
        if not "!" <= char <= "~":
            name = _CHARACTER_NAMES.get(char, f"the character U+{ord(char):04X}")
            where = "at the end" if index == len(value) - 1 else f"at index {index}"
            if index == 0:
                where = "at the start"
            raise ValidationError(
                f"{source}: must be printable ASCII with no spaces or control characters; "
                f"it has {name} {where} (of {len(value)} characters)"
            )
    return value or None


def _timeout(value: object) -> aiohttp.ClientTimeout:
    """Seconds per request (finite, > 0), or an `aiohttp.ClientTimeout` whose parts are."""
    if isinstance(value, aiohttp.ClientTimeout):
        for part in ("total", "connect", "sock_read", "sock_connect"):
            seconds = getattr(value, part)
            number = finite_number(seconds)
            if seconds is not None and (number is None or number <= 0):
                raise ValidationError(
                    f"timeout.{part}={seconds!r}: must be None or a finite number of seconds > 0"
                )
        threshold = finite_number(value.ceil_threshold)
        if threshold is None or threshold < 0:
            raise ValidationError(
                f"timeout.ceil_threshold={value.ceil_threshold!r}: must be a finite number >= 0"
            )
        return value
    number = finite_number(value)
    if number is None or number <= 0:
        raise ValidationError(
            f"timeout={value!r}: must be a finite number of seconds > 0 "
            "(or an aiohttp.ClientTimeout)"
        )
    return aiohttp.ClientTimeout(total=number)


def _base_url(name: str, value: object, env: str, default: str) -> str:
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"{name}={value!r}: must be a URL string, not {type(value).__name__}")
    url = value or os.environ.get(env) or default
    source = name if value else env
    if any(not "!" <= char <= "~" for char in url):
        raise ValidationError(
            f"{source}={url!r}: must be printable ASCII with no spaces or control characters"
        )
    if not url.startswith(("http://", "https://")):
        raise ValidationError(f"{source}={url!r}: must start with http:// or https://")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError as exc:
        raise ValidationError(f"{source}={url!r}: is not a valid URL ({exc})") from None
    if not host:
        raise ValidationError(f"{source}={url!r}: must name a host, as in {default}")
    if "?" in url or "#" in url:
        # API paths are appended to the base: a query or fragment would swallow them.
        raise ValidationError(f"{source}={url!r}: must not have a query or a fragment")
    return url.rstrip("/")


def check_wait_options(timeout: object, on_progress: object) -> None:
    """
    The options of `wait` (and `generate`, before it submits).

    Raises:
        ValidationError: `timeout` is not None or a finite number >= 0, or
            `on_progress` is not None or callable.
    """
    if timeout is not None:
        number = finite_number(timeout)
        if number is None or number < 0:
            raise ValidationError(
                f"timeout={timeout!r}: must be a finite number of seconds >= 0 (None: no limit)"
            )
    if on_progress is not None and not callable(on_progress):
        raise ValidationError(
            f"on_progress={on_progress!r}: must be a function (sync or async) or None"
        )


def _path_text(name: str, value: object, *, optional: bool) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str | os.PathLike) or not isinstance(os.fspath(value), str):
        raise ValidationError(
            f"{name}={value!r}: must be a str or os.PathLike path, not {type(value).__name__}"
        )
    if not os.fspath(value):
        raise ValidationError(f"{name}={value!r}: must not be empty")
    if "\0" in os.fspath(value):
        raise ValidationError(f"{name}={value!r}: must not contain a NUL character")


def check_download_arguments(task: object, dest: object, overwrite: object) -> None:
    """
    The arguments of `download`.

    Raises:
        ValidationError: `task` is not a `Task`, `dest` not a non-empty
            str/PathLike path, or `overwrite` not a bool.
    """
    if not isinstance(task, Task):
        raise ValidationError(
            f"task={task!r}: must be a Task (from submit, wait or get_task), "
            f"not {type(task).__name__}"
        )
    _path_text("dest", dest, optional=False)
    if not isinstance(overwrite, bool):
        raise ValidationError(f"overwrite={overwrite!r}: must be True or False")


def check_batch_arguments(jobs: object, journal: object, download_dir: object) -> None:
    """
    The arguments of `batch` that `BatchRun` does not check itself.

    Raises:
        ValidationError: `jobs` is not an iterable or async iterable of jobs
            (a string, bytes, a mapping or a lone `Job` included), or `journal`
            or `download_dir` is not None or a non-empty str/PathLike path.
    """
    if isinstance(jobs, str | bytes | Mapping | Job) or not isinstance(
        jobs, Iterable | AsyncIterable
    ):
        raise ValidationError(
            f"jobs={jobs!r}: must be an iterable or async iterable of Jobs or job dicts "
            f"(a list, a generator, ...), not {type(jobs).__name__}"
        )
    _path_text("journal", journal, optional=True)
    _path_text("download_dir", download_dir, optional=True)
