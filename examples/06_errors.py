"""
Handling every error class evolink_async raises, each caused for real.

Shows what each exception means, which attributes it carries and what to do
about it. Every one is an `EvoLinkError`, so `except EvoLinkError` catches
them all; "the API refused the call" (`APIError` and its subclasses, by HTTP
status) is kept apart from "the generation ran and failed"
(`TaskFailedError`). In a batch run errors are not raised but recorded in
each job's outcome (`outcome.error`), `NotSubmittedError` among them; only
a journal the run cannot use is raised (`JournalError`). No message ever
contains the API key.

    python examples/06_errors.py           # what needs no server: bad parameters,
                                           # no key, nothing listening
    python examples/06_errors.py --mock    # every class, against the embedded fake server

With `--mock`, the fake server is told to misbehave: tiny credits, injected
429s, 5xx and slow replies, and prompts containing `mock:fail=<code>` or
`mock:cancel`.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import evolink_async
from evolink_async import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    EvoLinkClient,
    EvoLinkError,
    IdempotencyConflictError,
    InsufficientCreditsError,
    JournalError,
    MalformedReplyError,
    NotFoundError,
    NotSubmittedError,
    NotSupportedError,
    PermissionDeniedError,
    PollPolicy,
    RateLimitError,
    RequestTooLargeError,
    RetryPolicy,
    ServerError,
    TaskCancelledError,
    TaskFailedError,
    ValidationError,
    WaitTimeoutError,
)
from evolink_async.testing import Fault, MockEvoLink

MODEL: Final = "wan2.5-image-to-video"
CREATE = "POST /v1/videos/generations"
JOB: dict[str, Any] = {
    "prompt": "A cat playing piano",
    "image_urls": ["https://example.com/cat.png"],
}
#: Scaled like the mock (time_scale 0.01): 2 s -> 20 ms, 60 s -> 0.6 s.
POLL = PollPolicy(min_interval=0.02, max_interval=0.6, default_estimate=1.2)
#: Retry once, quickly, so the errors that come "after every retry" come at once.
IMPATIENT = RetryPolicy(max_retries=1, initial_backoff=0.01, max_backoff=0.05)

shown: list[str] = []


def report(exc: EvoLinkError, *details: str) -> None:
    """Print what was caught, with the attributes worth knowing."""
    name = type(exc).__name__
    shown.append(name)
    print(f"\n{name}: {exc}")
    for detail in details:
        print(f"    {detail}")


def api_details(exc: APIError) -> str:
    return f".status={exc.status} .code={exc.code!r} .request_id={exc.request_id!r}"


def free_port() -> int:
    """A loopback port nothing listens on (bound, read, released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- no server needed ---------------------------------------------------------


async def offline_errors() -> None:
    # No key in the environment is needed for any of these.
    async with EvoLinkClient("sk-placeholder-not-used") as client:
        try:  # Bad parameters: refused before anything is sent, every problem at once.
            await client.submit(
                "seedance-2.0-image-to-video",
                prompt=" ",
                image_urls=["https://example.com/a.png"] * 3,
                duration=30,
            )
        except ValidationError as exc:  # also a ValueError
            report(exc, *(f".problems: {p.field}: {p.rule}" for p in exc.problems))

    async with EvoLinkClient(api_key="") as client:  # "" means: no key at all
        try:
            await client.get_credits()
        except AuthenticationError as exc:
            report(exc, "no key configured: set EVOLINK_API_KEY (checked before sending)")

    client = EvoLinkClient("sk-placeholder-not-used")
    await client.aclose()
    try:
        await client.get_credits()
    except ClientClosedError as exc:  # also a RuntimeError
        report(exc, "a closed client is not reopened: make a new one (or keep one open)")

    port = free_port()
    async with EvoLinkClient(
        "sk-placeholder-not-used", base_url=f"http://127.0.0.1:{port}", retry=IMPATIENT
    ) as client:
        try:
            await client.get_credits()
        except APIConnectionError as exc:
            report(
                exc,
                "no HTTP answer after every retry (RetryPolicy.max_retries); a create that "
                "ended like this is safe to resubmit with the same idempotency_key",
            )


# -- the API refused --------------------------------------------------------------


async def api_errors(mock: MockEvoLink) -> None:
    async with EvoLinkClient(
        "sk-wrong-key-000000", base_url=mock.url, files_base_url=mock.url
    ) as client:
        try:
            await client.get_credits()
        except AuthenticationError as exc:
            report(exc, api_details(exc), "the server refused the key (HTTP 401)")

    async with (
        MockEvoLink(time_scale=0.01, credits=20) as poor,
        EvoLinkClient(poor.api_key, base_url=poor.url, files_base_url=poor.url) as client,
    ):
        try:  # seedance costs 10 credits per second of video
            await client.submit("seedance-2.0-image-to-video", **JOB, duration=5)
        except InsufficientCreditsError as exc:
            balance = await client.get_credits()
            report(
                exc,
                api_details(exc),
                f"remaining credits: {balance.remaining_credits:g}; top up, then retry",
            )

    async with EvoLinkClient(
        mock.api_key, base_url=mock.url, files_base_url=mock.url, retry=IMPATIENT, timeout=0.2
    ) as client:
        mock.inject(Fault.RATE_LIMIT, route=CREATE, times=2, retry_after=0.05)
        try:
            await client.submit(MODEL, **JOB)
        except RateLimitError as exc:
            report(exc, api_details(exc), f".retry_after={exc.retry_after} (seconds to wait)")

        mock.inject(Fault.SERVER_ERROR, route=CREATE, times=2, status=502)
        try:
            await client.submit(MODEL, **JOB)
        except ServerError as exc:
            report(exc, api_details(exc), "5xx after every retry: try again later")

        mock.inject(Fault.SLOW, route="GET /v1/credits", times=2, delay=0.5)
        try:
            await client.get_credits()
        except APITimeoutError as exc:  # also an APIConnectionError
            report(exc, "no reply within the client's timeout, after every retry")

        try:
            await client.get_task("task-unified-1700000000-zzzzzzzz")
        except NotFoundError as exc:
            report(exc, api_details(exc), "unknown, or expired (tasks are kept 24 hours)")

        try:
            await client.get_task("not-a-task-id")
        except BadRequestError as exc:
            report(exc, api_details(exc))

        # A deployment without the task listing (it is not in the public docs).
        mock.inject(Fault.REPLY, route="GET /v1/tasks", status=404, body={"error": "no"})
        try:
            async for _ in client.list_tasks():
                break
        except NotSupportedError as exc:  # an APIError
            report(exc, "this API does not list tasks: keep your own task ids")

        # A gateway that answers 200 with something that is not a task, every time.
        mock.inject(Fault.REPLY, route="GET /v1/tasks/{id}", status=200, body=b"<html>", times=2)
        try:
            await client.get_task("task-unified-1700000000-zzzzzzzz")
        except MalformedReplyError as exc:  # an APIError; retried like a 5xx first
            report(exc, "the API answered, but not with anything readable")

        key = "example-key-0123456789"
        await client.submit(MODEL, **JOB, idempotency_key=key)
        try:  # the same key with another body: the server refuses (HTTP 409)
            await client.submit(MODEL, **{**JOB, "duration": 10}, idempotency_key=key)
        except IdempotencyConflictError as exc:  # a BadRequestError
            report(exc, api_details(exc), "a key names one create: use a new key per request")

        # Two statuses the fake server only gives on request, as canned replies.
        for status, code, message in [
            (403, "model_access_denied", "This model is not enabled for your API key"),
            (413, "request_too_large", "Request body is over 64 MB"),
        ]:
            error = {"code": code, "message": message, "type": "invalid_request_error"}
            mock.inject(Fault.REPLY, route=CREATE, status=status, body={"error": error})
            try:
                await client.submit(MODEL, **JOB)
            except (PermissionDeniedError, RequestTooLargeError) as exc:
                report(exc, api_details(exc))


# -- the task itself ----------------------------------------------------------


async def task_errors(mock: MockEvoLink) -> None:
    async with EvoLinkClient(
        mock.api_key, base_url=mock.url, files_base_url=mock.url, poll=POLL
    ) as client:
        for code in ["content_policy_violation", "resource_exhausted"]:
            try:
                await client.generate(MODEL, **{**JOB, "prompt": f"A cat mock:fail={code}"})
            except TaskFailedError as exc:
                advice = "resubmit it" if exc.retryable else "change the request"
                report(exc, f".code={exc.code!r} .retryable={exc.retryable}: {advice}")

        try:
            await client.generate(MODEL, **{**JOB, "prompt": "A cat mock:cancel"})
        except TaskCancelledError as exc:
            report(exc, f".task.status={exc.task.status.value}")

        task = await client.submit(MODEL, **JOB)
        try:
            await client.wait(task, timeout=0.05)
        except WaitTimeoutError as exc:  # also a TimeoutError
            last = exc.task.status.value if exc.task else "never read"
            report(exc, f".task (last snapshot): {last}; the task goes on: wait again")
            done = await client.wait(exc.task_id)
            print(f"    waited again: {done.status.value}")


# -- a batch: errors are outcomes, not exceptions -------------------------------


async def batch_errors(mock: MockEvoLink) -> None:
    async with EvoLinkClient(
        mock.api_key, base_url=mock.url, files_base_url=mock.url, poll=POLL
    ) as client:

        def jobs() -> Iterator[dict[str, Any]]:
            for n in range(3):
                yield {"id": f"job-{n}", "model": MODEL, **JOB}
                # A shutdown (Ctrl-C, SIGTERM...) arrives after job-0 was read
                # and before it was sent: the run stops reading and sends nothing more.
                run.stop("shutting down")

        run = client.batch(jobs())
        async for outcome in run:
            if isinstance(outcome.error, NotSubmittedError):
                report(outcome.error, f"job {outcome.job_id}: re-run the batch to send it")

        with tempfile.TemporaryDirectory() as folder:
            notes = Path(folder) / "notes.txt"
            notes.write_text("my shopping list\n")
            try:  # a batch journal that is some other file
                await client.batch([{"model": MODEL, **JOB}], journal=notes).results()
            except JournalError as exc:
                report(
                    exc,
                    "refused before anything is sent, the file left as it was; so is a "
                    "journal another run holds (one run per journal)",
                )


async def main(use_mock: bool) -> None:
    """Cause each error and handle it."""
    await offline_errors()
    if not use_mock:
        print("\nThe other errors need a server that misbehaves on request: run with --mock.")
    else:
        # Task times shortened further (wan2.5: 50 s -> 0.5 s) so the task errors come fast.
        async with MockEvoLink(time_scale=0.01, estimated_times={MODEL: 50}) as mock:
            await api_errors(mock)
            await task_errors(mock)
            await batch_errors(mock)
    public = (getattr(evolink_async, name) for name in evolink_async.__all__)
    everything = {
        error.__name__
        for error in public
        if isinstance(error, type) and issubclass(error, EvoLinkError) and error is not APIError
    }
    everything.discard(EvoLinkError.__name__)
    missing = sorted(everything - set(shown))
    print(f"\nshown {len(set(shown))} of {len(everything)} error classes", end="")
    print(f"; not shown: {', '.join(missing)}" if missing else "")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--mock", action="store_true", help="use the embedded fake server")
    asyncio.run(main(parser.parse_args().mock))
