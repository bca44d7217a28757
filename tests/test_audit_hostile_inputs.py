"""
Classes of hostile input an audit found incompletely covered.

- `RetryPolicy`: an int beyond the float range in any field in seconds, or
  one too long to write (over 4,300 digits) in any field, is a
  `ValidationError` naming it, and no finite policy overflows when computing
  a backoff.
- `EvoLinkClient`: an int too long to write in any argument is a
  `ValidationError` naming it.
- `EvoLinkVideos`: wrong types for `journal`, `download_dir`, `client`,
  `run_id` and `creates_per_second` are refused when the stage is built, not later in a
  Ray worker.
- `callback_url`: a private IPv4 host followed by a NUL or whitespace
  (percent-encoded) is refused, since resolvers read only what comes before.
- Callback bodies posted to `callback_handler`: a number no float holds, or
  nesting no parser reads, in any field, is a 400, never a 500.
"""

from __future__ import annotations

import importlib
import ipaddress
import json
import math
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from evolink_async import (
    EvoLinkClient,
    PollPolicy,
    RetryPolicy,
    SharedBudget,
    TaskStatus,
    ValidationError,
    Wan25ImageToVideo,
)
from evolink_async.testing import MockEvoLink
from evolink_async.webhooks import callback_handler

from .conftest import HUGE, NUMERIC_PATHS, make_client

# ------------------------------------------------------------- RetryPolicy

beyond_floats = st.integers(min_value=2**1024, max_value=10**1000).flatmap(
    lambda n: st.sampled_from([n, -n])
)
SECONDS = ["initial_backoff", "max_backoff", "multiplier", "max_retry_after"]


@settings(max_examples=60, deadline=None)
@given(field=st.sampled_from(SECONDS), value=beyond_floats)
def test_retry_policy_refuses_ints_no_float_holds(field: str, value: int) -> None:
    with pytest.raises(ValidationError, match=field):
        RetryPolicy(**{field: value})


too_long_to_write = st.integers(min_value=4301, max_value=6000).map(lambda digits: 10**digits)


@settings(max_examples=30, deadline=None)
@given(field=st.sampled_from([*SECONDS, "max_retries", "retry_statuses"]), value=too_long_to_write)
def test_retry_policy_refuses_ints_too_long_to_write(field: str, value: int) -> None:
    # No repr exists for these ints: the error must still be a ValidationError.
    given: dict[str, Any] = {field: value}
    if field == "retry_statuses":
        given[field] = [value]
    elif field == "max_retries":
        given[field] = -value
    with pytest.raises(ValidationError, match=field) as info:
        RetryPolicy(**given)
    assert "cannot be shown" in str(info.value)


CLIENT_ARGUMENTS = [
    "api_key",
    "base_url",
    "files_base_url",
    "max_concurrency",
    "max_retries",
    "timeout",
    "poll",
    "session",
    "retry",
    "max_video_bytes",
    "download_timeout",
    "default_headers",
    "proxy",
    "trust_env",
    "event_hooks",
    "tracer_provider",
    "meter_provider",
]


@settings(max_examples=40, deadline=None)
@given(
    argument=st.sampled_from(CLIENT_ARGUMENTS),
    value=too_long_to_write,
    sign=st.sampled_from([1, -1]),
)
def test_client_arguments_refuse_ints_too_long_to_write(
    argument: str, value: int, sign: int
) -> None:
    given: dict[str, Any] = {argument: sign * value}
    with pytest.raises(ValidationError, match=argument):
        EvoLinkClient(**given)


@settings(max_examples=30, deadline=None)
@given(value=too_long_to_write, place=st.sampled_from(["hooks", "kind", "hook"]))
def test_event_hooks_refuse_ints_too_long_to_write_anywhere_inside(value: int, place: str) -> None:
    hooks: Any = {
        "hooks": {"request": value},
        "kind": {value: []},
        "hook": {"response": [print, value]},
    }[place]
    with pytest.raises(ValidationError, match="event_hooks") as info:
        EvoLinkClient("sk-test", event_hooks=hooks)
    assert "cannot be shown" in str(info.value)


