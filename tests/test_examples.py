"""
Every example runs against the mock and prints what it promises.

Each `examples/NN_*.py` runs as a subprocess with `--mock` (all of them at
once, to keep the file fast), with the `EVOLINK_*` variables removed so none
can reach the real API; the tests assert on specific output lines. The two
web backends are also run in-process and called over real HTTP: 04 on an
aiohttp `AppRunner` that the mock calls back, 07 (FastAPI) through httpx's
ASGI transport. FastAPI, uvicorn and httpx are in the `dev` extra: without
them the 07 tests fail rather than skip.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import attrs
import pytest

import evolink_async
from evolink_async import EvoLinkClient, EvoLinkError, PollPolicy
from evolink_async.testing import Fault, MockEvoLink

from .conftest import FAST_RETRY

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(path.name for path in EXAMPLES.glob("[0-9][0-9]_*.py"))
#: Seconds one example may take (they take 1-5 s; CI machines are slower).
EXAMPLE_TIMEOUT = 45.0
#: The mock's key, and the fake keys 06 uses: none may ever be printed.
KEY = re.compile(r"\bsk-[\w-]+")
TOKEN = "example-callback-token-123"
JOB = {
    "model": "wan2.5-image-to-video",
    "prompt": "A cat playing piano",
    "image_urls": ["https://example.com/cat.png"],
}
CREATE = "POST /v1/videos/generations"


# -- the examples as subprocesses --------------------------------------------------


@attrs.frozen
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    def line(self, start: str) -> str:
        """The one output line starting with `start`."""
        found = [line for line in self.lines if line.startswith(start)]
        assert len(found) == 1, f"want one line starting {start!r} in:\n{self.stdout}"
        return found[0]


class Runs:
    """The examples, started together; `result(name)` waits for one."""

    def __init__(self, folder: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EVOLINK_")}
        self._procs: dict[str, tuple[subprocess.Popen[bytes], Path, Path]] = {}
        self._done: dict[str, Result] = {}
        runs = [(name, [name, "--mock"]) for name in SCRIPTS]
        runs.append(("06_errors.py offline", ["06_errors.py"]))
        for key, (script, *args) in runs:
            out = folder / f"{key}.out"
            err = folder / f"{key}.err"
            with out.open("wb") as stdout, err.open("wb") as stderr:
                process = subprocess.Popen(
                    [sys.executable, str(EXAMPLES / script), *args],
                    stdout=stdout,
                    stderr=stderr,
                    env=env,
                    cwd=folder,
                )
            self._procs[key] = (process, out, err)

    def result(self, key: str) -> Result:
        if key not in self._done:
            process, out, err = self._procs[key]
            try:
                process.wait(timeout=EXAMPLE_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                pytest.fail(f"{key} took over {EXAMPLE_TIMEOUT} s:\n{out.read_text()}")
            result = Result(process.returncode, out.read_text(), err.read_text())
            self._done[key] = result
            assert result.returncode == 0, f"{key} exited {result.returncode}:\n{result.stderr}"
            assert not KEY.search(result.stdout + result.stderr), f"{key} printed a key"
        return self._done[key]

    def close(self) -> None:
        for process, _, _ in self._procs.values():
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    started = Runs(tmp_path_factory.mktemp("examples"))
    try:
        yield started
    finally:
        started.close()


def test_every_example_is_tested() -> None:
    assert SCRIPTS == [
        "01_generate.py",
        "02_many_at_once.py",
        "03_batch_journal.py",
        "04_web_backend.py",
        "05_upload_local_image.py",
        "06_errors.py",
        "07_fastapi_backend.py",
    ]
    for name in SCRIPTS:
        source = (EXAMPLES / name).read_text()
        assert source.startswith('"""\n'), f"{name} starts with its docstring"
        assert "--mock" in source and "asyncio.run(main(" in source, name


def test_01_generate_reports_progress_and_downloads(runs: Runs) -> None:
    result = runs.result("01_generate.py")
    assert result.lines[-2].endswith(": completed 100%")
    assert result.line("saved ").startswith("saved 65536 bytes from http://127.0.0.1:")


