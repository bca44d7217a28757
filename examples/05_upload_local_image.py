"""
Use a local image: upload it yourself, or put a `pathlib.Path` in the request.

Shows `client.upload_file(path)` (returns an `UploadedFile` whose `file_url`
any request can use; files expire after 72 hours), and the shortcut: a
`pathlib.Path` wherever an image URL goes is checked locally against the
model's image limits (format, size, pixels, aspect ratio, transparency), then
uploaded on `submit`/`generate`, its `file_url` sent instead. An image that
breaks a limit is refused before anything is uploaded.

The example writes its own images (PNGs made with zlib and struct, no image
library needed) to a temporary directory.

    EVOLINK_API_KEY=... python examples/05_upload_local_image.py
    python examples/05_upload_local_image.py --mock   # against the embedded fake server
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import struct
import tempfile
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

from evolink_async import EvoLinkClient, PollPolicy, ValidationError
from evolink_async.testing import MockEvoLink

MODEL: Final = "seedance-2.0-image-to-video"


@contextlib.asynccontextmanager
async def make_client(use_mock: bool) -> AsyncIterator[tuple[EvoLinkClient, MockEvoLink | None]]:
    """A real client, or one on a MockEvoLink that runs 100x faster than real time."""
    if not use_mock:
        async with EvoLinkClient() as client:
            yield client, None
        return
    async with MockEvoLink(time_scale=0.01) as mock:
        poll = PollPolicy(min_interval=0.02, max_interval=0.6, default_estimate=1.2)
        async with EvoLinkClient(
            mock.api_key, base_url=mock.url, files_base_url=mock.url, poll=poll
        ) as client:
            yield client, mock


def png(width: int, height: int) -> bytes:
    """An RGB PNG (no alpha: some models refuse transparency) with a colour gradient."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    # Each row: filter type 0, then R, G, B per pixel.
    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            rows += bytes((x * 255 // width, y * 255 // height, 160))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


async def main(use_mock: bool) -> None:
    """Upload one image, generate from a Path, and see a too-small image refused."""
    with tempfile.TemporaryDirectory(prefix="evolink-example-") as folder:
        # Seedance wants 300-6000 px per side and an aspect ratio of 0.4-2.5.
        frame = Path(folder) / "first-frame.png"
        frame.write_bytes(png(400, 400))
        thumbnail = Path(folder) / "thumbnail.png"
        thumbnail.write_bytes(png(120, 120))

        async with make_client(use_mock) as (client, mock):
            # 1. Upload it yourself; use the URL in any request (for 72 hours).
            uploaded = await client.upload_file(frame)
            print(
                f"uploaded {frame.name}: {uploaded.file_size} bytes, {uploaded.mime_type}, "
                f"expires {uploaded.expires_at}"
            )
            print(f"  file_url: {uploaded.file_url}")

            # 2. Or pass the Path: it is checked, uploaded, and its URL sent.
            task = await client.generate(
                MODEL,
                prompt="The colours slowly swirl into a sunset",
                image_urls=[frame],
                duration=5,
            )
            print(f"generated from a local file: {task.status.value}, {task.video_url}")
            if mock is not None:
                sent = mock.tasks[task.id].body["image_urls"]
                print(f"  the create carried image_urls={sent}")
                print(f"  files uploaded so far: {mock.stats.uploads}")

            # 3. A local image that breaks the model's limits never leaves the machine.
            try:
                await client.generate(MODEL, prompt="Too small", image_urls=[thumbnail])
            except ValidationError as exc:
                print(f"refused before uploading: {exc.problems[0]}")
            if mock is not None:
                print(f"  files uploaded in the end: {mock.stats.uploads}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--mock", action="store_true", help="use the embedded fake server")
    asyncio.run(main(parser.parse_args().mock))
