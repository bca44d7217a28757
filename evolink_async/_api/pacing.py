"""
The kinds of request a client sends, as its 429 pauses and pacers see them.

A server's rate limits are per kind of request: EvoLink's, like the mock's
(`testing/_limits.py`), meter creates and reads apart. So a 429's
Retry-After pauses only requests of its kind (`Transport.pause_for`), and a
`Pacer` (the batch runner's creates per second) paces only its kind: every
attempt of it, retries included, and hears every reply.
"""

from __future__ import annotations

from typing import Final, Protocol

from .._errors import APIError, EvoLinkError, RateLimitError

__all__ = ["CREATE", "READ", "UPLOAD", "Pacer", "request_kind", "tell"]

#: Kinds of request, each with its own 429 pause (see `request_kind`).
CREATE: Final = "create"
READ: Final = "read"
UPLOAD: Final = "upload"
_CREATE_PATH: Final = "/v1/videos/generations"
_UPLOAD_PREFIX: Final = "/api/v1/files/"


class Pacer(Protocol):
    """
    What paces every attempt of one kind of request (`Transport.pace`): the
    batch runner's creates per second, say.
    """

    async def take(self) -> None:
        """Wait until the next attempt may be sent."""
        ...

    def answered(self, *, rate_limited: bool, retry_after: float | None) -> None:
        """The attempt got a reply: a 429 (with its Retry-After) or another."""
        ...

    def lost(self) -> None:
        """The attempt got no reply (timeout, dropped connection, cancelled)."""
        ...


def request_kind(path: str) -> str:
    """The kind a request to `path` is for the 429 pause: `CREATE`, `UPLOAD` or `READ`."""
    if path == _CREATE_PATH:
        return CREATE
    if path.startswith(_UPLOAD_PREFIX):
        return UPLOAD
    return READ


def tell(pacer: Pacer, error: EvoLinkError, retry_after: float | None) -> None:
    """Tell `pacer` what an attempt that failed with `error` says of the rate."""
    if not isinstance(error, APIError) or not error.status:
        pacer.lost()
    elif error.status == 429:
        if retry_after is None and isinstance(error, RateLimitError):
            retry_after = error.retry_after
        pacer.answered(rate_limited=True, retry_after=retry_after)
    else:
        pacer.answered(rate_limited=False, retry_after=None)
