"""
`Task.raw` is the reply's JSON as received, though a task keeps only the
reply's bytes and parses `raw` from them when it is first read.

Replies come over HTTP from MockEvoLink (faults inject exact bodies); what is
checked is what a caller sees: the mapping, equality, hashing, repr,
pickling, attrs and cattrs, the errors of bad replies, and how much memory a
task keeps.
"""

from __future__ import annotations

import copy
import gc
import json
import pickle
import tracemalloc
from typing import Any

import attrs
import cattrs
import pytest

from evolink_async import EvoLinkClient, MalformedReplyError, Task, TaskStatus
from evolink_async._api.decode import (
    MAX_REPLY_BYTES,
    decode_reply,
    loads_reply,
    read_task,
    read_tasks,
)
from evolink_async._convert import CONVERTER, MAX_LAZY_NESTING, structure_task
from evolink_async._values import ReplyJSON
from evolink_async.testing import Fault, MockEvoLink

pytestmark = pytest.mark.anyio

GET_TASK = "GET /v1/tasks/{id}"
BATCH = "POST /v1/tasks/batch"
LIST = "GET /v1/tasks"
TASK_ID = "task-unified-1774857405-abc123"
#: What stands in a task's slot before `raw` is read (the slot, not the property).
RAW_SLOT: Any = vars(Task)["raw"].__get__(None, Task)


def stored(task: Task) -> object:
    """What the task holds in its `raw` slot, without parsing it."""
    return RAW_SLOT.__get__(task, Task)


def reply(**extra: Any) -> dict[str, Any]:
    """A processing task as the API sends it, plus `extra` fields."""
    return {
        "id": TASK_ID,
        "object": "video.generation.task",
        "created": 1774857405,
        "model": "seedance-2.0-image-to-video",
        "status": "processing",
        "progress": 37,
        "type": "video",
        "task_info": {"can_cancel": True, "estimated_time": 165, "video_duration": 5},
        "usage": {"billing_rule": "per_second", "credits_reserved": 50, "user_group": "default"},
        **extra,
    }


#: A reply with what a tolerant reader must keep: unknown fields, a status
#: this SDK does not know, non-ASCII text, escapes, numbers of every kind,
#: and whitespace a pretty-printing server would send.
ODD_BODY: bytes = (
    b'{\n  "id": "%s",\n  "status" : "queued_for_gpu", "progress": "42",\n'
    b'  "brand_new_field": {"nested": [true, null, -0.0, 1e-7, 12345678901234567890]},\n'
    b'  "prompt": "caf\xc3\xa9 \\u00e9 \\ud83c\\udfac \\"quoted\\"",\n'
    b'  "task_info": {"estimated_time": "165", "can_cancel": false, "shiny": 1}\n}\n'
) % TASK_ID.encode()


def decoded(body: bytes, path: str = "/v1/tasks/{id}", method: str = "GET") -> Any:
    return decode_reply(200, {"X-Request-Id": "req-1"}, body, method=method, path=path)


# -- raw is the JSON as received ---------------------------------------------------


