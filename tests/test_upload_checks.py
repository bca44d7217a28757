"""
`upload_file` checks a path before it reads it, and streams what it sends.

- Anything but a regular file (a directory, a FIFO nobody writes to, a
  character device such as `/dev/zero`, a socket, a symlink to any of them)
  fails at once with a `ValidationError`, without blocking and without
  reading it; so does a path in a request's image field.
- A file over the files API's limit fails before it is read, whatever its
  size (sparse files up to many GiB are generated); bytes over it too.
- A file is streamed from disk as it is sent: a large upload's peak memory in
  the client stays far below the file's size (the mock runs in another
  process, so only the client's memory is measured), the request carries a
  Content-Length, and a retried upload sends the whole file again.
- A file changed after its check is not sent as the changed file.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evolink_async import EvoLinkClient, RetryPolicy, ValidationError
from evolink_async._api.uploads import _LocalFile
from evolink_async._models.images import FILES_API_MAX_BYTES
from evolink_async.testing import Fault, MockEvoLink

pytestmark = pytest.mark.anyio

UPLOAD_ROUTE = "POST /api/v1/files/upload/stream"
MIB = 1024 * 1024
PNG_HEAD = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIHDR" + bytes(17)
posix_only = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and /dev")


def requests_seen(mock: MockEvoLink) -> int:
    return sum(mock.stats.requests.values())


def sparse(path: Path, size: int, head: bytes = PNG_HEAD) -> Path:
    """A `size`-byte image file that takes no disk space beyond its header."""
    with path.open("wb") as stream:
        stream.write(head)
        stream.truncate(size)
    return path


# ------------------------------------------------------- not regular files


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.png"
    os.mkfifo(path)
    return path


def _directory(tmp_path: Path) -> Path:
    path = tmp_path / "folder.png"
    path.mkdir()
    return path


def _socket(tmp_path: Path) -> Path:
    path = tmp_path / "s.png"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
    return path


def _link_to(target: Callable[[Path], Path]) -> Callable[[Path], Path]:
    def make(tmp_path: Path) -> Path:
        link = tmp_path / "link.png"
        link.symlink_to(target(tmp_path))
        return link

    return make


NOT_REGULAR: list[tuple[str, Callable[[Path], Path], str]] = [
    ("fifo", _fifo, "FIFO"),
    ("directory", _directory, "directory"),
    ("dev-zero", lambda _: Path("/dev/zero"), "character device"),
    ("dev-null", lambda _: Path("/dev/null"), "character device"),
    ("dev-urandom", lambda _: Path("/dev/urandom"), "character device"),
    ("socket", _socket, "socket"),
    ("link-to-dev-zero", _link_to(lambda _: Path("/dev/zero")), "character device"),
    ("link-to-fifo", _link_to(_fifo), "FIFO"),
]


@posix_only
@pytest.mark.parametrize(
    ("make", "kind"), [case[1:] for case in NOT_REGULAR], ids=[case[0] for case in NOT_REGULAR]
)
async def test_a_path_that_is_not_a_regular_file_fails_at_once(
    client: EvoLinkClient,
    mock: MockEvoLink,
    tmp_path: Path,
    make: Callable[[Path], Path],
    kind: str,
) -> None:
    path = make(tmp_path)
    with anyio.fail_after(5):
        with pytest.raises(ValidationError, match=f"not a regular file.*{kind}"):
            await client.upload_file(path)
        with pytest.raises(ValidationError, match=f"not a regular file.*{kind}") as info:
            await client.submit("wan2.5-image-to-video", prompt="a cat", image_urls=[path])
    assert {p.field for p in info.value.problems} == {"image_urls[0]"}
    assert requests_seen(mock) == 0


# ---------------------------------------------------------- the size limit


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    size=st.one_of(st.integers(FILES_API_MAX_BYTES + 1, 2**36), st.just(FILES_API_MAX_BYTES + 1))
)
async def test_a_file_over_the_limit_fails_before_it_is_read(
    client: EvoLinkClient, mock: MockEvoLink, tmp_path: Path, size: int
) -> None:
    path = sparse(tmp_path / "huge.png", size)
    with anyio.fail_after(2):  # reading even the smallest of them would take longer
        with pytest.raises(ValidationError) as info:
            await client.upload_file(path)
    assert f"{size} bytes" in str(info.value)
    assert f"up to {FILES_API_MAX_BYTES // MIB} MB" in str(info.value)
    assert requests_seen(mock) == 0


async def test_bytes_over_the_limit_are_refused(client: EvoLinkClient, mock: MockEvoLink) -> None:
    data = PNG_HEAD + bytes(FILES_API_MAX_BYTES + 1 - len(PNG_HEAD))
    with pytest.raises(ValidationError, match=f"{len(data)} bytes"):
        await client.upload_file(data, file_name="big.png")
    assert requests_seen(mock) == 0


async def test_a_file_of_exactly_the_limit_is_streamed_with_its_length(
    client: EvoLinkClient, mock: MockEvoLink, tmp_path: Path
) -> None:
    path = sparse(tmp_path / "edge.png", FILES_API_MAX_BYTES)
    uploaded = await client.upload_file(path)
    assert uploaded.file_size == FILES_API_MAX_BYTES
    [request] = [r for r in mock.requests_log if r.route == UPLOAD_ROUTE]
    assert int(request.headers["Content-Length"]) > FILES_API_MAX_BYTES
    assert "Transfer-Encoding" not in request.headers


# ------------------------------------------------------------- streaming

_MOCK_PROCESS = """
import asyncio
from evolink_async.testing import MockEvoLink

