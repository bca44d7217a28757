"""
Result videos to disk: one `Downloader` per client, shared by
`client.download` and every batch run of the client.

- One concurrency limit for all of the client's downloads.
- The file is written under a temporary name beside the target and renamed only
  once complete, so `dest` never holds a partial video.
- The size is checked against Content-Length / Content-Range.
- A dropped transfer resumes with `Range` when the server accepts ranges, and
  is retried on transient failures (5xx, 429, dropped connection, timeout)
  by the one retry loop (`retry.retry_loop`, with its Retry-After rule).
- An expired result URL (403/404/410) is refreshed once by re-reading the
  task, since EvoLink's result links expire after 24 hours.
- File writes run in a worker thread, so a web backend's loop never blocks on
  disk.
- Result hosts get a session without the API key and without the client's
  `default_headers`; they do go through the client's proxy (`proxy=`, or
  the environment's with `trust_env`), since a network that needs a proxy
  for the API needs it for the CDN too.
- Each download is one `evolink.download` span when tracing is on.
- Names built from server or job data are sanitised: nothing escapes the
  target directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import random
import re
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, BinaryIO, Final
from urllib.parse import urlsplit

import aiohttp
import anyio
import anyio.to_thread

from .._errors import (
    APIConnectionError,
    APITimeoutError,
    ClientClosedError,
    MalformedReplyError,
    NotFoundError,
)
from .._telemetry import GLOBAL, Telemetry
from .decode import error_from_reply
from .retry import Retryable, RetryPolicy, retry_after_of, retry_loop

__all__ = [
    "DEFAULT_DOWNLOAD_TIMEOUT",
    "DEFAULT_MAX_VIDEO_BYTES",
    "Downloader",
    "check_result_url",
    "safe_filename",
    "target_path",
]

logger = logging.getLogger("evolink_async")

# Disk writes go through a worker thread; batching small network chunks into
# writes of about this size keeps thread hops few without holding much memory.
_WRITE_BATCH = 1 << 20
_EXPIRED_STATUSES = frozenset({403, 404, 410})
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME = 150


def safe_filename(text: str, *, suffix: str = "") -> str:
    """
    A file name made from untrusted text that cannot leave its directory.

    Keeps letters, digits, `.`, `_` and `-`; anything else becomes `_`;
    leading dots are dropped (no hidden files, no `..`). Long or empty names
    get a short hash so distinct inputs stay distinct.
    """
    cleaned = _UNSAFE.sub("_", text).lstrip(".")
    if not cleaned or cleaned != text or len(cleaned) > _MAX_NAME:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        cleaned = f"{cleaned[:_MAX_NAME]}-{digest}" if cleaned else digest
    return cleaned + suffix


def target_path(dest: Path, name: str) -> Path:
    """
    Where a video goes: `dest` itself, or `<dest>/<safe name>.mp4` for a directory.

    Raises:
        ValueError: the resolved path would leave `dest` (cannot happen with a
            sanitised name; checked anyway).
    """
    if not dest.is_dir():
        return dest
    path = dest / safe_filename(name, suffix=".mp4")
    if path.resolve().parent != dest.resolve():
        raise ValueError(f"refusing to write {path}: outside {dest}")
    return path


#: The largest video downloaded by default (a few minutes of 1080p is well
#: under 1 GB; an endless body must not fill the disk).
DEFAULT_MAX_VIDEO_BYTES: Final = 2 * 1024**3
#: Seconds one download may take by default, all retries included: a slow
#: drip must end, or a few of them would hold every download slot.
DEFAULT_DOWNLOAD_TIMEOUT: Final = 900.0


def check_result_url(url: str) -> str:
    """
    The URL, if it is one the SDK downloads: absolute `http(s)` with a host.

    Raises:
        MalformedReplyError: anything else (`file:`, `javascript:`, `ftp:`,
            a relative URL): a result URL comes from the server, and no retry
            makes such a URL fetchable.
    """
    scheme = host = ""
    with contextlib.suppress(ValueError):  # an unparsable URL (a bad port, brackets)
        parts = urlsplit(url)
        scheme, host = parts.scheme.lower(), parts.hostname or ""
    if scheme not in ("http", "https") or not host:
        shown = url if len(url) <= 200 else f"{url[:200]}..."
        raise MalformedReplyError(f"result URL {shown!r} is not an absolute http(s) URL")
    return url


class Downloader:
    """
    Streams result videos to disk for one client, a few at a time.

    Args:
        session: the session for result hosts (never one carrying the key),
            asked for on each download, since it is made lazily.
        retry: the client's retry policy.
        read_timeout: seconds a download may go without data.
        max_parallel: downloads at once, for the whole client.
        refresh_url: re-reads a task's result URL (for an expired link).
        max_bytes: the largest video accepted.
        deadline: seconds one download may take, every retry included.
        proxy_for: the proxy for a URL (None: direct).
        telemetry: where the download's span goes.
    """

    def __init__(
        self,
        *,
        session: Callable[[], aiohttp.ClientSession],
        retry: RetryPolicy,
        read_timeout: float,
        max_parallel: int,
        refresh_url: Callable[[str], Awaitable[str | None]],
        max_bytes: int = DEFAULT_MAX_VIDEO_BYTES,
        deadline: float = DEFAULT_DOWNLOAD_TIMEOUT,
        proxy_for: Callable[[str], str | None] = lambda _: None,
        telemetry: Telemetry = GLOBAL,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self._session = session
        self._proxy_for = proxy_for
        self._telemetry = telemetry
        self.retry = retry
        self.read_timeout = read_timeout
        self.max_bytes = max_bytes
        self.deadline = deadline
        self._max_parallel = max_parallel
        self._limit: asyncio.Semaphore | None = None
        self._refresh_url = refresh_url
        self._sleep = sleep
        self._running: set[anyio.CancelScope] = set()
        self._closed = False

    async def download(self, task_id: str, url: str, dest: Path, *, overwrite: bool) -> Path:
        """
        Stream `url` (the result of task `task_id`) to `dest`, a file path.

        Raises:
            FileExistsError: `dest` exists and `overwrite` is False.
            MalformedReplyError: the URL is not an http(s) URL, or the video is
                over `max_bytes`.
            APIError: a non-retryable HTTP status, or retries spent on 5xx/429.
            APIConnectionError: the transfer kept failing.
            APITimeoutError: the download took longer than `deadline`.
            ClientClosedError: the client was closed meanwhile.
        """
        check_result_url(url)
        if self._closed:
            raise _closed()
        limit = self._limit
        if limit is None:
            limit = self._limit = asyncio.Semaphore(self._max_parallel)
        with self._telemetry.span("evolink.download", {"evolink.task.id": task_id}, client=True):
            return await self._limited(limit, task_id, url, dest, overwrite=overwrite)

    async def _limited(
        self, limit: asyncio.Semaphore, task_id: str, url: str, dest: Path, *, overwrite: bool
    ) -> Path:
        """The download in a slot of the client's `limit`, within its deadline."""
        with anyio.CancelScope() as scope:
            self._running.add(scope)
            try:
                async with limit:
                    with anyio.move_on_after(self.deadline) as timer:
                        return await self._download(task_id, url, dest, overwrite=overwrite)
            finally:
                self._running.discard(scope)
        if self._closed:
            raise _closed()
        if timer.cancelled_caught:
            raise APITimeoutError(f"download did not finish within {self.deadline:g}s")
        raise AssertionError("a download scope was cancelled by nobody")  # pragma: no cover

    def close(self) -> None:
        """End every download in progress (with `ClientClosedError`); refuse new ones."""
        self._closed = True
        for scope in list(self._running):
            scope.cancel()

    async def _download(self, task_id: str, url: str, dest: Path, *, overwrite: bool) -> Path:
        if not overwrite and await anyio.Path(dest).exists():
            raise FileExistsError(f"{dest} exists; pass overwrite=True to replace it")
        await anyio.Path(dest.parent).mkdir(parents=True, exist_ok=True)
        temp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")
        handle: BinaryIO = await anyio.to_thread.run_sync(lambda: temp.open("wb"))
        transfer = _Transfer(self, task_id, url, handle)
        try:
            await retry_loop(
                transfer.attempt,
                policy=self.retry,
                max_retries=self.retry.max_retries,
                sleep=self._sleep,
                rng=random.Random(),  # noqa: S311 -- jitter, not cryptography
                what="download",
            )
            await anyio.to_thread.run_sync(_finish, handle)
            await anyio.to_thread.run_sync(_publish, temp, dest, overwrite)
        except BaseException:
            with contextlib.suppress(OSError):
                handle.close()
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
        return dest