def test_02_gathers_fifty_jobs_with_the_expected_failures(runs: Runs) -> None:
    result = runs.result("02_many_at_once.py")
    assert result.line("50 jobs on one client: ").startswith(
        "50 jobs on one client: 45 completed, 5 failed, 0 other errors in "
    )
    for model in evolink_async.MODELS:
        assert result.line(f"  {model}: ") == f"  {model}: 9 completed"
    assert result.line("  failed with ") == (
        "  failed with content_policy_violation: 5 (resubmitting will not help)"
    )
    assert result.line("mock server saw ").startswith("mock server saw 50 creates and ")


def test_03_second_run_resumes_every_job_from_the_journal(runs: Runs) -> None:
    result = runs.result("03_batch_journal.py")
    first = result.line("first run: ")
    assert first.startswith("first run: submitted 12, completed 10, failed 1, cancelled 1, ")
    assert "downloaded 10;" in first
    assert result.line("second run: submitted").startswith(
        "second run: submitted 0, completed 0, failed 0, cancelled 0, resumed 12, downloaded 0;"
    )
    assert (
        result.line("second run: resumed") == "second run: resumed 12 of 12 jobs from the journal"
    )
    assert result.line("second run: tasks") == "second run: tasks created on the server: 0"
    assert result.line("10 videos in ")
    outcomes = [line for line in result.lines if line.startswith("  clip-")]
    assert len(outcomes) == 12
    assert "  clip-04: TaskFailedError: " in "\n".join(outcomes)
    assert "  clip-09: TaskCancelledError: " in "\n".join(outcomes)


def test_04_web_backend_serves_and_calls_itself(runs: Runs) -> None:
    result = runs.result("04_web_backend.py")
    out = result.stdout
    assert re.search(r"^POST /generate -> 200 completed task-unified-\S+ video_url=", out, re.M)
    assert "POST /generate -> 422 ValidationError: duration: must be 5 or 10" in out
    assert "POST /generate -> 502 TaskFailedError [content_policy_violation]" in out
    assert "POST /generate -> 422 ValidationError: request: unknown model 'no-such-model'" in out
    assert "-> 404 NotFoundError [not_found]" in out
    assert re.search(r"^POST /submit -> 202 pending ", out, re.M)
    assert re.search(r"^GET /tasks/\S+\?wait=30 -> 200 completed ", out, re.M)
    callbacks = result.line("callbacks delivered to the app: ")
    assert re.fullmatch(
        r"callbacks delivered to the app: [1-3], answered \{204: [1-3]\}", callbacks
    )


def test_05_uploads_a_local_image(runs: Runs) -> None:
    result = runs.result("05_upload_local_image.py")
    assert re.fullmatch(
        r"uploaded first-frame\.png: \d+ bytes, image/png, expires \S+",
        result.line("uploaded first-frame.png: "),
    )
    assert result.line("generated from a local file: ").startswith(
        "generated from a local file: completed, http://127.0.0.1:"
    )
    carried = result.line("  the create carried image_urls=")
    assert re.fullmatch(
        r"  the create carried image_urls=\['http://127\.0\.0\.1:\d+/files/uploads/\S+/"
        r"first-frame\.png'\]",
        carried,
    )
    assert result.line("  files uploaded so far: ") == "  files uploaded so far: 2"
    refused = result.line("refused before uploading: ")
    assert "thumbnail.png" in refused and "120x120 px" in refused
    assert result.line("  files uploaded in the end: ") == "  files uploaded in the end: 2"


def public_error_classes() -> set[str]:
    names = set()
    for name in evolink_async.__all__:
        value = getattr(evolink_async, name)
        if isinstance(value, type) and issubclass(value, EvoLinkError):
            names.add(name)
    return names - {"EvoLinkError", "APIError"}


def test_06_shows_every_error_class(runs: Runs) -> None:
    result = runs.result("06_errors.py")
    classes = public_error_classes()
    for name in classes:
        assert any(line.startswith(f"{name}: ") for line in result.lines), name
    count = len(classes)
    assert result.lines[-1] == f"shown {count} of {count} error classes"
    out = result.stdout
    assert ".problems: duration: must be an integer from 4 to 15" in out
    assert ".retry_after=0.05 (seconds to wait)" in out
    assert ".status=402 .code='insufficient_quota'" in out
    assert ".code='content_policy_violation' .retryable=False" in out
    assert ".code='resource_exhausted' .retryable=True" in out
    assert "    waited again: completed" in out


