"""
Transparency in local images, as decoders see it: PNG alpha colour types and
`tRNS` chunks, WebP's VP8X alpha flag, `ALPH` chunks (of a still image or of
any animation frame) and the VP8L `alpha_is_used` bit.

Every image is written here byte by byte, from hypothesis strategies that
cover each way a PNG or WebP can carry transparency (and each way it can be
opaque), with ancillary and unknown chunks around the ones that matter. The
expected verdict is worked out from what was generated, and checked against
`read_image_info`, the Wan models' "no transparency" rule, and a model that
takes transparency.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evolink_async import (
    SeedanceImageToVideo,
    ValidationError,
    Wan25ImageToVideo,
    Wan27ImageToVideo,
)
from evolink_async._models.images import read_image_info

SIDE = 400  # within every model's pixel limits
PROMPT = "The camera slowly pushes in"
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# ------------------------------------------------------------------- PNG


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


#: Colour type -> bit depths the PNG spec allows for it.
DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}

ancillary = st.one_of(
    st.builds(lambda text: png_chunk(b"tEXt", b"Comment\x00" + text), st.binary(max_size=40)),
    st.just(png_chunk(b"gAMA", struct.pack(">I", 45455))),
    st.just(png_chunk(b"pHYs", struct.pack(">IIB", 2835, 2835, 1))),
    st.builds(lambda data: png_chunk(b"iCCP", b"icc\x00\x00" + data), st.binary(max_size=300)),
    # A private, safe-to-copy chunk nobody knows.
    st.builds(lambda data: png_chunk(b"prVt", data), st.binary(max_size=64)),
)


@st.composite
def pngs(draw: st.DrawFn) -> tuple[bytes, bool, str]:
    """(a PNG, whether decoders draw any of it transparent, how it was made)."""
    color_type = draw(st.sampled_from(sorted(DEPTHS)))
    depth = draw(st.sampled_from(DEPTHS[color_type]))
    header = struct.pack(">IIBBBBB", SIDE, SIDE, depth, color_type, 0, 0, 0)
    chunks = [png_chunk(b"IHDR", header), *draw(st.lists(ancillary, max_size=3))]
    transparent = color_type in (4, 6)
    how = f"colour type {color_type}"
    entries = 0
    if color_type == 3:
        entries = draw(st.integers(1, 2**depth))
        chunks.append(png_chunk(b"PLTE", bytes(3 * entries)))
    # tRNS is only allowed without an alpha channel (types 0, 2, 3).
    if color_type in (0, 2, 3) and draw(st.booleans()):
        if color_type == 3:
            alphas = draw(st.lists(st.integers(0, 255), min_size=0, max_size=entries))
            payload = bytes(alphas)
            transparent = any(alpha < 255 for alpha in alphas)
            how += f", tRNS alphas {alphas}"
        else:
            # A colour key: pixels of that grey (2 bytes) or RGB (6 bytes) are transparent.
            payload = draw(
                st.binary(min_size=2, max_size=2)
                if color_type == 0
                else st.binary(min_size=6, max_size=6)
            )
            transparent = True
            how += ", tRNS colour key"
        chunks.append(png_chunk(b"tRNS", payload))
        chunks += draw(st.lists(ancillary, max_size=2))
    chunks.append(png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)))
    chunks.append(png_chunk(b"IEND", b""))
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks), transparent, how


# ------------------------------------------------------------------ WebP


def riff_chunk(kind: bytes, payload: bytes) -> bytes:
    pad = b"\x00" if len(payload) % 2 else b""
    return kind + struct.pack("<I", len(payload)) + payload + pad


def webp_file(chunks: list[bytes]) -> bytes:
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def vp8_bitstream() -> bytes:
    """A lossy key frame's header: frame tag, start code, 14-bit sizes."""
    return b"\x10\x02\x00" + b"\x9d\x01\x2a" + struct.pack("<HH", SIDE, SIDE) + bytes(8)


def vp8l_bitstream(alpha: bool) -> bytes:
    """A lossless header: signature, 14+14 bits of size - 1, the alpha bit, version 0."""
    bits = (SIDE - 1) | ((SIDE - 1) << 14) | (int(alpha) << 28)
    return b"\x2f" + bits.to_bytes(4, "little") + bytes(6)


unknown_riff = st.one_of(
    st.builds(lambda data: riff_chunk(b"ICCP", data), st.binary(max_size=50)),
    st.builds(lambda data: riff_chunk(b"EXIF", data), st.binary(max_size=33)),
    st.builds(lambda data: riff_chunk(b"XMP ", data), st.binary(max_size=17)),
    st.builds(lambda data: riff_chunk(b"ZzZz", data), st.binary(max_size=9)),
)


