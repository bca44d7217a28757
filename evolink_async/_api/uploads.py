"""
Local files to files-API URLs.

- `Uploads.upload_file`: check one image and upload it. A path is checked
  before anything is read beyond its first bytes: it must be a regular file
  (a directory, FIFO, device or socket is refused at once, and opening one
  never blocks), at most `FILES_API_MAX_BYTES` long, and start like an image
  the files API stores (JPEG, PNG, GIF, WebP). It is then streamed from disk
  as the request is sent, a chunk at a time, never held in memory: exactly
  the size checked is sent, and each retry re-checks the file and reads it
  afresh (`_LocalFile`, `_FilePart`). Bytes get the same size and format
  checks.
- `Uploads.resolve`: the `pathlib.Path` values of a request uploaded (two at
  a time) and swapped for their URLs. URLs recorded by an earlier attempt
  (the batch journal keeps them) are reused, so a re-sent create carries the
  same body as the first and the server replays it instead of refusing its
  key.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO, Final

import aiohttp.abc
import aiohttp.payload
import anyio
import attrs

from .. import _models
from .._errors import ValidationError
from .._models.images import (
    FILES_API_FORMATS,
    FILES_API_MAX_BYTES,
    MIB,
    NotRegularFileError,
    file_kind,
    open_regular,
    sniff_format,
)
from .._values import UploadedFile
from .endpoints import Endpoints

__all__ = ["Uploads"]

#: Uploads of one request in flight at once.
_PARALLEL = 2
#: Bytes read from disk per step of a streamed upload.
_CHUNK: Final = 256 * 1024
#: Enough first bytes to tell the image formats apart (see `sniff_format`).
_SNIFF: Final = 32
_NOT_AN_IMAGE: Final = "not a JPEG, PNG, GIF or WebP image (the files API stores images only)"


def _too_large(what: str, size: int) -> ValidationError:
    return ValidationError(
        f"{what} is {size} bytes; the files API takes files up to "
        f"{FILES_API_MAX_BYTES // MIB} MB ({FILES_API_MAX_BYTES} bytes)"
    )


@attrs.frozen(kw_only=True)
class _LocalFile:
    """A local image as it was checked: what a later read must still find."""

    path: Path
    size: int
    mime: str
    #: (device, inode, size, mtime): a file with other values was changed.
    identity: tuple[int, int, int, int]

    @classmethod
    def check(cls, path: Path) -> _LocalFile:
        """
        Stat, open and sniff `path`; blocking, so run it in a thread.

        Raises:
            ValidationError: missing, unreadable, not a regular file, over
                the files API's limit, or not an image it stores.
        """
        try:
            status = path.stat()
        except OSError as exc:
            raise ValidationError(f"cannot read {path}: {exc.strerror or exc}") from None
        kind = file_kind(status.st_mode)
        if kind is not None:
            raise ValidationError(f"{path}: not a regular file ({kind}); upload a file")
        if status.st_size > FILES_API_MAX_BYTES:
            raise _too_large(str(path), status.st_size)
        try:
            with open_regular(path) as stream:
                status = os.fstat(stream.fileno())
                head = stream.read(_SNIFF)
        except NotRegularFileError as exc:
            raise ValidationError(
                f"{path}: not a regular file ({exc.kind}); upload a file"
            ) from None
        except OSError as exc:
            raise ValidationError(f"cannot read {path}: {exc.strerror or exc}") from None
        if status.st_size > FILES_API_MAX_BYTES:
            raise _too_large(str(path), status.st_size)
        image = sniff_format(head)
        if image not in FILES_API_FORMATS:
            raise ValidationError(f"{path.name!r}: {_NOT_AN_IMAGE}")
        return cls(
            path=path, size=status.st_size, mime=f"image/{image}", identity=_identity(status)
        )

    def part(self) -> aiohttp.payload.Payload:
        """
        The file as a fresh multipart part, for one attempt; the path is
        stat-ed again first (a quick call, so on the event loop).

        Raises:
            ValidationError: the file changed since it was checked.
        """
        try:
            status = self.path.stat()
        except OSError as exc:
            raise ValidationError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        if _identity(status) != self.identity or file_kind(status.st_mode) is not None:
            raise ValidationError(
                f"{self.path} changed while it was being uploaded; upload it again"
            )
        return _FilePart(self)

    def open(self) -> BinaryIO:
        """
        The file opened for reading, if it is still the file checked.

        Raises:
            OSError: it cannot be opened, or it changed.
        """
        stream = open_regular(self.path)
        try:
            if _identity(os.fstat(stream.fileno())) != self.identity:
                raise OSError(f"{self.path} changed while it was being uploaded")
        except BaseException:
            stream.close()
            raise
        return stream


def _identity(status: os.stat_result) -> tuple[int, int, int, int]:
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


class _FilePart(aiohttp.payload.Payload):
    """
    A checked local file as one multipart part: its size is the size checked
    (so the request has a Content-Length), and it is read from disk, off the
    event loop, while it is sent, never more than that size.
    """

    # The file is opened and closed inside `write`: nothing to close later.
    _autoclose = True

    def __init__(self, source: _LocalFile) -> None:
        super().__init__(source, content_type=source.mime)
        self._source = source
        self._size = source.size

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        """Not offered: the part is bytes streamed from disk, not text."""
        raise TypeError(f"{self._source.path} is streamed as bytes; it has no text form")

    async def write(self, writer: aiohttp.abc.AbstractStreamWriter) -> None:
        """Send the file: `size` bytes read from disk a chunk at a time."""
        await self.write_with_length(writer, None)

    async def write_with_length(
        self, writer: aiohttp.abc.AbstractStreamWriter, content_length: int | None
    ) -> None:
        """Send the file, at most `content_length` bytes of it."""
        remaining = self._source.size
        if content_length is not None:
            remaining = min(remaining, content_length)
        # Opened here, on the loop (an O_NONBLOCK open and an fstat: quick),
        # with no await before the `try`, so a cancelled attempt cannot leak it.
        stream = self._source.open()
        try:
            while remaining > 0:
                chunk = await asyncio.to_thread(stream.read, min(_CHUNK, remaining))
                if not chunk:
                    # Shorter than its Content-Length: this attempt fails, and
                    # the next one finds the file changed.
                    raise OSError(f"{self._source.path} shrank while it was being uploaded")
                await writer.write(chunk)
                remaining -= len(chunk)
        finally:
            stream.close()


def _checked_name(file_name: object) -> str | None:
    if file_name is None:
        return None
    if not isinstance(file_name, str):
        raise ValidationError(
            f"file_name={file_name!r}: must be a string, not {type(file_name).__name__}"
        )
    if any(not char.isprintable() for char in file_name):
        raise ValidationError(
            f"file_name={file_name!r}: must not contain control or invisible characters"
        )
    return file_name or None


def _safe_name(name: str) -> str:
    """A local file name fit for a multipart header: unprintable characters made `_`."""
    return "".join(char if char.isprintable() else "_" for char in name) or "upload"


class Uploads:
    """Uploads for one client, through its endpoints."""

    def __init__(self, endpoints: Endpoints) -> None:
        self._endpoints = endpoints

    async def upload_file(
        self, path_or_bytes: str | os.PathLike[str] | bytes, *, file_name: str | None = None
    ) -> UploadedFile:
        """
        Upload one image; see `EvoLinkClient.upload_file`.

        Raises:
            ValidationError: a bad argument; the file is missing, not a
                regular file, over the files API's limit, not an image the
                files API stores, or changed while it was being uploaded.
            APIError: the files API refused.
        """
        file_name = _checked_name(file_name)
        value: object = path_or_bytes
        if isinstance(value, bytes):
            if len(value) > FILES_API_MAX_BYTES:
                raise _too_large("the data", len(value))
            kind = sniff_format(value[:_SNIFF])
            name = file_name or "upload"
            if kind not in FILES_API_FORMATS:
                raise ValidationError(f"{name!r}: {_NOT_AN_IMAGE}")
            return await self._endpoints.upload(
                value, name=name, mime=f"image/{kind}", file_name=file_name
            )
        if not isinstance(value, str | os.PathLike) or not isinstance(os.fspath(value), str):
            raise ValidationError(
                f"path_or_bytes={value!r}: must be a path (str or os.PathLike) or bytes, "
                f"not {type(value).__name__}"
            )
        if not os.fspath(value) or "\0" in os.fspath(value):
            raise ValidationError(f"path_or_bytes={value!r}: not a usable file path")
        local = await anyio.to_thread.run_sync(_LocalFile.check, Path(value))
        return await self._endpoints.upload(
            local.part,
            name=file_name or _safe_name(local.path.name),
            mime=local.mime,
            file_name=file_name,
        )

    async def resolve(
        self, request: _models.R, recorded: Mapping[str, str] | None = None
    ) -> tuple[_models.R, dict[str, str]]:
        """
        The request with its local files replaced by URLs, and those URLs
        (`str(path)` -> URL; empty when the request has no local file).

        `recorded` maps files already uploaded to their URLs; only the others
        are uploaded.

        Raises:
            ValidationError: a file is unreadable or not an image.
            APIError / APIConnectionError: an upload failed (the first error,
                not a group of them).
        """
        paths = _models.local_files(request)
        if not paths:
            return request, {}
        known = recorded or {}
        urls = {path: known[str(path)] for path in paths if str(path) in known}
        missing = [path for path in paths if path not in urls]
        limit = anyio.CapacityLimiter(_PARALLEL)

        async def upload(path: Path) -> None:
            async with limit:
                urls[path] = (await self.upload_file(path)).file_url

        try:
            async with anyio.create_task_group() as group:
                for path in missing:
                    group.start_soon(upload, path)
        except BaseExceptionGroup as failed:
            # The caller gets the (first) error itself, as from any other
            # call, not a group of them.
            raise _first_error(failed) from None
        resolved = _models.replace_files(request, urls)
        return resolved, {str(path): urls[path] for path in paths}


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error
