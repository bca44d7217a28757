"""
Downloading a result video to disk, safely.

- The file is written under a temporary name beside the target and renamed only
  once complete, so `dest` never holds a partial video.
- The size is checked against Content-Length / Content-Range.
- A dropped transfer resumes with `Range` when the server accepts ranges, and
  is retried on transient failures (5xx, 429, dropped connection, timeout).
- An expired result URL (403/404/410) is refreshed once through a callback that
  re-reads the task, since EvoLink's result links expire after 24 hours.
- File writes run in a worker thread, so a web backend's loop never blocks on
  disk.
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
from typing import BinaryIO

import aiohttp
import anyio.to_thread

from ._errors import APIConnectionError, APIError, APITimeoutError, NotFoundError
from ._http import RetryPolicy, _error_from_reply, parse_retry_after

__all__ = ["download_video", "safe_filename", "target_path"]

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


async def download_video(
    session: aiohttp.ClientSession,
    url: str,
    dest: Path,
    *,
    overwrite: bool,
    retry: RetryPolicy,
    read_timeout: float,
    refresh_url: Callable[[], Awaitable[str | None]] | None = None,
) -> Path:
    """
    Stream `url` to `dest` (a file path) through a temporary file.

    Raises:
        FileExistsError: `dest` exists and `overwrite` is False.
        APIError: a non-retryable HTTP status, or retries spent on 5xx/429.
        APIConnectionError: the transfer kept failing.
    """
    if not overwrite and await anyio.Path(dest).exists():
        raise FileExistsError(f"{dest} exists; pass overwrite=True to replace it")
    await anyio.Path(dest.parent).mkdir(parents=True, exist_ok=True)
    temp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")
    handle: BinaryIO = await anyio.to_thread.run_sync(temp.open, "wb")
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=read_timeout, sock_read=read_timeout)
    rng = random.Random()  # noqa: S311 -- jitter, not cryptography
    written = 0
    refreshed = False
    failures = 0
    try:
        while True:
            headers = {"Range": f"bytes={written}-"} if written else {}
            failure: Exception
            retry_after: float | None = None
            try:
                async with session.get(
                    url, headers=headers, timeout=timeout, allow_redirects=True
                ) as resp:
                    if resp.status in _EXPIRED_STATUSES and refresh_url and not refreshed:
                        refreshed = True
                        fresh = await refresh_url()
                        if fresh:
                            logger.info("result URL expired (HTTP %d); refreshed", resp.status)
                            url = fresh
                            written = await _truncate(handle)
                            continue
                    if resp.status == 206:
                        start, total = _content_range(resp.headers.get("Content-Range"))
                        if start != written:
                            written = await _truncate(handle)
                            raise _RetryableError(
                                APIConnectionError("server resumed at the wrong offset")
                            )
                    elif resp.status == 200:
                        if written:
                            # The server ignored Range: start over.
                            written = await _truncate(handle)
                        total = _int_header(resp.headers.get("Content-Length"))
                    else:
                        body = await resp.read()
                        error = _error_from_reply(resp.status, resp.headers, body, None)
                        if resp.status in _EXPIRED_STATUSES:
                            raise NotFoundError(
                                f"result URL no longer available (HTTP {resp.status}); "
                                "re-read the task for a fresh URL",
                                status=resp.status,
                            )
                        if resp.status not in retry.retry_statuses:
                            raise error
                        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                        raise _RetryableError(error)
                    counter = [written]
                    try:
                        await _copy(resp, handle, counter)
                    finally:
                        written = counter[0]
                    if total is not None and written != total:
                        raise _RetryableError(
                            APIConnectionError(f"download ended after {written} of {total} bytes")
                        )
                    break
            except _RetryableError as exc:
                failure = exc.error
            except (TimeoutError, aiohttp.ServerTimeoutError):
                failure = APITimeoutError(f"download stalled for {read_timeout:g}s")
            except aiohttp.ClientError as exc:
                failure = APIConnectionError(f"download failed ({type(exc).__name__})")
            failures += 1
            if failures > retry.max_retries:
                raise failure
            delay = retry.backoff(failures - 1, rng.random())
            if retry_after is not None and retry_after <= retry.max_retry_after:
                delay = max(delay, retry_after)
            logger.info("download interrupted (%s); retry %d in %.2fs", failure, failures, delay)
            await asyncio.sleep(delay)
        await anyio.to_thread.run_sync(_finish, handle)
        await anyio.to_thread.run_sync(_publish, temp, dest, overwrite)
    except BaseException:
        with contextlib.suppress(OSError):
            handle.close()
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    return dest


class _RetryableError(Exception):
    def __init__(self, error: APIError | APIConnectionError) -> None:
        self.error = error


async def _copy(resp: aiohttp.ClientResponse, handle: BinaryIO, written: list[int]) -> None:
    """
    Append the body to `handle`; `written[0]` counts the bytes on disk.

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
