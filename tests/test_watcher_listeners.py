"""
The watcher's listeners on one watched task, against the mock over HTTP:
several listeners, one leaving while the others are told, and the entry's
planned interval as the polls the mock saw space it.
"""

from __future__ import annotations

import asyncio

import pytest

from evolink_async import EvoLinkClient, Wan25ImageToVideo
from evolink_async._watch.entry import Listener, WatchEntry
from evolink_async.testing import MockEvoLink

pytestmark = pytest.mark.anyio


def _listeners(entry: WatchEntry) -> tuple[Listener, ...]:
    # Read through a call: the entry changes under the awaits between reads.
    return entry.listeners


def _last_poll(entry: WatchEntry) -> float | None:
    return entry.last_poll


def _job() -> Wan25ImageToVideo:
    return Wan25ImageToVideo(prompt="listeners", image_urls=["https://x.io/a.png"])


async def test_a_listener_that_leaves_while_told_does_not_stop_the_others(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    task = await client.submit(_job())
    watcher = client._watcher
    told: list[str] = []
    finished = asyncio.Event()

    def first(entry: WatchEntry) -> None:
        told.append("first")
        watcher.unwatch(entry, first)  # leaves at the first change it hears

    def second(entry: WatchEntry) -> None:
        told.append("second")
        if entry.done:
            finished.set()

    entry = watcher.watch(task.id, initial=task, started_at=None, listener=first)
    assert watcher.watch(task.id, initial=task, started_at=None, listener=second) is entry
    assert _listeners(entry) == (first, second)
    async with asyncio.timeout(10):
        await finished.wait()
    # The first was told once and left; the second heard every change, the end too.
    assert told.count("first") == 1
    assert told.count("second") >= 2
    assert _listeners(entry) == (second,)
    assert entry.outcome().id == task.id
    assert len(mock.stats.polls[task.id]) >= 1
    # Leaving twice, or a listener that never watched, changes nothing.
    watcher.unwatch(entry, first)
    assert _listeners(entry) == (second,)
    watcher.unwatch(entry, second)
    assert _listeners(entry) == ()
    assert watcher.watched == 0


async def test_the_planned_interval_runs_from_the_last_poll(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    task = await client.submit(_job())
    watcher = client._watcher
    entry = watcher.watch(task.id, initial=task, started_at=None, listener=lambda _: None)
    # Before any poll it runs from the task's start.
    assert _last_poll(entry) is None
    assert entry.interval == pytest.approx(entry.due - entry.state.started_at)
    while not mock.stats.polls.get(task.id) or entry.polling or _last_poll(entry) is None:
        await asyncio.sleep(0.001)
    last_poll = _last_poll(entry)
    if not entry.done:
        assert last_poll is not None
        assert entry.interval == pytest.approx(max(0.0, entry.due - last_poll))
        assert entry.interval > 0
    watcher.unwatch(entry, entry.listeners[0])
    assert watcher.watched == 0
