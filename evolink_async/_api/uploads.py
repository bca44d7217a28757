"""
Local files to files-API URLs.

- `Uploads.upload_file`: read one image (bytes or a path, off the event
  loop), check from its first bytes that the files API stores it (JPEG, PNG,
  GIF, WebP), and upload it.
- `Uploads.resolve`: the `pathlib.Path` values of a request uploaded (two at
  a time) and swapped for their URLs. URLs recorded by an earlier attempt
  (the batch journal keeps them) are reused, so a re-sent create carries the
  same body as the first and the server replays it instead of refusing its
  key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import anyio

from .. import _models
from .._errors import ValidationError
from .._models.images import FILES_API_FORMATS, sniff_format
from .._values import UploadedFile
from .endpoints import Endpoints

__all__ = ["Uploads"]

#: Uploads of one request in flight at once.
_PARALLEL = 2


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
            ValidationError: the file is missing or not an image the files API stores.
            APIError: the files API refused.
        """
        if isinstance(path_or_bytes, bytes):
            data = path_or_bytes
            name = file_name or "upload"
        else:
            path = Path(path_or_bytes)
            try:
                data = await anyio.Path(path).read_bytes()
            except OSError as exc:
                raise ValidationError(f"cannot read {path}: {exc.strerror or exc}") from None
            name = file_name or path.name
        kind = sniff_format(data[:32])
        if kind not in FILES_API_FORMATS:
            raise ValidationError(
                f"{name!r}: not a JPEG, PNG, GIF or WebP image (the files API stores images only)"
            )
        return await self._endpoints.upload(
            data, name=name, mime=f"image/{kind}", file_name=file_name
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
