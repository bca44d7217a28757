"""
Seedance 2.0 image-to-video, main and fast: the request classes of both pages.

The two pages list the same seven fields with the same rules and differ only
in their model id and the image formats they take (the fast page adds bmp,
tiff and gif; each page is its model's source of truth, so the extra formats
apply to the fast model only). The fields are therefore declared once, on
`_SeedanceFields`, and each model class brings its id, its image limits and its
docstring; `_own_image_limits` gives the shared `image_urls` rule the limits of
the class being built.

The prompt rule, "<= 500 Chinese chars or <= 1000 English words" (the fast page
says "recommended"), is enforced as written: a prompt containing any Chinese
ideograph may have at most 500 characters, all counted; any other prompt at
most 1000 whitespace-separated words.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal, TypeAlias, cast, get_args

import attrs

from .base import ModelRequest, _field_doc, _items, _meta, _request_class, _whole_number
from .images import MIB, ImageLimits
from .rules import Boolean, CallbackUrl, Choice, Integer, Text, UrlList

__all__ = [
    "SeedanceAspectRatio",
    "SeedanceFastImageToVideo",
    "SeedanceImageToVideo",
    "SeedanceQuality",
]

# The enum-like fields' values, written once: the Literal types that type
# checkers see, and (through `get_args`) the runtime rules below.
SeedanceQuality: TypeAlias = Literal["480p", "720p"]
SeedanceAspectRatio: TypeAlias = Literal["16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "adaptive"]

_PROMPT = Text(
    required=True,
    # "<= 500 Chinese chars or <= 1000 English words" (main page); the fast
    # page says "recommended"; we reject above it, counting each script apart.
    max_chinese=500,
    max_words=1000,
)
# Without image limits: `_own_image_limits` adds each class's own.
_IMAGE_URLS = UrlList(min_items=1, max_items=2)
_DURATION = Integer(min=4, max=15, unit="seconds")
_QUALITY = Choice(values=get_args(SeedanceQuality))
_ASPECT_RATIOS = Choice(values=get_args(SeedanceAspectRatio))


@attrs.frozen(kw_only=True)
class _SeedanceFields(ModelRequest):
    """The fields both Seedance pages list, in their order; not a model itself."""

    prompt: str = attrs.field(
        metadata=_meta(_PROMPT, required=True, doc="motion, camera, atmosphere")
    )
    image_urls: tuple[str | Path, ...] = attrs.field(
        converter=_items,
        metadata=_meta(_IMAGE_URLS, required=True, doc="first frame, or first and last frame"),
    )
    duration: int | None = attrs.field(
        default=None,
        converter=_whole_number,
        metadata=_meta(_DURATION, default=5, doc="video length"),
    )
    quality: SeedanceQuality | None = attrs.field(
        default=None, metadata=_meta(_QUALITY, default="720p", doc="resolution")
    )
    aspect_ratio: SeedanceAspectRatio | None = attrs.field(
        default=None,
        metadata=_meta(_ASPECT_RATIOS, default="16:9", doc="adaptive follows the first image"),
    )
    generate_audio: bool | None = attrs.field(
        default=None, metadata=_meta(Boolean(), default=True, doc="synchronized audio")
    )
    callback_url: str | None = attrs.field(
        default=None, metadata=_meta(CallbackUrl(), doc="called when the task ends")
    )


def _own_image_limits(cls: type, fields: list[attrs.Attribute[Any]]) -> list[attrs.Attribute[Any]]:
    """
    The fields of `cls` with its own `_image_limits` in the `image_urls` rule.

    An attrs field transformer: each Seedance class is built with it, so its
    `image_urls` checks (and `spec()` describes) local files against its own
    page, not a shared one. The class must set `_image_limits` in its body.
    """
    limits: ImageLimits = cls.__dict__["_image_limits"]

    def own(field: attrs.Attribute[Any]) -> attrs.Attribute[Any]:
        if field.name != "image_urls":
            return field
        doc = _field_doc(field)
        rule = attrs.evolve(cast(UrlList, doc.rule), images=limits)
        return field.evolve(
            metadata=_meta(rule, required=doc.required, default=doc.default, doc=doc.doc)
        )

    return [own(field) for field in fields]


@_request_class
@attrs.frozen(kw_only=True, field_transformer=_own_image_limits)
class SeedanceImageToVideo(_SeedanceFields):
    """
    Seedance 2.0 image-to-video: 1 image (first frame) or 2 (first and last frame).

    No realistic human faces: the server rejects them.
    """

    model: ClassVar[str] = "seedance-2.0-image-to-video"
    _image_limits: ClassVar[ImageLimits] = ImageLimits(
        formats=("jpeg", "png", "webp"),
        max_bytes=30 * MIB,
        min_side=300,
        max_side=6000,
        min_aspect=0.4,
        max_aspect=2.5,
    )


@_request_class
@attrs.frozen(kw_only=True, field_transformer=_own_image_limits)
class SeedanceFastImageToVideo(_SeedanceFields):
    """
    Seedance 2.0 fast image-to-video: the faster, cheaper Seedance variant.

    Same fields as `SeedanceImageToVideo`; its page also lists bmp, tiff and
    gif images (of which only gif can be uploaded from a local file).
    """

    model: ClassVar[str] = "seedance-2.0-fast-image-to-video"
    _image_limits: ClassVar[ImageLimits] = ImageLimits(
        formats=("jpeg", "png", "webp", "bmp", "tiff", "gif"),
        max_bytes=30 * MIB,
        min_side=300,
        max_side=6000,
        min_aspect=0.4,
        max_aspect=2.5,
    )
