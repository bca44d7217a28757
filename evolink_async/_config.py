"""
A client's settings, from its arguments and the `EVOLINK_*` environment
variables, checked once when the client is made.

| setting | argument | environment | default |
|---|---|---|---|
| API key | `api_key` | `EVOLINK_API_KEY` | none: the first call raises `AuthenticationError` |
| API base URL | `base_url` | `EVOLINK_BASE_URL` | `https://api.evolink.ai` |
| files API URL | `files_base_url` | `EVOLINK_FILES_BASE_URL` | `https://files-api.evolink.ai` |

An argument wins over the environment; an empty one counts as not given.
"""

from __future__ import annotations

import os
from typing import Final

import aiohttp
import attrs

from ._api.retry import RetryPolicy
from ._errors import ValidationError
from ._numbers import finite_number, is_number, is_whole
from ._watch.policy import PollPolicy

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_FILES_BASE_URL", "ClientConfig", "client_config"]

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
) -> ClientConfig:
    """
    The settings of `EvoLinkClient(...)`.

    Raises:
        ValidationError: an argument (or variable) breaks its rule; the
            message names it, its value and the rule.
    """
    if not is_whole(max_concurrency):
        raise ValidationError(f"max_concurrency={max_concurrency!r}: must be a whole number")
    if max_concurrency < 1:
        raise ValidationError(f"max_concurrency={max_concurrency!r}: must be at least 1")
    retry = retry or RetryPolicy()
    if max_retries is not None:
        # RetryPolicy's own validator names the field and the rule.
        retry = attrs.evolve(retry, max_retries=max_retries)
    if isinstance(timeout, aiohttp.ClientTimeout):
        client_timeout = timeout
    else:
        if not is_number(timeout) or not timeout > 0:
            raise ValidationError(f"timeout={timeout!r}: must be a number of seconds > 0")
        client_timeout = aiohttp.ClientTimeout(total=float(timeout))
    if not is_whole(max_video_bytes) or max_video_bytes <= 0:
        raise ValidationError(f"max_video_bytes={max_video_bytes!r}: must be a whole number > 0")
    seconds = finite_number(download_timeout)
    if seconds is None or seconds <= 0:
        raise ValidationError(
            f"download_timeout={download_timeout!r}: must be a finite number of seconds > 0"
        )
    key = api_key if api_key is not None else os.environ.get("EVOLINK_API_KEY")
    return ClientConfig(
        api_key=key or None,
        base_url=_base_url("base_url", base_url, "EVOLINK_BASE_URL", DEFAULT_BASE_URL),
        files_base_url=_base_url(
            "files_base_url", files_base_url, "EVOLINK_FILES_BASE_URL", DEFAULT_FILES_BASE_URL
        ),
        max_concurrency=max_concurrency,
        retry=retry,
        timeout=client_timeout,
        poll=poll or PollPolicy(),
        max_video_bytes=max_video_bytes,
        download_timeout=seconds,
    )


def _base_url(name: str, value: str | None, env: str, default: str) -> str:
    url = value or os.environ.get(env) or default
    if not url.startswith(("http://", "https://")):
        source = name if value else env
        raise ValidationError(f"{source}={url!r}: must start with http:// or https://")
    return url.rstrip("/")
