"""
Random and malformed replies: the client returns a valid Task or raises a
documented EvoLinkError, never anything else, and never hangs.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evolink_async import Credits, EvoLinkError, RawRequest, RetryPolicy, Task
from evolink_async.testing import Fault, MockEvoLink

from .conftest import FAST_POLL, make_client

STATUSES = [
    200,
    201,
    202,
    204,
    301,
    302,
    400,
    401,
    402,
    403,
    404,
    409,
    413,
    418,
    429,
    500,
    502,
    503,
    504,
]
TASK_ID = "task-unified-1774857405-abc12345"

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
task_like = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.just(TASK_ID), json_values),
        "status": st.one_of(
            st.sampled_from(["pending", "processing", "completed", "failed", "cancelled", "weird"]),
            json_values,
        ),
        "progress": st.one_of(st.integers(-(10**12), 10**12), st.floats(), json_values),
        "created": st.one_of(st.integers(-(10**15), 10**15), json_values),
        "results": st.one_of(st.lists(st.text(max_size=30), max_size=3), json_values),
        "task_info": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "estimated_time": st.one_of(st.floats(), st.integers(), json_values),
                    "can_cancel": json_values,
                    "video_duration": json_values,
                },
            ),
            json_values,
        ),
        "usage": json_values,
        "error": json_values,
    },
)
html_pages = st.sampled_from(
    [
        "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
        "<!DOCTYPE html><h1>Service Unavailable</h1>",
        "",
        "OK",
    ]
)


def encode(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


bodies = st.one_of(
    task_like.map(encode),
    json_values.map(encode),
    st.builds(lambda e: encode({"error": e}), json_values),
    html_pages.map(str.encode),
    st.binary(max_size=64),
)
header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
retry_after = st.one_of(
    st.none(),
    st.sampled_from(["-1", "0", "0.01", "1e9", "nan", "inf", "Fri, 31 Dec 9999 23:59:59 GMT"]),
    st.integers(-5, 10**9).map(str),
    header_text,
)
replies = st.tuples(st.sampled_from(STATUSES), bodies, retry_after, st.integers(1, 3))


async def exercise(status: int, body: bytes, after: str | None, times: int) -> list[object]:
    """Feed one hostile reply `times` times to each call; collect what came back."""
    retry = RetryPolicy(
        max_retries=2, initial_backoff=0.001, max_backoff=0.005, max_retry_after=0.05
    )
    results: list[object] = []
    async with MockEvoLink(time_scale=0.001, seed=3) as mock:
        headers = {"Retry-After": after} if after is not None else None
        async with make_client(mock, retry=retry, timeout=1.0) as client:
            request = RawRequest(
                "wan2.5-image-to-video",
                {"prompt": "A cat", "image_urls": ["https://example.com/cat.png"]},
            )
            for route, call in (
                ("GET /v1/tasks/{id}", lambda: client.get_task(TASK_ID)),
                ("POST /v1/videos/generations", lambda: client.submit(request)),
                ("GET /v1/credits", client.get_credits),
            ):
                mock.inject(
                    Fault.REPLY, route=route, status=status, body=body, headers=headers, times=times
                )
                results.append(await outcome(call()))
                mock.clear_injections()
            task = await client.submit(request)
            mock.inject(
                Fault.REPLY,
                route="GET /v1/tasks/{id}",
                status=status,
                body=body,
                headers=headers,
                times=times,
            )
            results.append(await outcome(client.wait(task, timeout=5.0)))
    return results


async def outcome(call: Any) -> object:
    try:
        async with asyncio.timeout(10):
            return await call
    except EvoLinkError as exc:
        return exc


@pytest.mark.timeout(120)
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(replies)
def test_any_reply_gives_a_task_or_a_documented_error(
    reply: tuple[int, bytes, str | None, int],
) -> None:
    status, body, after, times = reply
    for result in asyncio.run(exercise(status, body, after, times)):
        if isinstance(result, Task):
            assert result.id
            assert 0 <= result.progress <= 100
            assert result.estimated_time is None or math.isfinite(result.estimated_time)
        else:
            # outcome() lets only EvoLinkError through; anything else raised
            # fails the test. A value here is a Credits reply.
            assert isinstance(result, EvoLinkError | Credits)


def test_poll_429_with_a_year_long_retry_after_does_not_park_the_wait() -> None:
    async def run() -> Task:
        async with MockEvoLink(time_scale=0.001) as mock, make_client(mock) as client:
            task = await client.submit(
                RawRequest(
                    "wan2.5-image-to-video",
                    {"prompt": "A cat", "image_urls": ["https://example.com/cat.png"]},
                )
            )
            mock.inject(
                Fault.RATE_LIMIT,
                route="GET /v1/tasks/{id}",
                retry_after="Fri, 31 Dec 9999 23:59:59 GMT",
            )
            return await client.wait(task, timeout=10 * FAST_POLL.max_interval + 2)

    assert asyncio.run(run()).is_terminal
