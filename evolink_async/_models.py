"""
Request objects: one frozen class per model, plus `RawRequest`.

Each model class is `@attrs.frozen(kw_only=True)`, its fields named and
ordered as the model's page lists them, and validated at construction: every
documented rule is checked and *all* problems are raised together as one
`ValidationError`. Each field carries its rule (from `_validation.py`) in its
attrs metadata, so `ModelRequest.spec()`, the class docstrings and
`evolink-async models` are generated from what is actually checked.

Defaults versus "unset": every optional field defaults to `None`, meaning
*unset*, and unset fields are left out of the JSON body, so the server applies
its own default and we send exactly what the user set. The default each page
documents (seedance `duration` 5, `quality` "720p", ...) is kept as
`FieldSpec.default` and shown in the docstrings and by `evolink-async models`;
it is documentation, never sent on the user's behalf.

Readings of the vendor pages where they are loose (each one documented where
the rule is declared below):

- Seedance prompt: "<= 500 Chinese chars or <= 1000 English words" (the
  fast page says "recommended") is enforced as written: a prompt containing
  any Chinese ideograph may have at most 500 characters, all counted; any
  other prompt at most 1000 whitespace-separated words.
- HappyHorse prompt (2500 Chinese / 5000 other characters) and the wan2.7
  pages say the server truncates longer text; HappyHorse's limit is therefore
  not checked. wan2.7 also states "Maximum string length: 5000" (500 for
  `negative_prompt`), which our issue adopts as a hard limit: enforced.
- Image formats: each page is its model's source of truth, so the fast Seedance
  page's extra formats (bmp, tiff, gif) apply to it only. A local `Path` must
  also be a format the files API uploads (jpeg/png/gif/webp): a bmp or tiff
  `Path` is rejected with a message saying so (host it and pass a URL).
- Integers: a float with no fraction (`5.0`) is a JSON integer, so it is
  accepted and sent as `5` (wan2.7 even types `duration` as "number");
  `5.5`, `"5"` and `True` are rejected.
- Image URLs are checked for form only (absolute http/https, no `data:` URLs:
  API-NOTES says generation takes URLs only). Private hosts are not refused for
  *image* URLs (the local mock serves uploads on 127.0.0.1), only for
  `callback_url`, where the pages forbid them.
- wan2.7 `video_urls`/`audio_urls` ("Required array length: 1 element"): when
  given, exactly one URL; an empty list is rejected (leave the field out).

A `pathlib.Path` in an image field is checked at construction (a `stat` and a
read of the header bytes, see `_local_files.py`). Required fields are required
keyword arguments, so type checkers flag a missing one; through
`build_request` (`client.submit(model_id, **params)`) a missing or unknown
field is a `ValidationError` like any other problem, never a `TypeError`.

The client uses four private helpers from here: `build_request` (model id +
params -> request object), `request_body` (request -> JSON body),
`local_files` and `replace_files` (the `pathlib.Path` values that must be
uploaded before sending, and the request with them swapped for URLs).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, cast

import attrs

from ._errors import Problem, ValidationError
from ._local_files import ImageLimits
from ._validation import (
    Boolean,
    CallbackUrl,
    Choice,
    Integer,
    Rule,
    Text,
    Url,
    UrlList,
    did_you_mean,
)

__all__ = [
    "MODELS",
    "FieldSpec",
    "HappyHorseImageToVideo",
    "ModelRequest",
    "ModelSpec",
    "RawRequest",
    "Request",
    "SeedanceFastImageToVideo",
    "SeedanceImageToVideo",
    "Wan25ImageToVideo",
    "Wan27ImageToVideo",
    "build_request",
    "local_files",
    "model_specs",
    "replace_files",
    "request_body",
]

_MIB = 1024 * 1024


class Request(Protocol):
    """What every request object offers: the model id it is sent to."""

    @property
    def model(self) -> str:
        """The API's model id."""
        ...


R = TypeVar("R", bound=Request)
M = TypeVar("M", bound="ModelRequest")

_META = "evolink_async"