POLL_FIELDS = [field.name for field in attrs.fields(PollPolicy)]


@settings(max_examples=80, deadline=None)
@given(
    field=st.sampled_from(POLL_FIELDS),
    value=st.one_of(beyond_floats, too_long_to_write),
)
def test_poll_policy_refuses_huge_ints_in_any_field(field: str, value: int) -> None:
    given: dict[str, Any] = {field: value}
    with pytest.raises(ValidationError, match=f"PollPolicy.{field}"):
        PollPolicy(**given)


@settings(max_examples=40, deadline=None)
@given(
    argument=st.sampled_from(["creates_per_second", "polls_per_second", "name"]),
    value=st.one_of(beyond_floats, too_long_to_write),
)
def test_shared_budget_refuses_huge_ints(argument: str, value: int) -> None:
    given: dict[str, Any] = {"creates_per_second": 10.0, argument: value}
    with pytest.raises(ValidationError, match=argument):
        SharedBudget("postgresql://127.0.0.1:1/db", **given)


positive = st.floats(min_value=1e-300, max_value=1e300, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(
    initial=positive,
    ceiling=positive,
    multiplier=positive,
    retry=st.integers(0, 1000),
    u=st.floats(0, 1, exclude_max=True),
)
def test_no_finite_retry_policy_overflows(
    initial: float, ceiling: float, multiplier: float, retry: int, u: float
) -> None:
    policy = RetryPolicy(initial_backoff=initial, max_backoff=ceiling, multiplier=multiplier)
    wait = policy.backoff(retry, u)
    assert 0 <= wait <= ceiling
    delay = policy.delay(retry, u, None)
    assert delay is not None and math.isfinite(delay)


# ------------------------------------------------------------- EvoLinkVideos


def ray_module() -> ModuleType:
    """`evolink_async.ray`, or a skip where the ray extra is not installed."""
    pytest.importorskip("ray", reason="the ray extra is not installed")
    return importlib.import_module("evolink_async.ray")


not_paths = st.one_of(
    st.integers(), st.floats(), st.binary(max_size=4), st.lists(st.integers(), max_size=2)
)
not_options = st.one_of(
    st.integers(),
    st.text(min_size=1, max_size=4),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.integers(), st.integers(), min_size=1, max_size=2),
)


@settings(max_examples=40, deadline=None)
@given(
    argument=st.sampled_from(["journal", "download_dir", "client", "creates_per_second", "run_id"]),
    data=st.data(),
)
def test_evolink_videos_refuses_wrong_arguments_when_built(
    argument: str, data: st.DataObject
) -> None:
    ray_stage = ray_module()
    values = {
        "journal": not_paths,
        "download_dir": not_paths,
        "client": not_options,
        "creates_per_second": st.one_of(
            beyond_floats, too_long_to_write, st.just(math.nan), st.just(-1.0)
        ),
        "run_id": st.one_of(too_long_to_write, st.integers(), st.just(""), st.just(" r ")),
    }[argument]
    value = data.draw(values)
    with pytest.raises(ValidationError, match=argument):
        ray_stage.EvoLinkVideos(**{"run_id": "audit-run", argument: value})


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"timeout": math.nan}, "timeout"),
        ({"timeout": math.inf}, "timeout"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"poll": "fast"}, "poll"),
        ({"retry": 5}, "retry"),
        ({"base_url": "http://"}, "base_url"),
        ({"max_video_bytes": 10**5000}, "max_video_bytes"),
        ({"no_such_option": 1}, "no_such_option"),
    ],
)
def test_evolink_videos_checks_client_options_when_built(
    options: dict[str, Any], named: str
) -> None:
    # Checked on the driver, once, not in every Ray task when the actor
    # first builds its client.
    ray_stage = ray_module()
    with pytest.raises(ValidationError, match=named):
        ray_stage.EvoLinkVideos(run_id="audit-run", client=options)


def test_evolink_videos_keeps_good_client_options() -> None:
    ray_stage = ray_module()
    stage = ray_stage.EvoLinkVideos(
        run_id="audit-run", client={"timeout": 5.0, "max_concurrency": 4}
    )
    assert stage._options == {"timeout": 5.0, "max_concurrency": 4}


