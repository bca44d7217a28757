"""
The request classes' fields as `TypedDict`s, for type checkers and editors.

`client.submit(model_id, **params)` and `client.generate(...)` are overloaded
per model id (`ModelId`), each overload taking `**params:
Unpack[<Model>Params]`, so an editor flags a misspelt field (`promt=`), a value
no rule allows (`quality="720P"`) and an unknown model id before anything runs;
`<Model>JobDict` (and their union `JobDict`) types a batch job dict the same
way. At run time nothing here is used: the request classes check every rule
themselves.

Each `<Model>Params` has the keywords of its class's constructor, with the
types type checkers see there (a list is a `Sequence`, a whole number may be
given as a float), required fields `Required` and the others `NotRequired`;
the enum-like fields use the Literal types the runtime rules are built from
(`SeedanceQuality`, ...). `tests/test_params_agree.py` checks every key,
requiredness and type here against the classes and their `spec()`.

No `from __future__ import annotations` here: Python 3.11 reads `Required` and
`NotRequired` only from annotations that are evaluated.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NotRequired, Required, TypeAlias, TypedDict

from .happyhorse import HappyHorseQuality
from .seedance import SeedanceAspectRatio, SeedanceQuality
from .wan import Wan25Duration, Wan27Quality, WanGenerationMode

__all__ = [
    "HappyHorseImageToVideoJobDict",
    "HappyHorseImageToVideoParams",
    "JobDict",
    "ModelId",
    "SeedanceFastImageToVideoJobDict",
    "SeedanceFastImageToVideoParams",
    "SeedanceImageToVideoJobDict",
    "SeedanceImageToVideoParams",
    "Wan25ImageToVideoJobDict",
    "Wan25ImageToVideoParams",
    "Wan27ImageToVideoJobDict",
    "Wan27ImageToVideoParams",
]

#: Every model id with a request class (the keys of `MODELS`).
ModelId: TypeAlias = Literal[
    "seedance-2.0-image-to-video",
    "seedance-2.0-fast-image-to-video",
    "happyhorse-1.0-image-to-video",
    "wan2.7-image-to-video",
    "wan2.5-image-to-video",
]


class SeedanceImageToVideoParams(TypedDict):
    """The fields of `SeedanceImageToVideo`: `submit("seedance-2.0-image-to-video", **params)`."""

    prompt: Required[str]
    image_urls: Required[Sequence[str | Path]]
    duration: NotRequired[float | None]
    quality: NotRequired[SeedanceQuality | None]
    aspect_ratio: NotRequired[SeedanceAspectRatio | None]
    generate_audio: NotRequired[bool | None]
    callback_url: NotRequired[str | None]


class SeedanceFastImageToVideoParams(SeedanceImageToVideoParams):
    """The fields of `SeedanceFastImageToVideo` (the same as `SeedanceImageToVideo`'s)."""


class HappyHorseImageToVideoParams(TypedDict):
    """The fields of `HappyHorseImageToVideo`: `submit("happyhorse-1.0-image-to-video", ...)`."""

    image_urls: Required[Sequence[str | Path]]
    prompt: NotRequired[str | None]
    quality: NotRequired[HappyHorseQuality | None]
    duration: NotRequired[float | None]
    seed: NotRequired[float | None]
    callback_url: NotRequired[str | None]


class Wan27ImageToVideoParams(TypedDict):
    """
    The fields of `Wan27ImageToVideo`: `submit("wan2.7-image-to-video", **params)`.

    None is required here: which materials a request needs depends on
    `generation_mode`, a rule checked when the request is built.
    """

    generation_mode: NotRequired[WanGenerationMode | None]
    prompt: NotRequired[str | None]
    negative_prompt: NotRequired[str | None]
    image_start: NotRequired[str | Path | None]
    image_end: NotRequired[str | Path | None]
    video_urls: NotRequired[Sequence[str] | None]
    audio_urls: NotRequired[Sequence[str] | None]
    quality: NotRequired[Wan27Quality | None]
    duration: NotRequired[float | None]
    seed: NotRequired[float | None]
    prompt_extend: NotRequired[bool | None]
    callback_url: NotRequired[str | None]


class Wan25ImageToVideoParams(TypedDict):
    """The fields of `Wan25ImageToVideo`: `submit("wan2.5-image-to-video", **params)`."""

    prompt: Required[str]
    image_urls: Required[Sequence[str | Path]]
    duration: NotRequired[Wan25Duration | None]
    callback_url: NotRequired[str | None]


class _JobKeys(TypedDict):
    """The keys of a job dict that are not request fields (`JOB_KEYS`)."""

    id: NotRequired[str | int | None]
    metadata: NotRequired[Mapping[str, Any] | None]


class SeedanceImageToVideoJobDict(SeedanceImageToVideoParams, _JobKeys):
    """A batch job dict for `seedance-2.0-image-to-video`: `id`, `model`, `metadata`, fields."""

    model: Required[Literal["seedance-2.0-image-to-video"]]


class SeedanceFastImageToVideoJobDict(SeedanceFastImageToVideoParams, _JobKeys):
    """A batch job dict for `seedance-2.0-fast-image-to-video`."""

    model: Required[Literal["seedance-2.0-fast-image-to-video"]]


class HappyHorseImageToVideoJobDict(HappyHorseImageToVideoParams, _JobKeys):
    """A batch job dict for `happyhorse-1.0-image-to-video`."""

    model: Required[Literal["happyhorse-1.0-image-to-video"]]


class Wan27ImageToVideoJobDict(Wan27ImageToVideoParams, _JobKeys):
    """A batch job dict for `wan2.7-image-to-video`."""

    model: Required[Literal["wan2.7-image-to-video"]]


class Wan25ImageToVideoJobDict(Wan25ImageToVideoParams, _JobKeys):
    """A batch job dict for `wan2.5-image-to-video`."""

    model: Required[Literal["wan2.5-image-to-video"]]


#: A batch job dict for any model with a request class, told apart by `model`:
#: annotate a list of job dicts with it (`jobs: list[JobDict] = [...]`) and the
#: editor checks each one.
JobDict: TypeAlias = (
    SeedanceImageToVideoJobDict
    | SeedanceFastImageToVideoJobDict
    | HappyHorseImageToVideoJobDict
    | Wan27ImageToVideoJobDict
    | Wan25ImageToVideoJobDict
)
