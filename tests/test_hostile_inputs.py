"""
Every public constructor and call refuses wrong types and values with a
`ValidationError` that names the argument, before anything is sent.

One table row per argument of each name in `evolink_async.__all__` that
takes arguments (`EvoLinkClient` and its calls, `RetryPolicy`, `PollPolicy`,
`Job`, `RawRequest`, the request classes), each with a strategy for the
*class* of hostile values it must refuse: wrong types, NaN and infinities,
out-of-range numbers, keys and URLs with stray characters, URLs without a
host, non-JSON params, unknown and missing fields. Calls run against
MockEvoLink and must leave it untouched. An API key never appears in a
message, even a broken one.
"""

from __future__ import annotations

import json
import math
import string
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evolink_async import (
    MODELS,
    EvoLinkClient,
    Job,
    PollPolicy,
    RawRequest,
    RetryPolicy,
    Task,
    TaskStatus,
    ValidationError,
)
from evolink_async._models import request_body
from evolink_async.testing import MockEvoLink

EXAMPLES = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
SECRET = "sk-live-SECRETSECRET0123456789"
URL = "https://cdn.example.com/cat.png"
DONE = Task(id="task-1", status=TaskStatus.COMPLETED, results=("https://cdn.example.com/v.mp4",))

# ----------------------------------------------------------- value classes

anything_but_str = st.one_of(
    st.integers(),
    st.floats(),
    st.booleans(),
    st.binary(min_size=1, max_size=8),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.builds(object),
    st.just(Path("x")),
)
not_numbers = st.one_of(
    st.text(max_size=6),
    st.booleans(),
    st.binary(max_size=4),
    st.lists(st.floats(), max_size=1),
    st.builds(object),
    st.just(Decimal("1")),
    st.just(complex(1, 1)),
)
non_finite = st.sampled_from([math.nan, math.inf, -math.inf, -math.nan])
not_positive = st.one_of(st.integers(max_value=0), st.floats(max_value=0.0, allow_nan=False))
negative = st.one_of(st.integers(max_value=-1), st.floats(max_value=-1e-9, allow_nan=False))
not_positive_seconds = st.one_of(not_numbers, non_finite, not_positive)
not_whole = st.one_of(
    not_numbers, st.floats(allow_nan=True), st.sampled_from([True, False, 1.0, 2.5])
)
not_callables = st.one_of(st.integers(), st.text(max_size=4), st.lists(st.integers(), max_size=1))

VISIBLE = string.ascii_letters + string.digits + "-_."
#: Characters no header value (API key) or base URL may hold: whitespace,
#: C0/C1 controls, DEL, anything beyond ASCII.
stray_char = st.characters(
    codec="utf-8", exclude_characters="".join(chr(c) for c in range(0x21, 0x7F))
)
env_stray_char = stray_char.filter(lambda char: char != "\x00")


def with_stray(base: str, chars: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """`base` with one stray character at any position (the ends included)."""
    return st.builds(
        lambda at, char: base[:at] + char + base[at:], st.integers(0, len(base)), chars
    )


keys_with_stray = st.one_of(
    with_stray(SECRET, stray_char), st.just(SECRET + "\n"), st.just(" " + SECRET)
)
hostless_urls = st.builds(
    lambda scheme, user, port, path: f"{scheme}://{user}{port}{path}",
    st.sampled_from(["http", "https"]),
    st.sampled_from(["", "user@", "user:pw@", "@"]),
    st.sampled_from(["", ":80", ":"]),
    st.sampled_from(["", "/", "/v1", "?x=1", "#f"]),
)
bad_base_urls = st.one_of(
    hostless_urls,
    with_stray("https://api.evolink.ai", stray_char),
    st.builds(lambda tail: "https://api.evolink.ai" + tail, st.sampled_from(["?", "?a=1", "#x"])),
    st.sampled_from(["ftp://api.evolink.ai", "api.evolink.ai", "//api.evolink.ai", "https:x"]),
    st.sampled_from(["https://api.evolink.ai:99999", "https://api.evolink.ai:x", "https://[::1"]),
)
not_policies = st.one_of(anything_but_str, st.text(min_size=0, max_size=5), st.just(0))
#: JSON leaves a strict JSON reader (or json.dumps) refuses.
non_json_leaves = st.one_of(
    non_finite,
    st.builds(object),
    st.sets(st.integers(), max_size=2),
    st.frozensets(st.integers(), max_size=1),
    st.binary(max_size=3),
    st.just(Decimal("1.5")),
    st.just(complex(0, 1)),
    st.builds(lambda: 10**5000),  # over Python's int-to-text limit
    st.characters(categories=["Cs"]),  # a lone surrogate
    st.dictionaries(st.integers(), st.integers(), min_size=1, max_size=1),  # non-str key
)
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=5),
    ),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def hiding(draw: st.DrawFn, leaf: st.SearchStrategy[object]) -> object:
    """A JSON value with a hostile `leaf` somewhere inside it (or as itself)."""
    value = draw(leaf)
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            value = [*draw(st.lists(json_values, max_size=2)), value]
        else:
            value = {
                **draw(st.dictionaries(st.text(max_size=3), json_values, max_size=2)),
                "k": value,
            }
    return value


