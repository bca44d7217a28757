"""Derived Idempotency-Keys: one key per (run, job, request), whoever sends it."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from evolink_async import JournalError, ValidationError
from evolink_async._api.endpoints import check_idempotency_key
from evolink_async._batch.keys import check_run_id, derive_key, new_run_id
from evolink_async.testing import MockEvoLink

from .conftest import make_client

pytestmark = pytest.mark.anyio


def wan(job_id: str, prompt: str = "A cat playing piano") -> dict[str, Any]:
    return {
        "id": job_id,
        "model": "wan2.5-image-to-video",
        "prompt": prompt,
        "image_urls": ["https://example.com/cat.png"],
    }


def test_a_derived_key_is_stable_valid_and_changes_with_each_input() -> None:
    key = derive_key("spring", "job-1", "f" * 64)
    assert key == derive_key("spring", "job-1", "f" * 64)
    assert check_idempotency_key(key) == key
    others = {
        derive_key("autumn", "job-1", "f" * 64),
        derive_key("spring", "job-2", "f" * 64),
        derive_key("spring", "job-1", "e" * 64),
        # The parts are kept apart: moving a character across a boundary differs.
        derive_key("sprin", "gjob-1", "f" * 64),
    }
    assert key not in others
    assert len(others) == 4


def test_run_ids_are_checked_and_fresh_ones_differ() -> None:
    assert new_run_id() != new_run_id()
    assert check_run_id(new_run_id())
    for bad in ["", " x", "a\nb", "x" * 201, 7, None]:
        with pytest.raises(ValidationError, match="run_id"):
            check_run_id(bad)


async def test_the_same_run_sends_the_same_keys_and_a_new_run_new_ones(
    mock: MockEvoLink,
) -> None:
    jobs = [wan(f"k-{n}") for n in range(4)]
    async with make_client(mock) as client:
        first = await client.batch(jobs, run_id="spring").results()
        keys = set(mock.stats.creates_per_key)
        # Without a journal the same run id re-sends the same keys: replays.
        again = await client.batch(jobs, run_id="spring").results()
        assert set(mock.stats.creates_per_key) == keys
        assert mock.stats.tasks_created == 4
        assert mock.stats.replays == 4
        assert {o.task.id for o in again if o.task} == {o.task.id for o in first if o.task}
        # A new run id: fresh tasks on purpose.
        await client.batch(jobs, run_id="autumn").results()
    assert mock.stats.tasks_created == 8
    assert len(mock.stats.creates_per_key) == 8
    assert set(mock.stats.creates_per_key.values()) == {1}
    assert keys == {derive_key("spring", f"k-{n}", _print(wan(f"k-{n}"))) for n in range(4)}


async def test_runs_without_a_journal_get_a_fresh_run_id_each(mock: MockEvoLink) -> None:
    jobs = [wan("only")]
    async with make_client(mock) as client:
        one = client.batch(jobs)
        await one.results()
        two = client.batch(jobs)
        await two.results()
    assert one.run_id != two.run_id
    assert mock.stats.tasks_created == 2


async def test_an_sqlite_journal_keeps_its_run_id_for_the_resume(
    mock: MockEvoLink, tmp_path: Path
) -> None:
    journal = tmp_path / "run.journal"
    async with make_client(mock) as client:
        run = client.batch([wan("a")], journal=journal)
        await run.results()
        db = sqlite3.connect(journal)
        stored = db.execute("SELECT value FROM meta WHERE key = 'run_id'").fetchone()
        db.close()  # Python 3.13 warns of a connection left to the garbage collector
        assert stored == (run.run_id,)
        resumed = client.batch([wan("a"), wan("b")], journal=journal)
        await resumed.results()
        assert resumed.run_id == run.run_id
        # Another run id on this journal is refused before anything is sent.
        with pytest.raises(JournalError, match="run"):
            await client.batch([wan("c")], journal=journal, run_id="other").results()
    assert run.run_id is not None
    assert set(mock.stats.creates_per_key) == {
        derive_key(run.run_id, job_id, _print(wan(job_id))) for job_id in "ab"
    }


async def test_a_changed_request_under_the_same_id_gets_a_new_key_and_is_refused(
    mock: MockEvoLink, tmp_path: Path
) -> None:
    journal = tmp_path / "run.journal"
    async with make_client(mock) as client:
        await client.batch([wan("same")], journal=journal, run_id="r").results()
        outcomes = await client.batch(
            [wan("same", "another prompt")], journal=journal, run_id="r"
        ).results()
    assert derive_key("r", "same", _print(wan("same"))) != derive_key(
        "r", "same", _print(wan("same", "another prompt"))
    )
    assert isinstance(outcomes[0].error, ValidationError)
    assert "differs" in str(outcomes[0].error)
    assert mock.stats.tasks_created == 1


def _print(job: dict[str, Any]) -> str:
    from evolink_async._batch.jobs import fingerprint, read_job
    from evolink_async._models import request_body

    return fingerprint(request_body(read_job(job).request, paths=True))