def test_06_without_the_mock_shows_what_needs_no_server(runs: Runs) -> None:
    result = runs.result("06_errors.py offline")
    shown = {line.split(":")[0] for line in result.lines if re.match(r"\w+Error: ", line)}
    assert shown == {
        "ValidationError",
        "AuthenticationError",
        "ClientClosedError",
        "APIConnectionError",
    }
    assert "run with --mock" in result.stdout


def test_07_fastapi_backend_runs(runs: Runs) -> None:
    result = runs.result("07_fastapi_backend.py")
    out = result.stdout
    assert "this example needs FastAPI" not in out
    assert re.search(r"^POST /generate -> 200 completed video_url=", out, re.M)
    assert "POST /generate -> 422 ValidationError" in out
    assert "POST /generate -> 502 TaskFailedError [content_policy_violation]" in out
    assert re.search(r"^callbacks delivered to the app and accepted: [12]$", out, re.M)


# -- the web backends in-process ------------------------------------------------


def load_example(name: str) -> ModuleType:
    """Import an example by file name (the names start with digits)."""
    module_name = f"examples_{Path(name).stem}"
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


#: Time as the mock sees it: a 120 s task takes 0.6 s.
TIME_SCALE = 0.005
#: Scaled like the mock, except `max_interval`: left long, so that only a
#: callback can make a waiter notice a finished task early.
POLL = PollPolicy(
    min_interval=0.01, max_interval=5.0, default_estimate=0.6, max_polls_per_second=4000
)


@pytest.fixture
async def web_backend() -> AsyncIterator[tuple[str, MockEvoLink]]:
    """04's app on an AppRunner; the mock (estimates 30x too long) calls it back."""
    backend = load_example("04_web_backend.py")
    async with MockEvoLink(time_scale=TIME_SCALE, eta_bias=30.0) as mock:
        app = backend.make_app(
            lambda: EvoLinkClient(
                mock.api_key,
                base_url=mock.url,
                files_base_url=mock.url,
                poll=POLL,
                retry=FAST_RETRY,
            ),
            public_url="https://app.example.com",
            callback_token=TOKEN,
            max_wait=20.0,
        )
        runner, url = await backend.start(app, "127.0.0.1", 0)
        mock.callback_target = f"{url}/evolink/callback?token={TOKEN}"
        try:
            yield url, mock
        finally:
            await runner.cleanup()