identifiers = st.text(string.ascii_lowercase + "_", min_size=1, max_size=12)

# ------------------------------------------------------- constructors


def client(**options: Any) -> EvoLinkClient:
    return EvoLinkClient(**options)


@attrs.frozen
class Row:
    """One argument: how to pass a value, the name its error must carry, the values."""

    argument: str
    call: Callable[[Any], object]
    values: st.SearchStrategy[Any]


def _unknown_field(model: str) -> st.SearchStrategy[dict[str, Any]]:
    names = {field.name for field in attrs.fields(MODELS[model])}
    return identifiers.filter(lambda name: name not in names).map(lambda name: {name: 1})


def _build(model: str, params: dict[str, Any]) -> object:
    return MODELS[model](**params)


def _minimal(model: str) -> dict[str, Any]:
    minimal: dict[str, dict[str, Any]] = {
        "seedance-2.0-image-to-video": {"prompt": "a cat", "image_urls": [URL]},
        "seedance-2.0-fast-image-to-video": {"prompt": "a cat", "image_urls": [URL]},
        "happyhorse-1.0-image-to-video": {"image_urls": [URL]},
        "wan2.7-image-to-video": {"image_start": URL},
        "wan2.5-image-to-video": {"prompt": "a cat", "image_urls": [URL]},
    }
    return minimal[model]


def _required(model: str) -> list[str]:
    return [f.name for f in attrs.fields(MODELS[model]) if f.default is attrs.NOTHING]


def _keyword(name: str) -> dict[str, Any]:
    return {name: 1}