def test_evolink_videos_takes_paths_as_text(tmp_path: Path) -> None:
    ray_stage = ray_module()
    journal, videos = tmp_path / "run.journal", tmp_path / "videos"
    stage = ray_stage.EvoLinkVideos(run_id="audit-run", journal=journal, download_dir=videos)
    assert (stage.journal, stage.download_dir) == (str(journal), str(videos))


# ------------------------------------------------------------- callback_url

PRIVATE = [ipaddress.IPv4Network(net) for net in ("10.0.0.0/8", "127.0.0.0/8", "192.168.0.0/16")]
private_v4 = st.sampled_from(PRIVATE).flatmap(
    lambda net: st.integers(int(net.network_address), int(net.broadcast_address)).map(
        ipaddress.IPv4Address
    )
)


@settings(max_examples=100, deadline=None)
@given(
    ip=private_v4,
    stop=st.sampled_from(["%00", "%09", "%0A", "%0b", "%0C", "%0d", "%20"]),
    rest=st.sampled_from(["", ".hooks.example.com", "x", ".8.8.8.8"]),
)
def test_a_private_host_cut_short_by_a_resolver_is_refused(
    ip: ipaddress.IPv4Address, stop: str, rest: str
) -> None:
    url = f"https://{ip}{stop}{rest}/hook"
    with pytest.raises(ValidationError, match="callback"):
        Wan25ImageToVideo(
            prompt="a cat", image_urls=["https://example.com/cat.png"], callback_url=url
        )


def test_a_public_host_before_a_nul_is_still_allowed() -> None:
    request = Wan25ImageToVideo(
        prompt="a cat",
        image_urls=["https://example.com/cat.png"],
        callback_url="https://8.8.8.8%00.x/hook",
    )
    assert request.callback_url is not None


# ------------------------------------------------------------- callback bodies

HOSTILE = [HUGE, f"-{HUGE}", "1e400", "1" * 4400, "[" * 100_000 + "]" * 100_000]
HOSTILE += ['{"a":' * 50_000 + "1" + "}" * 50_000, "NaN", "-Infinity", '"\\ud800"']
PATHS = [
    *NUMERIC_PATHS,
    ("error", "code"),
    ("error", "message"),
    ("results",),
    ("id",),
    ("status",),
]


def callback_body(task_id: str, path: tuple[str, ...], literal: str) -> bytes:
    base: dict[str, Any] = {
        "id": task_id,
        "status": "completed",
        "progress": 100,
        "results": ["https://example.com/v.mp4"],
        "task_info": {},
        "usage": {},
        "error": {},
    }
    node = base
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = "@@slot@@"
    return json.dumps(base).replace('"@@slot@@"', literal).encode()


@pytest.mark.anyio
async def test_hostile_callback_bodies_are_400_not_500(mock: MockEvoLink) -> None:
    async with make_client(mock) as client:
        app = web.Application()
        app.router.add_post("/cb", callback_handler(client))
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/cb"
        task = await client.submit(
            "wan2.5-image-to-video", prompt="a cat", image_urls=["https://example.com/cat.png"]
        )
        statuses: dict[tuple[str, str], int] = {}
        try:
            async with aiohttp.ClientSession() as session:
                for path in PATHS:
                    for literal in HOSTILE:
                        body = callback_body(task.id, path, literal)
                        async with session.post(url, data=body) as reply:
                            statuses[(".".join(path), literal[:8])] = reply.status
                # The client still takes callbacks and finishes its waits.
                done = callback_body(task.id, ("progress",), "100")
                async with session.post(url, data=done) as reply:
                    assert reply.status == 204
            finished = await client.wait(task, timeout=20)
        finally:
            await runner.cleanup()
    assert set(statuses.values()) <= {204, 400}, statuses
    # Nesting no parser reads is refused wherever it sits.
    assert all(statuses[(place, "[[[[[[[[")] == 400 for place in map(".".join, PATHS))
    assert finished.status is TaskStatus.COMPLETED
    # The wait was confirmed with the server, never taken from a callback alone.
    assert mock.stats.requests["GET /v1/tasks/{id}"] >= 1
