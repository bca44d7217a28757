"""client.download: atomic files, overwrite rules, retries, Range resume, no partial files."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from evolink_async import (
    APIConnectionError,
    EvoLinkClient,
    RawRequest,
    ServerError,
    Task,
    ValidationError,
)
from evolink_async.testing import Fault, MockEvoLink

from .conftest import make_client

pytestmark = pytest.mark.anyio

VIDEO = "GET /files/videos/{name}"


async def finished_task(client: EvoLinkClient) -> Task:
    request = RawRequest(
        "wan2.5-image-to-video", {"prompt": "A cat", "image_urls": ["https://example.com/c.png"]}
    )
    return await client.generate(request)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def test_download_into_a_directory(
    client: EvoLinkClient, mock: MockEvoLink, tmp_path: Path
) -> None:
    task = await finished_task(client)
    path = await client.download(task, tmp_path)
    assert path == tmp_path / f"{task.id}.mp4"
    assert path.read_bytes() == mock.video_bytes(task.id)
    assert leftovers(tmp_path) == [path.name]


async def test_trailing_slash_creates_the_directory(
    client: EvoLinkClient, mock: MockEvoLink, tmp_path: Path
) -> None:
    task = await finished_task(client)
    path = await client.download(task, f"{tmp_path}/new/videos/")
    assert path.parent == tmp_path / "new" / "videos"
    assert path.read_bytes() == mock.video_bytes(task.id)


async def test_existing_file_is_kept_unless_overwrite(
    client: EvoLinkClient, mock: MockEvoLink, tmp_path: Path
) -> None:
    task = await finished_task(client)
    dest = tmp_path / "clip.mp4"
    dest.write_bytes(b"mine")
    with pytest.raises(FileExistsError):
        await client.download(task, dest)
    assert dest.read_bytes() == b"mine"
    assert mock.stats.requests[VIDEO] == 0
    await client.download(task, dest, overwrite=True)
    assert dest.read_bytes() == mock.video_bytes(task.id)
    assert leftovers(tmp_path) == ["clip.mp4"]


async def test_transient_failures_are_retried(
    client: EvoLinkClient, mock: MockEvoLink, tmp_path: Path
) -> None:
    task = await finished_task(client)
    mock.inject(Fault.SERVER_ERROR, route=VIDEO, status=503, times=2)
    path = await client.download(task, tmp_path)
    assert path.read_bytes() == mock.video_bytes(task.id)
    assert mock.stats.requests[VIDEO] == 3


async def test_a_transfer_cut_short_resumes_with_range(
    client: EvoLinkClient, mock: MockEvoLink, tmp_path: Path
) -> None:
    task = await finished_task(client)
    mock.inject(Fault.DROP_AFTER, route=VIDEO)
    path = await client.download(task, tmp_path)
    assert path.read_bytes() == mock.video_bytes(task.id)
    reads = [r for r in mock.requests_log if r.route == VIDEO]
    assert len(reads) == 2
    assert "Range" not in reads[0].headers
    assert reads[1].headers["Range"].startswith("bytes=")
    assert int(reads[1].headers["Range"][6:].rstrip("-")) > 0


async def test_no_partial_file_when_retries_run_out(mock: MockEvoLink, tmp_path: Path) -> None:
    async with make_client(mock, max_retries=2) as client:
        task = await finished_task(client)
        mock.inject(Fault.DROP_AFTER, route=VIDEO, times=10)
        with pytest.raises(APIConnectionError):
            await client.download(task, tmp_path / "clip.mp4")
        mock.clear_injections()
        mock.inject(Fault.SERVER_ERROR, route=VIDEO, status=500, times=10)
        with pytest.raises(ServerError):
            await client.download(task, tmp_path / "clip.mp4")
    assert leftovers(tmp_path) == []


async def test_task_without_a_video_is_refused(client: EvoLinkClient, mock: MockEvoLink) -> None:
    task = await client.submit(
        RawRequest("wan2.5-image-to-video", {"prompt": "A", "image_urls": ["https://x.io/a.png"]})
    )
    with pytest.raises(ValidationError, match="no video"):
        await client.download(task, ".")
    assert mock.stats.requests[VIDEO] == 0


async def test_the_api_key_is_not_sent_to_the_result_host(
    client: EvoLinkClient, mock: MockEvoLink, tmp_path: Path
) -> None:
    task = await finished_task(client)
    await client.download(task, tmp_path)
    read = next(r for r in mock.requests_log if r.route == VIDEO)
    assert "Authorization" not in read.headers
    api = [r for r in mock.requests_log if r.route != VIDEO]
    assert api
    assert all(r.headers["Authorization"] == f"Bearer {mock.api_key}" for r in api)


async def test_the_key_stays_off_downloads_through_a_callers_session(
    mock: MockEvoLink, tmp_path: Path
) -> None:
    async with aiohttp.ClientSession() as session:
        async with make_client(mock, session=session) as client:
            task = await finished_task(client)
            await client.download(task, tmp_path)
        assert "Authorization" not in session.headers
    read = next(r for r in mock.requests_log if r.route == VIDEO)
    assert "Authorization" not in read.headers
    assert next(r for r in mock.requests_log if r.route != VIDEO).headers["Authorization"]


async def test_closing_the_client_closes_its_download_session(
    mock: MockEvoLink, tmp_path: Path
) -> None:
    client = make_client(mock)
    async with client:
        task = await finished_task(client)
        await client.download(task, tmp_path)
        sessions = client._transport._own_sessions()
        assert len(sessions) == 2
    assert all(session.closed for session in sessions)
    assert not client._transport.has_open_session