SYNC_ROWS: list[Any] = [
    pytest.param(Row("api_key", lambda v: client(api_key=v), anything_but_str), id="key-type"),
    pytest.param(Row("api_key", lambda v: client(api_key=v), keys_with_stray), id="key-chars"),
    pytest.param(Row("base_url", lambda v: client(base_url=v), anything_but_str), id="base-type"),
    pytest.param(Row("base_url", lambda v: client(base_url=v), bad_base_urls), id="base-url"),
    pytest.param(
        Row("files_base_url", lambda v: client(files_base_url=v), bad_base_urls), id="files-url"
    ),
    pytest.param(Row("timeout", lambda v: client(timeout=v), not_positive_seconds), id="timeout"),
    pytest.param(
        Row(
            "timeout.",
            lambda v: client(timeout=aiohttp.ClientTimeout(total=v)),
            st.one_of(non_finite, not_positive),
        ),
        id="timeout-parts",
    ),
    pytest.param(Row("retry", lambda v: client(retry=v), not_policies), id="retry"),
    pytest.param(Row("poll", lambda v: client(poll=v), not_policies), id="poll"),
    pytest.param(Row("session", lambda v: client(session=v), not_policies), id="session"),
    pytest.param(
        Row("max_retries", lambda v: client(max_retries=v), st.one_of(not_whole, negative)),
        id="max-retries",
    ),
    pytest.param(
        Row(
            "max_concurrency",
            lambda v: client(max_concurrency=v),
            st.one_of(not_whole, not_positive),
        ),
        id="max-concurrency",
    ),
    pytest.param(
        Row(
            "max_video_bytes",
            lambda v: client(max_video_bytes=v),
            st.one_of(not_whole, not_positive),
        ),
        id="max-video-bytes",
    ),
    pytest.param(
        Row("download_timeout", lambda v: client(download_timeout=v), not_positive_seconds),
        id="download-timeout",
    ),
    # RawRequest
    pytest.param(
        Row("params", lambda v: RawRequest("m", {"params": v}), hiding(non_json_leaves)),
        id="raw-non-json",
    ),
    pytest.param(Row("model", lambda v: RawRequest(v), anything_but_str), id="raw-model"),
    pytest.param(
        Row("params", lambda v: RawRequest("m", v), st.one_of(st.integers(), st.text(max_size=3))),
        id="raw-params-type",
    ),
    pytest.param(
        Row(
            "<name>",
            lambda v: RawRequest("m", **_keyword(v)),
            identifiers.filter(lambda name: name not in ("model", "params")),
        ),
        id="raw-unknown-argument",
    ),
    # Request classes, every model: unknown, missing and positional arguments.
    pytest.param(
        Row(
            "<name>",
            lambda v: _build(v[0], {**_minimal(v[0]), **v[1]}),
            st.sampled_from(sorted(MODELS)).flatmap(
                lambda model: _unknown_field(model).map(lambda extra: (model, extra))
            ),
        ),
        id="request-unknown-field",
    ),
    pytest.param(
        Row(
            "<missing>",
            lambda v: _build(v[0], {k: x for k, x in _minimal(v[0]).items() if k not in v[1]}),
            st.sampled_from([m for m in sorted(MODELS) if _required(m)]).flatmap(
                lambda model: st.lists(
                    st.sampled_from(_required(model)), min_size=1, unique=True
                ).map(lambda missing: (model, missing))
            ),
        ),
        id="request-missing-field",
    ),
    pytest.param(
        Row(
            "positional",
            lambda v: MODELS[v[0]](*v[1], **_minimal(v[0])),
            st.tuples(
                st.sampled_from(sorted(MODELS)),
                st.lists(st.text(max_size=3), min_size=1, max_size=2),
            ),
        ),
        id="request-positional",
    ),
    # RetryPolicy and PollPolicy fields (their own validators).
    pytest.param(
        Row("max_retries", lambda v: RetryPolicy(max_retries=v), st.one_of(not_whole, negative)),
        id="retry-max-retries",
    ),
    pytest.param(
        Row("initial_backoff", lambda v: RetryPolicy(initial_backoff=v), not_positive_seconds),
        id="retry-backoff",
    ),
    pytest.param(
        Row("max_retry_after", lambda v: RetryPolicy(max_retry_after=v), not_positive_seconds),
        id="retry-max-retry-after",
    ),
    pytest.param(
        Row("min_interval", lambda v: PollPolicy(min_interval=v), not_positive_seconds),
        id="poll-min-interval",
    ),
    pytest.param(
        Row("jitter", lambda v: PollPolicy(jitter=v), st.one_of(not_numbers, non_finite, negative)),
        id="poll-jitter",
    ),
    pytest.param(
        Row(
            "batch_endpoint",
            lambda v: PollPolicy(batch_endpoint=v),
            st.one_of(st.integers(), st.text(max_size=3)),
        ),
        id="poll-batch-endpoint",
    ),
    pytest.param(
        Row(
            "retry_statuses",
            lambda v: RetryPolicy(retry_statuses=v),
            st.one_of(st.integers(), st.lists(st.text(max_size=3), min_size=1, max_size=2)),
        ),
        id="retry-statuses",
    ),
    pytest.param(
        Row(
            "<name>",
            lambda v: RetryPolicy(**_keyword(v)),
            identifiers.filter(
                lambda name: name not in {f.name for f in attrs.fields(RetryPolicy)}
            ),
        ),
        id="retry-unknown-argument",
    ),
    pytest.param(
        Row(
            "<name>",
            lambda v: PollPolicy(**_keyword(v)),
            identifiers.filter(lambda name: name not in {f.name for f in attrs.fields(PollPolicy)}),
        ),
        id="poll-unknown-argument",
    ),
    pytest.param(
        Row("request", lambda v: Job(v), anything_but_str),
        id="job-request",
    ),
    pytest.param(
        Row("id", lambda v: Job(RawRequest("m"), id=v), st.one_of(anything_but_str, st.just(""))),
        id="job-id",
    ),
    pytest.param(
        Row(
            "metadata",
            lambda v: Job(RawRequest("m"), metadata=v),
            st.one_of(st.integers(), st.text(max_size=3)),
        ),
        id="job-metadata",
    ),
]


