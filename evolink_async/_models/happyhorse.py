"""
HappyHorse 1.0 image-to-video: the request class of its page.

The page's prompt limit (2500 Chinese / 5000 other characters) comes with "excess
content is automatically truncated", so it is documented but not checked: by
the page, the server truncates a longer prompt rather than rejecting it.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal, TypeAlias, get_args

import attrs

from .base import ModelRequest, _items, _meta, _request_class, _whole_number, first_frame_meta
from .images import MIB, ImageLimits
from .rules import CallbackUrl, Choice, Integer, Text

__all__ = ["HappyHorseImageToVideo", "HappyHorseQuality"]

# The enum-like field's values, written once: the Literal type that type
# checkers see, and (through `get_args`) the runtime rule.
HappyHorseQuality: TypeAlias = Literal["720p", "1080p"]

# The HappyHorse page's own range; the pages agree today, but each is its model's
# source of truth, so it is not shared.
_SEED = Integer(min=1, max=2147483647)


@_request_class
@attrs.frozen(kw_only=True)
class HappyHorseImageToVideo(ModelRequest):
    """
    HappyHorse 1.0 image-to-video: one first-frame image, optional prompt.
    """

    model: ClassVar[str] = "happyhorse-1.0-image-to-video"
    _image_limits: ClassVar[ImageLimits] = ImageLimits(
        formats=("jpeg", "png", "webp"),
        max_bytes=10 * MIB,
        min_side=300,
        min_aspect=0.4,
        max_aspect=2.5,
    )

    image_urls: tuple[str | Path, ...] = attrs.field(
        converter=_items, metadata=first_frame_meta(_image_limits)
    )
    prompt: str | None = attrs.field(
        default=None,
        metadata=_meta(
            # The page says the excess is truncated, so nothing is rejected.
            Text(note="Chinese <= 2500 / other <= 5000 chars, truncated by the API"),
            doc="what happens; without it the image drives the motion",
        ),
    )
    quality: HappyHorseQuality | None = attrs.field(
        default=None,
        metadata=_meta(
            Choice(values=get_args(HappyHorseQuality)), default="720p", doc="resolution"
        ),
    )
    duration: int | None = attrs.field(
        default=None,
        converter=_whole_number,
        metadata=_meta(Integer(min=3, max=15, unit="seconds"), default=5, doc="video length"),
    )
    seed: int | None = attrs.field(
        default=None,
        converter=_whole_number,
        metadata=_meta(_SEED, doc="fixed seed for reproducibility; random if unset"),
    )
    callback_url: str | None = attrs.field(
        default=None, metadata=_meta(CallbackUrl(), doc="called when the task ends")
    )
