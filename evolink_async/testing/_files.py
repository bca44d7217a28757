"""
The mock's file routes: the files API (upload by multipart stream, by
base64, by URL; serving the uploads back) and the result videos (signed,
expiring URLs, `Range` requests, downloads cut short on demand).

The files API answers its failures with HTTP 200 and `"success": false`,
as the real one does; only images are accepted. A video URL carries a `sig`
per issue of the task's result URL (see `task_json`): the current one works
until it expires, older ones answer 410, anything else 403.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import quote, urlsplit

import attrs
from aiohttp import web

from ._faults import Fault
from ._outbound import Outbound, is_loopback_host
from ._replies import Call, ReplyError, drop, json_response
from ._state import COMPLETED, ID_ALPHABET, MockState, sniff_image, video_bytes

__all__ = ["UPLOAD_TTL", "UploadRoutes", "VideoRoutes"]

#: Files API uploads live this long (scaled by `time_scale`; not enforced).
UPLOAD_TTL: Final = 72 * 3600.0
_RANGE: Final = re.compile(r"bytes=(\d*)-(\d*)")
#: What an upload by a URL off this machine stands for: a placeholder image
#: chosen by the URL's extension (MIME type, magic bytes).
_IMAGE_EXTENSIONS: Final[Mapping[str, tuple[str, bytes]]] = {
    "jpg": ("image/jpeg", b"\xff\xd8\xff\xe0"),
    "jpeg": ("image/jpeg", b"\xff\xd8\xff\xe0"),
    "png": ("image/png", b"\x89PNG\r\n\x1a\n"),
    "gif": ("image/gif", b"GIF89a"),
    "webp": ("image/webp", b"RIFF\x00\x00\x00\x00WEBP"),
}


@attrs.frozen(slots=True)
class _StoredFile:
    """One upload: its stored name, sniffed MIME type and bytes."""

    name: str
    mime_type: str
    data: bytes


def _upload_failure(message: str) -> web.Response:
    """A files API failure."""
    # The files API's documented quirk: failures come back as HTTP 200.
    return json_response({"success": False, "code": 400, "msg": message})


class UploadRoutes:
    """
    `POST /api/v1/files/upload/stream`, `/base64` and `/url`, and
    `GET /files/uploads/{file_id}/{name}` (no key needed).

    Args:
        state: the shared state.
        outbound: the session an upload by a loopback URL is fetched with.
    """

    def __init__(self, state: MockState, outbound: Outbound) -> None:
        self._state = state
        self._outbound = outbound
        self._uploads: dict[str, _StoredFile] = {}

    async def upload_stream(self, call: Call) -> web.StreamResponse:
        """A multipart upload: field `file`, optional `file_name` and `upload_path`."""
        try:
            form = await call.request.post()
        except web.HTTPRequestEntityTooLarge:
            raise ReplyError(413, "request_too_large", "Request body is over 64 MB") from None
        except ValueError:
            return _upload_failure("Could not read the multipart form")
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            return _upload_failure("The multipart field 'file' is required")
        data = upload.file.read()
        file_name = form.get("file_name")
        upload_path = form.get("upload_path")
        return self._store(
            data,
            original_name=upload.filename or "upload",
            file_name=file_name if isinstance(file_name, str) and file_name else None,
            upload_path=upload_path if isinstance(upload_path, str) and upload_path else None,
        )

    async def upload_base64(self, call: Call) -> web.StreamResponse:
        """A JSON upload: `base64_data` (a data URL too), optional `file_name`, `upload_path`."""
        body = call.json
        text = body.get("base64_data") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text:
            return _upload_failure("base64_data is required")
        if text.startswith("data:") and "," in text:
            text = text.split(",", 1)[1]
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            return _upload_failure("base64_data is not valid base64")
        name = body.get("file_name") if isinstance(body, dict) else None
        upload_path = body.get("upload_path") if isinstance(body, dict) else None
        return self._store(
            data,
            original_name=name if isinstance(name, str) and name else "upload",
            file_name=name if isinstance(name, str) and name else None,
            upload_path=upload_path if isinstance(upload_path, str) else None,
        )

    async def upload_url(self, call: Call) -> web.StreamResponse:
        """A JSON upload of what `file_url` points at, optional `file_name`."""
        body = call.json
        url = body.get("file_url") if isinstance(body, dict) else None
        if not isinstance(url, str):
            return _upload_failure("file_url is required")
        try:
            parts = urlsplit(url)
        except ValueError:
            return _upload_failure("file_url is not a valid URL")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return _upload_failure("file_url must be an http(s) URL")
        original = parts.path.rsplit("/", 1)[-1] or "upload"
        data = await self._fetch(url, parts.hostname, original)
        if data is None:
            return _upload_failure(f"Could not fetch {url}")
        name = body.get("file_name") if isinstance(body, dict) else None
        return self._store(
            data,
            original_name=original,
            file_name=name if isinstance(name, str) and name else None,
            upload_path=None,
        )

    async def uploaded_file(self, call: Call) -> web.StreamResponse:
        """An upload served back; `?download` adds a `Content-Disposition`."""
        match_info = call.request.match_info
        stored = self._uploads.get(match_info["file_id"])
        if stored is None or stored.name != match_info["name"]:
            raise ReplyError(404, "not_found", "No such file")
        headers = {"Content-Type": stored.mime_type}
        if "download" in call.request.query:
            headers["Content-Disposition"] = f'attachment; filename="{quote(stored.name)}"'
        return web.Response(body=stored.data, headers=headers)

    async def _fetch(self, url: str, host: str, original: str) -> bytes | None:
        """
        The bytes behind `url`: files of this mock are read directly, other
        loopback URLs fetched; the internet is never touched, so any other
        URL stands for a small placeholder image chosen by its extension.
        """
        base = self._state.url
        prefix = f"{base}/files/uploads/"
        if base is not None and url.startswith(prefix):
            stored = self._uploads.get(url[len(prefix) :].split("/", 1)[0])
            return stored.data if stored is not None else None
        if is_loopback_host(host):
            return await self._outbound.fetch(url)
        extension = original.rsplit(".", 1)[-1].lower() if "." in original else ""
        known = _IMAGE_EXTENSIONS.get(extension)
        if known is None:
            return None
        seed = hashlib.sha256(url.encode()).digest()
        return known[1] + seed * 32

    def _store(
        self,
        data: bytes,
        *,
        original_name: str,
        file_name: str | None,
        upload_path: str | None,
    ) -> web.Response:
        """Keep `data` if it is an image, and answer as the files API does."""
        state = self._state
        kind = sniff_image(data)
        if kind is None:
            return _upload_failure(
                "Unsupported file type: only JPEG, PNG, GIF and WebP images are accepted"
            )
        mime_type, extension = kind
        file_id = "file_" + "".join(state.id_rng.choices(ID_ALPHABET, k=16))
        name = (file_name or original_name).replace("/", "_").replace("\\", "_")
        if not name or name in (".", ".."):
            name = f"{file_id}.{extension}"
        self._uploads[file_id] = _StoredFile(name=name, mime_type=mime_type, data=data)
        state.stats.uploads += 1
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=UPLOAD_TTL * state.time_scale)
        file_url = f"{state.base_url()}/files/uploads/{file_id}/{quote(name, safe='')}"
        return json_response(
            {
                "success": True,
                "code": 200,
                "msg": "File uploaded successfully",
                "data": {
                    "file_id": file_id,
                    "file_name": name,
                    "original_name": original_name,
                    "file_size": len(data),
                    "mime_type": mime_type,
                    "upload_path": upload_path or "uploads",
                    "file_url": file_url,
                    "download_url": f"{file_url}?download=1",
                    "upload_time": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
                    "expires_at": expires.isoformat(timespec="seconds").replace("+00:00", "Z"),
                },
            }
        )


class VideoRoutes:
    """`GET /files/videos/{id}.mp4?sig=...`: result videos (no key needed)."""

    def __init__(self, state: MockState) -> None:
        self._state = state

    async def video(self, call: Call) -> web.StreamResponse:
        """A completed task's video, whole or one `Range: bytes=...` of it."""
        state = self._state
        request = call.request
        name = request.match_info["name"]
        task = state.tasks.get(name.removesuffix(".mp4")) if name.endswith(".mp4") else None
        if task is None or task.status_at(call.now) != COMPLETED:
            raise ReplyError(404, "not_found", f"No such file: {name}")
        sig = request.query.get("sig", "")
        if sig == state.sign(task.id, task.url_generation):
            if call.now >= task.url_expires_at:
                state.stats.expired_downloads += 1
                raise ReplyError(410, "url_expired", "This result link has expired")
        elif any(sig == state.sign(task.id, g) for g in range(task.url_generation)):
            state.stats.expired_downloads += 1
            raise ReplyError(410, "url_expired", "This result link has expired")
        else:
            raise ReplyError(403, "invalid_signature", "Invalid or missing signature")

        data = video_bytes(task.id, state.video_size)
        size = len(data)
        headers = {
            "Accept-Ranges": "bytes",
            "Content-Type": "video/mp4",
            "X-Request-Id": call.request_id,
        }
        status = 200
        start, end = 0, size - 1
        range_header = request.headers.get("Range")
        match = _RANGE.fullmatch(range_header.strip()) if range_header else None
        if match is not None and (match.group(1) or match.group(2)):
            first, last = match.group(1), match.group(2)
            if first:
                start = int(first)
                end = min(int(last), size - 1) if last else size - 1
            else:
                start = max(size - int(last), 0)
            if start >= size or start > end:
                raise ReplyError(
                    416,
                    "range_not_satisfiable",
                    f"Range not satisfiable: {range_header}",
                    headers={"Content-Range": f"bytes */{size}"},
                )
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        part = data[start : end + 1]
        state.stats.downloads[task.id] += 1
        if call.fault is Fault.DROP_AFTER:
            # Half the body, then the connection goes: a download cut short.
            response = web.StreamResponse(status=status, headers=headers)
            response.content_length = len(part)
            await response.prepare(request)
            await response.write(part[: len(part) // 2])
            drop(request)
        return web.Response(body=part, status=status, headers=headers)
