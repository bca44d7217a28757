"""
An API key the server echoes in a spelling a byte search misses is masked too.

JSON lets a server write any character of the key as a `\\u` escape (and `/`
as `\\/`), and `json.loads` reads UTF-16 and UTF-32 bodies: after decoding,
such a reply holds the key although its bytes never do. Every spelling, in
every encoding JSON allows, must be masked before the reply becomes an
exception, a `Task`, a record or a journal line.
"""

from __future__ import annotations

import asyncio
import json
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evolink_async import APIError, EvoLinkError
from evolink_async._api.decode import Redactor
from evolink_async.testing import Fault, MockEvoLink

from .conftest import make_client

GET_TASK = "GET /v1/tasks/{id}"
CREATE = "POST /v1/videos/generations"
TASK_ID = "task-unified-1774857405-abc12345"
KEY = "sk-audit-echo/0123456789abcdef"
ENCODINGS = ["utf-8", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"]

#: Keys as the client accepts them: visible ASCII, long enough to mask.
keys = st.text(alphabet=[chr(c) for c in range(0x21, 0x7F)], min_size=8, max_size=40)


@st.composite
def spelled(draw: st.DrawFn, text: str) -> str:
    """`text` as the inside of a JSON string, each character plain or escaped."""
    out = []
    for char in text:
        how = draw(st.sampled_from(["plain", "u", "U"] + (["slash"] if char == "/" else [])))
        if char in '"\\':
            how = how if how != "plain" else "u"
        if how == "u":
            out.append(f"\\u{ord(char):04x}")
        elif how == "U":
            out.append(f"\\u{ord(char):04X}")
        elif how == "slash":
            out.append("\\/")
        else:
            out.append(char)
    return "".join(out)


def strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*strings_in(k), *strings_in(v))]
    if isinstance(value, list):
        return [s for item in value for s in strings_in(item)]
    return []


@settings(max_examples=300, deadline=None)
@given(
    key=keys,
    data=st.data(),
    bearer=st.booleans(),
    around=st.sampled_from(["", "key ", "header was Authorization: "]),
    encoding=st.sampled_from(ENCODINGS),
)
def test_every_spelling_of_the_key_is_masked(
    key: str, data: st.DataObject, bearer: bool, around: str, encoding: str
) -> None:
    echoed = around + ("Bearer " if bearer else "") + key
    inside = data.draw(spelled(echoed))
    body = '{"error": {"code": "x", "message": "' + inside + '"}, "n": [1, 2.5]}'
    assert any(key in s for s in strings_in(json.loads(body)))  # the spelling is the key
    masked = Redactor(key).data(body.encode(encoding))
    decoded = json.loads(masked)
    assert not any(key in s for s in strings_in(decoded)), (body, masked)
    assert decoded["n"] == [1, 2.5]


@settings(max_examples=100, deadline=None)
@given(key=keys, data=st.data(), encoding=st.sampled_from(ENCODINGS))
def test_a_reply_without_the_key_is_left_as_sent(
    key: str, data: st.DataObject, encoding: str
) -> None:
    other = data.draw(st.text(alphabet=string.ascii_letters + "\u00e9/", max_size=20))
    if key in other:
        return
    payload = ('{"message": "' + data.draw(spelled(other)) + '"}').encode(encoding)
    assert Redactor(key).data(payload) == payload


WIDE = ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"]


@settings(max_examples=100, deadline=None)
@given(
    key=keys,
    encoding=st.sampled_from(WIDE),
    before=st.text(alphabet=string.ascii_letters + " :<>", max_size=20),
    bearer=st.booleans(),
)
def test_a_wide_text_reply_echoing_the_key_is_masked(
    key: str, encoding: str, before: str, bearer: bool
) -> None:
    # Not JSON (an HTML or plain-text error page) in a wide encoding: shown
    # as text, the key would be its letters with NULs between them.
    body = f"<h1>{before}{'Bearer ' if bearer else ''}{key}</h1>".encode(encoding)
    masked = Redactor(key).data(body)
    for codec in WIDE:
        assert key not in masked.decode(codec, errors="replace")
    assert key not in masked.replace(b"\x00", b"").decode("latin-1")


def escaped(text: str) -> str:
    return "".join(f"\\u{ord(char):04x}" for char in text)


@pytest.mark.parametrize("status", [200, 400, 401, 429, 500])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-32-be"])
def test_an_escaped_echo_reaches_no_error_and_no_task(status: int, encoding: str) -> None:
    if status == 200:
        reply: dict[str, Any] = {
            "id": TASK_ID,
            "status": "failed",
            "error": {"code": "x", "message": "@@"},
            "echo": "@@",
        }
    else:
        reply = {"error": {"code": "x", "message": "@@", "param": "@@"}}
    text = json.dumps(reply).replace("@@", f"Bearer {escaped(KEY)}")

    async def scenario() -> list[str]:
        async with MockEvoLink(api_key=KEY, time_scale=0.002) as mock:
            mock.inject(
                Fault.REPLY, route=GET_TASK, status=status, body=text.encode(encoding), times=10
            )
            async with make_client(mock, max_retries=0) as client:
                try:
                    task = await client.get_task(TASK_ID)
                except EvoLinkError as exc:
                    seen = [str(exc), repr(exc), repr(vars(exc))]
                else:
                    seen = [repr(task), repr(task.raw), repr(task.error)]
                    assert task.error is not None and "[api key]" in task.error.message
            # The reply the client read is the one injected.
            assert mock.stats.requests[GET_TASK] == 1
            return seen

    seen = asyncio.run(scenario())
    assert not any(KEY in text for text in seen), seen


@pytest.mark.anyio
async def test_an_escaped_echo_reaches_no_journal_and_no_record(tmp_path: Path) -> None:
    journal = tmp_path / "run.journal"
    async with MockEvoLink(api_key=KEY, time_scale=0.002) as mock:
        message = f"Authorization: Bearer {escaped(KEY)}"
        body = '{"error": {"code": "bad", "message": "' + message + '"}}'
        mock.inject(Fault.REPLY, route=CREATE, status=400, body=body.encode())
        job = {
            "id": "a",
            "model": "wan2.5-image-to-video",
            "prompt": "A cat playing piano",
            "image_urls": ["https://example.com/cat.png"],
        }
        async with make_client(mock) as client:
            outcomes = await client.batch([job], journal=journal).results()
        assert mock.stats.requests[CREATE] == 1
    assert isinstance(outcomes[0].error, APIError)
    assert "[api key]" in outcomes[0].error.message
    assert KEY not in json.dumps(outcomes[0].to_record(), ensure_ascii=False)
    for path in tmp_path.iterdir():
        raw = path.read_bytes()
        assert KEY.encode() not in raw and escaped(KEY).encode() not in raw
