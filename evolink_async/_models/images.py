"""
Local images: what can be known about a `pathlib.Path` before uploading it.

A request may name a local image (`image_urls=[Path("cat.png")]`); the client
uploads it to the files API and sends the returned URL. Before that, this module
checks what a server would reject anyway, so the user learns it at once and
without paying for an upload: the file exists and is a regular file (a
directory, FIFO or device is refused unread, and opening one never blocks), its
size is within the model's limit, its format (read from its first bytes, never
from its name) is one the model *and* the files API accept, and, when the
header says so, its width, height, aspect ratio and transparency are within the
model's limits. Transparency is what decoders honour: a PNG alpha colour type
or a `tRNS` chunk before the image data; a WebP VP8X alpha flag, an `ALPH`
chunk (of the image or of any animation frame) or a VP8L `alpha_is_used` bit.

Each vendor page is its model's source of truth for formats (the fast Seedance
page's extra bmp, tiff and gif apply to that model only), but a local `Path`
must also be a format the files API uploads (jpeg/png/gif/webp): a bmp or tiff
`Path` is rejected with a message saying so (host it and pass a URL).

Only header bytes are read (for PNG and WebP, the chunk headers before the image
data); no image library is needed. A header this
module cannot read (an unusual JPEG, say) skips the pixel checks rather than
failing: the server has the last word. The client also sniffs the format of a
file it uploads (`sniff_format`), to send the right content type.
"""

from __future__ import annotations

import os
import stat as stat_mode
import struct
from pathlib import Path
from typing import BinaryIO

import attrs

__all__ = [
    "FILES_API_FORMATS",
    "FILES_API_MAX_BYTES",
    "MIB",
    "ImageInfo",
    "ImageLimits",
    "NotRegularFileError",
    "check_image_file",
    "file_kind",
    "open_regular",
    "read_image_info",
    "sniff_format",
]

#: Image formats the files API takes (API-NOTES: "images only (jpeg/png/gif/webp)").
FILES_API_FORMATS: frozenset[str] = frozenset({"jpeg", "png", "gif", "webp"})

#: Bytes in the pages' "MB", read as MiB (the lenient reading).
MIB = 1024 * 1024

#: The largest file `upload_file` sends. The files API documents no limit
#: (API-NOTES), so this is the largest image any model here takes (30 MB, both
#: Seedance pages): a larger upload could be used by no model.
FILES_API_MAX_BYTES = 30 * MIB

# Opening a FIFO for reading blocks until a writer comes; O_NONBLOCK makes the
# open return at once (and does nothing to reads of a regular file).
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)

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


class NotRegularFileError(OSError):
    """The path names a directory, FIFO, device or socket, not a regular file."""

    def __init__(self, path: Path, kind: str) -> None:
        super().__init__(f"not a regular file: {path} is {kind}")
        self.kind = kind


