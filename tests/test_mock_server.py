"""
Tests of `evolink_async.testing.MockEvoLink` itself, spoken to with plain
aiohttp sessions (not the SDK client), so a bug in one cannot hide one in
the other.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict

from evolink_async.testing import Fault, FaultPlan, MockEvoLink, serve_forever
from evolink_async.testing._rules import check_create

pytestmark = pytest.mark.anyio

SCALE = 0.002  # a 165 s seedance task takes 0.33 s
CREATE = "POST /v1/videos/generations"
GET_TASK = "GET /v1/tasks/{id}"
SEEDANCE = "seedance-2.0-image-to-video"
IMAGE = "https://example.com/cat.png"
KEY = "test-key-0000000000000001"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
GIF = b"GIF89a" + b"\x01" * 32
DISCONNECTED = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)


def seedance(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": SEEDANCE, "prompt": "a cat", "image_urls": [IMAGE]}
    body.update(extra)
    return body


def auth(mock: MockEvoLink, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mock.api_key}", **extra}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def mock() -> AsyncIterator[MockEvoLink]:
    async with MockEvoLink(time_scale=SCALE, seed=3) as server:
        yield server


async def create(
    session: aiohttp.ClientSession,
    mock: MockEvoLink,
    body: Any,
    *,
    key: str | None = None,
) -> tuple[int, Any, CIMultiDict[str]]:
    headers = auth(mock, **({"Idempotency-Key": key} if key else {}))
    async with session.post(f"{mock.url}/v1/videos/generations", json=body, headers=headers) as r:
        return r.status, await r.json(), CIMultiDict(r.headers)


async def get_task(session: aiohttp.ClientSession, mock: MockEvoLink, task_id: str) -> Any:
    async with session.get(f"{mock.url}/v1/tasks/{task_id}", headers=auth(mock)) as r:
        assert r.status == 200
        return await r.json()


async def wait_done(
    session: aiohttp.ClientSession, mock: MockEvoLink, task_id: str
) -> list[dict[str, Any]]:
    seen = []
    for _ in range(500):
        task = await get_task(session, mock, task_id)
        seen.append(task)
        if task["status"] in ("completed", "failed", "cancelled"):
            return seen
        await asyncio.sleep(0.005)
    raise AssertionError(f"task {task_id} never finished")


# ------------------------------------------------------------------- auth


async def test_missing_or_wrong_key_gets_documented_401(
    mock: MockEvoLink, session: aiohttp.ClientSession
) -> None:
    for headers in ({}, {"Authorization": "Bearer sk-wrong"}):
        async with session.get(f"{mock.url}/v1/credits", headers=headers) as r:
            assert r.status == 401
            assert r.headers["X-Request-Id"]
            error = (await r.json())["error"]
    assert error["code"] == "unauthorized"
    assert error["type"] == "authentication_error"
    assert error["message"]
    assert mock.stats.requests["GET /v1/credits"] == 2


# ----------------------------------------------------------------- create


async def test_create_reply_has_documented_shape(
    mock: MockEvoLink, session: aiohttp.ClientSession
) -> None:
    status, task, headers = await create(session, mock, seedance(duration=5))
    assert status == 200
    assert headers["X-Request-Id"]
    assert re.fullmatch(r"task-unified-\d+-[a-z0-9]{8}", task["id"])
    assert abs(task["created"] - time.time()) < 5
    assert task["object"] == "video.generation.task"
    assert task["model"] == SEEDANCE
    assert (task["status"], task["progress"], task["type"]) == ("pending", 0, "video")
    assert task["task_info"] == {
        "can_cancel": True,
        "estimated_time": 0.33,
        "video_duration": 5,
    }
    assert task["usage"] == {
        "billing_rule": "per_second",
        "credits_reserved": 50,
        "user_group": "default",
    }
    assert mock.stats.tasks_created == 1
    assert mock.tasks[task["id"]].body == seedance(duration=5)
    assert mock.requests_log[-1].json == seedance(duration=5)
    assert mock.requests_log[-1].route == CREATE


async def test_estimated_time_follows_scale_bias_and_can_be_hidden(
    session: aiohttp.ClientSession,
) -> None:
    async with MockEvoLink(time_scale=0.01, eta_bias=10.0) as biased:
        _, task, _ = await create(session, biased, seedance())
        assert task["task_info"]["estimated_time"] == 16.5
        assert biased.tasks[task["id"]].duration < 5  # the truth is ~1.65 s
    async with MockEvoLink(report_estimated_time=False) as silent:
        _, task, _ = await create(session, silent, seedance())
        assert "estimated_time" not in task["task_info"]


async def test_same_seed_gives_same_run_times(session: aiohttp.ClientSession) -> None:
    runs = []
    for _ in range(2):
        async with MockEvoLink(seed=7, time_scale=SCALE) as server:
            for _ in range(5):
                await create(session, server, seedance())
            runs.append([t.duration for t in server.tasks.values()])
    assert runs[0] == runs[1]
    assert len(set(runs[0])) == 5


# -------------------------------------------------------------- lifecycle


async def test_task_runs_to_completion_with_monotonic_progress(
    mock: MockEvoLink, session: aiohttp.ClientSession
) -> None:
    _, created, _ = await create(session, mock, seedance())
    seen = await wait_done(session, mock, created["id"])
    statuses = [t["status"] for t in seen]
    assert statuses[-1] == "completed"
    assert "processing" in statuses
    order = ["pending", "processing", "completed"]
    assert [order.index(s) for s in statuses] == sorted(order.index(s) for s in statuses)
    progress = [t["progress"] for t in seen]
    assert progress == sorted(progress)
    assert progress[-1] == 100
    assert all(p < 100 for p in progress[:-1])
    assert len(set(progress)) >= 3  # moves in steps, not 0 -> 100
    final = seen[-1]
    assert final["usage"]["credits_used"] == 50
    assert final["task_info"]["can_cancel"] is False
    assert final["results"][0].startswith(f"{mock.url}/files/videos/{created['id']}.mp4?sig=")
    assert len(mock.stats.polls[created["id"]]) == len(seen)
    assert mock.tasks[created["id"]].status_at(mock.clock()) == "completed"


async def test_result_video_is_served_with_range_support(
    mock: MockEvoLink, session: aiohttp.ClientSession
) -> None:
    _, created, _ = await create(session, mock, seedance())
    url = (await wait_done(session, mock, created["id"]))[-1]["results"][0]
    expected = mock.video_bytes(created["id"])
    assert len(expected) == 64 * 1024
    async with session.get(url) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "video/mp4"
        assert r.headers["Accept-Ranges"] == "bytes"
        assert int(r.headers["Content-Length"]) == len(expected)
        assert await r.read() == expected
    async with session.get(url, headers={"Range": "bytes=1000-"}) as r:
        assert r.status == 206
        assert r.headers["Content-Range"] == f"bytes 1000-{len(expected) - 1}/{len(expected)}"
        assert await r.read() == expected[1000:]
    async with session.get(url, headers={"Range": f"bytes={len(expected)}-"}) as r:
        assert r.status == 416
    async with session.get(url.split("?")[0] + "?sig=forged") as r:
        assert r.status == 403
    assert mock.stats.downloads[created["id"]] == 2
    assert mock.video_bytes(created["id"]) != mock.video_bytes("task-unified-1-other")


async def test_mock_fail_prompt_fails_with_that_code_and_refunds(
    mock: MockEvoLink, session: aiohttp.ClientSession
) -> None:
    _, created, _ = await create(
        session, mock, seedance(prompt="a cat mock:fail=content_policy_violation")
    )
    final = (await wait_done(session, mock, created["id"]))[-1]
    assert final["status"] == "failed"
    assert final["error"]["code"] == "content_policy_violation"
    assert final["error"]["message"]
    assert final["usage"]["credits_used"] == 0
    assert final["progress"] < 100
    assert "results" not in final


async def test_mock_cancel_prompt_ends_cancelled(
    mock: MockEvoLink, session: aiohttp.ClientSession
) -> None:
    _, created, _ = await create(session, mock, seedance(prompt="mock:cancel"))
    final = (await wait_done(session, mock, created["id"]))[-1]
    assert final["status"] == "cancelled"
    assert "error" not in final
    assert "results" not in final


async def test_failure_rate_fails_that_share_of_tasks(session: aiohttp.ClientSession) -> None:
    async with MockEvoLink(failure_rate=0.5, seed=11) as server:
        for _ in range(60):
            await create(session, server, seedance())
        outcomes = [t.final_status for t in server.tasks.values()]
        codes = {t.error_code for t in server.tasks.values() if t.final_status == "failed"}
    assert 15 <= outcomes.count("failed") <= 45
    assert outcomes.count("completed") == 60 - outcomes.count("failed")
    assert codes
    assert codes <= {
        "content_policy_violation",
        "invalid_parameters",
        "image_processing_error",
        "image_dimension_mismatch",
        "request_cancelled",
        "generation_failed_no_content",
        "service_error",
        "generation_timeout",
        "resource_exhausted",
        "quota_exceeded",
        "service_unavailable",
        "resource_not_found",
        "unknown_error",
    }


# ------------------------------------------------------------ idempotency


async def test_same_key_and_body_replays_without_new_task(
    mock: MockEvoLink, session: aiohttp.ClientSession
) -> None:
    before = mock.remaining_credits
    s1, first, h1 = await create(session, mock, seedance(), key=KEY)
    # Same content, other key order: the bodies compare as canonical JSON.
    reordered = dict(reversed(list(seedance().items())))
    s2, second, h2 = await create(session, mock, reordered, key=KEY)
    assert (s1, s2) == (200, 200)
    assert second["id"] == first["id"]
    assert "idempotency-replayed" not in h1
    assert h2["idempotency-replayed"] == "true"
    assert mock.stats.tasks_created == 1
    assert mock.stats.creates_per_key == {KEY: 1}
    assert mock.stats.replays == 1
    assert mock.tasks[first["id"]].idempotency_key == KEY
    assert mock.remaining_credits == before - 50


async def test_same_key_other_body_is_conflict(
    mock: MockEvoLink, session: aiohttp.ClientSession
) -> None:
    await create(session, mock, seedance(), key=KEY)
    status, body, _ = await create(session, mock, seedance(prompt="a dog"), key=KEY)
    assert status == 409
    assert body["error"]["code"] == "idempotency_conflict"
    assert body["error"]["type"] == "invalid_request_error"
    assert mock.stats.tasks_created == 1
    assert mock.stats.idempotency_conflicts == 1


@pytest.mark.parametrize("key", ["short", "x" * 97, "has space in it 12345", "ключ" * 5])
async def test_malformed_idempotency_key_is_400(
    mock: MockEvoLink, session: aiohttp.ClientSession, key: str
) -> None:
    headers = {"Authorization": f"Bearer {mock.api_key}", "Idempotency-Key": key}
    async with session.post(
        f"{mock.url}/v1/videos/generations", json=seedance(), headers=headers
    ) as r:
        assert r.status == 400
        error = (await r.json())["error"]
    assert error["code"] == "invalid_request"
    assert error["param"] == "Idempotency-Key"
    assert mock.stats.tasks_created == 0


# ------------------------------------------------------------- validation

WAN27 = "wan2.7-image-to-video"
WAN25 = "wan2.5-image-to-video"
HORSE = "happyhorse-1.0-image-to-video"
CLIP = "https://example.com/clip.mp4"
SONG = "https://example.com/song.mp3"


def wan25(**extra: Any) -> dict[str, Any]:
    return {"model": WAN25, "prompt": "x", "image_urls": [IMAGE], **extra}


def wan27(**extra: Any) -> dict[str, Any]:
    return {"model": WAN27, **extra}


REJECTED: list[tuple[dict[str, Any], str]] = [
    (seedance(image_urls=[IMAGE, IMAGE, IMAGE]), "image_urls"),
    (seedance(image_urls=[]), "image_urls"),
    (seedance(image_urls=["data:image/png;base64,iVBORw0KGgo="]), "image_urls"),
    (seedance(duration=3), "duration"),
    (seedance(duration=16), "duration"),
    (seedance(duration=5.5), "duration"),
    (seedance(duration=True), "duration"),
    (seedance(duration="5"), "duration"),
    (seedance(quality="1080p"), "quality"),
    (seedance(aspect_ratio="2:1"), "aspect_ratio"),
    (seedance(generate_audio="yes"), "generate_audio"),
    (seedance(prompt="猫" * 501), "prompt"),
    (seedance(prompt="word " * 1001), "prompt"),
    (seedance(video_urls=[CLIP]), "video_urls"),
    (seedance(callback_url="https://10.0.0.5/hook"), "callback_url"),
    (seedance(callback_url="https://127.0.0.1/hook"), "callback_url"),
    (seedance(callback_url="https://[::1]/hook"), "callback_url"),
    (seedance(callback_url="https://localhost/hook"), "callback_url"),
    (seedance(callback_url="http://example.com/hook"), "callback_url"),
    (seedance(callback_url="https://example.com/" + "a" * 2048), "callback_url"),
    ({"model": "seedance-2.0-fast-image-to-video", "image_urls": [IMAGE]}, "prompt"),
    ({"prompt": "no model"}, "model"),
    ({"model": HORSE, "image_urls": [IMAGE, IMAGE]}, "image_urls"),
    ({"model": HORSE, "image_urls": [IMAGE], "seed": 0}, "seed"),
    ({"model": HORSE, "image_urls": [IMAGE], "duration": 2}, "duration"),
    (wan25(duration=7), "duration"),
    (wan25(quality="720p"), "quality"),
    (wan25(prompt="x" * 1001), "prompt"),
    (wan27(prompt="x"), "generation_mode"),
    (wan27(generation_mode="first_frame"), "image_start"),
    (wan27(generation_mode="first_frame", image_start=IMAGE, image_end=IMAGE), "image_end"),
    (wan27(generation_mode="first_last_frame", image_start=IMAGE), "image_end"),
    (wan27(video_urls=[CLIP], image_start=IMAGE), "image_start"),
    (wan27(video_urls=[CLIP], audio_urls=[SONG]), "audio_urls"),
    (wan27(image_start=IMAGE, audio_urls=[SONG, SONG]), "audio_urls"),
    (wan27(image_start=IMAGE, duration=1), "duration"),
    (wan27(image_start=IMAGE, prompt_extend=1), "prompt_extend"),
]


@pytest.mark.parametrize(("body", "param"), REJECTED)
async def test_documented_rules_are_enforced(
    mock: MockEvoLink, session: aiohttp.ClientSession, body: dict[str, Any], param: str
) -> None:
    status, reply, _ = await create(session, mock, body)
    assert status == 400
    assert reply["error"]["type"] == "invalid_request_error"
    assert reply["error"]["code"] == "invalid_request"
    assert reply["error"]["param"] == param
    assert mock.stats.tasks_created == 0
    assert mock.stats.rejected_creates == 1


ACCEPTED: list[dict[str, Any]] = [
    seedance(image_urls=[IMAGE, IMAGE], duration=15, quality="480p", aspect_ratio="adaptive"),
    seedance(duration=4.0, generate_audio=False, callback_url="https://example.com/hook"),
    seedance(prompt="猫" * 500),
    seedance(prompt="word " * 1000),
    {"model": "happyhorse-1.0-image-to-video", "image_urls": [IMAGE], "seed": 2147483647},
    wan25(prompt="x" * 1000, duration=10),
    {"model": WAN27, "image_start": IMAGE, "prompt": "x" * 6000, "negative_prompt": "y" * 600},
    {"model": WAN27, "image_start": IMAGE, "image_end": IMAGE, "duration": 15.0},
    {"model": WAN27, "video_urls": ["https://e.com/a.mp4"], "image_end": IMAGE},
    {"model": WAN27, "generation_mode": "first_frame", "image_start": IMAGE, "audio_urls": [IMAGE]},
    {"model": "some-future-model", "anything": [1, 2, 3]},
]  # fmt: skip


@pytest.mark.parametrize("body", ACCEPTED)
async def test_valid_requests_are_accepted(
    mock: MockEvoLink, session: aiohttp.ClientSession, body: dict[str, Any]
) -> None:
    status, reply, _ = await create(session, mock, body)
    assert status == 200, reply
    assert reply["model"] == body["model"]
    assert check_create(body) is None


async def test_validation_can_be_switched_off(session: aiohttp.ClientSession) -> None:
    async with MockEvoLink(validate=False) as loose:
        status, reply, _ = await create(session, loose, seedance(duration=99, extra=True))
        assert status == 200
        assert reply["task_info"]["video_duration"] == 99
        status, reply, _ = await create(session, loose, {"prompt": "still needs a model"})
        assert status == 400
        assert reply["error"]["param"] == "model"


async def test_non_json_body_is_400(mock: MockEvoLink, session: aiohttp.ClientSession) -> None:
    async with session.post(
        f"{mock.url}/v1/videos/generations", data=b"{nope", headers=auth(mock)
    ) as r:
        assert r.status == 400
        assert (await r.json())["error"]["code"] == "invalid_request"


async def test_body_over_64_mb_is_413(mock: MockEvoLink, session: aiohttp.ClientSession) -> None:
    huge = io.BytesIO(b'{"model": "' + b"x" * (64 * 1024 * 1024) + b'"}')
    async with session.post(
        f"{mock.url}/v1/videos/generations", data=huge, headers=auth(mock)
    ) as r:
        assert r.status == 413
        assert (await r.json())["error"]["type"] == "request_too_large_error"


# ------------------------------------------------------------ task reads


async def test_malformed_id_is_400_and_unknown_id_is_404(
    mock: MockEvoLink, session: aiohttp.ClientSession
) -> None:
    async with session.get(f"{mock.url}/v1/tasks/not-a-task", headers=auth(mock)) as r:
        assert r.status == 400
        assert (await r.json())["error"]["code"] == "invalid_task_id"
    async with session.get(
        f"{mock.url}/v1/tasks/task-unified-1774857405-abc123", headers=auth(mock)
    ) as r:
        assert r.status == 404
        assert (await r.json())["error"]["type"] == "not_found_error"
    assert mock.stats.requests[GET_TASK] == 2
    assert mock.stats.polls == {}


async def test_batch_reads_many_and_lists_unknown_ids(
    mock: MockEvoLink, session: aiohttp.ClientSession
) -> None:
    ids = [(await create(session, mock, seedance()))[1]["id"] for _ in range(3)]
    unknown = "task-unified-1-zzzzzzzz"
    async with session.post(
        f"{mock.url}/v1/tasks/batch", json={"task_ids": [*ids, unknown]}, headers=auth(mock)
    ) as r:
        assert r.status == 200
        body = await r.json()
    assert [t["id"] for t in body["data"]] == ids
    assert body["not_found"] == [unknown]
    assert all(len(mock.stats.polls[i]) == 1 for i in ids)
    async with session.post(
        f"{mock.url}/v1/tasks/batch", json={"task_ids": ids * 17}, headers=auth(mock)
    ) as r:
        assert r.status == 400
        assert (await r.json())["error"]["param"] == "task_ids"


async def test_batch_endpoint_off_answers_like_unknown_route(
    session: aiohttp.ClientSession,
) -> None:
    async with MockEvoLink(batch_endpoint=False) as server:
        async with session.post(
            f"{server.url}/v1/tasks/batch", json={"task_ids": []}, headers=auth(server)
        ) as r:
            assert r.status == 404
            assert (await r.json())["error"]["type"] == "not_found_error"
        async with session.get(f"{server.url}/v2/nothing", headers=auth(server)) as r:
            assert r.status == 404
            assert (await r.json())["error"]["code"] == "not_found"
        assert server.stats.requests["POST /v1/tasks/batch"] == 1
        assert server.stats.requests["GET <unknown>"] == 1


async def test_listing_filters_by_model_and_status_and_pages(
    session: aiohttp.ClientSession,
) -> None:
    # Real time: the tasks stay `pending` for seconds, not milliseconds, so the
    # status filter sees all three however loaded the machine is.
    async with MockEvoLink(seed=1) as mock:
        await _check_listing(mock, session)


async def _check_listing(mock: MockEvoLink, session: aiohttp.ClientSession) -> None:
    for _ in range(3):
        await create(session, mock, seedance())
    wan = {"model": "wan2.5-image-to-video", "prompt": "x", "image_urls": [IMAGE]}
    newest = (await create(session, mock, wan))[1]["id"]
    url = f"{mock.url}/v1/tasks"
    async with session.get(url, params={"page_size": "2"}, headers=auth(mock)) as r:
        page = await r.json()
    assert (page["total"], page["page"], page["page_size"]) == (4, 1, 2)
    assert page["data"][0]["id"] == newest
    params = {"model": SEEDANCE, "status": "pending", "page": "2", "page_size": "2"}
    async with session.get(url, params=params, headers=auth(mock)) as r:
        page = await r.json()
    assert page["total"] == 3
    assert len(page["data"]) == 1
    async with session.get(url, params={"page_size": "1000"}, headers=auth(mock)) as r:
        assert r.status == 400


# ---------------------------------------------------------------- credits


async def test_credits_run_out_with_402_and_failed_tasks_refund(
    session: aiohttp.ClientSession,
) -> None:
    async with MockEvoLink(credits=100, time_scale=SCALE) as server:
        failing = seedance(prompt="mock:fail=service_error")
        assert (await create(session, server, failing))[0] == 200
        assert (await create(session, server, seedance()))[0] == 200
        status, body, _ = await create(session, server, seedance())
        assert status == 402
        assert body["error"]["code"] == "insufficient_quota"
        assert body["error"]["type"] == "insufficient_quota_error"
        await asyncio.sleep(server.tasks[next(iter(server.tasks))].finishes_at - server.clock())
        assert (await create(session, server, seedance()))[0] == 200  # the refund
        async with session.get(f"{server.url}/v1/credits", headers=auth(server)) as r:
            balance = await r.json()
        assert balance["success"] is True
        user = balance["data"]["user"]
        assert user["remaining_credits"] + user["used_credits"] <= 100
        assert set(balance["data"]["token"]) == {
            "remaining_credits",
            "unlimited_credits",
            "used_credits",
        }
        assert server.stats.tasks_created == 3


# ------------------------------------------------------------------ faults


async def test_rate_limit_fault_sends_429_with_scaled_retry_after(
    session: aiohttp.ClientSession,
) -> None:
    async with MockEvoLink(time_scale=0.01) as server:
        server.inject(Fault.RATE_LIMIT, route=CREATE)
        status, body, headers = await create(session, server, seedance())
        assert status == 429
        assert headers["Retry-After"] == "0.6"
        assert body["error"]["type"] == "rate_limit_error"
        assert "retry after 0.6 seconds" in body["error"]["message"]
        assert (await create(session, server, seedance()))[0] == 200  # used up
        server.inject(Fault.RATE_LIMIT, retry_after="-1")
        async with session.get(f"{server.url}/v1/credits", headers=auth(server)) as r:
            assert r.status == 429
            assert r.headers["Retry-After"] == "-1"
        assert server.stats.faults_injected["rate_limit"] == 2
        assert server.stats.tasks_created == 1
        assert server.stats.requests[CREATE] == 2


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(500, "internal_server_error"), (502, "upstream_error"), (503, "service_unavailable_error")],
)
async def test_server_error_fault_sends_documented_body(
    mock: MockEvoLink, session: aiohttp.ClientSession, status: int, error_type: str
) -> None:
    mock.inject(Fault.SERVER_ERROR, route="GET /v1/credits", status=status, times=2)
    for _ in range(2):
        async with session.get(f"{mock.url}/v1/credits", headers=auth(mock)) as r:
            assert r.status == status
            assert (await r.json())["error"]["type"] == error_type
    async with session.get(f"{mock.url}/v1/credits", headers=auth(mock)) as r:
        assert r.status == 200


async def test_drop_before_closes_the_connection_without_reply(
    mock: MockEvoLink, session: aiohttp.ClientSession
) -> None:
    mock.inject(Fault.DROP_BEFORE, route=CREATE)
    with pytest.raises(DISCONNECTED):
        await create(session, mock, seedance(), key=KEY)
    assert mock.stats.tasks_created == 0
    assert mock.stats.faults_injected["drop_before"] == 1
    status, _, _ = await create(session, mock, seedance(), key=KEY)
    assert status == 200
    assert mock.stats.creates_per_key == {KEY: 1}


async def test_drop_after_creates_the_task_then_drops(
    mock: MockEvoLink, session: aiohttp.ClientSession
) -> None:
    mock.inject(Fault.DROP_AFTER, route=CREATE)
    with pytest.raises(DISCONNECTED):
        await create(session, mock, seedance(), key=KEY)
    assert mock.stats.tasks_created == 1
    (made,) = mock.tasks
    status, body, headers = await create(session, mock, seedance(), key=KEY)
    assert status == 200
    assert body["id"] == made
    assert headers["idempotency-replayed"] == "true"
    assert mock.stats.creates_per_key == {KEY: 1}


async def test_drop_after_on_download_cuts_the_body_short(
    mock: MockEvoLink, session: aiohttp.ClientSession
) -> None:
    _, created, _ = await create(session, mock, seedance())
    url = (await wait_done(session, mock, created["id"]))[-1]["results"][0]
    mock.inject(Fault.DROP_AFTER, route="GET /files/videos/{name}")
    async with session.get(url) as r:
        assert r.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await r.read()
    async with session.get(url) as r:
        assert await r.read() == mock.video_bytes(created["id"])


async def test_slow_fault_delays_the_reply(
    mock: MockEvoLink, session: aiohttp.ClientSession
) -> None:
    mock.inject(Fault.SLOW, route="GET /v1/credits", delay=0.3)
    started = time.monotonic()
    async with session.get(f"{mock.url}/v1/credits", headers=auth(mock)) as r:
        assert r.status == 200
    assert time.monotonic() - started >= 0.3
    mock.inject(Fault.SLOW, route="GET /v1/credits", delay=1.0)
    with pytest.raises(asyncio.TimeoutError):
        await session.get(
            f"{mock.url}/v1/credits",
            headers=auth(mock),
            timeout=aiohttp.ClientTimeout(total=0.1),
        )
    assert mock.stats.faults_injected["slow"] == 2


async def test_reply_fault_sends_exactly_what_was_given(
    mock: MockEvoLink, session: aiohttp.ClientSession
) -> None:
    html = "<html><body>502 Bad Gateway</body></html>"
    mock.inject(
        Fault.REPLY,
        route=GET_TASK,
        status=502,
        body=html,
        headers={"Content-Type": "text/html", "Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"},
    )
    async with session.get(f"{mock.url}/v1/tasks/task-unified-1-abc", headers=auth(mock)) as r:
        assert r.status == 502
        assert r.headers["Content-Type"] == "text/html"
        assert r.headers["Retry-After"].endswith("2099 07:28:00 GMT")
        assert await r.text() == html
    mock.inject(Fault.REPLY, status=200, body={"unexpected": "shape"})
    async with session.get(f"{mock.url}/v1/credits", headers=auth(mock)) as r:
        assert await r.json() == {"unexpected": "shape"}


async def test_fault_plan_hits_api_routes_only(session: aiohttp.ClientSession) -> None:
    async with MockEvoLink(faults=FaultPlan(rate_limit=1.0, retry_after=2.5)) as server:
        status, _, headers = await create(session, server, seedance())
        assert status == 429
        assert headers["Retry-After"] == "2.5"
        form = aiohttp.FormData()
        form.add_field("file", PNG, filename="a.png")
        async with session.post(
            f"{server.url}/api/v1/files/upload/stream", data=form, headers=auth(server)
        ) as r:
            assert (await r.json())["success"] is True
        server.faults = FaultPlan(server_error=1.0, routes={"GET /v1/credits"})
        assert (await create(session, server, seedance()))[0] == 200
        async with session.get(f"{server.url}/v1/credits", headers=auth(server)) as r:
            assert r.status in (500, 502, 503)
        assert server.stats.faults_injected == {"rate_limit": 1, "server_error": 1}


def test_fault_plan_rejects_rates_over_one() -> None:
    with pytest.raises(ValueError, match="sum"):
        FaultPlan(rate_limit=0.6, server_error=0.6)
    with pytest.raises(ValueError, match="probability"):
        FaultPlan(slow=1.5)


async def test_max_in_flight_counts_concurrent_slow_requests(
    mock: MockEvoLink, session: aiohttp.ClientSession
) -> None:
    mock.faults = FaultPlan(slow=1.0, slow_delay=0.2)

    async def one() -> int:
        async with session.get(f"{mock.url}/v1/credits", headers=auth(mock)) as r:
            return r.status

    statuses = await asyncio.gather(*(one() for _ in range(8)))
    assert statuses == [200] * 8
    assert mock.stats.max_in_flight == 8
    assert mock.stats.in_flight == 0
    mock.stats.reset_max_in_flight()
    assert mock.stats.max_in_flight == 0


# ----------------------------------------------------------------- expiry


async def test_expired_result_url_is_410_and_a_fresh_read_renews_it(
    session: aiohttp.ClientSession,
) -> None:
    async with MockEvoLink(time_scale=SCALE, result_ttl=100) as server:  # 0.2 s
        _, created, _ = await create(session, server, seedance())
        old_url = (await wait_done(session, server, created["id"]))[-1]["results"][0]
        async with session.get(old_url) as r:
            assert r.status == 200
        await asyncio.sleep(0.25)
        async with session.get(old_url) as r:
            assert r.status == 410
        new_url = (await get_task(session, server, created["id"]))["results"][0]
        assert new_url != old_url
        async with session.get(new_url) as r:
            assert r.status == 200
            assert await r.read() == server.video_bytes(created["id"])
        async with session.get(old_url) as r:
            assert r.status == 410
        assert server.stats.expired_downloads == 2


# ----------------------------------------------------------------- uploads


async def test_uploads_store_images_and_serve_them_back(
    mock: MockEvoLink, session: aiohttp.ClientSession
) -> None:
    form = aiohttp.FormData()
    form.add_field("file", PNG, filename="cat.png", content_type="image/png")
    async with session.post(
        f"{mock.url}/api/v1/files/upload/stream", data=form, headers=auth(mock)
    ) as r:
        assert r.status == 200
        reply = await r.json()
    assert (reply["success"], reply["code"]) == (True, 200)
    data = reply["data"]
    assert data["mime_type"] == "image/png"
    assert data["file_size"] == len(PNG)
    assert data["original_name"] == "cat.png"
    assert data["file_url"].startswith(mock.url)
    async with session.get(data["file_url"]) as r:
        assert await r.read() == PNG

    encoded = base64.b64encode(GIF).decode()
    async with session.post(
        f"{mock.url}/api/v1/files/upload/base64",
        json={"base64_data": encoded, "file_name": "x.gif"},
        headers=auth(mock),
    ) as r:
        assert (await r.json())["data"]["mime_type"] == "image/gif"

    async with session.post(
        f"{mock.url}/api/v1/files/upload/url",
        json={"file_url": data["file_url"]},
        headers=auth(mock),
    ) as r:
        copied = (await r.json())["data"]
    assert copied["file_size"] == len(PNG)
    assert copied["file_id"] != data["file_id"]
    assert mock.stats.uploads == 3


async def test_non_image_upload_fails_with_http_200(
    mock: MockEvoLink, session: aiohttp.ClientSession
) -> None:
    form = aiohttp.FormData()
    form.add_field("file", b"%PDF-1.7 not an image", filename="doc.pdf")
    async with session.post(
        f"{mock.url}/api/v1/files/upload/stream", data=form, headers=auth(mock)
    ) as r:
        assert r.status == 200
        reply = await r.json()
    assert reply["success"] is False
    assert reply["code"] == 400
    assert reply["msg"]
    assert mock.stats.uploads == 0


# --------------------------------------------------------------- callbacks


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[dict[str, Any]], list[int]]]:
    """A loopback callback receiver; answers with the statuses queued in `plan`."""
    received: list[dict[str, Any]] = []
    plan: list[int] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=plan.pop(0) if plan else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/hook", received, plan
    finally:
        await runner.cleanup()


async def test_callbacks_are_posted_to_the_target_with_retries(
    session: aiohttp.ClientSession,
    receiver: tuple[str, list[dict[str, Any]], list[int]],
) -> None:
    url, received, plan = receiver
    plan.append(500)  # first attempt fails, the retry (after 1 s x scale) succeeds
    async with MockEvoLink(time_scale=SCALE, callback_target=url) as server:
        hooked = seedance(callback_url="https://example.com/hook")
        _, created, _ = await create(session, server, hooked)
        _, silent, _ = await create(session, server, seedance())
        for _ in range(200):
            if server.stats.callbacks_delivered:
                break
            await asyncio.sleep(0.01)
        (delivery,) = server.stats.callbacks_delivered
        assert delivery.task_id == created["id"]
        assert delivery.attempts == 2
        assert delivery.ok
        assert delivery.task_status == "completed"
        assert [body["id"] for body in received] == [created["id"], created["id"]]
        assert received[-1]["status"] == "completed"
        assert received[-1]["results"]
        assert server.stats.callback_attempts == 2
        assert silent["id"] not in {body["id"] for body in received}


async def test_loopback_callback_url_is_used_when_no_target_and_failures_are_recorded(
    session: aiohttp.ClientSession,
    receiver: tuple[str, list[dict[str, Any]], list[int]],
) -> None:
    url, received, plan = receiver
    plan.extend([503] * 4)  # every attempt of the first task fails
    async with MockEvoLink(time_scale=SCALE, validate=False) as server:
        _, failing, _ = await create(session, server, seedance(callback_url=url))
        for _ in range(300):
            if server.stats.callbacks_failed:
                break
            await asyncio.sleep(0.01)
        (gave_up,) = server.stats.callbacks_failed
        assert gave_up.task_id == failing["id"]
        assert gave_up.attempts == 4  # the first try and 3 retries
        assert gave_up.http_status == 503
        assert not gave_up.ok
        assert len(received) == 4
        assert server.stats.callbacks_delivered == []


async def test_requests_log_is_bounded_and_serve_forever_serves(
    session: aiohttp.ClientSession,
) -> None:
    ready: asyncio.Future[MockEvoLink] = asyncio.get_running_loop().create_future()
    runner = asyncio.create_task(serve_forever(keep_requests=2, on_ready=ready.set_result))
    try:
        server = await ready
        for _ in range(3):
            async with session.get(f"{server.url}/v1/credits", headers=auth(server)) as r:
                assert r.status == 200
        assert len(server.requests_log) == 2
        assert server.stats.requests["GET /v1/credits"] == 3
        assert server.requests_log[-1].headers["Authorization"] == f"Bearer {server.api_key}"
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
    with pytest.raises(aiohttp.ClientConnectionError):
        await session.get(f"{server.url}/v1/credits")