def _expected_name(row: Row, value: Any) -> list[str]:
    """The names one of which the error must carry."""
    if row.argument == "<name>":
        return [next(iter(value[1])) if isinstance(value, tuple) else value]
    if row.argument == "<missing>":
        return list(value[1])
    return [row.argument]


@pytest.mark.parametrize("row", SYNC_ROWS)
@EXAMPLES
@given(data=st.data())
def test_constructors_refuse_hostile_arguments(row: Row, data: st.DataObject) -> None:
    value = data.draw(row.values, label=row.argument)
    with pytest.raises(ValidationError) as info:
        row.call(value)
    message = str(info.value)
    assert any(name in message for name in _expected_name(row, value)), message
    assert SECRET not in message


@pytest.mark.parametrize(
    ("variable", "values"),
    [
        ("EVOLINK_API_KEY", with_stray(SECRET, env_stray_char)),
        ("EVOLINK_BASE_URL", bad_base_urls.filter(lambda url: "\x00" not in url)),
        ("EVOLINK_FILES_BASE_URL", bad_base_urls.filter(lambda url: "\x00" not in url)),
    ],
)
@EXAMPLES
@given(data=st.data())
def test_environment_variables_are_checked_like_arguments(
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    values: st.SearchStrategy[str],
    data: st.DataObject,
) -> None:
    value = data.draw(values)
    try:
        monkeypatch.setenv(variable, value)
    except (ValueError, UnicodeEncodeError):
        return  # the OS itself refuses such a variable
    with pytest.raises(ValidationError) as info:
        EvoLinkClient()
    assert variable in str(info.value)
    assert SECRET not in str(info.value)


@EXAMPLES
@given(params=st.dictionaries(st.text(max_size=6).filter(lambda key: key != "model"), json_values))
def test_json_params_are_accepted_and_sent_as_strict_json(params: dict[str, Any]) -> None:
    """The other side of the non-JSON rule: real JSON passes, and serialises without NaN."""
    body = request_body(RawRequest("future-model", params))
    assert json.loads(json.dumps(body, allow_nan=False)) == json.loads(json.dumps(body))


# -------------------------------------------------------------- calls

Call = Callable[[EvoLinkClient, Any], Awaitable[object]]


@attrs.frozen
class CallRow:
    """One argument of a client call: an id, the name its error must carry, the call, values."""

    id: str
    argument: str
    call: Call
    values: st.SearchStrategy[Any]


async def _sync(call: Callable[[], object]) -> object:
    """A synchronous call, run as the body of a coroutine."""
    return call()