async def test_raw_is_the_reply_as_received_unknown_fields_included(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    mock.inject(Fault.REPLY, route=GET_TASK, status=200, body=ODD_BODY)
    task = await client.get_task(TASK_ID)
    assert mock.stats.requests[GET_TASK] == 1
    assert type(stored(task)) is ReplyJSON  # kept as bytes until read
    assert task.raw == json.loads(ODD_BODY)
    assert type(task.raw) is dict
    assert task.raw["status"] == "queued_for_gpu" and task.status is TaskStatus.UNKNOWN
    assert task.raw["brand_new_field"]["nested"][-1] == 12345678901234567890
    assert task.raw["prompt"] == 'café é \U0001f3ac "quoted"'
    assert task.raw["task_info"]["shiny"] == 1
    # Read once, kept: the same mapping every time, as for a mapping passed in.
    assert task.raw is task.raw
    assert type(stored(task)) is dict


async def test_a_polled_task_keeps_the_replys_bytes(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    created = await client.submit(
        "wan2.5-image-to-video", prompt="A cat", image_urls=["https://example.com/cat.png"]
    )
    done = await client.wait(created, timeout=20)
    assert done.status is TaskStatus.COMPLETED
    assert len(mock.stats.polls[created.id]) >= 1
    for task in (created, done):
        held = stored(task)
        assert type(held) is ReplyJSON
        assert task.raw == json.loads(held)
        assert task.raw["id"] == created.id and task.raw["status"] == task.status.value
    assert done.raw["results"] == [done.video_url]


async def test_a_deep_reply_keeps_raw_as_parsed(client: EvoLinkClient, mock: MockEvoLink) -> None:
    # Nested beyond MAX_LAZY_NESTING (but readable): kept parsed, never read again.
    deep: Any = "bottom"
    for _ in range(MAX_LAZY_NESTING + 10):
        deep = [deep]
    body = json.dumps(reply(deep=deep)).encode()
    mock.inject(Fault.REPLY, route=GET_TASK, status=200, body=body)
    task = await client.get_task(TASK_ID)
    assert type(stored(task)) is dict
    assert task.raw == json.loads(body)


# -- the same task as one read from a mapping ---------------------------------------


def test_a_lazily_read_task_equals_the_eagerly_read_one() -> None:
    lazy = read_task(decoded(ODD_BODY), TASK_ID)
    eager = structure_task(json.loads(ODD_BODY), "req-1")
    assert type(stored(lazy)) is ReplyJSON and type(stored(eager)) is dict
    assert lazy == eager and hash(lazy) == hash(eager)
    assert repr(lazy) == repr(eager) and "brand_new_field" not in repr(lazy)
    assert type(stored(lazy)) is ReplyJSON  # neither == nor hash nor repr reads raw
    assert attrs.asdict(lazy) == attrs.asdict(eager)
    assert lazy.raw == eager.raw
    assert read_task(decoded(ODD_BODY), TASK_ID).request_id == "req-1"


def test_pickle_and_copy_carry_raw() -> None:
    lazy = read_task(decoded(ODD_BODY), TASK_ID)
    eager = Task.from_json(json.loads(ODD_BODY))
    for task in (lazy, read_task(decoded(ODD_BODY), TASK_ID)):
        back = pickle.loads(pickle.dumps(task))  # noqa: S301 -- bytes this test made
        assert back == eager and back.raw == eager.raw and type(back.raw) is dict
        assert back.request_id == "req-1"
    for twin in (copy.copy(lazy), copy.deepcopy(lazy), attrs.evolve(lazy, progress=50)):
        assert twin.raw == eager.raw
    assert pickle.loads(pickle.dumps(eager)).raw == eager.raw  # noqa: S301 -- as above


def test_cattrs_unstructures_and_structures_it_as_before() -> None:
    lazy = read_task(decoded(ODD_BODY), TASK_ID)
    eager = structure_task(json.loads(ODD_BODY), "req-1")
    # The SDK's converter reads the API's JSON, raw included.
    assert CONVERTER.structure(lazy.raw, Task) == eager == Task.from_json(lazy.raw)
    # A caller's own converter sees `raw` as a mapping both ways.
    theirs = cattrs.Converter()
    plain = theirs.unstructure(read_task(decoded(ODD_BODY), TASK_ID))
    assert plain == theirs.unstructure(eager)
    assert plain["raw"] == json.loads(ODD_BODY)
    back = theirs.structure(plain, Task)
    assert back == eager and back.raw == eager.raw and back.request_id == "req-1"


def test_a_mapping_passed_in_is_raw_itself() -> None:
    given = {"id": "t", "status": "pending", "anything": [1]}
    task = Task(id="t", status=TaskStatus.PENDING, raw=given)
    assert task.raw is given
    assert Task(id="t", status=TaskStatus.PENDING).raw == {}
    assert attrs.fields(Task).raw.eq is False


# -- batch replies and listings -------------------------------------------------------


async def test_batch_reads_give_each_task_its_own_item(mock: MockEvoLink) -> None:
    from .conftest import make_client

    async with make_client(mock) as client:
        created = [
            await client.submit(
                "wan2.5-image-to-video", prompt=f"cat {n}", image_urls=["https://x.com/c.png"]
            )
            for n in range(3)
        ]
        ids = [task.id for task in created]
        tasks = await client._endpoints.poll_tasks(ids)
    assert mock.stats.requests[BATCH] == 1
    assert [task.id for task in tasks] == ids
    for task in tasks:
        held = stored(task)
        assert type(held) is ReplyJSON
        item = json.loads(held)
        assert item["id"] == task.id and set(item) >= {"status", "progress", "task_info"}
        assert task.raw == item
        assert task == Task.from_json(item)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            b' {"not_found": [], "data" : [ %s ,\n %s ] , "data_extra": {"k": [1]} } ' % (a, b),
            id="spaced",
        )
        for a, b in [(json.dumps(reply()).encode(), ODD_BODY)]
    ]
    + [
        pytest.param(b"[%s,%s]" % (json.dumps(reply()).encode(), ODD_BODY), id="bare-list"),
        pytest.param(
            b'{"data": "first", "data": [%s, %s]}' % (json.dumps(reply()).encode(), ODD_BODY),
            id="duplicate-key",
        ),
        pytest.param(
            b'{"d\\u0061ta": [%s, %s], "total": NaN}' % (json.dumps(reply()).encode(), ODD_BODY),
            id="escaped-key-nan",
        ),
    ],
)
def test_a_batch_reply_reads_as_json_loads_reads_it(body: bytes) -> None:
    response = decoded(body, "/v1/tasks/batch", "POST")
    expected = json.loads(body)
    items = expected if isinstance(expected, list) else expected["data"]
    assert json.dumps(response.data) == json.dumps(expected)
    assert response.items is not None and len(response.items) == 2
    tasks = read_tasks(response)
    assert [task.raw for task in tasks] == items
    assert tasks == [Task.from_json(item) for item in items]
    assert all(task.request_id == "req-1" for task in tasks)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"data": [{"id": "a", "status": "pending"}], "data": 5}', id="data-last"),
        pytest.param(b'{"data": {"id": "a"}}', id="data-object"),
        pytest.param(b'{"data": [1, 2,]}', id="trailing-comma"),
        pytest.param(b"{}", id="empty"),
        pytest.param(b'{"data": [{"id": "a", "status": "x"}]} trailing', id="trailing-text"),
        pytest.param(b"\xef\xbb\xbf[]", id="bom"),
    ],
)
def test_an_odd_batch_reply_is_what_json_loads_makes_of_it(body: bytes) -> None:
    response_or_error: Any
    try:
        expected: Any = json.loads(body)
    except ValueError:
        with pytest.raises(MalformedReplyError, match="not JSON"):
            decoded(body, "/v1/tasks/batch", "POST")
        return
    response_or_error = decoded(body, "/v1/tasks/batch", "POST")
    assert response_or_error.data == expected


