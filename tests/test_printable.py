"""
Server text reaches a terminal or a log line only escaped (`evolink_async._text`).

The hostile class is every character that moves the cursor, starts an escape
sequence, breaks a line, reorders text or cannot be written as UTF-8: C0 and
C1 controls, DEL, format characters (bidi overrides and isolates, zero-width
characters, tags), line and paragraph separators, lone surrogates, private
use. Each test draws from the whole class (hypothesis) or walks a table with
at least one member of each kind, through every path: the helper itself, the
callback route's log, the SDK's own log lines, `evolink-async task`, and the
`batch` display.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from evolink_async import Job, JobOutcome, RawRequest, TaskFailedError
from evolink_async._cli import main
from evolink_async._cli.display import Display, OutcomeLine, RichDisplay
from evolink_async._text import printable, printable_json
from evolink_async.testing import Fault, MockEvoLink
from evolink_async.webhooks import callback_handler

from .conftest import TIME_SCALE, make_client

#: Unicode categories no terminal or log line may get raw.
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp", "Co", "Cn"})
#: One or more of each kind, by name: what a rerun of the audit might pick.
HOSTILE = {
    "CSI clear screen": "\x1b[2J\x1b[H",
    "SGR colour": "\x1b[31mred\x1b[0m",
    "OSC title": "\x1b]0;pwned\x07",
    "OSC 8 link": "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\",
    "newline forged log": "ok\nCRITICAL evolink_async: forged line",
    "carriage return": "visible\rhidden",
    "NUL": "a\x00b",
    "backspace": "abc\x08\x08\x08xyz",
    "tab and vertical tab": "a\tb\x0bc\x0cd",
    "DEL": "a\x7fb",
    "C1 CSI": "\x9b31mred",
    "C1 NEL": "line\x85next",
    "C1 OSC": "\x9d0;title\x9c",
    "bidi override": "user\u202etxt.exe",
    "bidi embedding": "\u202a\u202b\u202c\u202d",
    "bidi isolates": "\u2066\u2067\u2068\u2069",
    "marks": "\u200e\u200f\u061c",
    "zero width": "a\u200bb\u200cc\u200dd\u2060e\ufefff",
    "line separator": "one\u2028two",
    "paragraph separator": "one\u2029two",
    "tag characters": "flag\U000e0041\U000e007f",
    "lone high surrogate": "x\ud800y",
    "lone low surrogate": "x\udfffy",
    "private use": "\ue000\U000f0000",
    "soft hyphen": "in\xadvisible",
}


#: A reply's headers for a JSON body sent as bytes.
JSON_TYPE = {"Content-Type": "application/json"}


def as_json(value: object) -> bytes:
    """JSON bytes, every non-ASCII character escaped: lone surrogates can be sent too."""
    return json.dumps(value).encode()


def unsafe_chars(text: str) -> list[str]:
    return [char for char in text if unicodedata.category(char) in UNSAFE_CATEGORIES]


def assert_safe(text: str) -> None:
    """No raw hostile character, and writable as UTF-8."""
    assert unsafe_chars(text) == [], ascii(text)
    text.encode("utf-8")


hostile_chars = st.characters(categories=("Cc", "Cf", "Cs", "Zl", "Zp", "Co"))
any_text = st.text(st.characters(), max_size=40)
#: Text with at least one hostile character somewhere in it.
hostile_text = st.builds(
    lambda before, bad, after: before + bad + after,
    any_text,
    st.text(hostile_chars, min_size=1, max_size=8),
    any_text,
)
#: Text a user wants to read as sent: letters, marks, digits, symbols, punctuation, spaces.
readable_text = st.text(
    st.characters(categories=("L", "M", "N", "P", "S", "Zs")), min_size=1, max_size=60
)


# ---------------------------------------------------------------- the helper


@given(hostile_text)
@settings(max_examples=400)
def test_printable_escapes_every_hostile_character(text: str) -> None:
    shown = printable(text)
    assert_safe(shown)
    assert "\n" not in shown and "\r" not in shown
    # Escaping is stable: what is shown once is shown the same again.
    assert printable(shown) == shown


@given(readable_text)
def test_printable_leaves_readable_text_alone(text: str) -> None:
    assert printable(text) == text


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_printable_escapes_each_kind_the_python_way(name: str) -> None:
    text = HOSTILE[name]
    shown = printable(text)
    assert_safe(shown)
    # Each hostile character becomes the escape `repr` gives it; the rest stays.
    expected = "".join(repr(c)[1:-1] if unsafe_chars(c) else c for c in text)
    assert shown == expected


def test_printable_takes_any_object() -> None:
    assert printable(ValueError("bad\x1b[2Jthing")) == "bad\\x1b[2Jthing"
    assert printable(None) == "None"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | any_text | hostile_text,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(any_text | hostile_text, inner, max_size=4)
    ),
    max_leaves=12,
)


@given(json_values)
@settings(max_examples=300)
def test_printable_json_is_safe_and_parses_to_the_same_value(value: Any) -> None:
    text = json.dumps(value, indent=2, ensure_ascii=False)
    shown = printable_json(text)
    assert_safe(shown.replace("\n", ""))
    # The same value JSON gives it (two lone surrogates in a row are one pair in JSON).
    assert json.loads(shown) == json.loads(json.dumps(value))


# ---------------------------------------------------------------- log lines


def logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "evolink_async"]


@pytest.mark.anyio
async def test_a_rejected_callback_body_is_logged_escaped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="evolink_async")
    async with MockEvoLink(time_scale=TIME_SCALE) as mock, make_client(mock) as client:
        app = web.Application()
        app.router.add_post("/callback", callback_handler(client))
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/callback"
        try:
            async with aiohttp.ClientSession() as session:
                for text in HOSTILE.values():
                    # A task without a status: the reason names the task id.
                    body = json.dumps({"id": f"task-{text}"}).encode()
                    async with session.post(url, data=body) as resp:
                        assert resp.status == 400
        finally:
            await runner.cleanup()
    lines = [line for line in logged(caplog) if line.startswith("rejected a callback body")]
    assert len(lines) == len(HOSTILE)
    for line in lines:
        assert_safe(line)
    assert any("\\x1b[2J" in line for line in lines)


@pytest.mark.anyio
async def test_task_ids_and_request_ids_reach_the_log_escaped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="evolink_async")
    # HTTP carries no C0 control in a header, but C1, bidi and separators pass.
    header_safe = {name: text for name, text in HOSTILE.items() if not any(c < " " for c in text)}
    header_safe = {
        name: text
        for name, text in header_safe.items()
        if "\x7f" not in text and not any(0xD800 <= ord(c) <= 0xDFFF for c in text)
    }
    async with MockEvoLink(time_scale=TIME_SCALE) as mock, make_client(mock) as client:
        request = RawRequest("wan2.5-image-to-video", {"prompt": "p"})
        for text in HOSTILE.values():
            task = {"id": f"task-{text}", "status": "pending", "object": "video.generation.task"}
            mock.inject(
                Fault.REPLY,
                route="POST /v1/videos/generations",
                body=as_json(task),
                headers={**JSON_TYPE, "Idempotency-Replayed": "true"},
            )
            created = await client.submit(request)
            assert created.id == f"task-{text}"
        for text in header_safe.values():
            task = {"id": "task-1", "status": "completed", "object": "video.generation.task"}
            mock.inject(
                Fault.REPLY, route="GET /v1/tasks/{id}", body=task, headers={"X-Request-Id": text}
            )
            await client.get_task("task-1")
    lines = logged(caplog)
    replays = [line for line in lines if line.startswith("create replayed")]
    assert len(replays) == len(HOSTILE)
    request_ids = [line for line in lines if "request id" in line and "GET" in line]
    assert len(request_ids) >= len(header_safe)
    for line in lines:
        assert_safe(line)


# ---------------------------------------------------------------- evolink-async task


@pytest.fixture
def threaded_mock() -> Iterator[tuple[MockEvoLink, asyncio.AbstractEventLoop]]:
    """A mock serving from its own thread, so `main([...])` can run here."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, MockEvoLink] = {}
    stop = asyncio.Event()

    async def serve() -> None:
        async with MockEvoLink(time_scale=TIME_SCALE) as mock:
            holder["mock"] = mock
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield holder["mock"], loop
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


