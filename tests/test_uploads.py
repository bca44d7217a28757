"""
Local files and the files API, against MockEvoLink over real HTTP.

`upload_file` (path or bytes), a `pathlib.Path` in a request's image fields
(uploaded first, concurrently, then the create carries the returned
`file_url`s), the checks a local file gets before anything is sent, the files
API's HTTP-200 failures, and `get_credits`.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from evolink_async import (
    APIError,
    Credits,
    EvoLinkClient,
    ModelId,
    RawRequest,
    TaskStatus,
    UploadedFile,
    ValidationError,
)
from evolink_async.testing import Fault, MockEvoLink

pytestmark = pytest.mark.anyio

UPLOAD_ROUTE = "POST /api/v1/files/upload/stream"
CREATE_ROUTE = "POST /v1/videos/generations"
MIB = 1024 * 1024

# ------------------------------------------------------------ test images
# Built here, byte by byte: the local checks read the format from the magic
# bytes and the size from the header (PNG IHDR, JPEG SOF0, WebP VP8L), so each
# header says 400x400 px (within every model's 240-8000 px and aspect limits).


def png(width: int = 400, height: int = 400) -> bytes:
    """A complete, decodable 8-bit greyscale PNG (no alpha: wan models refuse it)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload)
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + bytes(width) for _ in range(height))  # filter 0, black
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def jpeg(width: int = 400, height: int = 400) -> bytes:
    """A JPEG's header: SOI, a JFIF APP0 and the SOF0 frame header with the size."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


def webp(width: int = 400, height: int = 400) -> bytes:
    """A lossless WebP's header: RIFF/WEBP, a VP8L chunk with the size."""
    bits = (width - 1) | ((height - 1) << 14)
    frame = b"\x2f" + bits.to_bytes(4, "little") + b"\x00" * 3
    return (
        b"RIFF"
        + struct.pack("<I", 4 + 8 + len(frame))
        + b"WEBPVP8L"
        + struct.pack("<I", len(frame))
        + frame
    )


def bmp(width: int = 400, height: int = 400) -> bytes:
    """A BMP's header: wan2.5 takes BMP by URL, the files API does not."""
    return b"BM" + b"\x00" * 16 + struct.pack("<ii", width, height) + b"\x00" * 8


IMAGES = {
    "png": (png(), "image/png"),
    "jpeg": (jpeg(), "image/jpeg"),
    "webp": (webp(), "image/webp"),
}