@attrs.frozen(kw_only=True)
class _FieldDoc:
    """What a field's attrs metadata holds: its rule and documentation."""

    rule: Rule
    required: bool = False
    default: object = None
    doc: str = ""


def _meta(
    rule: Rule, *, required: bool = False, default: object = None, doc: str = ""
) -> dict[str, _FieldDoc]:
    return {_META: _FieldDoc(rule=rule, required=required, default=default, doc=doc)}


def _field_doc(field: attrs.Attribute[Any]) -> _FieldDoc:
    doc = field.metadata.get(_META)
    if not isinstance(doc, _FieldDoc):  # pragma: no cover - every field declares one
        raise TypeError(f"field {field.name} has no rule")
    return doc


# Converters run before validation and must never raise: a value of the wrong
# shape is left as it is for its rule to report.


def _items(value: Sequence[str | Path]) -> Any:
    """A list or tuple becomes a tuple; anything else is left for the rule to reject."""
    return tuple(value) if isinstance(value, list | tuple) else value


def _optional_items(value: Sequence[str] | None) -> Any:
    return tuple(value) if isinstance(value, list | tuple) else value


def _whole_number(value: float | None) -> Any:
    """`5.0` -> `5`: a float with no fraction is a JSON integer; anything else unchanged."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@attrs.frozen(kw_only=True)
class FieldSpec:
    """
    One field of a model's request, as documented and as checked.

    Attributes:
        name: the JSON name, which is also the attribute name.
        type: the type in words (`integer`, `list[URL | Path]`, ...).
        required: whether the field must always be given.
        default: the API's documented default (applied by the server when the
            field is left unset), or None when the page documents none.
        limits: the rule checked at construction, in words.
        description: what the field does.
        local_file: whether a `pathlib.Path` is accepted (and uploaded).
    """

    name: str
    type: str
    required: bool
    default: object
    limits: str
    description: str
    local_file: bool

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of this spec."""
        return attrs.asdict(self)


@attrs.frozen(kw_only=True)
class ModelSpec:
    """
    A model's request, described from its class: fields, image limits, rules.

    Attributes:
        model: the API's model id.
        request_class: the request class.
        summary: one line about the model.
        fields: every field, in the page's order.
        image_files: the page's limits for one input image.
        rules: rules about several fields at once (wan2.7's modes).
    """

    model: str
    request_class: type[ModelRequest]
    summary: str
    fields: tuple[FieldSpec, ...]
    image_files: str
    rules: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of this spec (the class by name)."""
        return {
            "model": self.model,
            "class": self.request_class.__name__,
            "summary": self.summary,
            "fields": [f.to_json() for f in self.fields],
            "image_files": self.image_files,
            "rules": list(self.rules),
        }


class ModelRequest:
    """
    Base of the request classes this SDK validates.

    Subclasses are frozen attrs classes whose fields are the model's JSON
    fields; `model` is the model id (a class attribute, also readable on
    instances). Construction checks every documented rule and raises one
    `ValidationError` listing all problems.
    """

    __slots__ = ()

    #: The API's model id.
    model: ClassVar[str]
    _image_limits: ClassVar[ImageLimits]
    _rules: ClassVar[tuple[str, ...]] = ()

    if TYPE_CHECKING:
        __attrs_attrs__: ClassVar[Any]

        def __init__(self, **params: Any) -> None: ...

    def __attrs_post_init__(self) -> None:
        """
        Check every rule of every field, then the rules joining several fields.

        Raises:
            ValidationError: listing every problem found.
        """
        problems: list[Problem] = []
        for field in attrs.fields(type(self)):
            doc = _field_doc(field)
            value = getattr(self, field.name)
            if value is None:
                if doc.required:
                    problems.append(Problem(field=field.name, value=None, rule="is required"))
                continue
            doc.rule.check(field.name, value, problems)
        self._check_combinations(problems)
        if problems:
            raise ValidationError(problems, model=self.model)

    def _check_combinations(self, problems: list[Problem]) -> None:
        """Append problems of rules joining several fields (none by default)."""

    @classmethod
    def spec(cls) -> ModelSpec:
        """This model's fields, defaults and limits, read from the class itself."""
        fields = []
        for field in attrs.fields(cls):
            doc = _field_doc(field)
            rule = doc.rule
            fields.append(
                FieldSpec(
                    name=field.name,
                    type=rule.type_name,
                    required=doc.required,
                    default=doc.default,
                    limits=rule.describe(),
                    description=doc.doc,
                    local_file=getattr(rule, "images", None) is not None,
                )
            )
        summary = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        return ModelSpec(
            model=cls.model,
            request_class=cls,
            summary=summary,
            fields=tuple(fields),
            image_files=cls._image_limits.describe(),
            rules=cls._rules,
        )