class _Transfer:
    """One video's transfer across attempts: the URL, the bytes on disk."""

    def __init__(self, owner: Downloader, task_id: str, url: str, handle: BinaryIO) -> None:
        self._owner = owner
        self._task_id = task_id
        self.url = url
        self._handle = handle
        self.written = 0
        self._refreshed = False
        #: Range offsets count the bytes as sent; once a host sends an encoded
        #: (compressed) body, resuming is off and a retry starts over.
        self._encoded = False

    async def attempt(self, _: int) -> None:
        """
        One try: ask for the rest of the file and append it.

        Raises:
            Retryable: a failure worth another try.
            APIError: a status not worth one (or an expired URL twice).
        """
        owner = self._owner
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=owner.read_timeout, sock_read=owner.read_timeout
        )
        failure: APIConnectionError | None = None
        while True:
            if self._encoded and self.written:
                self.written = await _truncate(self._handle)
            headers = {"Accept-Encoding": "identity"}
            if self.written:
                headers["Range"] = f"bytes={self.written}-"
            try:
                async with owner._session().get(
                    self.url,
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=True,
                    proxy=owner._proxy_for(self.url),
                ) as resp:
                    if resp.status in _EXPIRED_STATUSES and not self._refreshed:
                        self._refreshed = True
                        fresh = await owner._refresh_url(self._task_id)
                        if fresh:
                            logger.info("result URL expired (HTTP %d); refreshed", resp.status)
                            self.url = check_result_url(fresh)
                            self.written = await _truncate(self._handle)
                            continue
                    await self._receive(resp)
                    return
            except (TimeoutError, aiohttp.ServerTimeoutError):
                failure = APITimeoutError(f"download stalled for {owner.read_timeout:g}s")
            except aiohttp.ClientError as exc:
                failure = APIConnectionError(f"download failed ({type(exc).__name__})")
            except RuntimeError:
                # aiohttp's "Session is closed": the client closed meanwhile.
                if not owner._closed:
                    raise
                raise _closed() from None
            # Raised outside the handler, so no aiohttp object is the context.
            raise Retryable(failure)

    async def _receive(self, resp: aiohttp.ClientResponse) -> None:
        handle = self._handle
        limit = self._owner.max_bytes
        encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
        self._encoded = self._encoded or encoding not in ("", "identity")
        if resp.status == 206 and not self._encoded:
            start, total = _content_range(resp.headers.get("Content-Range"))
            if start != self.written:
                self.written = await _truncate(handle)
                raise Retryable(APIConnectionError("server resumed at the wrong offset"))
        elif resp.status in (200, 206):
            if self.written:
                # The server ignored Range (or the body is encoded): start over.
                self.written = await _truncate(handle)
            # Content-Length counts encoded bytes; the file holds decoded ones.
            total = None if self._encoded else _int_header(resp.headers.get("Content-Length"))
        else:
            body = await resp.content.read(64 * 1024)
            if resp.status in _EXPIRED_STATUSES:
                raise NotFoundError(
                    f"result URL no longer available (HTTP {resp.status}); "
                    "re-read the task for a fresh URL",
                    status=resp.status,
                )
            error = error_from_reply(resp.status, resp.headers, body, None)
            if resp.status not in self._owner.retry.retry_statuses:
                raise error
            retry_after = retry_after_of(resp.status, resp.headers, error.message)
            raise Retryable(error, retry_after=retry_after)
        if total is not None and total > limit:
            raise MalformedReplyError(f"video of {total} bytes: over the {limit}-byte limit")
        counter = [self.written]
        try:
            await _copy(resp, handle, counter, limit)
        finally:
            self.written = counter[0]
        if total is not None and self.written != total:
            raise Retryable(
                APIConnectionError(f"download ended after {self.written} of {total} bytes")
            )


