"""
`EvoLinkClient`: the one object an application creates and shares.

The client is a thin face. It owns the parts, each made once per client,
and every public call goes one floor down to one of them:

- `_config.client_config`: arguments and environment, checked;
- `_api.transport.Transport`: the session, the concurrency limit, retries;
- `_api.endpoints.Endpoints`: each API call;
- `_api.uploads.Uploads`: local files -> URLs;
- `_api.downloads.Downloader`: result videos -> files, one limit;
- `_watch.watcher.Watcher`: one poll loop for every wait, reading through
  the endpoints;
- `_parts.make_parts` makes them from the config, `_parts.view_parts`
  a `with_options` view's own;
- `_batch.runner.BatchRun`: built from those parts for each `batch` call.

`submit` and `generate` come from `_calls.ModelCalls`, their faces as type
checkers see them (one overload per model id); the client implements them
as `_submit` and `_generate`.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import warnings
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

import aiohttp
import anyio

from . import _models
from ._api.downloads import DEFAULT_DOWNLOAD_TIMEOUT, DEFAULT_MAX_VIDEO_BYTES, target_path
from ._api.endpoints import check_idempotency_key, check_task_id, new_idempotency_key
from ._api.hooks import RequestEvent
from ._api.retry import RetryPolicy
from ._batch.jobs import JobSource
from ._batch.runner import DEFAULT_MAX_ACTIVE, BatchRun
from ._batch.shared_budget import Budget
from ._batch.store import DEFAULT_LEASE, journal_name
from ._calls import ModelCalls, ProgressCallback
from ._config import (
    check_batch_arguments,
    check_download_arguments,
    check_list_arguments,
    check_wait_options,
    client_config,
    view_config,
)
from ._convert import MalformedResponseError, structure_task
from ._errors import ClientClosedError, ValidationError
from ._parts import make_parts, view_parts
from ._telemetry import model_attribute
from ._values import Credits, Task, TaskStatus, UploadedFile
from ._watch.policy import PollPolicy

if TYPE_CHECKING:
    from opentelemetry import metrics, trace

__all__ = ["EvoLinkClient"]

#: Callback bodies are one task object; anything much larger is not one.
MAX_CALLBACK_BYTES: Final = 1 << 20
#: Submit times remembered so `wait(task)` after `submit` plans from the real
#: start; bounded so a long-running process does not grow without end.
_MAX_REMEMBERED_SUBMITS: Final = 50_000


class EvoLinkClient(ModelCalls):
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
        max_video_bytes: the largest result video downloaded (default 2 GiB);
            a larger one fails with `MalformedReplyError`, leaving no file.
        download_timeout: seconds one download may take, retries included
            (default 900); then it fails with `APITimeoutError`.
        default_headers: extra headers on every API request (not downloads);
            one the SDK sets (Authorization, ...) is a `ValidationError`.
        proxy: a proxy URL for every request, downloads included.
        trust_env: without `proxy`, use `HTTP(S)_PROXY` / `NO_PROXY`.
        event_hooks: `{"request": [...], "response": [...], "retry": [...]}`,
            callables (sync or async) given a `RequestEvent` per attempt.
        tracer_provider, meter_provider: OpenTelemetry providers (default: global).
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
        max_video_bytes: int = DEFAULT_MAX_VIDEO_BYTES,
        download_timeout: float = DEFAULT_DOWNLOAD_TIMEOUT,
        default_headers: Mapping[str, str] | None = None,
        proxy: str | None = None,
        trust_env: bool = True,
        event_hooks: Mapping[str, Sequence[Callable[[RequestEvent], Any]]] | None = None,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        config = client_config(
            api_key=api_key,
            base_url=base_url,
            files_base_url=files_base_url,
            max_concurrency=max_concurrency,
            max_retries=max_retries,
            timeout=timeout,
            poll=poll,
            retry=retry,
            max_video_bytes=max_video_bytes,
            download_timeout=download_timeout,
            session=session,
            default_headers=default_headers,
            proxy=proxy,
            trust_env=trust_env,
            event_hooks=event_hooks,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
        )
        self._config = config
        self.base_url = config.base_url
        self.files_base_url = config.files_base_url
        self.poll = config.poll
        self.max_concurrency = config.max_concurrency
        self._transport, self._endpoints, self._uploads, self._downloader, self._watcher = (
            make_parts(config, session, tracer_provider, meter_provider, self._fresh_video_url)
        )
        self._submitted: OrderedDict[str, float] = OrderedDict()
        self._view_of: EvoLinkClient | None = None  # the client of a `with_options` view

    def with_options(
        self,
        *,
        timeout: float | aiohttp.ClientTimeout | None = None,
        max_retries: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> EvoLinkClient:
        """
        A view with other per-request options (None: keep this client's),
        sharing the session, the concurrency limit, the watcher, the
        downloader and the budgets.

        The view's own requests (submit, get_task, list_tasks, credits,
        uploads, a batch's creates) take its options, `headers` added over
        `default_headers` by the same rules; the shared watcher's polls and
        downloads keep this client's. Closing this client closes the view;
        closing the view only marks it closed and closes nothing shared.

        Raises:
            ValidationError: an option breaks its rule.
            ClientClosedError: this client is closed.
        """
        config, extra = view_config(
            self._config, timeout=timeout, max_retries=max_retries, headers=headers
        )
        if self.closed:
            raise ClientClosedError("this EvoLinkClient is closed; create a new one")
        view = copy.copy(self)  # shares the watcher, downloader and submit times
        view._config, view._view_of = config, self
        view._transport, view._endpoints, view._uploads = view_parts(
            self._transport, self._endpoints, config, extra
        )
        return view

    # -- lifecycle -----------------------------------------------------------

    def __repr__(self) -> str:
        key = "set" if self._config.api_key else "missing"
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

        Waits still in progress end with an error. Safe to call twice. On a
        `with_options` view: only mark the view (and its views) closed.
        """
        if self._view_of is not None:
            await self._transport.aclose()
            return
        self._downloader.close()
        try:
            await self._watcher.aclose()
        finally:
            # Even when the caller is being cancelled (asyncio.run on Ctrl-C
            # cancels the main task, and the watcher's close then passes the
            # cancellation on), the session must not be left open.
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
    # `submit` and `generate` are `_calls.ModelCalls`' typed faces (one
    # overload per model id); they call these two.

    async def _submit(
        self,
        model_or_request: str | _models.Request,
        params: Mapping[str, Any],
        idempotency_key: str | None,
    ) -> Task:
        key = check_idempotency_key(
            new_idempotency_key() if idempotency_key is None else idempotency_key
        )
        request = _models.build_request(model_or_request, params)
        request, _ = await self._uploads.resolve(request)
        body = json.dumps(_models.request_body(request), separators=(",", ":")).encode()
        started = asyncio.get_running_loop().time()
        created = await self._endpoints.create_task(body, idempotency_key=key, model=request.model)
        self._remember_submit(created.task.id, started)
        return created.task

    async def get_task(self, task_id: str) -> Task:
        """
        Read a task once (`GET /v1/tasks/{task_id}`).

        Raises:
            BadRequestError: a malformed id (`invalid_task_id`).
            NotFoundError: unknown or expired.
        """
        return await self._endpoints.get_task(check_task_id(task_id))

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
            task_id, initial = check_task_id(task_or_id), None
        check_wait_options(timeout, on_progress)
        # Bind the session to this loop now: a closed client or a second
        # loop fails here, not inside the shared poll loop.
        self._transport.bind()
        return await self._watcher.wait(
            task_id,
            initial=initial,
            started_at=self._submitted.get(task_id),
            timeout=timeout,
            on_progress=on_progress,
        )

    async def _generate(
        self,
        model_or_request: str | _models.Request,
        params: Mapping[str, Any],
        timeout: float | None,
        on_progress: ProgressCallback | None,
        idempotency_key: str | None,
    ) -> Task:
        check_wait_options(timeout, on_progress)
        # One trace per generate: the create, the wait and its polls are children.
        with self._transport.telemetry.span("evolink.generate", model_attribute(model_or_request)):
            task = await self._submit(model_or_request, params, idempotency_key)
            return await self.wait(task, timeout=timeout, on_progress=on_progress)

    def list_tasks(
        self,
        *,
        status: TaskStatus | str | None = None,
        model: str | None = None,
        page_size: int = 50,
    ) -> AsyncIterator[Task]:
        """
        Every task of the account (newest first, optionally of one `status`
        or `model`): `GET /v1/tasks`, `page_size` (1-100) per request, page
        after page as the `async for` goes, each task once.

        Raises:
            ValidationError: a bad argument, at once, before anything is sent.
            NotSupportedError: the API does not serve the listing (404/405;
                EvoLink's own clients use it, its docs do not describe it).
        """
        status_value, model_id, size = check_list_arguments(status, model, page_size)
        return self._endpoints.list_tasks(status=status_value, model=model_id, page_size=size)

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
        except Exception as exc:  # a hostile body: any failure to read it is one error
            raise ValidationError(
                f"callback payload is not a task (unreadable: {type(exc).__name__})"
            ) from None
        self._watcher.hint(task)

    def handle_callback_body(self, body: bytes) -> None:
        """
        Feed a raw callback body (the bytes POSTed to your `callback_url`) into
        the client, from any web framework: `handle_callback` after reading
        the JSON.

        Raises:
            ValidationError: the body is over `MAX_CALLBACK_BYTES`, not JSON,
                not a JSON object, or not a task.
        """
        if not isinstance(body, bytes | bytearray | str):
            raise ValidationError(f"body: must be bytes, not {type(body).__name__}")
        if len(body) > MAX_CALLBACK_BYTES:
            raise ValidationError(
                f"callback body of {len(body)} bytes: over the {MAX_CALLBACK_BYTES}-byte limit"
            )
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise ValidationError(f"callback body is not JSON ({type(exc).__name__})") from None
        if not isinstance(payload, dict):
            raise ValidationError("callback body is not a JSON object")
        self.handle_callback(payload)

    def batch(
        self,
        jobs: JobSource,
        *,
        concurrency: int | None = None,
        journal: str | os.PathLike[str] | None = None,
        download_dir: str | os.PathLike[str] | None = None,
        max_active: int = DEFAULT_MAX_ACTIVE,
        run_id: str | None = None,
        budget: Budget | None = None,
        lease: float = DEFAULT_LEASE,
    ) -> BatchRun:
        """
        Run many jobs: create, watch, download; resumable with a journal.

        Args:
            jobs: an iterable or async iterable of `Job`s or dicts
                (`{"id": ..., "model": ..., "metadata": ..., <params>}`),
                read lazily.
            concurrency: creates in flight at once (default: the client's
                `max_concurrency`); creates per second are paced apart, at
                the rate the server's 429s show it allows.
            journal: an SQLite file, or a `postgresql://` URL (shared by
                every process of one run: needs `run_id`), recording every
                job's Idempotency-Key, task id and outcome as they happen.
                Re-running the same jobs
                with the same journal re-attaches to created tasks and never
                creates (or pays for) a job's task twice.
            download_dir: download each completed video here, as
                `<job id>.mp4` (the id made safe for a file name).
            max_active: tasks created and not yet finished, at most.
            run_id: names the run; each job's Idempotency-Key is derived from
                it, the job id and the request, so every attempt and every
                process sends the same key for the same job. A new run id
                makes fresh tasks on purpose. Default: the one an SQLite
                journal keeps (made on its first use), or a fresh one.
            budget: a `SharedBudget`: each create waits for one of its
                tokens, and while the run lasts the client's polls draw from
                it too, so processes sharing a key stay within its limits.
            lease: with a PostgreSQL journal, seconds a silent process keeps
                its jobs; after that the other processes of the run take
                them over (re-attach to their tasks, or re-send their
                creates with the same key).

        Returns:
            A `BatchRun`: iterate it for outcomes in completion order, or
            `await run.results()` for all of them in input order.
        """
        check_batch_arguments(jobs, journal, download_dir)
        return BatchRun(
            jobs,
            endpoints=self._endpoints,
            uploads=self._uploads,
            downloader=self._downloader,
            watcher=self._watcher,
            concurrency=self.max_concurrency if concurrency is None else concurrency,
            journal=journal_name(journal),
            download_dir=Path(download_dir) if download_dir is not None else None,
            max_active=max_active,
            run_id=run_id,
            budget=budget,
            lease=lease,
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
        check_download_arguments(task, dest, overwrite)
        url = task.video_url
        if not url:
            raise ValidationError(
                f"task {task.id} has no video to download (status {task.status.value})"
            )
        text = os.fspath(dest)
        if text.endswith(("/", os.sep)):
            await anyio.Path(text).mkdir(parents=True, exist_ok=True)
        path = target_path(Path(text), task.id)
        return await self._downloader.download(task.id, url, path, overwrite=overwrite)

    async def get_credits(self) -> Credits:
        """The account's credit balance (`GET /v1/credits`); a cheap key check."""
        return await self._endpoints.get_credits()

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
        return await self._uploads.upload_file(path_or_bytes, file_name=file_name)

    # -- internals -----------------------------------------------------------

    async def _fresh_video_url(self, task_id: str) -> str | None:
        """A completed task's result URL, read again (for an expired link)."""
        return (await self._endpoints.get_task(task_id)).video_url

    def _remember_submit(self, task_id: str, started: float) -> None:
        self._submitted[task_id] = started
        if len(self._submitted) > _MAX_REMEMBERED_SUBMITS:
            self._submitted.popitem(last=False)
