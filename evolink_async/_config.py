"""
A client's settings, from its arguments and the `EVOLINK_*` environment
variables, checked once when the client is made.

| setting | argument | environment | default |
|---|---|---|---|
| API key | `api_key` | `EVOLINK_API_KEY` | none: the first call raises `AuthenticationError` |
| API base URL | `base_url` | `EVOLINK_BASE_URL` | `https://api.evolink.ai` |
| files API URL | `files_base_url` | `EVOLINK_FILES_BASE_URL` | `https://files-api.evolink.ai` |
| proxy | `proxy` | `HTTP_PROXY` / `HTTPS_PROXY` / `NO_PROXY` (with `trust_env`) | none |
| logging | | `EVOLINK_LOG` (`debug` / `info`) | no handler |

An argument wins over the environment; an empty one counts as not given.
Every setting is checked for its type as well as its value (a key is printable
ASCII without spaces, a base URL names a host, a timeout is finite, `poll`,
`retry` and `session` are what they say), and the message names the argument
or variable. A key is never shown in a message, even a broken one.

`default_headers` (and a view's `with_options(headers=...)`) are checked
to be header names and values HTTP can carry, and may not name a header
the SDK sets itself (`RESERVED_HEADERS`: Authorization, Idempotency-Key,
Content-Type, and the ones framing the request): the SDK's own values
always go out.

`EVOLINK_LOG=debug` or `info`, set when the first client is made, attaches
one stderr handler to the `evolink_async` logger at that level (once per
process; any other value is ignored, as openai-python ignores its
`OPENAI_LOG`).

The checks of the client's call arguments live here too (`check_wait_options`,
`check_download_arguments`, `check_batch_arguments`, `check_list_arguments`,
`view_config`): each runs before the call sends or writes anything.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import AsyncIterable, Iterable, Mapping
from types import MappingProxyType
from typing import Final, TypeVar
from urllib.parse import urlsplit

import aiohttp
import attrs

from ._api.hooks import EventHooks, check_event_hooks
from ._api.proxies import mask_proxy
from ._api.retry import RetryPolicy
from ._batch.jobs import Job
from ._errors import Problem, ValidationError
from ._numbers import finite_number, is_whole
from ._values import Task, TaskStatus
from ._watch.policy import PollPolicy

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_FILES_BASE_URL",
    "MAX_PAGE_SIZE",
    "RESERVED_HEADERS",
    "ClientConfig",
    "check_batch_arguments",
    "check_download_arguments",
    "check_headers",
    "check_list_arguments",
    "check_wait_options",
    "client_config",
    "log_from_env",
    "view_config",
]

_T = TypeVar("_T")

DEFAULT_BASE_URL: Final = "https://api.evolink.ai"
DEFAULT_FILES_BASE_URL: Final = "https://files-api.evolink.ai"
#: The largest `page_size` of `GET /v1/tasks` (what EvoLink's own clients use).
MAX_PAGE_SIZE: Final = 100
#: Headers the SDK sets itself; `default_headers` and `with_options(headers=)`
#: may not name them (lower case).
RESERVED_HEADERS: Final = frozenset(
    {
        "authorization",
        "idempotency-key",
        "content-type",
        "content-length",
        "transfer-encoding",
        "host",
    }
)
#: A header name: an HTTP token (RFC 9110).
_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


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
    default_headers: Mapping[str, str] = MappingProxyType({})
    #: May hold proxy credentials: never shown.
    proxy: str | None = attrs.field(default=None, repr=False)
    trust_env: bool = True
    event_hooks: EventHooks | None = None

    @property
    def read_timeout(self) -> float:
        """Seconds a download may go without data: the request timeout's read part."""
        return self.timeout.sock_read or self.timeout.total or 30.0


#: Ints of more bits than this may have more than 4,300 digits, which Python
#: refuses to turn into text (`sys.get_int_max_str_digits`).
_WRITABLE_BITS: Final = 14_000


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
    default_headers: object = None,
    proxy: object = None,
    trust_env: object = True,
    event_hooks: object = None,
    tracer_provider: object = None,
    meter_provider: object = None,
) -> ClientConfig:
    """
    The settings of `EvoLinkClient(...)`; the first call also applies
    `EVOLINK_LOG` (`log_from_env`).

    `session`, `tracer_provider` and `meter_provider` are checked only (the
    client takes them as given).

    Raises:
        ValidationError: an argument (or variable) breaks its rule; the
            message names it, its value (never a key's) and the rule.
    """
    for name, value in locals().items():
        # Before any message writes a value: an int over 4,300 digits has no repr.
        if is_whole(value) and value.bit_length() > _WRITABLE_BITS:
            rule = "a number too long to write (over 4,300 digits)"
            raise ValidationError([Problem(field=name, value=value, rule=rule)])
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
    if not isinstance(trust_env, bool):
        raise ValidationError(f"trust_env={trust_env!r}: must be True or False")
    hooks = check_event_hooks(event_hooks)
    for name, provider, method in (
        ("tracer_provider", tracer_provider, "get_tracer"),
        ("meter_provider", meter_provider, "get_meter"),
    ):
        if provider is not None and not callable(getattr(provider, method, None)):
            raise ValidationError(
                f"{name}={provider!r}: must be an OpenTelemetry {name.title().replace('_', '')} "
                f"(with .{method}()), or None for the global one"
            )
    log_from_env()
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
        default_headers=MappingProxyType(check_headers("default_headers", default_headers)),
        proxy=_proxy(proxy),
        trust_env=trust_env,
        event_hooks=hooks,
    )


