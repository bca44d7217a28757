"""Shared fixtures: the anyio backend, a scaled MockEvoLink and a client on it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator

# Ray reads this when first imported (test_public_api imports evolink_async.ray
# at collection): 0 keeps every Ray node on 127.0.0.1, never this machine's
# network address.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
from pathlib import Path
from typing import Any

import attrs
import pytest

from evolink_async import EvoLinkClient, PollPolicy, RetryPolicy
from evolink_async._batch.journal import Journal
from evolink_async.testing import MockEvoLink

from . import pgcluster

#: tests/typing holds files for type checkers (checked, never run): not tests.
collect_ignore = ["typing"]

#: Mock durations are scaled by this: a 165 s task takes 0.33 s.
TIME_SCALE = 0.002
#: A poll policy scaled like the mock: 2 s -> 4 ms, 60 s -> 120 ms.
FAST_POLL = PollPolicy(
    min_interval=0.004, max_interval=0.12, max_polls_per_second=2000.0, default_estimate=0.24
)
#: Retries that wait milliseconds, not seconds.
FAST_RETRY = RetryPolicy(max_retries=3, initial_backoff=0.001, max_backoff=0.01)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def mock() -> AsyncIterator[MockEvoLink]:
    async with MockEvoLink(time_scale=TIME_SCALE, seed=1) as server:
        yield server


def make_client(mock: MockEvoLink, **overrides: object) -> EvoLinkClient:
    """A client on `mock` with test-speed polling and retries; `overrides` win."""
    options: dict[str, object] = {
        "base_url": mock.url,
        "files_base_url": mock.url,
        "poll": FAST_POLL,
        "retry": FAST_RETRY,
        "timeout": 5.0,
    }
    options.update(overrides)
    return EvoLinkClient(mock.api_key, **options)  # type: ignore[arg-type]


@pytest.fixture
async def client(mock: MockEvoLink) -> AsyncIterator[EvoLinkClient]:
    async with make_client(mock) as evolink:
        yield evolink


@pytest.fixture
def mock_server() -> Iterator[tuple[str, str]]:
    """`evolink-async mock-server` in a subprocess; yields (url, api key)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "evolink_async", "mock-server", "--time-scale", "0.001"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        second = process.stdout.readline()
        url = re.search(r"on (http://127\.0\.0\.1:\d+)", first)
        key = re.search(r"EVOLINK_API_KEY=(\S+)", second)
        assert url and key, (first, second)
        yield url.group(1), key.group(1)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            # Generous: on a loaded machine the interpreter's shutdown alone
            # can take seconds.
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()  # never left running for the next tests to trip on
            process.wait()
            raise
        finally:
            if process.stdout is not None:
                process.stdout.close()
    assert code == 0


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """
    A PostgreSQL URL: `EVOLINK_TEST_PG` if set (CI starts one cluster with
    `make pg-start`), else a throwaway cluster for this session.

    Skips when the server binaries are missing, except under CI, where the
    PostgreSQL journal must be tested: there it fails.
    """
    given = os.environ.get("EVOLINK_TEST_PG")
    if given:
        yield given
        return
    if not pgcluster.available():
        message = "no PostgreSQL server binaries (initdb, pg_ctl) on PATH"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}: CI must run the PostgreSQL journal tests")
        pytest.skip(f"PostgreSQL journal tests skipped: {message}")
    root = Path(tempfile.mkdtemp(prefix="evolink-pg-"))
    try:
        yield pgcluster.start(root)
    finally:
        pgcluster.stop(root)


@attrs.frozen
class JournalTarget:
    """A journal for `client.batch`: an SQLite file, or a run in PostgreSQL."""

    backend: str
    journal: str | Path
    #: None with SQLite (the journal keeps its own); a fresh id with PostgreSQL.
    run_id: str | None

    def batch_options(self) -> dict[str, Any]:
        """`journal=` and, with PostgreSQL, `run_id=` for `client.batch`."""
        options: dict[str, Any] = {"journal": self.journal}
        if self.run_id is not None:
            options["run_id"] = self.run_id
        return options


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def journal_target(request: pytest.FixtureRequest, tmp_path: Path) -> JournalTarget:
    """
    Each journal test once per backend: a file, then a fresh run in PostgreSQL
    (marked slow: `make test` runs it; CI's extra interpreter runs do not).
    """
    if request.param == "sqlite":
        return JournalTarget("sqlite", tmp_path / "run.journal", None)
    url: str = request.getfixturevalue("pg_url")
    return JournalTarget("postgresql", url, f"test-{uuid.uuid4().hex[:12]}")


async def journal_counts(path: Path) -> dict[str, int]:
    """Jobs begun, created and finished in the SQLite journal at `path` (opened, so not held)."""
    reader = Journal(path)
    await reader.open()
    try:
        return await reader.counts()
    finally:
        await reader.close()


#: Hostile numbers for replies and callbacks, and the numeric fields of a task reply.
HUGE = "1" + "0" * 400  # an integer no float holds
TOO_LONG = "1" * 4400  # more digits than Python turns into an int
NUMERIC_PATHS = [
    ("progress",),
    ("created",),
    ("task_info", "estimated_time"),
    ("task_info", "video_duration"),
    ("usage", "credits_reserved"),
    ("usage", "credits_used"),
]
