"""
The API's endpoints, one method each, over one `Transport`.

`Endpoints` knows the paths, the request bodies and which reply holds which
value; the transport knows how to send; `decode.py` knows how to read. The
client, the watcher and the batch runner each use the endpoints they need
through this one object (the watcher only through the `TaskReader`
protocol), never through the client.

| call | request |
|---|---|
| `create_task(body, key)` | `POST /v1/videos/generations` with an Idempotency-Key |
| `get_task(id)` / `poll_task(id)` | `GET /v1/tasks/{id}` (`poll_task`: one attempt) |
| `poll_tasks(ids)` | `POST /v1/tasks/batch` (one attempt) |
| `list_tasks(...)` | `GET /v1/tasks?status=&model=&page=&page_size=`, page after page |
| `get_credits()` | `GET /v1/credits` |
| `upload(data or part, ...)` | `POST {files}/api/v1/files/upload/stream` |
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Final, NamedTuple, Protocol
from urllib.parse import quote, urlencode

import aiohttp
import aiohttp.payload

from .._errors import APIError, NotSupportedError, ValidationError
from .._text import printable
from .._values import Credits, Task, UploadedFile
from .decode import Response, read_credits, read_task, read_task_page, read_tasks, read_upload
from .transport import Transport

__all__ = [
    "Created",
    "Endpoints",
    "TaskReader",
    "check_idempotency_key",
    "check_task_id",
    "new_idempotency_key",
]

logger = logging.getLogger("evolink_async")

_IDEMPOTENCY_KEY: Final = re.compile(r"[A-Za-z0-9._-]{16,96}")
#: Characters a path segment may hold unquoted (RFC 3986 unreserved), except
#: that a segment of dots only ("." or "..") is quoted too.
_URL_SAFE: Final = re.compile(r"(?!\.+$)[A-Za-z0-9._~-]+")
#: Task URLs remembered (the watcher reads the same ids again and again);
#: the table is cleared when full, so a long-running process stays flat.
_MAX_TASK_URLS: Final = 50_000


def new_idempotency_key() -> str:
    """A fresh Idempotency-Key: 36 characters of `[a-z0-9-]`."""
    return f"evl-{secrets.token_hex(16)}"


def check_idempotency_key(key: object) -> str:
    """
    The key, if it is one the API takes.

    Raises:
        ValidationError: not 16-96 characters of `[A-Za-z0-9._-]`.
    """
    if not isinstance(key, str) or not _IDEMPOTENCY_KEY.fullmatch(key):
        raise ValidationError(
            f"idempotency_key={key!r}: must be 16-96 characters of [A-Za-z0-9._-]"
        )
    return key


def check_task_id(task_id: object) -> str:
    """
    The id, if it can be a task id.

    Raises:
        ValidationError: not a non-empty string, or only dots.
    """
    if not isinstance(task_id, str) or not task_id.strip():
        raise ValidationError(f"task_id={task_id!r}: must be a non-empty string")
    if not task_id.strip("."):
        # "." and ".." would be read as path steps, not as an id.
        raise ValidationError(f"task_id={task_id!r}: not a task id")
    return task_id


class Created(NamedTuple):
    """
    What a create tells its caller: the task; whether the server replayed an
    earlier create for the same key; whether any attempt met a 429.
    """

    task: Task
    replayed: bool
    rate_limited: bool


def _created(response: Response) -> Created:
    return Created(read_task(response), response.replayed, response.rate_limited)


class TaskReader(Protocol):
    """What the watcher polls through: one read of a task, or of many."""

    async def poll_task(self, task_id: str, /) -> Task:
        """Read one task once (no retries: the watcher reschedules)."""
        ...

    async def poll_tasks(self, task_ids: Sequence[str], /) -> list[Task]:
        """Read several tasks in one request (no retries)."""
        ...


class Endpoints:
    """The API's calls for one client: paths, bodies, replies."""

    def __init__(self, transport: Transport, *, base_url: str, files_base_url: str) -> None:
        self.transport = transport
        self.base_url = base_url
        self.files_base_url = files_base_url
        self._create_url = f"{base_url}/v1/videos/generations"
        self._batch_url = f"{base_url}/v1/tasks/batch"
        self._list_url = f"{base_url}/v1/tasks"
        self._task_urls: dict[str, str] = {}

    def view(self, transport: Transport) -> Endpoints:
        """The same endpoints over another transport (a client's `with_options` view)."""
        return Endpoints(transport, base_url=self.base_url, files_base_url=self.files_base_url)

    async def create_task(
        self, body: bytes, *, idempotency_key: str, model: str | None = None
    ) -> Created:
        """
        Create a task from a JSON body; retries reuse the Idempotency-Key.

        One `evolink.submit` span when tracing is on (`model` names the
        model on it).

        Raises:
            APIError: the API refused (a subclass per status).
            APIConnectionError: no answer after every retry.
        """
        attributes = {"evolink.model": model} if model else None
        with self.transport.telemetry.span("evolink.submit", attributes, client=True) as span:
            created = await self.transport.request(
                "POST",
                self._create_url,
                path="/v1/videos/generations",
                read=_created,
                body=body,
                headers={"Idempotency-Key": idempotency_key},
            )
            if span is not None:
                span.set_attribute("evolink.task.id", created.task.id)
                span.set_attribute("evolink.replayed", created.replayed)
        if created.replayed:
            logger.info(
                "create replayed by the server for key %s: task %s",
                idempotency_key,
                printable(created.task.id),
            )
        return created

    async def get_task(self, task_id: str) -> Task:
        """Read a task (`GET /v1/tasks/{id}`), with retries."""
        return await self.transport.request(
            "GET",
            self.task_url(task_id),
            path="/v1/tasks/{id}",
            read=lambda response: read_task(response, task_id),
        )

    async def poll_task(self, task_id: str, /) -> Task:
        """Read a task once: no retries inside (the watcher reschedules, and sees 429s at once)."""
        return await self.transport.request(
            "GET",
            self.task_url(task_id),
            path="/v1/tasks/{id}",
            read=lambda response: read_task(response, task_id),
            max_retries=0,
        )

    async def poll_tasks(self, task_ids: Sequence[str], /) -> list[Task]:
        """Read several tasks in one `POST /v1/tasks/batch`, once."""
        body = json.dumps({"task_ids": list(task_ids)}).encode()
        return await self.transport.request(
            "POST",
            self._batch_url,
            path="/v1/tasks/batch",
            read=read_tasks,
            body=body,
            max_retries=0,
        )

    async def list_tasks(
        self, *, status: str | None, model: str | None, page_size: int
    ) -> AsyncIterator[Task]:
        """
        Every task `GET /v1/tasks` lists (newest first), page after page,
        until a page is short or empty or `total` is reached.

        An id already yielded is skipped (a task created while paging
        shifts the pages); a page that brings nothing new ends the listing.

        Raises:
            NotSupportedError: the first page got a 404 or 405.
            APIError / APIConnectionError: as any request.
        """
        seen: set[str] = set()
        page = 1
        while True:
            query: dict[str, str | int] = {"page": page, "page_size": page_size}
            if status is not None:
                query["status"] = status
            if model is not None:
                query["model"] = model
            try:
                listing = await self.transport.request(
                    "GET",
                    f"{self._list_url}?{urlencode(query)}",
                    path="/v1/tasks",
                    read=read_task_page,
                )
            except APIError as exc:
                if page == 1 and exc.status in (404, 405):
                    raise NotSupportedError(
                        f"this API does not serve GET /v1/tasks (HTTP {exc.status}); "
                        "listing tasks is not available here",
                        status=exc.status,
                        code=exc.code,
                        type=exc.type,
                        request_id=exc.request_id,
                        body=exc.body,
                    ) from None
                raise
            if listing.unreadable:
                logger.warning(
                    "GET /v1/tasks page %d: %d unreadable item(s) left out",
                    page,
                    listing.unreadable,
                )
            fresh = [task for task in listing.tasks if task.id not in seen]
            for task in fresh:
                seen.add(task.id)
                yield task
            size = listing.page_size or page_size
            items = len(listing.tasks) + listing.unreadable
            if (
                not fresh
                or items < size
                or (listing.total is not None and page * size >= listing.total)
            ):
                return
            page += 1

    async def get_credits(self) -> Credits:
        """The account's balance (`GET /v1/credits`)."""
        return await self.transport.request(
            "GET", f"{self.base_url}/v1/credits", path="/v1/credits", read=read_credits
        )

    async def upload(
        self,
        data: bytes | Callable[[], aiohttp.payload.Payload],
        *,
        name: str,
        mime: str,
        file_name: str | None,
    ) -> UploadedFile:
        """
        Store an image with the files API (multipart, rebuilt per attempt).

        `data` is the file's bytes, or a factory of the file part that is
        called once per attempt (a part streamed from disk is sent only once).
        """

        def form() -> aiohttp.FormData:
            fields = aiohttp.FormData()
            part = data if isinstance(data, bytes) else data()
            fields.add_field("file", part, filename=name, content_type=mime)
            if file_name:
                fields.add_field("file_name", file_name)
            return fields

        return await self.transport.request(
            "POST",
            f"{self.files_base_url}/api/v1/files/upload/stream",
            path="/api/v1/files/upload/stream",
            read=read_upload,
            form=form,
        )

    def task_url(self, task_id: str) -> str:
        """`{base}/v1/tasks/{id}`, the id quoted to stay one path segment."""
        url = self._task_urls.get(task_id)
        if url is None:
            # Ids are normally URL-safe already; quoting is for the odd one,
            # so it can never change the path (`../credits` stays one segment).
            segment = task_id
            if type(task_id) is not str or not _URL_SAFE.fullmatch(task_id):
                segment = quote(check_task_id(task_id), safe="")
            url = f"{self.base_url}/v1/tasks/{segment}"
            if len(self._task_urls) >= _MAX_TASK_URLS:
                self._task_urls.clear()
            self._task_urls[task_id] = url
        return url
