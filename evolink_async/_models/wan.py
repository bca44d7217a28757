"""
Wan image-to-video, 2.7 and 2.5: the request classes of both pages.

Readings of the wan2.7 page where it is loose:

- `prompt` and `negative_prompt`: the page says both "overflow auto-truncated"
  and "Maximum string length: 5000" (500 for `negative_prompt`); our issue
  adopts the maximum as a hard limit, so longer text is rejected.
- `video_urls`/`audio_urls` ("Required array length: 1 element"): when given,
  exactly one URL; an empty list is rejected (leave the field out).
- Which materials are required or refused depends on `generation_mode`
  (`_WAN_REQUIRED`, `_WAN_FORBIDDEN`); when it is unset, the mode is inferred
  from the materials as the API does, and that mode's rules are checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeAlias, get_args

import attrs

from .._errors import Problem
from .base import (
    ModelRequest,
    _items,
    _meta,
    _optional_items,
    _request_class,
    _whole_number,
    first_frame_meta,
)
from .images import MIB, ImageLimits
from .rules import Boolean, CallbackUrl, Choice, Integer, Text, Url, UrlList

__all__ = [
    "Wan25Duration",
    "Wan25ImageToVideo",
    "Wan27ImageToVideo",
    "Wan27Quality",
    "WanGenerationMode",
]

# The enum-like fields' values, written once: the Literal types that type
# checkers see, and (through `get_args`) the runtime rules.
WanGenerationMode: TypeAlias = Literal["first_frame", "first_last_frame", "video_continuation"]
Wan27Quality: TypeAlias = Literal["720p", "1080p"]
Wan25Duration: TypeAlias = Literal[5, 10]

# The wan2.7 page's own range; the pages agree today, but each is its model's
# source of truth, so it is not shared.
_SEED = Integer(min=1, max=2147483647)
_WAN_MODES: tuple[str, ...] = get_args(WanGenerationMode)
_WAN_REQUIRED: Mapping[str, tuple[str, ...]] = {
    "first_frame": ("image_start",),
    "first_last_frame": ("image_start", "image_end"),
    "video_continuation": ("video_urls",),
}
_WAN_FORBIDDEN: Mapping[str, tuple[str, ...]] = {
    "first_frame": ("image_end", "video_urls"),
    "first_last_frame": ("video_urls",),
    "video_continuation": ("image_start", "audio_urls"),
}


@_request_class
@attrs.frozen(kw_only=True)
class Wan27ImageToVideo(ModelRequest):
    """
    Wan 2.7 image-to-video: first frame, first and last frame, or video continuation.

    Which materials are required or refused depends on `generation_mode`; when
    it is unset the mode is inferred from the materials as the API does
    (video_urls -> video_continuation, image_start and image_end ->
    first_last_frame, image_start -> first_frame) and that mode's rules are
    checked.
    """

    model: ClassVar[str] = "wan2.7-image-to-video"
    _image_limits: ClassVar[ImageLimits] = ImageLimits(
        formats=("jpeg", "png", "bmp", "webp"),
        max_bytes=20 * MIB,
        min_side=240,
        max_side=8000,
        min_aspect=1 / 8,
        max_aspect=8,
        alpha=False,
    )
    _rules: ClassVar[tuple[str, ...]] = (
        "first_frame: needs image_start; refuses image_end, video_urls",
        "first_last_frame: needs image_start and image_end; refuses video_urls",
        "video_continuation: needs video_urls; refuses image_start, audio_urls",
        "no generation_mode: video_urls -> video_continuation, image_start + image_end -> "
        "first_last_frame, image_start -> first_frame",
    )

    generation_mode: WanGenerationMode | None = attrs.field(
        default=None,
        metadata=_meta(Choice(values=_WAN_MODES), doc="which materials are used"),
    )
    prompt: str | None = attrs.field(
        default=None,
        metadata=_meta(
            # The page says both "overflow auto-truncated" and "Maximum string
            # length: 5000"; our issue takes the maximum as a hard limit.
            Text(max_chars=5000),
            doc="what happens",
        ),
    )
    negative_prompt: str | None = attrs.field(
        default=None, metadata=_meta(Text(max_chars=500), doc="what must not appear")
    )
    image_start: str | Path | None = attrs.field(
        default=None, metadata=_meta(Url(images=_image_limits), doc="the first frame")
    )
    image_end: str | Path | None = attrs.field(
        default=None, metadata=_meta(Url(images=_image_limits), doc="the last frame")
    )
    video_urls: tuple[str, ...] | None = attrs.field(
        default=None,
        converter=_optional_items,
        metadata=_meta(
            UrlList(min_items=1, max_items=1),
            doc="clip to continue (mp4/mov, 2-10 s, <= 100 MB)",
        ),
    )
    audio_urls: tuple[str, ...] | None = attrs.field(
        default=None,
        converter=_optional_items,
        metadata=_meta(
            UrlList(min_items=1, max_items=1),
            doc="driving audio (wav/mp3, 2-30 s, <= 15 MB)",
        ),
    )
    quality: Wan27Quality | None = attrs.field(
        default=None,
        metadata=_meta(Choice(values=get_args(Wan27Quality)), default="720p", doc="resolution"),
    )
    duration: int | None = attrs.field(
        default=None,
        converter=_whole_number,
        metadata=_meta(
            Integer(min=2, max=15, unit="seconds"),
            default=5,
            doc="total output length (with video_continuation: input clip included)",
        ),
    )
    seed: int | None = attrs.field(
        default=None,
        converter=_whole_number,
        metadata=_meta(_SEED, doc="fixed seed for reproducibility; random if unset"),
    )
    prompt_extend: bool | None = attrs.field(
        default=None, metadata=_meta(Boolean(), default=False, doc="let the API rewrite the prompt")
    )
    callback_url: str | None = attrs.field(
        default=None, metadata=_meta(CallbackUrl(), doc="called when the task ends")
    )

    def _check_combinations(self, problems: list[Problem]) -> None:
        mode = self.generation_mode
        how = f"generation_mode {mode!r}"
        if mode is None:
            if self.video_urls is not None:
                mode = "video_continuation"
            elif self.image_start is not None and self.image_end is not None:
                mode = "first_last_frame"
            elif self.image_start is not None:
                mode = "first_frame"
            else:
                problems.append(
                    Problem(
                        field="generation_mode",
                        value=None,
                        rule=(
                            "cannot be inferred from the materials: give image_start "
                            "(first_frame), image_start and image_end (first_last_frame) "
                            "or video_urls (video_continuation)"
                        ),
                    )
                )
                return
            how = f"generation_mode {mode!r} (inferred from the materials; set it to be explicit)"
        elif mode not in _WAN_MODES:
            return  # already reported by the field's rule
        problems.extend(
            Problem(field=name, value=None, rule=f"is required with {how}")
            for name in _WAN_REQUIRED[mode]
            if getattr(self, name) is None
        )
        for name in _WAN_FORBIDDEN[mode]:
            value = getattr(self, name)
            if value is not None:
                problems.append(
                    Problem(field=name, value=value, rule=f"is not accepted with {how}")
                )


def _duration_choice(value: Wan25Duration | None) -> Any:
    """`_whole_number` (`10.0` -> `10`), typed for the two durations the page allows."""
    return _whole_number(value)


@_request_class
@attrs.frozen(kw_only=True)
class Wan25ImageToVideo(ModelRequest):
    """
    Wan 2.5 image-to-video: one first-frame image and a prompt.
    """

    model: ClassVar[str] = "wan2.5-image-to-video"
    _image_limits: ClassVar[ImageLimits] = ImageLimits(
        formats=("jpeg", "png", "bmp", "webp"),
        max_bytes=10 * MIB,
        min_side=360,
        max_side=2000,
        alpha=False,
    )

    prompt: str = attrs.field(
        metadata=_meta(Text(required=True, max_chars=1000), required=True, doc="what happens")
    )
    image_urls: tuple[str | Path, ...] = attrs.field(
        converter=_items, metadata=first_frame_meta(_image_limits)
    )
    duration: Wan25Duration | None = attrs.field(
        default=None,
        converter=_duration_choice,
        # The page documents no default (its example sends 5).
        metadata=_meta(
            Integer(min=5, max=10, choices=get_args(Wan25Duration), unit="seconds"),
            doc="video length",
        ),
    )
    callback_url: str | None = attrs.field(
        default=None, metadata=_meta(CallbackUrl(), doc="called when the task ends")
    )
