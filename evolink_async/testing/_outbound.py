"""
The mock's own outbound HTTP: one client session, and the callbacks it
POSTs when tasks end.

The mock never reaches the internet. Uploads by URL fetch only loopback URLs
(the caller checks with `is_loopback_host`); a callback goes to
`callback_target` when that is set (the test chose it), otherwise to the
task's own `callback_url` only when that is a loopback address.

One background task sleeps until the next task with a callback ends, then
starts its delivery: a POST with a 10 s timeout, retried after 1, 2 and
4 s, all scaled by `time_scale`.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import ipaddress
import itertools
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp

from ._replies import dumps
from ._state import CallbackDelivery, MockState, MockTask

__all__ = ["CALLBACK_RETRY_DELAYS", "CALLBACK_TIMEOUT", "Callbacks", "Outbound", "is_loopback_host"]

#: Callbacks (and fetches of loopback URLs): 10 s timeout, retries after 1, 2
#: and 4 s (all scaled).
CALLBACK_TIMEOUT: Final = 10.0
CALLBACK_RETRY_DELAYS: Final = (1.0, 2.0, 4.0)
_LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback_host(host: str | None) -> bool:
    """True when `host` (a name or an IP address) is this machine."""
    if not host:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Outbound:
    """The mock's one client session, opened on first use and closed with the mock."""

    def __init__(self, state: MockState) -> None:
        self._state = state
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        """The session; a mock that never calls out never opens one."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    def timeout(self) -> aiohttp.ClientTimeout:
        """The total timeout of one outbound request (10 s, scaled)."""
        return aiohttp.ClientTimeout(total=CALLBACK_TIMEOUT * self._state.time_scale)

    async def fetch(self, url: str) -> bytes | None:
        """The body behind `url` when it answers 200, else None (errors and timeouts too)."""
        try:
            async with self.session().get(url, timeout=self.timeout()) as response:
                if response.status != 200:
                    return None
                return await response.read()
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def close(self) -> None:
        """Close the session, if one was opened."""
        if self._session is not None:
            await self._session.close()


class Callbacks:
    """
    Sends each task's JSON to its callback destination once the task ends.

    Args:
        state: the shared state (clock, `callback_target`, counters).
        outbound: the session the POSTs go through.
        render: a task's JSON at a loop time, as `GET /v1/tasks/{id}` would
            answer it.
    """

    def __init__(
        self,
        state: MockState,
        outbound: Outbound,
        render: Callable[[MockTask, float], dict[str, Any]],
    ) -> None:
        self._state = state
        self._outbound = outbound
        self._render = render
        self._heap: list[tuple[float, int, MockTask]] = []
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        self._scheduler: asyncio.Task[None] | None = None
        self._deliveries: set[asyncio.Task[None]] = set()

    def schedule(self, task: MockTask) -> None:
        """Send `task`'s callback when it ends (starts the scheduler on first use)."""
        heapq.heappush(self._heap, (task.finishes_at, next(self._seq), task))
        if self._scheduler is None:
            self._scheduler = asyncio.create_task(self._run())
        elif task is self._heap[0][2]:
            self._wakeup.set()

    async def close(self) -> None:
        """Stop the scheduler and every delivery under way."""
        pending = list(self._deliveries)
        if self._scheduler is not None:
            pending.append(self._scheduler)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def _run(self) -> None:
        """The one background task: sleeps until the next task ends, sends its callback."""
        heap = self._heap
        wakeup = self._wakeup
        while True:
            if not heap:
                await wakeup.wait()
                wakeup.clear()
                continue
            delay = heap[0][0] - self._state.clock()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await wakeup.wait()
                wakeup.clear()
                continue
            _, _, task = heapq.heappop(heap)
            delivery = asyncio.create_task(self._deliver(task))
            self._deliveries.add(delivery)
            delivery.add_done_callback(self._deliveries.discard)

    def _destination(self, task: MockTask) -> str | None:
        """Where `task`'s callback goes, or None when it goes nowhere."""
        if self._state.callback_target is not None:
            return self._state.callback_target
        url = task.callback_url
        if url is None:
            return None
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError:
            return None
        if parts.scheme in ("http", "https") and is_loopback_host(host):
            return url
        return None

    async def _deliver(self, task: MockTask) -> None:
        """POST `task`'s callback, with retries, and record how it went."""
        url = self._destination(task)
        if url is None:
            return
        state = self._state
        # Never earlier than the end, whatever the timer's rounding did.
        now = max(state.clock(), task.finishes_at)
        body = self._render(task, now)
        payload = dumps(body)
        timeout = self._outbound.timeout()
        headers = {"Content-Type": "application/json", "User-Agent": "EvoLink-Mock-Callback"}
        http_status: int | None = None
        attempts = 0
        ok = False
        for delay in (0.0, *CALLBACK_RETRY_DELAYS):
            if delay:
                await asyncio.sleep(delay * state.time_scale)
            attempts += 1
            state.stats.callback_attempts += 1
            try:
                async with self._outbound.session().post(
                    url, data=payload, headers=headers, timeout=timeout
                ) as response:
                    http_status = response.status
                    await response.read()
            except (aiohttp.ClientError, TimeoutError):
                continue
            if 200 <= http_status < 300:
                ok = True
                break
        delivery = CallbackDelivery(
            task_id=task.id,
            url=url,
            task_status=body["status"],
            http_status=http_status,
            attempts=attempts,
            ok=ok,
            time=state.clock(),
        )
        stats = state.stats
        (stats.callbacks_delivered if ok else stats.callbacks_failed).append(delivery)