def _closed() -> ClientClosedError:
    return ClientClosedError("the EvoLinkClient was closed during the download")


async def _copy(
    resp: aiohttp.ClientResponse, handle: BinaryIO, written: list[int], limit: int
) -> None:
    """
    Append the body to `handle`; `written[0]` counts the bytes on disk.
    More than `limit` bytes in all is a `MalformedReplyError`.

    When the transfer breaks, what arrived is still written and counted, so
    the retry resumes right after it.
    """
    buffer = bytearray()

    async def flush() -> None:
        if buffer:
            await anyio.to_thread.run_sync(handle.write, bytes(buffer))
            written[0] += len(buffer)
            buffer.clear()

    try:
        async for chunk in resp.content.iter_chunked(_WRITE_BATCH):
            buffer += chunk
            if written[0] + len(buffer) > limit:
                raise MalformedReplyError(f"video over the {limit}-byte limit")
            if len(buffer) >= _WRITE_BATCH:
                await flush()
    except (aiohttp.ClientError, TimeoutError):
        await flush()
        raise
    await flush()


async def _truncate(handle: BinaryIO) -> int:
    def reset() -> None:
        handle.seek(0)
        handle.truncate()

    await anyio.to_thread.run_sync(reset)
    return 0


def _finish(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()


def _publish(temp: Path, dest: Path, overwrite: bool) -> None:
    if overwrite:
        temp.replace(dest)
        return
    # A hard link fails if `dest` appeared meanwhile: no silent clobbering.
    try:
        os.link(temp, dest)
    except FileExistsError:
        raise FileExistsError(f"{dest} exists; pass overwrite=True to replace it") from None
    except OSError:
        if dest.exists():
            raise FileExistsError(f"{dest} exists; pass overwrite=True to replace it") from None
        temp.replace(dest)
        return
    temp.unlink()


def _int_header(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(start, total) from `bytes START-END/TOTAL`; None where unreadable."""
    match = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", value or "")
    if not match:
        return None, None
    total = match.group(3)
    return int(match.group(1)), int(total) if total.isdigit() else None
