"""The batch runner against MockEvoLink: order, laziness, backpressure, journal, downloads."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from evolink_async import (
    APIConnectionError,
    InsufficientCreditsError,
    Job,
    JobOutcome,
    RawRequest,
    TaskCancelledError,
    TaskFailedError,
    TaskStatus,
    ValidationError,
    Wan25ImageToVideo,
)
from evolink_async._batch.journal import Journal, JournalError
from evolink_async._batch.limiter import START_CREATE_RATE
from evolink_async._batch.store import open_journal
from evolink_async.testing import Fault, MockEvoLink

from .conftest import FAST_POLL, TIME_SCALE, JournalTarget, make_client
from .test_uploads import png

pytestmark = pytest.mark.anyio

CREATE = "POST /v1/videos/generations"


def wan(job_id: str, prompt: str = "A cat playing piano") -> dict[str, Any]:
    return {
        "id": job_id,
        "model": "wan2.5-image-to-video",
        "prompt": prompt,
        "image_urls": ["https://example.com/cat.png"],
    }


def creates_by_key(mock: MockEvoLink) -> dict[str, int]:
    return dict(mock.stats.creates_per_key)


async def test_results_in_input_order_and_one_failure_stops_nothing(mock: MockEvoLink) -> None:
    jobs: list[dict[str, Any]] = [wan(f"job-{n:02d}") for n in range(12)]
    jobs[3] = wan("job-03", "mock:fail=content_policy_violation")
    jobs[5] = wan("job-05", "mock:cancel")
    jobs[7] = {**wan("job-07"), "duration": 7}  # wan2.5 takes only 5 or 10
    jobs[9] = {"id": "job-09", "model": "no-such-model", "prompt": "x"}
    async with make_client(mock) as client:
        run = client.batch(jobs, concurrency=4)
        outcomes = await run.results()

    assert [o.job.id for o in outcomes] == [f"job-{n:02d}" for n in range(12)]
    assert isinstance(outcomes[3].error, TaskFailedError)
    assert outcomes[3].error.code == "content_policy_violation"
    assert isinstance(outcomes[5].error, TaskCancelledError)
    assert isinstance(outcomes[7].error, ValidationError)
    assert "duration" in str(outcomes[7].error)
    assert isinstance(outcomes[9].error, ValidationError)
    assert outcomes[7].task is None and outcomes[9].task is None
    ok = [o for o in outcomes if o.ok]
    assert len(ok) == 8
    assert all(o.task is not None and o.task.status is TaskStatus.COMPLETED for o in ok)
    # The server saw one create per valid job, none for the invalid ones.
    assert mock.stats.tasks_created == 10
    stats = run.stats
    assert (stats.submitted, stats.completed, stats.failed, stats.cancelled, stats.errors) == (
        10,
        8,
        1,
        1,
        2,
    )
    assert stats.pending == 0
    assert stats.credits_reserved > 0 and stats.credits_used > 0
    assert stats.elapsed > 0 and stats.throughput > 0


async def test_async_for_yields_in_completion_order(mock: MockEvoLink) -> None:
    jobs = [
        Job(Wan25ImageToVideo(prompt=f"p{n}", image_urls=["https://x.io/a.png"])) for n in range(8)
    ]
    async with make_client(mock) as client:
        seen = [outcome async for outcome in client.batch(jobs, concurrency=8)]
    assert len(seen) == 8
    finishes = [mock.tasks[o.task.id].finishes_at for o in seen if o.task is not None]
    # Detection follows polling, so tasks finishing close together may come
    # out either way; any two further apart than one poll ceiling keep order.
    slack = FAST_POLL.max_interval + 0.05
    for n, earlier in enumerate(finishes):
        assert all(later > earlier - slack for later in finishes[n + 1 :])
    # Ids derived from content are stable and distinct.
    assert len({o.job.id for o in seen}) == 8
    assert all((o.job.id or "").startswith("job-") for o in seen)


async def test_jobs_are_read_lazily(mock: MockEvoLink) -> None:
    read = 0

    def jobs() -> Iterator[dict[str, Any]]:
        nonlocal read
        for n in range(100):
            read += 1
            yield wan(f"lazy-{n}")

    async with make_client(mock) as client:
        run = client.batch(jobs(), concurrency=2, max_active=4)
        first = await run.__anext__()
        assert first.ok
        # Room for 4 active tasks and 2 creates: nowhere near 100 jobs read.
        assert read <= 8
        await run.aclose()
    assert mock.stats.tasks_created <= 8


async def test_async_iterable_jobs(mock: MockEvoLink) -> None:
    async def jobs() -> AsyncIterator[dict[str, Any]]:
        for n in range(5):
            await asyncio.sleep(0)
            yield wan(f"async-{n}")

    async with make_client(mock) as client:
        outcomes = await client.batch(jobs()).results()
    assert [o.job.id for o in outcomes] == [f"async-{n}" for n in range(5)]
    assert all(o.ok for o in outcomes)


async def test_429_on_creates_lowers_the_create_rate(mock: MockEvoLink) -> None:
    mock.inject(Fault.RATE_LIMIT, route=CREATE, times=6, retry_after=0.02)
    async with make_client(mock) as client:
        run = client.batch([wan(f"rl-{n}") for n in range(40)], concurrency=8)
        outcomes = await run.results()
    assert all(o.ok for o in outcomes)
    assert mock.stats.tasks_created == 40
    assert mock.stats.faults_injected["rate_limit"] == 6
    # Creates are paced: the 429s lowered the rate (not the creates in flight).
    control = run._pacer.control
    # (Creates that met a 429: a create retried into a second one counts once.)
    assert 1 <= control.rate_limited_count <= 6
    assert control.cuts >= 1
    assert control.rate < START_CREATE_RATE
    assert run._limiter.limit == 8


async def test_402_stops_new_creates_and_watches_created_tasks() -> None:
    # Each wan2.5 create reserves 5 credits: room for 4 tasks.
    async with (
        MockEvoLink(time_scale=TIME_SCALE, credits=20.0) as mock,
        make_client(mock) as client,
    ):
        run = client.batch([wan(f"c-{n}") for n in range(10)], concurrency=1)
        outcomes = await run.results()
    created = [o for o in outcomes if o.task is not None]
    assert len(created) == 4
    assert all(o.ok for o in created)
    assert mock.stats.tasks_created == 4
    refused = [o for o in outcomes if isinstance(o.error, InsufficientCreditsError)]
    assert len(refused) == 1
    assert run.stats.stopped_reason is not None and "credits" in run.stats.stopped_reason
    # Reading stopped: the later jobs were never read, let alone sent.
    assert len(outcomes) == 5
    assert mock.stats.requests[CREATE] == 5


async def test_journal_resume_reattaches_and_never_duplicates(
    mock: MockEvoLink, journal_target: JournalTarget
) -> None:
    journal = journal_target.batch_options()
    jobs = [wan(f"r-{n}") for n in range(10)]
    async with make_client(mock) as client:
        run = client.batch(jobs, concurrency=10, **journal)
        first: list[JobOutcome] = []
        async for outcome in run:
            first.append(outcome)
            if len(first) == 3:
                run.stop("test")
        assert mock.stats.tasks_created == 10
        again = await client.batch(jobs, concurrency=10, **journal).results()
    assert mock.stats.tasks_created == 10
    assert all(count == 1 for count in creates_by_key(mock).values())
    assert [o.job.id for o in again] == [f"r-{n}" for n in range(10)]
    assert all(o.ok for o in again)
    resumed = {o.job.id for o in again if o.resumed}
    assert resumed == {o.job.id for o in first}
    by_job = {o.job.id: o.task.id for o in again if o.task}
    assert len(set(by_job.values())) == 10


async def test_journal_key_only_entry_resends_with_the_same_key(
    mock: MockEvoLink, journal_target: JournalTarget
) -> None:
    """A crash after the key was journalled, before (or after) the create was sent."""
    job = wan("k-1")
    async with make_client(mock) as client:
        # What the run does up to the create, then "crash": key journalled.
        from evolink_async._batch.jobs import fingerprint as job_fingerprint
        from evolink_async._batch.jobs import read_job
        from evolink_async._models import request_body

        fingerprint = job_fingerprint(request_body(read_job(job).request))
        journal, _, _ = await open_journal(
            journal_target.journal, run_id=journal_target.run_id, lease=60.0
        )
        key = "crash-key-0000000000001"
        await journal.begin("k-1", key, fingerprint)
        await journal.close()
        # The create went out before the crash: the server has the task.
        await client.submit(read_job(job).request, idempotency_key=key)
        outcomes = await client.batch([job], **journal_target.batch_options()).results()
    assert outcomes[0].ok
    assert mock.stats.tasks_created == 1
    assert mock.stats.creates_per_key == {key: 1}
    assert mock.stats.replays == 1


async def test_changed_job_under_a_journalled_id_is_refused(
    mock: MockEvoLink, journal_target: JournalTarget
) -> None:
    journal = journal_target.batch_options()
    async with make_client(mock) as client:
        await client.batch([wan("same")], **journal).results()
        outcomes = await client.batch([wan("same", "another prompt")], **journal).results()
    assert isinstance(outcomes[0].error, ValidationError)
    assert "differs" in str(outcomes[0].error)
    assert mock.stats.tasks_created == 1


async def test_duplicate_job_ids_are_refused(mock: MockEvoLink) -> None:
    async with make_client(mock) as client:
        outcomes = await client.batch([wan("dup"), wan("other"), wan("dup")]).results()
    assert outcomes[0].ok and outcomes[1].ok
    assert isinstance(outcomes[2].error, ValidationError)
    assert "twice" in str(outcomes[2].error)
    assert mock.stats.tasks_created == 2


async def test_journal_holds_no_api_key(mock: MockEvoLink, tmp_path: Path) -> None:
    journal = tmp_path / "secret-free.journal"
    async with make_client(mock) as client:
        await client.batch([wan(f"s-{n}") for n in range(3)], journal=journal).results()
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert mock.api_key.encode() not in data
    db = sqlite3.connect(journal)
    rows = db.execute("SELECT job_id, task_id FROM jobs").fetchall()
    db.close()  # Python 3.13 warns of a connection left to the garbage collector
    assert len(rows) == 3 and all(task_id for _, task_id in rows)


async def test_downloads_land_inside_the_directory(mock: MockEvoLink, tmp_path: Path) -> None:
    out = tmp_path / "videos"
    hostile = ["../../escape", "/etc/passwd", "a/b/c", "..", "ok-name", "spaces and ✓"]
    jobs = [wan(name) for name in hostile]
    async with make_client(mock) as client:
        outcomes = await client.batch(jobs, download_dir=out).results()
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    paths = [o.path for o in outcomes]
    assert all(p is not None and p.parent == out for p in paths)
    assert len({p.name for p in paths if p}) == len(hostile)
    for outcome in outcomes:
        assert outcome.task is not None and outcome.path is not None
        assert outcome.path.read_bytes() == mock.video_bytes(outcome.task.id)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        p.name for p in paths if p
    )
    assert (out / "ok-name.mp4").exists()


async def test_expired_result_url_is_refreshed_before_download(tmp_path: Path) -> None:
    # Result links live 50 ms (the TTL is scaled like every mock duration).
    async with (
        MockEvoLink(time_scale=TIME_SCALE, result_ttl=0.05 / TIME_SCALE) as mock,
        make_client(mock) as client,
    ):
        params = {"prompt": "A cat", "image_urls": ["https://example.com/cat.png"]}
        task = await client.generate(RawRequest("wan2.5-image-to-video", params))
        await asyncio.sleep(0.08)
        path = await client.download(task, tmp_path)
    assert path.read_bytes() == mock.video_bytes(task.id)
    assert mock.stats.expired_downloads >= 1


async def test_resume_downloads_missing_files_only(
    mock: MockEvoLink, tmp_path: Path, journal_target: JournalTarget
) -> None:
    journal, out = journal_target.batch_options(), tmp_path / "out"
    jobs = [wan(f"d-{n}") for n in range(3)]
    async with make_client(mock) as client:
        first = await client.batch(jobs, download_dir=out, **journal).results()
        assert all(o.path is not None for o in first)
        (out / "d-1.mp4").unlink()
        downloads_before = sum(mock.stats.downloads.values())
        again = await client.batch(jobs, download_dir=out, **journal).results()
    assert all(o.ok and o.resumed for o in again)
    assert (out / "d-1.mp4").exists()
    assert sum(mock.stats.downloads.values()) == downloads_before + 1
    assert mock.stats.tasks_created == 3


async def test_cancelling_the_consumer_cancels_the_run(mock: MockEvoLink) -> None:
    async with make_client(mock) as client:

        async def consume() -> None:
            async for _ in client.batch([wan(f"x-{n}") for n in range(50)], concurrency=4):
                pass

        consumer = asyncio.create_task(consume())
        while mock.stats.tasks_created < 4:
            await asyncio.sleep(0.002)
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        await asyncio.sleep(0.01)
        created = mock.stats.tasks_created
        await asyncio.sleep(0.1)
        assert mock.stats.tasks_created == created
        assert client._watcher.watched == 0
        names = {t.get_name() for t in asyncio.all_tasks()}
        assert "evolink-async batch" not in names


async def test_results_after_iterating_is_an_error(mock: MockEvoLink) -> None:
    async with make_client(mock) as client:
        run = client.batch([wan("only")])
        async for _ in run:
            pass
        with pytest.raises(RuntimeError, match="iterated"):
            await run.results()


def test_bad_batch_options() -> None:
    from evolink_async import EvoLinkClient

    client = EvoLinkClient("k")
    with pytest.raises(ValidationError, match="concurrency"):
        client.batch([], concurrency=0)
    with pytest.raises(ValidationError, match="max_active"):
        client.batch([], max_active=0)


async def test_unusable_journal_fails_the_run_instead_of_hanging(
    mock: MockEvoLink, tmp_path: Path
) -> None:
    not_a_journal = tmp_path / "notes.txt"
    not_a_journal.write_text("these are my notes, not a journal\n" * 100)
    async with make_client(mock) as client:
        with pytest.raises(JournalError, match="not an evolink-async journal"):
            await asyncio.wait_for(client.batch([wan("a")], journal=not_a_journal).results(), 10)
    assert mock.stats.tasks_created == 0
    assert not_a_journal.read_text().startswith("these are my notes")


async def test_closing_the_client_mid_run_keeps_tasks_resumable(
    mock: MockEvoLink, tmp_path: Path
) -> None:
    journal = tmp_path / "j"
    jobs = [wan(f"cl-{n}") for n in range(6)]
    client = make_client(mock)
    run = client.batch(jobs, concurrency=6, journal=journal)
    consumer = asyncio.create_task(run.results())
    while mock.stats.tasks_created < 6:
        await asyncio.sleep(0.002)
    await client.aclose()
    first = await consumer
    assert len(first) == 6
    assert not any(o.ok for o in first)
    async with make_client(mock) as again:
        second = await again.batch(jobs, journal=journal).results()
    assert all(o.ok for o in second)
    assert not any(o.resumed for o in second)
    assert mock.stats.tasks_created == 6


async def test_a_local_file_job_resumes_with_the_urls_it_was_uploaded_to(
    mock: MockEvoLink, tmp_path: Path
) -> None:
    """Resuming re-sends the create with the first upload's URL, never a new one."""
    image = tmp_path / "frame.png"
    image.write_bytes(png())
    job = {"id": "local-1", "model": "wan2.5-image-to-video", "prompt": "A", "image_urls": [image]}
    journal_path = tmp_path / "local.journal"
    # Run 1: the task is created, but every reply to the create is lost.
    mock.inject(Fault.DROP_AFTER, route=CREATE, times=10)
    async with make_client(mock, max_retries=1) as client:
        first = await client.batch([job], journal=journal_path).results()
    assert isinstance(first[0].error, APIConnectionError)
    assert mock.stats.tasks_created == 1
    assert mock.stats.uploads == 1
    journal = Journal(journal_path)
    await journal.open()
    entry = await journal.get("local-1")
    await journal.close()
    assert entry is not None and entry.task_id is None
    assert entry.uploads is not None and list(entry.uploads) == [str(image)]
    # Run 2: the same key and the same body, so the server replays the create.
    mock.clear_injections()
    async with make_client(mock) as client:
        second = await client.batch([job], journal=journal_path).results()
    assert second[0].ok, second[0].error
    assert mock.stats.tasks_created == 1
    assert mock.stats.uploads == 1
    assert mock.stats.idempotency_conflicts == 0
    assert set(mock.stats.creates_per_key) == {entry.idempotency_key}
    sent = [r.json for r in mock.requests_log if r.route == CREATE]
    assert sent and all(body == sent[0] for body in sent)
    assert sent[0]["image_urls"] == [entry.uploads[str(image)]]
