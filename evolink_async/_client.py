"""
`EvoLinkClient`: the one object an application creates and shares.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import secrets
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import quote

import aiohttp
import anyio

from . import _models
from ._batch import DEFAULT_MAX_ACTIVE, BatchRun, JobSource
from ._convert import MalformedResponseError, converter, structure_task
from ._download import download_video, target_path
from ._errors import APIError, ClientClosedError, ValidationError
from ._http import Response, RetryPolicy, Transport, malformed
from ._local_files import FILES_API_FORMATS
from ._local_files import _sniff as sniff_image
from ._poll import PollPolicy
from ._results import Credits, Task, UploadedFile
from ._watch import Watcher

__all__ = ["EvoLinkClient"]

logger = logging.getLogger("evolink_async")

DEFAULT_BASE_URL: Final = "https://api.evolink.ai"
DEFAULT_FILES_BASE_URL: Final = "https://files-api.evolink.ai"
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9._-]{16,96}")
#: Characters a path segment may hold unquoted (RFC 3986 unreserved), except
#: that a segment of dots only ("." or "..") is quoted too.
_URL_SAFE = re.compile(r"(?!\.+$)[A-Za-z0-9._~-]+")
#: Submit times remembered so `wait(task)` after `submit` plans from the real
#: start; bounded so a long-running process does not grow without end.
_MAX_REMEMBERED_SUBMITS: Final = 50_000

ProgressCallback = Callable[[Task], Any]


def new_idempotency_key() -> str:
    """A fresh Idempotency-Key: 36 characters of `[a-z0-9-]`."""
    return f"evl-{secrets.token_hex(16)}"


class EvoLinkClient:
    """
    An async client for the EvoLink video-generation API.

    Create one per application and share it: every call may run concurrently
    from many tasks. The aiohttp session is made lazily inside the running
    loop on first use. Close it with `async with client:` or
    `await client.aclose()`.

    Args:
        api_key: the API key; default: the `EVOLINK_API_KEY` environment
            variable. Without one, the first call raises `AuthenticationError`.
        base_url: the API's base URL; default: `EVOLINK_BASE_URL` or
            `https://api.evolink.ai`.
        files_base_url: the files API's base URL; default:
            `EVOLINK_FILES_BASE_URL` or `https://files-api.evolink.ai`.
        max_concurrency: HTTP requests in flight at once, whole client.
        max_retries: retries after the first attempt, per request (0 = try
            once); overrides `retry.max_retries`. Default 4.
        timeout: seconds per HTTP request, or an `aiohttp.ClientTimeout`.
        poll: how waiting polls (`PollPolicy`).
        session: an `aiohttp.ClientSession` to use; the client does not close
            a session it was given.
        retry: backoff details (`RetryPolicy`).
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        files_base_url: str | None = None,
        max_concurrency: int = 16,
        max_retries: int | None = None,
        timeout: float | aiohttp.ClientTimeout = 30.0,
        poll: PollPolicy | None = None,
        session: aiohttp.ClientSession | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if not _is_int(max_concurrency):
            raise ValidationError(f"max_concurrency={max_concurrency!r}: must be a whole number")
        if max_concurrency < 1:
            raise ValidationError(f"max_concurrency={max_concurrency!r}: must be at least 1")
        key = api_key if api_key is not None else os.environ.get("EVOLINK_API_KEY")
        self.base_url = _base("base_url", base_url, "EVOLINK_BASE_URL", DEFAULT_BASE_URL)
        self.files_base_url = _base(
            "files_base_url", files_base_url, "EVOLINK_FILES_BASE_URL", DEFAULT_FILES_BASE_URL
        )
        retry = retry or RetryPolicy()
        if max_retries is not None:
            retry = _evolve_retry(retry, max_retries)
        if isinstance(timeout, aiohttp.ClientTimeout):
            client_timeout = timeout
        else:
            if not _is_number(timeout) or timeout <= 0:
                raise ValidationError(f"timeout={timeout!r}: must be a number of seconds > 0")
            client_timeout = aiohttp.ClientTimeout(total=float(timeout))
        self.poll = poll or PollPolicy()
        self.max_concurrency = max_concurrency
        self._transport = Transport(
            api_key=key or None,
            max_concurrency=max_concurrency,
            retry=retry,
            timeout=client_timeout,
            session=session,
        )
        self._watcher = Watcher(
            policy=self.poll,
            fetch_one=self._poll_one,
            fetch_many=self._poll_many,
            max_in_flight=max_concurrency,
        )
        self._submitted: OrderedDict[str, float] = OrderedDict()
        self._task_urls: dict[str, str] = {}
        self._downloads: asyncio.Semaphore | None = None

    # -- lifecycle -----------------------------------------------------------

    def __repr__(self) -> str:
        key = "set" if self._transport._api_key else "missing"
        return (
            f"EvoLinkClient(base_url={self.base_url!r}, max_concurrency={self.max_concurrency}, "
            f"api_key=<{key}>)"
        )

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy in force."""
        return self._transport.retry

    @property
    def closed(self) -> bool:
        """True once `aclose()` was called."""
        return self._transport.closed

    async def __aenter__(self) -> Self:
        if self.closed:
            raise ClientClosedError("this EvoLinkClient is closed; create a new one")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """
        Stop polling and close the session the client made (not one it was given).

        Waits still in progress end with an error. Safe to call twice.
        """
        await self._watcher.aclose()
        await self._transport.aclose()

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        transport = getattr(self, "_transport", None)
        if transport is not None and transport.has_open_session:
            _warn(
                "EvoLinkClient was never closed; use `async with EvoLinkClient() as client` "
                "or `await client.aclose()`",
                ResourceWarning,
                stacklevel=2,
            )

    # -- tasks ---------------------------------------------------------------

    async def submit(
        self,
        model_or_request: str | _models.Request,
        /,
        *,
        idempotency_key: str | None = None,
        **params: Any,
    ) -> Task:
        """
        Create one generation task (`POST /v1/videos/generations`).

        Args:
            model_or_request: a model id (then `params` are its fields) or a
                request object such as `SeedanceImageToVideo(...)` or
                `RawRequest(...)`.
            idempotency_key: the `Idempotency-Key` to send (16-96 characters
                of `[A-Za-z0-9._-]`); default: a fresh one. Retries of this
                call reuse it, so a retried create is never billed twice;
                pass your own to make a create safe to repeat across
                processes.
            params: the model's fields, when a model id is given. A
                `pathlib.Path` where an image URL goes is uploaded first.

        Returns:
            The new task (usually `pending`).

        Raises:
            ValidationError: bad parameters; nothing was sent.
            APIError: the API refused (a subclass per status).
            APIConnectionError: no answer after every retry.
        """
        key = _check_idempotency_key(idempotency_key or new_idempotency_key())
        request = _models.build_request(model_or_request, params)
        request = await self._upload_local_files(request)
        body = json.dumps(_models.request_body(request), separators=(",", ":")).encode()
        started = asyncio.get_running_loop().time()
        response = await self._transport.request(
            "POST",
            f"{self.base_url}/v1/videos/generations",
            path="/v1/videos/generations",
            body=body,
            headers={"Idempotency-Key": key},
        )
        task = _parse_task(response)
        if response.replayed:
            logger.info("create replayed by the server for key %s: task %s", key, task.id)
        self._remember_submit(task.id, started)
        return task

    async def get_task(self, task_id: str) -> Task:
        """
        Read a task once (`GET /v1/tasks/{task_id}`).

        Raises:
            BadRequestError: a malformed id (`invalid_task_id`).
            NotFoundError: unknown or expired.
        """
        response = await self._transport.request(
            "GET", self._task_url(task_id), path="/v1/tasks/{id}"
        )
        return _parse_task(response)

    async def wait(
        self,
        task_or_id: Task | str,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Task:
        """
        Wait until a task finishes; return it completed.

        Polling follows the client's `PollPolicy`: planned from the task's
        `estimated_time` and progress, within the client's poll budget, and
        shared by every waiter of the same id. Transient errors while polling
        are retried and never end the wait. Cancelling the caller stops its
        polling at once; the task itself goes on on the server.

        Args:
            task_or_id: a `Task` (from `submit`) or a task id.
            timeout: seconds to wait at most (None: no limit).
            on_progress: called (sync or async) with each new snapshot whose
                status or progress changed, the first one included.

        Raises:
            TaskFailedError: the task failed (`.code`, `.message`, `.retryable`).
            TaskCancelledError: the task was cancelled.
            WaitTimeoutError: `timeout` passed; `.task` is the last snapshot.
            NotFoundError: the task is unknown or expired.
        """
        if isinstance(task_or_id, Task):
            task_id, initial = task_or_id.id, task_or_id
        else:
            task_id, initial = _check_task_id(task_or_id), None
        if timeout is not None and (not _is_number(timeout) or not timeout >= 0):
            raise ValidationError(f"timeout={timeout!r}: must be a number of seconds >= 0")
        self._transport._bind()
        return await self._watcher.wait(
            task_id,
            initial=initial,
            started_at=self._submitted.get(task_id),
            timeout=timeout,
            on_progress=on_progress,
        )

    async def generate(
        self,
        model_or_request: str | _models.Request,
        /,
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        idempotency_key: str | None = None,
        **params: Any,
    ) -> Task:
        """
        Submit a task and wait for it: `submit(...)` then `wait(...)`.

        Returns the completed task; raises as `submit` and `wait` do.
        """
        task = await self.submit(model_or_request, idempotency_key=idempotency_key, **params)
        return await self.wait(task, timeout=timeout, on_progress=on_progress)

    def handle_callback(self, payload: Mapping[str, Any]) -> None:
        """
        Feed a callback body (POSTed to your `callback_url`) into the client.

        Waiters on that task wake now; the client confirms with
        `GET /v1/tasks/{id}` before resolving them, because callbacks are not
        signed. Safe to call for tasks nobody waits on.

        Raises:
            ValidationError: the payload is not a task object.
        """
        try:
            task = structure_task(payload)
        except MalformedResponseError as exc:
            raise ValidationError(f"callback payload is not a task: {exc}") from None
        self._watcher.hint(task)

    def batch(
        self,
        jobs: JobSource,
        *,
        concurrency: int | None = None,
        journal: str | os.PathLike[str] | None = None,
        download_dir: str | os.PathLike[str] | None = None,
        max_active: int = DEFAULT_MAX_ACTIVE,
    ) -> BatchRun:
        """
        Run many jobs: create, watch, download; resumable with a journal.

        Args:
            jobs: an iterable or async iterable of `Job`s or dicts
                (`{"id": ..., "model": ..., "metadata": ..., <params>}`),
                read lazily.
            concurrency: creates in flight at once (default: the client's
                `max_concurrency`); lowered for a while after a 429.
            journal: an SQLite file recording every job's Idempotency-Key,
                task id and outcome as they happen. Re-running the same jobs
                with the same journal re-attaches to created tasks and never
                creates (or pays for) a job's task twice.
            download_dir: download each completed video here, as
                `<job id>.mp4` (the id made safe for a file name).
            max_active: tasks created and not yet finished, at most.

        Returns:
            A `BatchRun`: iterate it for outcomes in completion order, or
            `await run.results()` for all of them in input order.
        """
        return BatchRun(
            self,
            jobs,
            concurrency=concurrency,
            journal=Path(journal) if journal is not None else None,
            download_dir=Path(download_dir) if download_dir is not None else None,
            max_active=max_active,
        )

    # -- files, credits, downloads ------------------------------------------

    async def download(
        self, task: Task, dest: str | os.PathLike[str], *, overwrite: bool = False
    ) -> Path:
        """
        Stream a completed task's video to disk.

        `dest` is a file path, or a directory (then `<task.id>.mp4` inside it,
        with the id sanitised): an existing one, or a path written with a
        trailing slash (`"videos/"`), which is created. The video is written to a temporary file and
        renamed when complete; transient failures are retried (resuming with
        Range where possible); an expired result URL is refreshed by reading
        the task again.

        Raises:
            ValidationError: the task has no video URL.
            FileExistsError: `dest` exists and `overwrite` is False.
            APIError / APIConnectionError: retries ran out; no partial file is left.
        """
        url = task.video_url
        if not url:
            raise ValidationError(
                f"task {task.id} has no video to download (status {task.status.value})"
            )
        text = os.fspath(dest)
        if text.endswith(("/", os.sep)):
            await anyio.Path(text).mkdir(parents=True, exist_ok=True)
        path = target_path(Path(text), task.id)
        session = self._transport.download_session
        if self._downloads is None:
            self._downloads = asyncio.Semaphore(max(2, self.max_concurrency // 4))

        async def refresh() -> str | None:
            return (await self.get_task(task.id)).video_url

        timeout = self._transport.timeout
        read_timeout = timeout.sock_read or timeout.total or 30.0
        async with self._downloads:
            return await download_video(
                session,
                url,
                path,
                overwrite=overwrite,
                retry=self.retry,
                read_timeout=read_timeout,
                refresh_url=refresh,
            )

    async def get_credits(self) -> Credits:
        """The account's credit balance (`GET /v1/credits`); a cheap key check."""
        response = await self._transport.request(
            "GET", f"{self.base_url}/v1/credits", path="/v1/credits"
        )
        data = response.data
        if isinstance(data, Mapping) and data.get("success") is False:
            raise _files_error(response, "credits")
        try:
            return converter.structure(data, Credits)
        except MalformedResponseError as exc:
            raise malformed(response, str(exc)) from None

    async def upload_file(
        self, path_or_bytes: str | os.PathLike[str] | bytes, *, file_name: str | None = None
    ) -> UploadedFile:
        """
        Upload a local image to EvoLink's files API; use `file_url` in a request.

        Files expire after 72 hours. Only images (JPEG, PNG, GIF, WebP) are
        accepted; the format is checked from the file's first bytes before
        anything is sent.

        Raises:
            ValidationError: the file is missing or not an image.
            APIError: the files API refused (also for its HTTP 200 replies
                with `"success": false`).
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
        mime = _image_type(data)
        if mime is None:
            raise ValidationError(
                f"{name!r}: not a JPEG, PNG, GIF or WebP image (the files API stores images only)"
            )

        def form() -> aiohttp.FormData:
            fields = aiohttp.FormData()
            fields.add_field("file", data, filename=name, content_type=mime)
            if file_name:
                fields.add_field("file_name", file_name)
            return fields

        response = await self._transport.request(
            "POST",
            f"{self.files_base_url}/api/v1/files/upload/stream",
            path="/api/v1/files/upload/stream",
            form=form,
        )
        reply = response.data
        if not isinstance(reply, Mapping) or reply.get("success") is not True:
            raise _files_error(response, "upload")
        try:
            return converter.structure(reply.get("data"), UploadedFile)
        except MalformedResponseError as exc:
            raise malformed(response, str(exc)) from None

    # -- internals -----------------------------------------------------------

    async def _upload_local_files(self, request: _models.R) -> _models.R:
        paths = _models.local_files(request)
        if not paths:
            return request
        return _models.replace_files(request, await self._upload_paths(paths))

    async def _upload_paths(self, paths: Sequence[Path]) -> dict[Path, str]:
        """Upload each file (two at a time); path -> its file URL."""
        urls: dict[Path, str] = {}

        async def upload(path: Path) -> None:
            urls[path] = (await self.upload_file(path)).file_url

        try:
            async with anyio.create_task_group() as group:
                for path in paths:
                    group.start_soon(upload, path)
        except BaseExceptionGroup as failed:
            # Two uploads run at once; the caller gets the (first) error
            # itself, as from any other call, not a group of them.
            raise _first_error(failed) from None
        return urls

    def _task_url(self, task_id: str) -> str:
        # The watcher reads the same ids again and again: remember their URLs
        # (a bounded table, cleared when full).
        url = self._task_urls.get(task_id)
        if url is None:
            # Ids are normally URL-safe already; quoting is for the odd one,
            # so it can never change the path (`../credits` stays one segment).
            segment = task_id
            if type(task_id) is not str or not _URL_SAFE.fullmatch(task_id):
                segment = quote(_check_task_id(task_id), safe="")
            url = f"{self.base_url}/v1/tasks/{segment}"
            if len(self._task_urls) >= _MAX_REMEMBERED_SUBMITS:
                self._task_urls.clear()
            self._task_urls[task_id] = url
        return url

    async def _poll_one(self, task_id: str) -> Task:
        # No retries inside: the watcher reschedules, and sees 429s at once.
        response = await self._transport.request(
            "GET", self._task_url(task_id), path="/v1/tasks/{id}", max_retries=0
        )
        return _parse_task(response)

    async def _poll_many(self, task_ids: Sequence[str]) -> list[Task]:
        body = json.dumps({"task_ids": list(task_ids)}).encode()
        response = await self._transport.request(
            "POST",
            f"{self.base_url}/v1/tasks/batch",
            path="/v1/tasks/batch",
            body=body,
            max_retries=0,
        )
        data = response.data
        items = data.get("data") if isinstance(data, Mapping) else data
        if not isinstance(items, list):
            raise malformed(response, "batch reply has no 'data' list")
        tasks = []
        for item in items:
            try:
                tasks.append(structure_task(item))
            except MalformedResponseError:
                continue
        return tasks

    def _remember_submit(self, task_id: str, started: float) -> None:
        self._submitted[task_id] = started
        if len(self._submitted) > _MAX_REMEMBERED_SUBMITS:
            self._submitted.popitem(last=False)


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def _parse_task(response: Response) -> Task:
    try:
        return structure_task(response.data)
    except MalformedResponseError as exc:
        raise malformed(response, str(exc)) from None


def _files_error(response: Response, what: str) -> APIError:
    data = response.data if isinstance(response.data, Mapping) else {}
    code = data.get("code")
    message = data.get("msg") or data.get("message") or f"{what} failed"
    return APIError(
        str(message),
        status=response.status,
        code=code if isinstance(code, str | int) and not isinstance(code, bool) else None,
        request_id=response.request_id,
        body=data,
    )


def _image_type(data: bytes) -> str | None:
    """The MIME type of an image the files API stores, from its first bytes."""
    kind = sniff_image(data[:32])
    return f"image/{kind}" if kind in FILES_API_FORMATS else None


def _check_idempotency_key(key: object) -> str:
    if not isinstance(key, str) or not _IDEMPOTENCY_KEY.fullmatch(key):
        raise ValidationError(
            f"idempotency_key={key!r}: must be 16-96 characters of [A-Za-z0-9._-]"
        )
    return key


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_task_id(task_id: object) -> str:
    if not isinstance(task_id, str) or not task_id.strip():
        raise ValidationError(f"task_id={task_id!r}: must be a non-empty string")
    if not task_id.strip("."):
        # "." and ".." would be read as path steps, not as an id.
        raise ValidationError(f"task_id={task_id!r}: not a task id")
    return task_id


def _base(name: str, value: str | None, env: str, default: str) -> str:
    url = value or os.environ.get(env) or default
    if not url.startswith(("http://", "https://")):
        source = name if value else env
        raise ValidationError(f"{source}={url!r}: must start with http:// or https://")
    return url.rstrip("/")


def _evolve_retry(retry: RetryPolicy, max_retries: int) -> RetryPolicy:
    import attrs

    try:
        return attrs.evolve(retry, max_retries=max_retries)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