async def test_listed_tasks_keep_their_items(client: EvoLinkClient, mock: MockEvoLink) -> None:
    items = [reply(), json.loads(ODD_BODY) | {"id": "task-unified-1774857405-def456"}]
    body = json.dumps({"data": items, "total": 2, "page": 1, "page_size": 50}, indent=1)
    mock.inject(Fault.REPLY, route=LIST, status=200, body=body)
    listed = [task async for task in client.list_tasks()]
    assert mock.stats.requests[LIST] == 1
    assert [type(stored(task)) for task in listed] == [ReplyJSON, ReplyJSON]
    assert [task.raw for task in listed] == items


# -- bad replies still raise what they raised ------------------------------------------


async def read(client: EvoLinkClient, route: str) -> object:
    """Read TASK_ID through `route`: a single read or a batch read."""
    if route == GET_TASK:
        return await client.get_task(TASK_ID)
    return await client._endpoints.poll_tasks([TASK_ID])


@pytest.mark.parametrize("route", [GET_TASK, BATCH])
async def test_a_reply_that_is_not_json_is_a_malformed_reply(
    client: EvoLinkClient, mock: MockEvoLink, route: str
) -> None:
    mock.inject(Fault.REPLY, route=route, status=200, body=b'{"data": [{"id": "a",', times=5)
    with pytest.raises(MalformedReplyError, match="not JSON"):
        await read(client, route)
    assert mock.stats.requests[route] >= 1


@pytest.mark.parametrize("route", [GET_TASK, BATCH])
async def test_a_reply_over_the_cap_is_a_malformed_reply(
    client: EvoLinkClient, mock: MockEvoLink, route: str
) -> None:
    body = json.dumps({"data": [reply(pad="x" * MAX_REPLY_BYTES)]}).encode()
    mock.inject(Fault.REPLY, route=route, status=200, body=body, times=5)
    with pytest.raises(MalformedReplyError, match=str(MAX_REPLY_BYTES)):
        await read(client, route)
    assert mock.stats.requests[route] >= 1


def test_a_batch_reply_nested_past_any_parser_is_a_malformed_reply() -> None:
    body = b'{"data": [{"id": "a", "status": "pending", "x": ' + b"[" * 100_000
    body += b"]" * 100_000 + b"}]}"
    with pytest.raises(MalformedReplyError):
        decoded(body, "/v1/tasks/batch", "POST")
    assert loads_reply(b'{"data": []}') == {"data": []}


# -- memory ---------------------------------------------------------------------------


def retained(make: Any, count: int) -> float:
    """Bytes still allocated per item after `make(n)` for n in range(count)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [make(n) for n in range(count)]
        gc.collect()
        return (tracemalloc.get_traced_memory()[0] - before) / len(kept)
    finally:
        tracemalloc.stop()


def test_a_task_keeps_little_more_than_its_replys_bytes() -> None:
    # A bound on retained bytes, not a timing: the last reply of a watched
    # task is kept as its bytes, not as the dicts `json.loads` makes.
    body = json.dumps(reply(), separators=(",", ":")).encode()
    count = 2_000
    bodies = [body.replace(b"abc123", b"%06d" % n) for n in range(count)]
    ids = [f"task-unified-1774857405-{n:06d}" for n in range(count)]
    responses = [decoded(one) for one in bodies]
    tasks: list[Task] = []

    def lazy(n: int) -> Task:
        task = read_task(responses[n], ids[n])
        tasks.append(task)
        return task

    kept = retained(lazy, count)
    parsed = retained(lambda n: structure_task(loads_reply(bodies[n]), "req-1"), count)
    assert all(type(stored(task)) is ReplyJSON for task in tasks)
    assert all(task.id is task_id for task, task_id in zip(tasks, ids, strict=True))
    # The Task (about 160 bytes), its request id and the reply's bytes; the
    # parsed reply alone is about 1.8 kB.
    assert kept < len(body) + 400, f"{kept:.0f} bytes kept per task"
    assert kept < parsed / 3, f"{kept:.0f} bytes per task, {parsed:.0f} with raw parsed"
    # Reading raw costs the parsed mapping, once.
    assert retained(lambda n: tasks[n].raw, count) > parsed - kept - 200
    assert all(task.raw is task.raw for task in tasks)