def check_headers(name: str, value: object) -> dict[str, str]:
    """
    Extra headers (`default_headers`, `with_options(headers=...)`), checked.

    Raises:
        ValidationError: not a mapping of header names to string values, a
            name or value HTTP cannot carry, or a name the SDK sets itself
            (`RESERVED_HEADERS`).
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(
            f"{name}={value!r}: must be a dict of header names to values, "
            f"not {type(value).__name__}"
        )
    headers: dict[str, str] = {}
    for key, text in value.items():
        if not isinstance(key, str) or not _TOKEN.fullmatch(key):
            raise ValidationError(f"{name}: {key!r} is not a valid header name")
        if key.lower() in RESERVED_HEADERS:
            raise ValidationError(
                f"{name}: {key!r} is set by the SDK itself and cannot be replaced "
                "(the key goes in api_key, an Idempotency-Key in idempotency_key=)"
            )
        if not isinstance(text, str):
            raise ValidationError(f"{name}[{key!r}]: must be a string, not {type(text).__name__}")
        if any(char in text for char in "\r\n\0"):
            raise ValidationError(
                f"{name}[{key!r}]: must not contain a newline or NUL (it would split the header)"
            )
        headers[key] = text
    return headers


def _proxy(value: object) -> str | None:
    """A proxy URL: `http(s)://[user:password@]host[:port]`; a password is never shown."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(
            f"proxy: must be a URL string such as http://proxy:3128, not {type(value).__name__}"
        )
    _check_http_url(value, f"proxy={mask_proxy(value)!r}", "http://proxy:3128", detail=False)
    return value


#: The handler `EVOLINK_LOG` attached, if any (one per process).
_env_handler: list[logging.Handler] = []
_LOG_LEVELS: Final = {"debug": logging.DEBUG, "info": logging.INFO}


def log_from_env() -> None:
    """
    With `EVOLINK_LOG=debug` or `info`, attach a stderr handler at that level
    to the `evolink_async` logger; once per process, later calls do nothing.
    """
    if _env_handler:
        return
    level = _LOG_LEVELS.get(os.environ.get("EVOLINK_LOG", "").strip().lower())
    if level is None:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(level)
    logger = logging.getLogger("evolink_async")
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
    _env_handler.append(handler)


def view_config(
    config: ClientConfig, *, timeout: object, max_retries: object, headers: object
) -> tuple[ClientConfig, dict[str, str]]:
    """
    The settings of a `with_options` view of a client set up by `config`
    (None: keep the client's), and the view's own headers.

    Raises:
        ValidationError: `timeout` as for the client, `max_retries` not a
            whole number >= 0, `headers` as `check_headers`.
    """
    if max_retries is not None and (not is_whole(max_retries) or max_retries < 0):
        raise ValidationError(f"max_retries={max_retries!r}: must be a whole number >= 0")
    extra = check_headers("headers", headers)
    retry = config.retry
    if max_retries is not None:
        retry = attrs.evolve(retry, max_retries=max_retries)
    seconds = config.timeout if timeout is None else _timeout(timeout)
    return attrs.evolve(config, retry=retry, timeout=seconds), extra


def check_list_arguments(
    status: object, model: object, page_size: object
) -> tuple[str | None, str | None, int]:
    """
    The arguments of `list_tasks`: the status's API string, the model, the page size.

    Raises:
        ValidationError: `status` not a `TaskStatus` (but `UNKNOWN`) or its
            string, `model` not None or a non-empty string, `page_size` not a
            whole number from 1 to `MAX_PAGE_SIZE`.
    """
    statuses = [member.value for member in TaskStatus if member is not TaskStatus.UNKNOWN]
    status_value: str | None = None
    if status is not None:
        if not isinstance(status, str) or status not in statuses:
            raise ValidationError(
                f"status={status!r}: must be None, a TaskStatus or one of {', '.join(statuses)}"
            )
        status_value = str(status)
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise ValidationError(f"model={model!r}: must be None or a model id")
    if not is_whole(page_size) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValidationError(
            f"page_size={page_size!r}: must be a whole number from 1 to {MAX_PAGE_SIZE}"
        )
    return status_value, model, page_size


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
    _check_http_url(url, f"{source}={url!r}", default, detail=True)
    if "?" in url or "#" in url:
        # API paths are appended to the base: a query or fragment would swallow them.
        raise ValidationError(f"{source}={url!r}: must not have a query or a fragment")
    return url.rstrip("/")


def _check_http_url(url: str, shown: str, example: str, *, detail: bool) -> None:
    """
    `url` is printable ASCII, http(s), with a host and a valid port.

    `shown` names the setting and its value as the error shows them (a
    proxy's password masked); `detail` adds the parser's reason (never for a
    value that may hold a password).
    """
    if any(not "!" <= char <= "~" for char in url):
        raise ValidationError(
            f"{shown}: must be printable ASCII with no spaces or control characters"
        )
    if not url.startswith(("http://", "https://")):
        raise ValidationError(f"{shown}: must start with http:// or https://")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError as exc:
        reason = f" ({exc})" if detail else ""
        raise ValidationError(f"{shown}: is not a valid URL{reason}") from None
    if not host:
        raise ValidationError(f"{shown}: must name a host, as in {example}")


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