@st.composite
def frame_data(draw: st.DrawFn) -> tuple[list[bytes], bool, str]:
    """The chunks of one image (still or frame): optional ALPH, then VP8 or VP8L."""
    chunks: list[bytes] = []
    alpha = False
    how = []
    if draw(st.booleans()):
        lossless_alpha = draw(st.booleans())
        chunks.append(riff_chunk(b"VP8L", vp8l_bitstream(lossless_alpha)))
        alpha = lossless_alpha
        how.append(f"VP8L alpha bit {int(lossless_alpha)}")
    else:
        if draw(st.booleans()):
            chunks.append(riff_chunk(b"ALPH", b"\x00" + draw(st.binary(max_size=20))))
            alpha = True
            how.append("ALPH")
        chunks.append(riff_chunk(b"VP8 ", vp8_bitstream()))
        how.append("VP8")
    return chunks, alpha, "+".join(how)


@st.composite
def webps(draw: st.DrawFn) -> tuple[bytes, bool, str]:
    """(a WebP, whether decoders may see transparency, how it was made)."""
    layout = draw(st.sampled_from(["vp8", "vp8l", "vp8x-still", "vp8x-animated"]))
    if layout == "vp8":
        return webp_file([riff_chunk(b"VP8 ", vp8_bitstream())]), False, "simple VP8"
    if layout == "vp8l":
        alpha = draw(st.booleans())
        how = f"simple VP8L alpha bit {int(alpha)}"
        return webp_file([riff_chunk(b"VP8L", vp8l_bitstream(alpha))]), alpha, how
    flag = draw(st.booleans())
    animated = layout == "vp8x-animated"
    flags = (
        (0x10 if flag else 0) | (0x02 if animated else 0) | draw(st.sampled_from([0, 0x20, 0x08]))
    )
    size = (SIDE - 1).to_bytes(3, "little") * 2
    chunks = [riff_chunk(b"VP8X", bytes([flags, 0, 0, 0]) + size)]
    chunks += draw(st.lists(unknown_riff, max_size=2))
    transparent = flag
    parts = [f"VP8X alpha flag {int(flag)}"]
    if animated:
        chunks.append(riff_chunk(b"ANIM", bytes(6)))
        for _ in range(draw(st.integers(1, 3))):
            frame, alpha, frame_how = draw(frame_data())
            header = bytes(12) + b"\x64\x00\x00" + b"\x00"  # offsets, size, duration, flags
            chunks.append(riff_chunk(b"ANMF", header + b"".join(frame)))
            transparent = transparent or alpha
            parts.append(f"frame {frame_how}")
    else:
        frame, alpha, frame_how = draw(frame_data())
        chunks += frame
        transparent = transparent or alpha
        parts.append(frame_how)
    chunks += draw(st.lists(unknown_riff, max_size=2))
    return webp_file(chunks), transparent, ", ".join(parts)


# ----------------------------------------------------------------- tests

images = st.one_of(pngs(), webps())


@SETTINGS
@given(image=images)
def test_transparency_is_read_from_the_header(
    tmp_path: Path, image: tuple[bytes, bool, str]
) -> None:
    data, transparent, how = image
    path = tmp_path / "frame.img"
    path.write_bytes(data)
    info = read_image_info(path)
    assert info.width == info.height == SIDE, how
    assert info.alpha is transparent, how


@SETTINGS
@given(image=images)
def test_wan_models_refuse_every_transparent_image_and_only_those(
    tmp_path: Path, image: tuple[bytes, bool, str]
) -> None:
    data, transparent, how = image
    path = tmp_path / "frame.img"
    path.write_bytes(data)
    attempts: list[Callable[[], object]] = [
        lambda: Wan25ImageToVideo(prompt=PROMPT, image_urls=[path]),
        lambda: Wan27ImageToVideo(image_start=path),
        lambda: Wan27ImageToVideo(image_start="https://cdn.example.com/a.png", image_end=path),
    ]
    for attempt in attempts:
        if transparent:
            with pytest.raises(ValidationError, match="transparency") as info:
                attempt()
            fields = {problem.field for problem in info.value.problems}
            assert fields & {"image_urls[0]", "image_start", "image_end"}, how
        else:
            attempt()


@SETTINGS
@given(image=images)
def test_a_model_that_takes_transparency_accepts_every_image(
    tmp_path: Path, image: tuple[bytes, bool, str]
) -> None:
    data, _, _ = image
    path = tmp_path / "frame.img"
    path.write_bytes(data)
    SeedanceImageToVideo(prompt=PROMPT, image_urls=[path])


def test_a_trns_chunk_hidden_behind_a_large_chunk_is_found(tmp_path: Path) -> None:
    """tRNS after megabytes of metadata: the chunk walk skips, it does not stop early."""
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", SIDE, SIDE, 8, 2, 0, 0, 0))
    filler = png_chunk(b"zTXt", b"big\x00\x00" + bytes(5 * 1024 * 1024))
    key = png_chunk(b"tRNS", b"\x00\x00\x00\x00\x00\x00")
    end = png_chunk(b"IDAT", zlib.compress(b"\x00")) + png_chunk(b"IEND", b"")
    path = tmp_path / "big.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + header + filler + key + end)
    assert read_image_info(path).alpha is True
    with pytest.raises(ValidationError, match="transparency"):
        Wan27ImageToVideo(image_start=path)