def file_kind(mode: int) -> str | None:
    """What a file of `st_mode` is in words (`a FIFO`, ...), or None for a regular file."""
    if stat_mode.S_ISREG(mode):
        return None
    for test, kind in (
        (stat_mode.S_ISDIR, "a directory"),
        (stat_mode.S_ISFIFO, "a FIFO (named pipe)"),
        (stat_mode.S_ISCHR, "a character device"),
        (stat_mode.S_ISBLK, "a block device"),
        (stat_mode.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def open_regular(path: Path) -> BinaryIO:
    """
    `path` opened for binary reading, if it is a regular file.

    The open never blocks (a FIFO, a device), and the kind is checked on the
    opened file itself, so a path swapped after an earlier `stat` is caught.

    Raises:
        NotRegularFileError: a directory, FIFO, device or socket.
        OSError: it cannot be opened.
    """
    fd = os.open(path, _OPEN_FLAGS)
    try:
        kind = file_kind(os.fstat(fd).st_mode)
        if kind is not None:
            raise NotRegularFileError(path, kind)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


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


def _png(stream: BinaryIO, head: bytes) -> ImageInfo:
    if len(head) < 26 or head[12:16] != b"IHDR":
        return ImageInfo(format="png")
    width, height = struct.unpack(">II", head[16:24])
    color_type = head[25]
    # Colour types 4 (grey + alpha) and 6 (RGBA) carry an alpha channel; the
    # others may still be transparent through a tRNS chunk.
    alpha = color_type in (4, 6) or _png_transparency(stream, color_type)
    return ImageInfo(format="png", width=width, height=height, alpha=alpha)


def _png_transparency(stream: BinaryIO, color_type: int) -> bool:
    """
    Whether a tRNS chunk makes the image transparent: the chunks are walked
    from the signature to the first IDAT (after which tRNS is not allowed).

    A palette image is transparent when any palette entry's alpha is below
    255; a grey or RGB image names a colour that is drawn transparent.
    """
    stream.seek(8)
    while True:
        header = stream.read(8)
        if len(header) < 8:
            return False
        length, kind = struct.unpack(">I4s", header)
        if kind in (b"IDAT", b"IEND") or length > _PNG_MAX_CHUNK:
            return False
        if kind == b"tRNS":
            if color_type != 3:
                return True
            alphas = stream.read(min(length, 256))
            return any(alpha < 255 for alpha in alphas)
        stream.seek(length + 4, 1)  # the data and the CRC


# PNG chunk lengths are at most 2**31 - 1; anything larger is a broken file.
_PNG_MAX_CHUNK = 2**31 - 1
_WEBP_ALPHA_FLAG = 0x10  # VP8X flags: Rsv Rsv ICC Alpha EXIF XMP Animation Rsv


def _gif(head: bytes) -> ImageInfo:
    if len(head) < 10:
        return ImageInfo(format="gif")
    width, height = struct.unpack("<HH", head[6:10])
    return ImageInfo(format="gif", width=width, height=height)


def _vp8l_alpha(header: bytes) -> bool:
    """A VP8L bitstream's `alpha_is_used` bit (after 14 + 14 bits of size)."""
    return len(header) >= 5 and header[0] == 0x2F and bool(header[4] & 0x10)


def _webp(stream: BinaryIO, head: bytes) -> ImageInfo:
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30 and head[23:26] == b"\x9d\x01\x2a":
        # The simple lossy format has no alpha (that needs VP8X + ALPH).
        width, height = struct.unpack("<HH", head[26:30])
        return ImageInfo(format="webp", width=width & 0x3FFF, height=height & 0x3FFF, alpha=False)
    if chunk == b"VP8L" and len(head) >= 25 and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return ImageInfo(
            format="webp",
            width=(bits & 0x3FFF) + 1,
            height=((bits >> 14) & 0x3FFF) + 1,
            alpha=_vp8l_alpha(head[20:25]),
        )
    if chunk == b"VP8X" and len(head) >= 30:
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        # Decoders honour an ALPH chunk or a VP8L alpha bit even when the flag
        # is not set, so the chunks (and those of animation frames) are read too.
        alpha = bool(head[20] & _WEBP_ALPHA_FLAG) or _webp_chunks_alpha(stream, 30, None)
        return ImageInfo(format="webp", width=width, height=height, alpha=alpha)
    return ImageInfo(format="webp")


def _webp_chunks_alpha(stream: BinaryIO, start: int, end: int | None) -> bool:
    """Whether a chunk from `start` (to `end`, or the file's end) carries alpha."""
    position = start
    while end is None or position + 8 <= end:
        stream.seek(position)
        header = stream.read(8)
        if len(header) < 8:
            return False
        kind, size = header[:4], int.from_bytes(header[4:], "little")
        if kind == b"ALPH":
            return True
        if kind == b"VP8L":
            return _vp8l_alpha(stream.read(5))
        if kind == b"VP8 ":
            return False  # an ALPH chunk comes before the lossy bitstream it belongs to
        if kind == b"ANMF" and _webp_chunks_alpha(stream, position + 24, position + 8 + size):
            return True
        position += 8 + size + (size & 1)  # chunks are padded to an even size
    return False


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
        OSError: the file cannot be opened or read, or is not a regular file
            (`NotRegularFileError`).
    """
    with open_regular(path) as stream:
        head = stream.read(64)
        kind = sniff_format(head)
        if kind == "png":
            return _png(stream, head)
        if kind == "gif":
            return _gif(head)
        if kind == "webp":
            return _webp(stream, head)
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
    kind = file_kind(stat.st_mode)
    if kind is not None:
        return [f"not a regular file: {path} is {kind}"]
    problems: list[str] = []
    if stat.st_size > limits.max_bytes:
        problems.append(
            f"file is {_mb(stat.st_size)} ({stat.st_size} bytes); this model takes images "
            f"up to {limits.max_bytes // MIB} MB ({limits.max_bytes} bytes)"
        )
    try:
        info = read_image_info(path)
    except NotRegularFileError as exc:
        return [f"not a regular file: {path} is {exc.kind}"]
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
            f"{info.format.upper()} has transparency (an alpha channel, a tRNS chunk or an "
            "alpha flag), which this model does not support; save it without transparency"
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