ASYNC_ROWS: list[CallRow] = [
    CallRow(
        "submit-key",
        "idempotency_key",
        lambda c, v: c.submit(RawRequest("m"), idempotency_key=v),
        st.one_of(
            anything_but_str.filter(lambda v: v is not None),
            st.text(max_size=15),
            st.text(min_size=97, max_size=120),
            with_stray("evl-0123456789abcdef", stray_char),
        ),
    ),
    CallRow(
        "submit-request",
        "model_or_request",
        lambda c, v: c.submit(v),
        anything_but_str,
    ),
    CallRow(
        "submit-raw-non-json",
        "params",
        lambda c, v: c.submit(RawRequest("m", {"params": v})),
        hiding(non_json_leaves),
    ),
    CallRow(
        "get-task",
        "task_id",
        lambda c, v: c.get_task(v),
        st.one_of(anything_but_str, st.sampled_from(["", " ", ".", ".."])),
    ),
    CallRow(
        "wait-id",
        "task_id",
        lambda c, v: c.wait(v),
        st.one_of(anything_but_str.filter(lambda v: not isinstance(v, Task)), st.just("")),
    ),
    CallRow(
        "wait-timeout",
        "timeout",
        lambda c, v: c.wait("task-1", timeout=v),
        st.one_of(not_numbers, non_finite, negative),
    ),
    CallRow(
        "wait-progress",
        "on_progress",
        lambda c, v: c.wait("task-1", on_progress=v),
        not_callables,
    ),
    CallRow(
        "generate-timeout",
        "timeout",
        lambda c, v: c.generate(RawRequest("m"), timeout=v),
        st.one_of(not_numbers, non_finite, negative),
    ),
    CallRow(
        "generate-progress",
        "on_progress",
        lambda c, v: c.generate(RawRequest("m"), on_progress=v),
        not_callables,
    ),
    CallRow(
        "download-task",
        "task",
        lambda c, v: c.download(v, "out.mp4"),
        anything_but_str,
    ),
    CallRow(
        "download-dest",
        "dest",
        lambda c, v: c.download(DONE, v),
        st.one_of(
            anything_but_str.filter(lambda v: not isinstance(v, Path)), st.just(""), st.just(b"x")
        ),
    ),
    CallRow(
        "download-overwrite",
        "overwrite",
        lambda c, v: c.download(DONE, "out.mp4", overwrite=v),
        st.one_of(st.integers(), st.text(max_size=3), st.none()),
    ),
    CallRow(
        "upload-path",
        "path_or_bytes",
        lambda c, v: c.upload_file(v),
        st.one_of(
            st.integers(),
            st.floats(),
            st.lists(st.integers(), max_size=1),
            st.builds(object),
            st.just(""),
            st.just("a\x00b"),
        ),
    ),
    CallRow(
        "upload-file-name",
        "file_name",
        lambda c, v: c.upload_file(b"\x89PNG\r\n\x1a\n" + bytes(32), file_name=v),
        st.one_of(
            st.integers(),
            st.binary(min_size=1, max_size=3),
            st.lists(st.text(), max_size=1),
            with_stray(
                "cat.png", st.sampled_from(["\n", "\r", "\x00", "\x1b", "\u202e", "\u2028"])
            ),
        ),
    ),
    CallRow(
        "batch-jobs",
        "jobs",
        lambda c, v: _sync(lambda: c.batch(v)),
        st.one_of(
            st.integers(),
            st.text(max_size=3),
            st.binary(max_size=2),
            st.builds(object),
            st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
            st.just(Job(RawRequest("m"))),
        ),
    ),
    CallRow(
        "batch-journal",
        "journal",
        lambda c, v: _sync(lambda: c.batch([], journal=v)),
        st.one_of(st.integers(), st.binary(min_size=1, max_size=2), st.just(""), st.builds(object)),
    ),
    CallRow(
        "batch-download-dir",
        "download_dir",
        lambda c, v: _sync(lambda: c.batch([], download_dir=v)),
        st.one_of(st.integers(), st.binary(min_size=1, max_size=2), st.just(""), st.builds(object)),
    ),
    CallRow(
        "batch-concurrency",
        "concurrency",
        lambda c, v: _sync(lambda: c.batch([], concurrency=v)),
        st.one_of(not_whole, not_positive),
    ),
    CallRow(
        "batch-max-active",
        "max_active",
        lambda c, v: _sync(lambda: c.batch([], max_active=v)),
        st.one_of(not_whole, not_positive),
    ),
    CallRow(
        "handle-callback",
        "payload",
        lambda c, v: _sync(lambda: c.handle_callback(v)),
        st.one_of(
            st.integers(), st.text(max_size=3), st.lists(st.integers(), max_size=1), st.just({})
        ),
    ),
    CallRow(
        "handle-callback-body",
        "body",
        lambda c, v: _sync(lambda: c.handle_callback_body(v)),
        st.one_of(st.integers(), st.none(), st.lists(st.integers(), max_size=1), st.builds(object)),
    ),
]


def _call_test(row: CallRow) -> Any:
    """One test per row: hypothesis draws before each example runs in the event loop."""

    @pytest.mark.anyio
    @EXAMPLES
    @given(value=row.values)
    async def test(
        value: Any,
        mock: MockEvoLink,
        client: EvoLinkClient,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.chdir(tmp_path)  # a download that slipped through would land here
        before = sum(mock.stats.requests.values())
        with pytest.raises(ValidationError) as info:
            await row.call(client, value)
        assert row.argument in str(info.value)
        assert sum(mock.stats.requests.values()) == before
        assert mock.stats.tasks_created == 0
        assert list(tmp_path.iterdir()) == []

    test.__name__ = test.__qualname__ = f"test_{row.id.replace('-', '_')}_refuses_hostile_values"
    return test


for _row in ASYNC_ROWS:
    _test = _call_test(_row)
    globals()[_test.__name__] = _test