async def fetch(url: str) -> tuple[int, str, bytes]:
    """GET `url` (the mock serves uploads without a key): status, type, body."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, response.content_type, await response.read()


def requests_to(mock: MockEvoLink, route: str) -> list[Any]:
    """The JSON bodies of every logged request to `route`, oldest first."""
    return [r.json for r in mock.requests_log if r.route == route]


def total_requests(mock: MockEvoLink) -> int:
    return sum(mock.stats.requests.values())


# ------------------------------------------------------------ upload_file


@pytest.mark.parametrize("as_str", [False, True], ids=["Path", "str"])
async def test_upload_file_from_a_path_is_stored_and_served(
    client: EvoLinkClient, mock: MockEvoLink, tmp_path: Path, as_str: bool
) -> None:
    data = png()
    path = tmp_path / "cat.png"
    path.write_bytes(data)

    uploaded = await client.upload_file(str(path) if as_str else path)

    assert isinstance(uploaded, UploadedFile)
    assert uploaded.file_id.startswith("file_")
    assert uploaded.file_name == "cat.png"
    assert uploaded.file_size == len(data)
    assert uploaded.mime_type == "image/png"
    assert uploaded.file_url.startswith(f"{mock.url}/files/uploads/{uploaded.file_id}/")
    assert uploaded.download_url and uploaded.download_url.startswith(uploaded.file_url)
    assert uploaded.expires_at and uploaded.upload_time
    assert mock.stats.uploads == 1
    assert mock.stats.requests[UPLOAD_ROUTE] == 1
    assert await fetch(uploaded.file_url) == (200, "image/png", data)


@pytest.mark.parametrize("kind", sorted(IMAGES))
async def test_upload_file_from_bytes_uses_the_given_name(
    client: EvoLinkClient, mock: MockEvoLink, kind: str
) -> None:
    data, mime = IMAGES[kind]

    uploaded = await client.upload_file(data, file_name=f"frame.{kind}")

    assert uploaded.file_name == f"frame.{kind}"
    assert uploaded.mime_type == mime
    assert uploaded.file_size == len(data)
    assert uploaded.file_url.endswith(f"/frame.{kind}")
    assert mock.stats.uploads == 1
    assert await fetch(uploaded.file_url) == (200, mime, data)


async def test_non_image_bytes_are_refused_before_sending(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    with pytest.raises(ValidationError, match="not a JPEG, PNG, GIF or WebP"):
        await client.upload_file(b"%PDF-1.7 not an image", file_name="doc.png")
    assert mock.stats.uploads == 0
    assert total_requests(mock) == 0


@pytest.mark.parametrize(
    ("name", "data"),
    [("notes.png", b"hello, I am text\n"), ("frame.bmp", bmp()), ("empty.png", b"")],
)
async def test_non_image_files_are_refused_before_sending(
    client: EvoLinkClient, mock: MockEvoLink, tmp_path: Path, name: str, data: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ValidationError, match="not a JPEG, PNG, GIF or WebP"):
        await client.upload_file(path)
    assert mock.stats.uploads == 0
    assert total_requests(mock) == 0


async def test_missing_file_is_a_validation_error(
    client: EvoLinkClient, mock: MockEvoLink, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError, match="cannot read"):
        await client.upload_file(tmp_path / "nope.png")
    assert total_requests(mock) == 0


async def test_files_api_success_false_with_http_200_raises_api_error(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    mock.inject(
        Fault.REPLY,
        route=UPLOAD_ROUTE,
        status=200,
        body={"success": False, "code": 400, "msg": "File type not allowed"},
    )
    with pytest.raises(APIError, match="File type not allowed") as info:
        await client.upload_file(png(), file_name="cat.png")
    assert info.value.code == 400
    assert info.value.message == "File type not allowed"
    assert mock.stats.requests[UPLOAD_ROUTE] == 1  # a refusal is not retried
    assert mock.stats.uploads == 0


async def test_files_api_failure_stops_the_submit(
    client: EvoLinkClient, mock: MockEvoLink, tmp_path: Path
) -> None:
    path = tmp_path / "cat.png"
    path.write_bytes(png())
    mock.inject(
        Fault.REPLY, route=UPLOAD_ROUTE, status=200, body={"success": False, "msg": "quota"}
    )
    with pytest.raises(APIError, match="quota"):
        await client.submit("happyhorse-1.0-image-to-video", image_urls=[path])
    assert mock.stats.requests[CREATE_ROUTE] == 0


# ---------------------------------------------- Paths in requests


async def test_two_paths_in_image_urls_are_uploaded_concurrently_and_sent_in_order(
    client: EvoLinkClient, mock: MockEvoLink, tmp_path: Path
) -> None:
    first, last = tmp_path / "sunrise.png", tmp_path / "sunset.jpg"
    first.write_bytes(png())
    last.write_bytes(jpeg())
    # Both uploads answer only after 0.2 s: if they ran one after the other,
    # the mock would never see two at once.
    mock.inject(Fault.SLOW, route=UPLOAD_ROUTE, times=2, delay=0.2)

    task = await client.generate(
        "seedance-2.0-image-to-video",
        prompt="From sunrise to sunset",
        image_urls=[first, last],
        duration=4,
    )

    assert task.status is TaskStatus.COMPLETED
    assert mock.stats.uploads == 2
    assert mock.stats.max_in_flight >= 2
    [body] = requests_to(mock, CREATE_ROUTE)
    urls = body["image_urls"]
    assert [url.rsplit("/", 1)[1] for url in urls] == ["sunrise.png", "sunset.jpg"]
    assert all(url.startswith(f"{mock.url}/files/uploads/file_") for url in urls)
    assert (await fetch(urls[0]))[2] == first.read_bytes()
    assert (await fetch(urls[1]))[2] == last.read_bytes()
    assert body == {
        "model": "seedance-2.0-image-to-video",
        "prompt": "From sunrise to sunset",
        "image_urls": urls,
        "duration": 4,
    }


async def test_the_same_path_twice_is_uploaded_once(
    client: EvoLinkClient, mock: MockEvoLink, tmp_path: Path
) -> None:
    frame = tmp_path / "frame.webp"
    frame.write_bytes(webp())
    await client.submit(
        "seedance-2.0-fast-image-to-video", prompt="a loop", image_urls=[frame, frame]
    )
    [body] = requests_to(mock, CREATE_ROUTE)
    assert mock.stats.uploads == 1
    assert body["image_urls"][0] == body["image_urls"][1]


async def test_wan27_image_start_and_end_paths_are_uploaded(
    client: EvoLinkClient, mock: MockEvoLink, tmp_path: Path
) -> None:
    start, end = tmp_path / "start.png", tmp_path / "end.jpg"
    start.write_bytes(png(640, 360))
    end.write_bytes(jpeg(640, 360))

    task = await client.generate(
        "wan2.7-image-to-video",
        generation_mode="first_last_frame",
        prompt="The door opens",
        image_start=start,
        image_end=end,
    )

    assert task.status is TaskStatus.COMPLETED
    assert task.video_url
    assert mock.stats.uploads == 2
    [body] = requests_to(mock, CREATE_ROUTE)
    assert body["generation_mode"] == "first_last_frame"
    assert body["image_start"].endswith("/start.png")
    assert body["image_end"].endswith("/end.jpg")
    assert (await fetch(body["image_start"]))[2] == start.read_bytes()
    assert (await fetch(body["image_end"]))[2] == end.read_bytes()


async def test_a_path_in_a_raw_request_is_uploaded_too(
    client: EvoLinkClient, mock: MockEvoLink, tmp_path: Path
) -> None:
    frame = tmp_path / "frame.png"
    frame.write_bytes(png())
    await client.submit(RawRequest("some-new-model", {"image_urls": [frame], "prompt": "x"}))
    [body] = requests_to(mock, CREATE_ROUTE)
    assert mock.stats.uploads == 1
    assert body["image_urls"][0].endswith("/frame.png")


def _sparse(path: Path, header: bytes, size: int) -> Path:
    """A file of `size` bytes on disk that takes almost no space: `header`, then a hole."""
    with path.open("wb") as stream:
        stream.write(header)
        stream.truncate(size)
    return path


# (id, model, params builder from tmp_path, words the message holds)
LOCAL_FAILURES: list[tuple[str, str, str, str]] = [
    ("missing", "seedance-2.0-image-to-video", "missing", "not found"),
    ("too-big", "happyhorse-1.0-image-to-video", "big", "up to 10 MB"),
    ("wrong-magic", "seedance-2.0-image-to-video", "text", "first bytes"),
    ("bmp-path", "wan2.5-image-to-video", "bmp", "files API"),
    ("too-small", "wan2.5-image-to-video", "small", ">= 360 px"),
    ("alpha-png-wan27", "wan2.7-image-to-video", "alpha", "transparency"),
]


def _bad_file(kind: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{kind}.png"
    if kind == "big":
        return _sparse(path, png(), 10 * MIB + 1)
    if kind == "text":
        path.write_bytes(b"GIF? no: just text that is named .png\n")
    elif kind == "bmp":
        path = tmp_path / "frame.bmp"
        path.write_bytes(bmp())
    elif kind == "small":
        path.write_bytes(png(359, 400))
    elif kind == "alpha":
        rgba = bytearray(png())
        rgba[25] = 6  # IHDR colour type: RGBA (the header is all the check reads)
        path.write_bytes(bytes(rgba))
    return path


@pytest.mark.parametrize(
    ("model", "kind", "words"),
    [case[1:] for case in LOCAL_FAILURES],
    ids=[case[0] for case in LOCAL_FAILURES],
)
async def test_local_file_checks_fail_before_any_request(
    client: EvoLinkClient, mock: MockEvoLink, tmp_path: Path, model: ModelId, kind: str, words: str
) -> None:
    path = _bad_file(kind, tmp_path)
    params: dict[str, Any] = (
        {"image_start": path}
        if model == "wan2.7-image-to-video"
        else {"prompt": "a cat", "image_urls": [path]}
    )
    with pytest.raises(ValidationError, match=words) as info:
        await client.generate(model, **params)
    field = "image_start" if "image_start" in params else "image_urls[0]"
    assert field in {p.field for p in info.value.problems}
    assert total_requests(mock) == 0
    assert len(mock.requests_log) == 0


async def test_one_bad_path_stops_the_good_one_from_uploading(
    client: EvoLinkClient, mock: MockEvoLink, tmp_path: Path
) -> None:
    good = tmp_path / "good.png"
    good.write_bytes(png())
    with pytest.raises(ValidationError, match="not found"):
        await client.submit(
            "seedance-2.0-image-to-video",
            prompt="a cat",
            image_urls=[good, tmp_path / "gone.png"],
        )
    assert total_requests(mock) == 0


# ------------------------------------------------------------ credits


async def test_get_credits_reads_the_balance_and_sees_a_submit(
    client: EvoLinkClient, mock: MockEvoLink
) -> None:
    before = await client.get_credits()
    assert isinstance(before, Credits)
    assert before.remaining_credits == mock.remaining_credits == 1_000_000
    assert before.used_credits == 0

    # seedance reserves 10 credits per second of video on create.
    task = await client.submit(
        "seedance-2.0-image-to-video",
        prompt="a cat",
        image_urls=["https://cdn.example.com/cat.png"],
        duration=5,
    )
    held = await client.get_credits()
    assert task.usage is not None and task.usage.credits_reserved == 50
    assert held.remaining_credits == before.remaining_credits - 50

    await client.wait(task)
    after = await client.get_credits()
    assert after.remaining_credits == before.remaining_credits - 50
    assert after.used_credits == 50
    assert after.raw["user"] == {"remaining_credits": 999_950, "used_credits": 50}
    assert mock.stats.requests["GET /v1/credits"] == 3