def _document(cls: type[M]) -> type[M]:
    """Append the generated field list to the class docstring."""
    spec = cls.spec()
    lines = ["", f"Model id: `{spec.model}`.", "", "Fields (unset fields are not sent):", ""]
    for f in spec.fields:
        flags = "required" if f.required else "optional"
        if f.default is not None:
            flags += f", API default {f.default!r}"
        lines.append(f"- `{f.name}` ({f.type}, {flags}): {f.description} [{f.limits}]")
    lines += ["", f"Image files: {spec.image_files}."]
    lines += [f"Rule: {rule}" for rule in spec.rules]
    cls.__doc__ = (
        (cls.__doc__ or "").rstrip()
        + "\n"
        + "\n".join(f"    {line}".rstrip() for line in lines)
        + "\n"
    )
    return cls


_SEEDANCE_PROMPT = Text(
    required=True,
    # "<= 500 Chinese chars or <= 1000 English words" (main page); the fast
    # page says "recommended"; we reject above it, counting each script apart.
    max_chinese=500,
    max_words=1000,
)
_ASPECT_RATIOS = Choice(values=("16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "adaptive"))
_SEEDANCE_QUALITY = Choice(values=("480p", "720p"))
_SEEDANCE_DURATION = Integer(min=4, max=15, unit="seconds")
_SEED = Integer(min=1, max=2147483647)


@_document
@attrs.frozen(kw_only=True)
class SeedanceImageToVideo(ModelRequest):
    """
    Seedance 2.0 image-to-video: 1 image (first frame) or 2 (first and last frame).

    No realistic human faces: the server rejects them.
    """

    model: ClassVar[str] = "seedance-2.0-image-to-video"
    _image_limits: ClassVar[ImageLimits] = ImageLimits(
        formats=("jpeg", "png", "webp"),
        max_bytes=30 * _MIB,
        min_side=300,
        max_side=6000,
        min_aspect=0.4,
        max_aspect=2.5,
    )

    prompt: str = attrs.field(
        metadata=_meta(_SEEDANCE_PROMPT, required=True, doc="motion, camera, atmosphere")
    )
    image_urls: tuple[str | Path, ...] = attrs.field(
        converter=_items,
        metadata=_meta(
            UrlList(min_items=1, max_items=2, images=_image_limits),
            required=True,
            doc="first frame, or first and last frame",
        ),
    )
    duration: int | None = attrs.field(
        default=None,
        converter=_whole_number,
        metadata=_meta(_SEEDANCE_DURATION, default=5, doc="video length"),
    )
    quality: str | None = attrs.field(
        default=None, metadata=_meta(_SEEDANCE_QUALITY, default="720p", doc="resolution")
    )
    aspect_ratio: str | None = attrs.field(
        default=None,
        metadata=_meta(_ASPECT_RATIOS, default="16:9", doc="adaptive follows the first image"),
    )
    generate_audio: bool | None = attrs.field(
        default=None, metadata=_meta(Boolean(), default=True, doc="synchronized audio")
    )
    callback_url: str | None = attrs.field(
        default=None, metadata=_meta(CallbackUrl(), doc="called when the task ends")
    )


@_document
@attrs.frozen(kw_only=True)
class SeedanceFastImageToVideo(ModelRequest):
    """
    Seedance 2.0 fast image-to-video: the faster, cheaper Seedance variant.

    Same fields as `SeedanceImageToVideo`; its page also lists bmp, tiff and
    gif images (of which only gif can be uploaded from a local file).
    """

    model: ClassVar[str] = "seedance-2.0-fast-image-to-video"
    _image_limits: ClassVar[ImageLimits] = ImageLimits(
        formats=("jpeg", "png", "webp", "bmp", "tiff", "gif"),
        max_bytes=30 * _MIB,
        min_side=300,
        max_side=6000,
        min_aspect=0.4,
        max_aspect=2.5,
    )

    prompt: str = attrs.field(
        metadata=_meta(_SEEDANCE_PROMPT, required=True, doc="motion, camera, atmosphere")
    )
    image_urls: tuple[str | Path, ...] = attrs.field(
        converter=_items,
        metadata=_meta(
            UrlList(min_items=1, max_items=2, images=_image_limits),
            required=True,
            doc="first frame, or first and last frame",
        ),
    )
    duration: int | None = attrs.field(
        default=None,
        converter=_whole_number,
        metadata=_meta(_SEEDANCE_DURATION, default=5, doc="video length"),
    )
    quality: str | None = attrs.field(
        default=None, metadata=_meta(_SEEDANCE_QUALITY, default="720p", doc="resolution")
    )
    aspect_ratio: str | None = attrs.field(
        default=None,
        metadata=_meta(_ASPECT_RATIOS, default="16:9", doc="adaptive follows the first image"),
    )
    generate_audio: bool | None = attrs.field(
        default=None, metadata=_meta(Boolean(), default=True, doc="synchronized audio")
    )
    callback_url: str | None = attrs.field(
        default=None, metadata=_meta(CallbackUrl(), doc="called when the task ends")
    )


@_document
@attrs.frozen(kw_only=True)
class HappyHorseImageToVideo(ModelRequest):
    """
    HappyHorse 1.0 image-to-video: one first-frame image, optional prompt.
    """

    model: ClassVar[str] = "happyhorse-1.0-image-to-video"
    _image_limits: ClassVar[ImageLimits] = ImageLimits(
        formats=("jpeg", "png", "webp"),
        max_bytes=10 * _MIB,
        min_side=300,
        min_aspect=0.4,
        max_aspect=2.5,
    )

    image_urls: tuple[str | Path, ...] = attrs.field(
        converter=_items,
        metadata=_meta(
            UrlList(min_items=1, max_items=1, images=_image_limits),
            required=True,
            doc="the first frame",
        ),
    )
    prompt: str | None = attrs.field(
        default=None,
        metadata=_meta(
            # The page says the excess is truncated, so nothing is rejected.
            Text(note="Chinese <= 2500 / other <= 5000 chars, truncated by the API"),
            doc="what happens; without it the image drives the motion",
        ),
    )
    quality: str | None = attrs.field(
        default=None,
        metadata=_meta(Choice(values=("720p", "1080p")), default="720p", doc="resolution"),
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


_WAN_MODES = ("first_frame", "first_last_frame", "video_continuation")
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


@_document
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
        max_bytes=20 * _MIB,
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

    generation_mode: str | None = attrs.field(
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
    quality: str | None = attrs.field(
        default=None,
        metadata=_meta(Choice(values=("720p", "1080p")), default="720p", doc="resolution"),
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


@_document
@attrs.frozen(kw_only=True)
class Wan25ImageToVideo(ModelRequest):
    """
    Wan 2.5 image-to-video: one first-frame image and a prompt.
    """

    model: ClassVar[str] = "wan2.5-image-to-video"
    _image_limits: ClassVar[ImageLimits] = ImageLimits(
        formats=("jpeg", "png", "bmp", "webp"),
        max_bytes=10 * _MIB,
        min_side=360,
        max_side=2000,
        alpha=False,
    )

    prompt: str = attrs.field(
        metadata=_meta(Text(required=True, max_chars=1000), required=True, doc="what happens")
    )
    image_urls: tuple[str | Path, ...] = attrs.field(
        converter=_items,
        metadata=_meta(
            UrlList(min_items=1, max_items=1, images=_image_limits),
            required=True,
            doc="the first frame",
        ),
    )
    duration: int | None = attrs.field(
        default=None,
        converter=_whole_number,
        # The page documents no default (its example sends 5).
        metadata=_meta(Integer(min=5, max=10, choices=(5, 10), unit="seconds"), doc="video length"),
    )
    callback_url: str | None = attrs.field(
        default=None, metadata=_meta(CallbackUrl(), doc="called when the task ends")
    )


def _freeze(params: Mapping[str, Any]) -> Any:
    value: object = params  # typed for callers; anything may arrive at run time
    return MappingProxyType(dict(value)) if isinstance(value, Mapping) else value


@attrs.frozen(kw_only=False)
class RawRequest:
    """
    A request for any model id, sent as is, with no validation of its fields.

    Use it for models this SDK does not know yet (or to bypass a check you
    know to be stale); `params` are the JSON fields besides `model`. A
    `pathlib.Path` among the params (or in a list among them) is uploaded
    first, like an image field of a known model.

    Raises:
        ValidationError: `model` is not a non-empty string, `params` is not a
            mapping with string keys, or `params` names a different `model`.
    """

    model: str
    params: Mapping[str, Any] = attrs.field(factory=dict, converter=_freeze)

    def __attrs_post_init__(self) -> None:
        """Check only the shape of the request."""
        problems: list[Problem] = []
        # Typed for callers; anything may arrive at run time.
        model: object = self.model
        params: object = self.params
        if not isinstance(model, str) or not model.strip():
            problems.append(Problem(field="model", value=model, rule="must be a non-empty string"))
        if not isinstance(params, Mapping):
            problems.append(Problem(field="params", value=params, rule="must be a mapping"))
        else:
            problems.extend(
                Problem(field="params", value=key, rule="keys must be strings")
                for key in params
                if not isinstance(key, str)
            )
            if "model" in params and params["model"] != model:
                problems.append(
                    Problem(
                        field="params",
                        value=params["model"],
                        rule=f"names model {params['model']!r}, not {model!r}",
                    )
                )
        if problems:
            raise ValidationError(problems, model=model if isinstance(model, str) else None)


_CLASSES: tuple[type[ModelRequest], ...] = (
    SeedanceImageToVideo,
    SeedanceFastImageToVideo,
    HappyHorseImageToVideo,
    Wan27ImageToVideo,
    Wan25ImageToVideo,
)

#: Model id -> request class, for every model this SDK validates.
MODELS: Mapping[str, type[ModelRequest]] = MappingProxyType({cls.model: cls for cls in _CLASSES})


def build_request(model_or_request: str | Request, params: Mapping[str, Any]) -> Request:
    """
    The request object for `submit(model_or_request, **params)`.

    Unknown keywords, missing required fields and broken rules are reported
    together in one `ValidationError`; never a `TypeError`.

    Raises:
        ValidationError: an unknown model id (naming `RawRequest` as the way to
            send it anyway), unknown or missing fields, broken rules; or params
            given alongside a request object.
    """
    if not isinstance(model_or_request, str):
        if not isinstance(model_or_request, RawRequest | ModelRequest):
            raise ValidationError(
                f"expected a model id or a request object, not {type(model_or_request).__name__}"
            )
        if params:
            raise ValidationError(
                [
                    Problem(
                        field=name,
                        value=value,
                        rule="pass either a request object or keyword parameters, not both",
                    )
                    for name, value in params.items()
                ],
                model=model_or_request.model,
            )
        return model_or_request
    model = model_or_request
    cls = MODELS.get(model)
    if cls is None:
        hint = did_you_mean(model, tuple(MODELS))
        raise ValidationError(
            f"unknown model {model!r};{hint} known models: {', '.join(sorted(MODELS))}. "
            f"To send it anyway, use RawRequest({model!r}, params)"
        )
    names = [field.name for field in attrs.fields(cls)]
    problems: list[Problem] = []
    kwargs: dict[str, Any] = {}
    for key, value in params.items():
        if key in names:
            kwargs[key] = value
        elif key == "model":
            if value != model:
                rule = f"names a different model than {model!r}; give the model once"
                problems.append(Problem(field="model", value=value, rule=rule))
        else:
            hint = did_you_mean(str(key), names)
            rule = f"unknown field for {model};{hint} valid fields: {', '.join(names)}"
            problems.append(Problem(field=str(key), value=value, rule=rule))
    for field in attrs.fields(cls):
        # A missing required field is passed as None so that its rule reports
        # it together with every other problem, instead of a TypeError.
        if field.name not in kwargs and field.default is attrs.NOTHING:
            kwargs[field.name] = None
    try:
        request = cls(**kwargs)
    except ValidationError as exc:
        problems.extend(exc.problems)
    if problems:
        raise ValidationError(problems, model=model)
    return request


def _plain(model: str, field: str, value: object, *, paths: bool = False) -> object:
    """
    A field's JSON value: tuples become lists; a left-over Path is an error,
    or with `paths` the text "local file <path>".
    """
    items = value if isinstance(value, list | tuple) else None
    if paths:
        if items is not None:
            return [f"local file {item}" if isinstance(item, Path) else item for item in items]
        return f"local file {value}" if isinstance(value, Path) else value
    for item in items if items is not None else (value,):
        if isinstance(item, Path):
            rule = (
                "is a local file that was not uploaded; upload it first "
                "(client.submit does this) and pass its URL"
            )
            raise ValidationError([Problem(field=field, value=item, rule=rule)], model=model)
    return list(items) if items is not None else value


def request_body(request: Request, *, paths: bool = False) -> dict[str, Any]:
    """
    The JSON body for `POST /v1/videos/generations`, `model` first.

    Unset (None) fields of a model request are left out. With `paths`, a
    local `Path` is written as "local file <path>" (for a fingerprint of the
    request as given, before uploads), not refused.

    Raises:
        ValidationError: a local `Path` is still in the request (without
            `paths`), or `request` is not a request object.
    """
    body: dict[str, Any] = {"model": request.model}
    if isinstance(request, RawRequest):
        for key, value in request.params.items():
            if key != "model":
                body[key] = _plain(request.model, key, value, paths=paths)
        return body
    if not isinstance(request, ModelRequest):
        raise ValidationError(f"not a request object: {type(request).__name__}")
    for field in attrs.fields(type(request)):
        value = getattr(request, field.name)
        if value is not None:
            body[field.name] = _plain(request.model, field.name, value, paths=paths)
    return body


def _values(request: Request) -> Iterator[tuple[str, object]]:
    if isinstance(request, RawRequest):
        yield from request.params.items()
    elif isinstance(request, ModelRequest):
        for field in attrs.fields(type(request)):
            yield field.name, getattr(request, field.name)


def local_files(request: Request) -> tuple[Path, ...]:
    """The `pathlib.Path` values in the request, in field order, without repeats."""
    found: dict[Path, None] = {}
    for _, value in _values(request):
        for item in value if isinstance(value, list | tuple) else (value,):
            if isinstance(item, Path):
                found.setdefault(item)
    return tuple(found)


def replace_files(request: R, urls: Mapping[Path, str]) -> R:
    """
    The request with each `Path` in it replaced by `urls[path]`.

    Paths missing from `urls` stay. The new request is validated again.

    Raises:
        ValidationError: a replacement URL breaks a rule.
    """

    def swap(value: object) -> object:
        return urls.get(value, value) if isinstance(value, Path) else value

    def swap_all(value: object) -> object:
        if isinstance(value, tuple):
            return tuple(swap(item) for item in value)
        if isinstance(value, list):
            return [swap(item) for item in value]
        return swap(value)

    changes = {name: swap_all(value) for name, value in _values(request)}
    if isinstance(request, RawRequest):
        if changes == dict(request.params):
            return request
        return attrs.evolve(request, params=changes)
    if not isinstance(request, ModelRequest):
        return request
    changed = {name: value for name, value in changes.items() if value != getattr(request, name)}
    if not changed:
        return request
    # The attrs mypy plugin cannot see that every ModelRequest is an attrs class.
    return cast(R, attrs.evolve(cast(Any, request), **changed))


def model_specs() -> tuple[ModelSpec, ...]:
    """The spec of every model in `MODELS`, in a stable order."""
    return tuple(cls.spec() for cls in MODELS.values())