async def main():
    async with MockEvoLink() as mock:
        print(mock.url, mock.api_key, flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.fixture
def mock_process() -> Iterator[tuple[str, str]]:
    """A MockEvoLink in a child process: (url, key). Its memory is not ours."""
    process = subprocess.Popen(
        [sys.executable, "-c", _MOCK_PROCESS], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        url, key = process.stdout.readline().split()
        yield url, key
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


async def test_a_large_file_is_streamed_not_held_in_memory(
    tmp_path: Path, mock_process: tuple[str, str]
) -> None:
    size = 24 * MIB
    path = tmp_path / "big.png"
    with path.open("wb") as stream:
        stream.write(PNG_HEAD)
        for index in range(size // MIB):
            stream.write(bytes([index]) * (MIB - (len(PNG_HEAD) if index == 0 else 0)))
    url, key = mock_process
    async with EvoLinkClient(key, base_url=url, files_base_url=url, timeout=60) as client:
        await client.get_credits()  # the session and its connection, made before measuring
        tracemalloc.start()
        try:
            uploaded = await client.upload_file(path)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert uploaded.file_size == size
        async with aiohttp.ClientSession() as session, session.get(uploaded.file_url) as got:
            stored = await got.read()
    assert hashlib.sha256(stored).digest() == hashlib.sha256(path.read_bytes()).digest()
    assert peak < 4 * MIB, f"peak {peak} bytes while uploading {size}"


@pytest.mark.parametrize("fault", [Fault.SERVER_ERROR, Fault.DROP_BEFORE, Fault.RATE_LIMIT])
async def test_a_retried_upload_sends_the_whole_file_again(
    mock: MockEvoLink, tmp_path: Path, fault: Fault
) -> None:
    path = tmp_path / "frame.png"
    path.write_bytes(PNG_HEAD + os.urandom(3 * MIB))
    mock.inject(fault, route=UPLOAD_ROUTE, times=2)
    retry = RetryPolicy(max_retries=3, initial_backoff=0.001, max_backoff=0.01)
    async with EvoLinkClient(
        mock.api_key, base_url=mock.url, files_base_url=mock.url, retry=retry
    ) as client:
        uploaded = await client.upload_file(path)
    assert mock.stats.requests[UPLOAD_ROUTE] == 3
    assert mock.stats.uploads == 1
    async with aiohttp.ClientSession() as session, session.get(uploaded.file_url) as got:
        assert await got.read() == path.read_bytes()


def test_a_file_changed_after_its_check_is_not_sent(tmp_path: Path) -> None:
    path = tmp_path / "frame.png"
    path.write_bytes(PNG_HEAD + bytes(100))
    checked = _LocalFile.check(path)
    checked.part()  # unchanged: fine
    with path.open("ab") as stream:
        stream.write(b"more")
    with pytest.raises(ValidationError, match="changed"):
        checked.part()
    with pytest.raises(OSError, match="changed"):
        checked.open()