async def call(
    http: aiohttp.ClientSession, method: str, path: str, body: Any = None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    kwargs: dict[str, Any] = {"data": body} if isinstance(body, str) else {"json": body}
    async with http.request(method, path, **kwargs) as response:
        headers = {str(name): value for name, value in response.headers.items()}
        return response.status, await response.json(), headers


@pytest.mark.anyio
async def test_04_web_backend_over_http_with_callbacks(
    web_backend: tuple[str, MockEvoLink], caplog: pytest.LogCaptureFixture
) -> None:
    url, mock = web_backend
    caplog.set_level(logging.INFO)
    async with aiohttp.ClientSession(url) as http:

        async def submit_then_wait() -> tuple[int, dict[str, Any], int, dict[str, Any]]:
            status, submitted, headers = await call(http, "POST", "/submit", JOB)
            assert headers["Location"] == f"/tasks/{submitted['task_id']}"
            later, task, _ = await call(http, "GET", f"/tasks/{submitted['task_id']}?wait=10")
            return status, submitted, later, task

        generated, bad, failed, not_json, submitted = await asyncio.gather(
            call(http, "POST", "/generate", JOB),
            call(http, "POST", "/generate", {**JOB, "duration": 7}),
            call(
                http, "POST", "/generate", {**JOB, "prompt": "mock:fail=content_policy_violation"}
            ),
            call(http, "POST", "/generate", "{not json"),
            submit_then_wait(),
        )
        unknown = await call(http, "GET", "/tasks/task-unified-1700000000-zzzzzzzz")
        malformed = await call(http, "GET", "/tasks/not-a-task-id?wait=1")
        bad_wait = await call(http, "GET", f"/tasks/{submitted[1]['task_id']}?wait=soon")
        mock.inject(
            Fault.RATE_LIMIT, route=CREATE, times=FAST_RETRY.max_retries + 1, retry_after=0.01
        )
        limited = await call(http, "POST", "/generate", JOB)

    status, body, _ = generated
    assert status == 200
    assert body["status"] == "completed" and body["video_url"].startswith(f"{mock.url}/files/")
    assert bad[0] == 422
    assert bad[1]["error"]["problems"] == [{"field": "duration", "rule": "must be 5 or 10"}]
    assert failed[0] == 502
    assert failed[1]["error"]["code"] == "content_policy_violation"
    assert failed[1]["error"]["retryable"] is False
    assert not_json[0] == 400
    assert submitted[0] == 202 and submitted[1]["status"] == "pending"
    assert submitted[2] == 200 and submitted[3]["status"] == "completed"
    assert unknown[0] == 404 and malformed[0] == 404
    assert bad_wait[0] == 422
    assert limited[0] == 429 and limited[2]["Retry-After"] == "1"
    assert limited[1]["error"]["type"] == "RateLimitError"
    # Only three creates reached the mock besides the rate-limited ones:
    # the bad request never left the app.
    assert mock.stats.tasks_created == 3

    # The callback woke the waiter: the generate task was read once after it
    # ended, right then, not at the poll planned from the (30x) estimate.
    task_id = body["task_id"]
    for _ in range(100):
        if any(d.task_id == task_id for d in mock.stats.callbacks_delivered):
            break
        await asyncio.sleep(0.01)
    deliveries = [d for d in mock.stats.callbacks_delivered if d.task_id == task_id]
    assert [d.http_status for d in deliveries] == [204]
    planned = mock.tasks[task_id]
    after = [t for t in mock.stats.polls[task_id] if t >= planned.finishes_at]
    assert len(after) == 1
    assert after[0] - planned.finishes_at < 0.25 * planned.duration
    assert len(mock.stats.polls[task_id]) <= 2
    # The access log names the callback route, never its token.
    assert "POST /evolink/callback -> 204" in caplog.text
    assert TOKEN not in caplog.text


@pytest.mark.anyio
async def test_07_fastapi_backend_over_asgi() -> None:
    import httpx

    backend = load_example("07_fastapi_backend.py")
    async with MockEvoLink(time_scale=TIME_SCALE) as mock:
        app = backend.make_app(
            lambda: EvoLinkClient(
                mock.api_key,
                base_url=mock.url,
                files_base_url=mock.url,
                poll=POLL,
                retry=FAST_RETRY,
            ),
            public_url="https://app.example.com",
            callback_token=TOKEN,
            max_wait=20.0,
        )
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://app") as http,
        ):
            generated, bad, failed = await asyncio.gather(
                http.post("/generate", json=JOB),
                http.post("/generate", json={**JOB, "duration": 7}),
                http.post("/generate", json={**JOB, "prompt": "mock:fail=service_error"}),
            )
            assert generated.status_code == 200
            assert generated.json()["video_url"].startswith(f"{mock.url}/files/")
            assert bad.status_code == 422
            assert bad.json()["error"]["problems"][0]["field"] == "duration"
            assert failed.status_code == 502
            assert failed.json()["error"]["code"] == "service_error"
            assert failed.json()["error"]["retryable"] is True

            task_id = generated.json()["task_id"]
            created = mock.tasks[task_id]
            assert created.callback_url == (
                f"https://app.example.com/evolink/callback?token={TOKEN}"
            )
            client: EvoLinkClient = app.state.evolink
            payload = dict((await client.get_task(task_id)).raw)
            accepted = await http.post(f"/evolink/callback?token={TOKEN}", json=payload)
            wrong = await http.post("/evolink/callback?token=guess", json=payload)
            junk = await http.post(f"/evolink/callback?token={TOKEN}", json=["a list"])
        assert (accepted.status_code, wrong.status_code, junk.status_code) == (204, 403, 400)
    assert client.closed  # the lifespan closed the one client