def inject(loop: asyncio.AbstractEventLoop, mock: MockEvoLink, **kwargs: Any) -> None:
    async def queue() -> None:
        mock.inject(Fault.REPLY, **kwargs)

    asyncio.run_coroutine_threadsafe(queue(), loop).result(10)


def hostile_task(task_id: str, text: str) -> dict[str, Any]:
    return {
        "id": task_id,
        "object": "video.generation.task",
        "model": f"wan{text}",
        "status": "failed",
        "progress": 40,
        "results": [f"https://cdn.example.com/{text}.mp4"],
        "error": {"code": f"policy{text}", "message": f"refused: {text}"},
    }


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_task_command_prints_server_text_escaped(
    name: str,
    threaded_mock: tuple[MockEvoLink, asyncio.AbstractEventLoop],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    mock, loop = threaded_mock
    text = HOSTILE[name]
    task_id = "task-unified-1-abc"
    key = tmp_path / "key"
    key.write_text(mock.api_key)
    api = ["--api-key-file", str(key), "--base-url", mock.url]
    inject(
        loop,
        mock,
        route="GET /v1/tasks/{id}",
        body=as_json(hostile_task(task_id, text)),
        headers=JSON_TYPE,
    )
    assert main(["task", task_id, *api]) == 0
    out = capsys.readouterr().out
    assert_safe(out.replace("\n", ""))
    assert "refused: " in out

    inject(
        loop,
        mock,
        route="GET /v1/tasks/{id}",
        body=as_json(hostile_task(task_id, text)),
        headers=JSON_TYPE,
    )
    assert main(["task", task_id, "--json", *api]) == 0
    out = capsys.readouterr().out
    assert_safe(out.replace("\n", ""))
    assert json.loads(out) == hostile_task(task_id, text)

    error = {"error": {"code": "bad", "message": f"no such task {text}", "type": "x"}}
    inject(
        loop, mock, route="GET /v1/tasks/{id}", status=400, body=as_json(error), headers=JSON_TYPE
    )
    assert main(["task", task_id, *api]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert_safe(err.replace("\n", ""))


# ---------------------------------------------------------------- the batch display


def failed_outcome(text: str) -> JobOutcome:
    from evolink_async import Task

    task = Task.from_json(hostile_task(f"task-{text}", text))
    return JobOutcome(
        job=Job(RawRequest(f"model{text}", {}), id=f"job{text}"),
        task=task,
        error=TaskFailedError(task),
    )


@given(hostile_text)
@settings(max_examples=100)
def test_outcome_lines_show_server_text_escaped(text: str) -> None:
    line = OutcomeLine.of(failed_outcome(text))
    for part in (line.job_id, line.model, line.problem, line.detail):
        assert_safe(part)


@pytest.mark.parametrize("display_class", [Display, RichDisplay])
def test_both_displays_write_only_escaped_lines(
    display_class: type[Display], tmp_path: Path
) -> None:
    path = tmp_path / "screen.txt"
    with path.open("w", encoding="utf-8") as out:
        display = display_class(out, every=60, verbose=True, title="t")
        for text in HOSTILE.values():
            display.outcome(failed_outcome(text))
            display.note(f"note {text}")
    screen = path.read_text(encoding="utf-8")
    assert_safe(screen.replace("\n", ""))
    if display_class is Display:  # rich wraps long lines to its width
        assert screen.count("\n") == 2 * len(HOSTILE)


@pytest.mark.anyio
async def test_batch_prints_hostile_ids_and_server_messages_escaped(tmp_path: Path) -> None:
    names = sorted(HOSTILE)
    jobs = tmp_path / "jobs.jsonl"
    lines = [
        json.dumps(
            {
                "id": f"job-{n}-{HOSTILE[name]}" if "surrogate" not in name else f"job-{n}",
                "model": "wan2.5-image-to-video",
                "prompt": "A paper boat",
                "image_urls": ["https://example.com/boat.png"],
            }
        )
        for n, name in enumerate(names)
    ]
    jobs.write_text("\n".join(lines) + "\n")
    async with MockEvoLink(time_scale=0.001) as mock:
        for name in names:
            refusal = {"error": {"code": "invalid", "message": f"refused {HOSTILE[name]}"}}
            mock.inject(
                Fault.REPLY,
                route="POST /v1/videos/generations",
                status=400,
                body=as_json(refusal),
                headers=JSON_TYPE,
            )
        env = {k: v for k, v in os.environ.items() if not k.startswith("EVOLINK_")}
        env["EVOLINK_API_KEY"] = mock.api_key
        result = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "evolink_async",
                "batch",
                str(jobs),
                "--journal",
                str(tmp_path / "j"),
                "--base-url",
                mock.url,
                "-v",
            ],
            capture_output=True,
            timeout=60,
            env=env,
            check=False,
        )
    out = result.stdout.decode("utf-8")
    err = result.stderr.decode("utf-8")
    assert result.returncode == 1, err
    assert "Traceback" not in err
    assert out.count("refused ") == len(names)
    for text in (out, err):
        assert_safe(text.replace("\n", ""))
    # One line per job: no message broke its line.
    assert len([line for line in out.splitlines() if "refused " in line]) == len(names)
