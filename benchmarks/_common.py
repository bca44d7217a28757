"""Helpers the benchmarks share: percentiles, this process's memory, a mock in a process."""

from __future__ import annotations

import asyncio
import contextlib
import math
import resource
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evolink_async.testing import MockEvoLink

#: What the mock process sends back when asked: built from the mock, in the child.
Report = Callable[["MockEvoLink"], Mapping[str, Any]]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _status_mb(name: str) -> float | None:
    """A `VmXXX:` line of /proc/self/status, in MB (None where there is none)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(name + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, MB."""
    peak = _status_mb("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / (1024.0 * 1024.0) if sys.platform == "darwin" else maxrss / 1024.0


def rss_mb() -> float:
    """This process's resident set size now, MB (the peak where unknown)."""
    now = _status_mb("VmRSS")
    return now if now is not None else peak_rss_mb()


def receive(conn: Connection, timeout: float, what: str) -> Any:
    """The next message on `conn`; RuntimeError after `timeout` s or on an error report."""
    if not conn.poll(timeout):
        raise RuntimeError(f"{what}: no answer within {timeout:g} s")
    reply = conn.recv()
    if isinstance(reply, dict) and "error" in reply:
        raise RuntimeError(f"{what} failed:\n{reply['error']}")
    return reply


def run_mock(conn: Connection, options: Mapping[str, Any], report: Report | None = None) -> None:
    """
    The child side of `MockProcess` (call it from the `target` function).

    Serves a MockEvoLink made with `options`, sends `{"url": ..., "api_key":
    ...}`, then waits: a message is answered with `report(mock)` (an empty
    report without one) and ends the mock, as does the parent closing the pipe.
    A failure is sent back as `{"error": traceback}`.
    """
    try:
        asyncio.run(_serve_mock(conn, options, report))
    except BaseException:
        with contextlib.suppress(OSError):
            conn.send({"error": traceback.format_exc()})
        raise


async def _serve_mock(conn: Connection, options: Mapping[str, Any], report: Report | None) -> None:
    from evolink_async.testing import serve_forever

    loop = asyncio.get_running_loop()
    ready: asyncio.Future[MockEvoLink] = loop.create_future()
    server = loop.create_task(serve_forever(on_ready=ready.set_result, **options))
    await asyncio.wait((ready, server), return_when=asyncio.FIRST_COMPLETED)
    if not ready.done():
        server.result()  # raises why the mock could not start
        raise RuntimeError("the mock stopped before it started")
    mock = ready.result()
    conn.send({"url": mock.url, "api_key": mock.api_key})
    asked = asyncio.Event()
    loop.add_reader(conn.fileno(), asked.set)  # a message, or the parent closed its end
    try:
        await asked.wait()
    finally:
        loop.remove_reader(conn.fileno())
    try:
        conn.recv()
        conn.send(dict(report(mock)) if report is not None else {})
    except EOFError:  # the parent went away
        pass
    server.cancel()
    await asyncio.gather(server, return_exceptions=True)


class MockProcess:
    """
    A MockEvoLink in a spawned process of its own.

    `target(conn, options)` runs in the child and calls `run_mock`: the mock
    sends its URL and key, answers one message (`ask`) and stops, or stops
    when the pipe closes (`close`).
    """

    def __init__(
        self,
        ctx: SpawnContext,
        target: Callable[[Connection, dict[str, Any]], None],
        options: dict[str, Any],
    ) -> None:
        self._conn, child = ctx.Pipe()
        self._process: BaseProcess = ctx.Process(
            target=target, args=(child, options), name="mock", daemon=True
        )
        self._process.start()
        child.close()
        hello = receive(self._conn, 60.0, "mock start")
        self.url: str = hello["url"]
        self.api_key: str = hello["api_key"]

    def ask(self, message: str, timeout: float) -> Any:
        """Send `message` to the mock process; its answer."""
        self._conn.send(message)
        return receive(self._conn, timeout, f"mock {message}")

    def close(self) -> None:
        """Stop the mock process."""
        self._conn.close()
        self._process.join(10.0)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()
