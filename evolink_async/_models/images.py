"""
Local images: what can be known about a `pathlib.Path` before uploading it.

A request may name a local image (`image_urls=[Path("cat.png")]`); the client
uploads it to the files API and sends the returned URL. Before that, this module
checks what a server would reject anyway, so the user learns it at once and
without paying for an upload: the file exists, its size is within the model's
limit, its format (read from its first bytes, never from its name) is one the
model *and* the files API accept, and, when the header says so, its width,
height, aspect ratio and transparency are within the model's limits.

Each vendor page is its model's source of truth for formats (the fast Seedance
page's extra bmp, tiff and gif apply to that model only), but a local `Path`
must also be a format the files API uploads (jpeg/png/gif/webp): a bmp or tiff
`Path` is rejected with a message saying so (host it and pass a URL).

Only a few header bytes are read; no image library is needed. A header this
module cannot read (an unusual JPEG, say) skips the pixel checks rather than
failing: the server has the last word. The client also sniffs the format of a
file it uploads (`sniff_format`), to send the right content type.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

import attrs

__all__ = [
    "FILES_API_FORMATS",
    "MIB",
    "ImageInfo",
    "ImageLimits",
    "check_image_file",
    "read_image_info",
    "sniff_format",
]

#: Image formats the files API takes (API-NOTES: "images only (jpeg/png/gif/webp)").
FILES_API_FORMATS: frozenset[str] = frozenset({"jpeg", "png", "gif", "webp"})

#: Bytes in the pages' "MB", read as MiB (the lenient reading).
MIB = 1024 * 1024

# How far a JPEG's segments are followed looking for the frame header: EXIF and
# ICC segments come first and can be large, but not larger than this in practice.
_JPEG_SCAN_LIMIT = 4 * MIB


@attrs.frozen(kw_only=True)
class ImageLimits:
    """
    A model's documented limits for one input image.

    `formats` are the model's own (lower-case names: jpeg, png, webp, gif, bmp,
    tiff); a local file must also be one of `FILES_API_FORMATS` to be uploaded.
    Sizes are in bytes (the pages' "MB" read as MiB, the lenient reading);
    sides in pixels; aspect ratio is width / height.
    """

    formats: tuple[str, ...]
    max_bytes: int
    min_side: int
    max_side: int | None = None
    min_aspect: float | None = None
    max_aspect: float | None = None
    alpha: bool = True

    def describe(self) -> str:
        """The limits in words, e.g. `jpeg, png, webp; <= 30 MB; 300-6000 px per side`."""
        parts = [", ".join(self.formats), f"<= {self.max_bytes // MIB} MB"]
        if self.max_side is None:
            parts.append(f">= {self.min_side} px per side")
        else:
            parts.append(f"{self.min_side}-{self.max_side} px per side")
        if self.min_aspect is not None and self.max_aspect is not None:
            parts.append(f"aspect ratio {self.min_aspect:g}-{self.max_aspect:g}")
        if not self.alpha:
            parts.append("no transparency")
        uploadable = [f for f in self.formats if f in FILES_API_FORMATS]
        parts.append(f"local files: {', '.join(uploadable)} (what the files API takes)")
        return "; ".join(parts)


@attrs.frozen(kw_only=True)
class ImageInfo:
    """What an image's first bytes say: format, and size/alpha when readable."""

    format: str | None
    width: int | None = None
    height: int | None = None
    alpha: bool | None = None


def sniff_format(head: bytes) -> str | None:
    """
    The image format that `head` (a file's first bytes) starts with.

    Returns a lower-case name (jpeg, png, gif, webp, bmp, tiff), or None when
    the bytes match none of them. Twelve bytes are enough to tell them apart.
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:2] == b"BM":
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    return None


def _png(head: bytes) -> ImageInfo:
    if len(head) < 26 or head[12:16] != b"IHDR":
        return ImageInfo(format="png")
    width, height = struct.unpack(">II", head[16:24])
    color_type = head[25]
    # Colour types 4 (grey + alpha) and 6 (RGBA) carry an alpha channel.
    return ImageInfo(format="png", width=width, height=height, alpha=color_type in (4, 6))


def _gif(head: bytes) -> ImageInfo:
    if len(head) < 10:
        return ImageInfo(format="gif")
    width, height = struct.unpack("<HH", head[6:10])
    return ImageInfo(format="gif", width=width, height=height)


def _webp(head: bytes) -> ImageInfo:
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30 and head[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", head[26:30])
        return ImageInfo(format="webp", width=width & 0x3FFF, height=height & 0x3FFF)
    if chunk == b"VP8L" and len(head) >= 25 and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return ImageInfo(
            format="webp", width=(bits & 0x3FFF) + 1, height=((bits >> 14) & 0x3FFF) + 1
        )
    if chunk == b"VP8X" and len(head) >= 30:
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return ImageInfo(format="webp", width=width, height=height)
    return ImageInfo(format="webp")


def _bmp(head: bytes) -> ImageInfo:
    if len(head) < 26:
        return ImageInfo(format="bmp")
    width, height = struct.unpack("<ii", head[18:26])
    return ImageInfo(format="bmp", width=abs(width), height=abs(height))


# Start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) do not.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg(stream: BinaryIO) -> ImageInfo:
    stream.seek(2)
    while stream.tell() < _JPEG_SCAN_LIMIT:
        if stream.read(1) != b"\xff":
            break
        marker = stream.read(1)
        while marker == b"\xff":  # fill bytes
            marker = stream.read(1)
        if not marker:
            break
        code = marker[0]
        if code == 0x01 or 0xD0 <= code <= 0xD8:  # markers without a length
            continue
        if code in (0xD9, 0xDA):  # end of image / start of scan: no frame header found
            break
        length_bytes = stream.read(2)
        if len(length_bytes) < 2:
            break
        length = int.from_bytes(length_bytes, "big")
        if code in _JPEG_SOF:
            frame = stream.read(5)
            if len(frame) < 5:
                break
            height, width = struct.unpack(">HH", frame[1:5])
            return ImageInfo(format="jpeg", width=width, height=height)
        stream.seek(length - 2, 1)
    return ImageInfo(format="jpeg")


def read_image_info(path: Path) -> ImageInfo:
    """
    The format (by magic bytes) and, when the header says, size of an image file.

    Raises:
        OSError: the file cannot be opened or read.
    """
    with path.open("rb") as stream:
        head = stream.read(64)
        kind = sniff_format(head)
        if kind == "png":
            return _png(head)
        if kind == "gif":
            return _gif(head)
        if kind == "webp":
            return _webp(head)
        if kind == "bmp":
            return _bmp(head)
        if kind == "jpeg":
            return _jpeg(stream)
        return ImageInfo(format=kind)


def _mb(size: int) -> str:
    return f"{size / MIB:.1f} MB"


def check_image_file(path: Path, limits: ImageLimits) -> list[str]:
    """
    Every reason the local image `path` cannot be uploaded and used under `limits`.

    Returns rule texts (empty when the file is fine); never raises.
    """
    try:
        stat = path.stat()
    except FileNotFoundError:
        return [f"local file not found: {path}"]
    except OSError as exc:
        return [f"cannot read local file: {exc}"]
    if not path.is_file():
        return [f"not a regular file: {path}"]
    problems: list[str] = []
    if stat.st_size > limits.max_bytes:
        problems.append(
            f"file is {_mb(stat.st_size)} ({stat.st_size} bytes); this model takes images "
            f"up to {limits.max_bytes // MIB} MB ({limits.max_bytes} bytes)"
        )
    try:
        info = read_image_info(path)
    except OSError as exc:
        return [*problems, f"cannot read local file: {exc}"]
    accepted = ", ".join(limits.formats)
    if info.format is None:
        problems.append(
            f"is not an image this model accepts: its first bytes match none of {accepted} "
            "(the format is read from the content, not the file name)"
        )
        return problems
    if info.format not in limits.formats:
        problems.append(f"is a {info.format.upper()} image; this model accepts {accepted}")
        return problems
    if info.format not in FILES_API_FORMATS:
        problems.append(
            f"is a {info.format.upper()} image: the model accepts it, but the files API uploads "
            "only jpeg/png/gif/webp; convert it, or host it yourself and pass its URL"
        )
        return problems
    if info.width is not None and info.height is not None:
        problems.extend(_pixel_problems(info.width, info.height, limits))
    if info.alpha and not limits.alpha:
        problems.append(
            "PNG has an alpha (transparency) channel, which this model does not support; "
            "save it without transparency (RGB)"
        )
    return problems


def _pixel_problems(width: int, height: int, limits: ImageLimits) -> list[str]:
    problems: list[str] = []
    size = f"{width}x{height} px"
    if min(width, height) < limits.min_side:
        problems.append(f"image is {size}; width and height must be >= {limits.min_side} px")
    if limits.max_side is not None and max(width, height) > limits.max_side:
        problems.append(f"image is {size}; width and height must be <= {limits.max_side} px")
    if height > 0 and width > 0 and limits.min_aspect is not None and limits.max_aspect is not None:
        ratio = width / height
        if not limits.min_aspect <= ratio <= limits.max_aspect:
            problems.append(
                f"image is {size} (aspect ratio {ratio:.3g}); width/height must be "
                f"{limits.min_aspect:g}-{limits.max_aspect:g}"
            )
    return problems
