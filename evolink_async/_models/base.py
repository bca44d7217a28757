"""
The request framework: what every request object is made of.

A model's request class (in `seedance.py`, `happyhorse.py` and `wan.py`, one
file per vendor) is a `@attrs.frozen(kw_only=True)` subclass of
`ModelRequest`, its fields named and ordered as the model's page lists them,
and validated at construction: every documented rule is checked and *all*
problems are raised together as one `ValidationError`. Each field carries its
rule (from `rules.py`) in its attrs metadata (`_meta`), so `ModelRequest.spec()`,
the class docstrings (`_request_class`) and `evolink-async models` are generated
from what is actually checked. Unknown, missing and positional arguments are a
`ValidationError` too, reported with the rule problems of the fields given.

Defaults versus "unset": every optional field defaults to `None`, meaning
*unset*, and unset fields are left out of the JSON body, so the server applies
its own default and we send exactly what the user set. The default each page
documents (seedance `duration` 5, `quality` "720p", ...) is kept as
`FieldSpec.default` and shown in the docstrings and by `evolink-async models`;
it is documentation, never sent on the user's behalf.

Integers: a float with no fraction (`5.0`) is a JSON integer, so the
`_whole_number` converter accepts it and it is sent as `5` (wan2.7 even types
`duration` as "number"); `5.5`, `"5"` and `True` are left for the rule to
reject. A `pathlib.Path` in an image field is checked at construction (a `stat`
and a read of the header bytes, see `images.py`).

`RawRequest` is the way around all of this: any model id, fields sent as given.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias, TypeVar

import attrs

from .._errors import Problem, ValidationError
from .images import ImageLimits
from .rules import Rule, UrlList, did_you_mean

__all__ = [
    "FieldSpec",
    "M",
    "ModelRequest",
    "ModelSpec",
    "R",
    "RawRequest",
    "Request",
    "sort_params",
]


#: Any request type: what `replace_files` takes and gives back.
R = TypeVar("R", bound="Request")
#: A model's request class, for class decorators such as `_request_class`.
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
    """
    The attrs metadata of one request field.

    Args:
        rule: what the value must be, checked at construction.
        required: whether the field must be given (and not None).
        default: the page's documented default, shown but never sent.
        doc: what the field does, in a few words.
    """
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


def first_frame_meta(images: ImageLimits) -> dict[str, _FieldDoc]:
    """
    The metadata of the `image_urls` field of a model that takes exactly one
    image, the first frame.

    The field itself is written out in each class, with `converter=_items`,
    so that type checkers see that a list is accepted.
    """
    return _meta(
        UrlList(min_items=1, max_items=1, images=images), required=True, doc="the first frame"
    )


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


def _request_class(cls: type[M]) -> type[M]:
    """
    Finish a request class: its generated field list appended to its
    docstring, and its constructor made to report unknown, missing and
    positional arguments as a `ValidationError` (with the rule problems of the
    fields that were given), never attrs' `TypeError`.
    """
    _check_arguments(cls)
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


def sort_params(
    cls: type[ModelRequest], params: Mapping[str, Any]
) -> tuple[dict[str, Any], list[Problem]]:
    """
    `params` split for `cls(...)`: the keywords it takes (a missing required
    field given as None, so that its rule reports it with every other
    problem), and a problem for each unknown one, with a did-you-mean.
    """
    names = [field.name for field in attrs.fields(cls)]
    kwargs: dict[str, Any] = {}
    problems: list[Problem] = []
    for key, value in params.items():
        if key in names:
            kwargs[key] = value
        else:
            hint = did_you_mean(str(key), names)
            rule = f"unknown field for {cls.model};{hint} valid fields: {', '.join(names)}"
            problems.append(Problem(field=str(key), value=value, rule=rule))
    for field in attrs.fields(cls):
        if field.name not in kwargs and field.default is attrs.NOTHING:
            kwargs[field.name] = None
    return kwargs, problems


def _check_arguments(cls: type[M]) -> None:
    """Wrap the attrs-made `__init__` of `cls` so that bad arguments are a `ValidationError`."""
    init = cls.__init__
    names = frozenset(field.name for field in attrs.fields(cls))
    required = tuple(field.name for field in attrs.fields(cls) if field.default is attrs.NOTHING)

    @functools.wraps(init)
    def checked_init(self: Any, *args: Any, **params: Any) -> None:
        if not args and params.keys() <= names and all(name in params for name in required):
            init(self, **params)
            return
        kwargs, problems = sort_params(cls, params)
        if args:
            rule = f"{cls.__name__} takes keyword arguments only, not {len(args)} positional"
            problems.insert(0, Problem(field=None, value=args, rule=rule))
        try:
            init(self, **kwargs)
        except ValidationError as exc:
            problems.extend(exc.problems)
        raise ValidationError(problems, model=cls.model)

    # Type checkers keep seeing the attrs signature; only the errors change.
    cls.__init__ = checked_init  # type: ignore[method-assign]


def _freeze(params: Mapping[str, Any]) -> Any:
    value: object = params  # typed for callers; anything may arrive at run time
    return MappingProxyType(dict(value)) if isinstance(value, Mapping) else value


#: How deep JSON values in `RawRequest` params may nest (no API body nests
#: anywhere near this; the json module itself gives up near 1000).
_MAX_DEPTH = 100
#: Problems reported per `RawRequest` before the check stops looking.
_MAX_PROBLEMS = 50


def _json_problems(field: str, value: object, out: list[Problem], *, depth: int = 0) -> None:
    """
    A problem for each part of `value` that `json.dumps` (or a strict JSON
    reader) cannot take: NaN and infinities, non-string keys, lone surrogates,
    integers Python will not print, cycles, and anything not a JSON type. A
    `Path` is accepted at depth 0 and 1 only (a param, or an item of a list
    param), where it is uploaded; deeper, it would never be.
    """
    if len(out) >= _MAX_PROBLEMS:
        return
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                out.append(Problem(field=field, value=value, rule=_SURROGATE))
        return
    if isinstance(value, int):
        try:
            int.__repr__(value)
        except ValueError:  # over sys.get_int_max_str_digits(): json.dumps raises too
            out.append(Problem(field=field, value=value, rule="is an integer too long to send"))
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            rule = "must be a finite number (JSON has no NaN or infinity)"
            out.append(Problem(field=field, value=value, rule=rule))
        return
    if isinstance(value, Path):
        if depth > 1:
            rule = (
                "is a local file nested too deep to be uploaded: a Path may be a param's "
                "value or an item of a list param"
            )
            out.append(Problem(field=field, value=value, rule=rule))
        return
    if depth >= _MAX_DEPTH:
        out.append(Problem(field=field, value=value, rule=f"nests deeper than {_MAX_DEPTH} levels"))
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if item is value:
                out.append(Problem(field=field, value=value, rule="contains itself"))
                return
            _json_problems(f"{field}[{index}]", item, out, depth=depth + 1)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                rule = f"keys must be strings, not {type(key).__name__} ({key!r})"
                out.append(Problem(field=field, value=value, rule=rule))
                continue
            if item is value:
                out.append(Problem(field=field, value=value, rule="contains itself"))
                return
            _json_problems(f"{field}.{key}", key, out, depth=depth + 1)
            _json_problems(f"{field}.{key}", item, out, depth=depth + 1)
        return
    rule = (
        f"is not a JSON value ({type(value).__name__}); use None, True/False, a number, "
        "a string, a list or a dict (or a pathlib.Path to upload)"
    )
    out.append(Problem(field=field, value=value, rule=rule))


_SURROGATE = "is not valid Unicode text (it holds a lone surrogate)"


@attrs.frozen(kw_only=False)
class RawRequest:
    """
    A request for any model id, sent as is, with no validation of its fields.

    Use it for models this SDK does not know yet (or to bypass a check you
    know to be stale); `params` are the JSON fields besides `model`. A
    `pathlib.Path` among the params (or in a list among them) is uploaded
    first, like an image field of a known model. The params must be JSON:
    None, booleans, finite numbers, strings, lists and dicts with string keys.

    Raises:
        ValidationError: `model` is not a non-empty string, `params` is not a
            mapping with string keys, a value is not JSON (NaN, infinity, a
            set, an object, ...), `params` names a different `model`, or an
            argument is unknown.
    """

    model: str
    params: Mapping[str, Any] = attrs.field(factory=dict, converter=_freeze)

    def __attrs_post_init__(self) -> None:
        """Check the shape of the request, and that every param is JSON."""
        problems: list[Problem] = []
        # Typed for callers; anything may arrive at run time.
        model: object = self.model
        params: object = self.params
        if not isinstance(model, str) or not model.strip():
            problems.append(Problem(field="model", value=model, rule="must be a non-empty string"))
        if not isinstance(params, Mapping):
            problems.append(Problem(field="params", value=params, rule="must be a mapping"))
        else:
            for key, value in params.items():
                if not isinstance(key, str):
                    problems.append(Problem(field="params", value=key, rule="keys must be strings"))
                    continue
                _json_problems(key, key, problems)
                _json_problems(key, value, problems)
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


def _check_raw_arguments(init: Callable[..., None]) -> Callable[..., None]:
    """The attrs-made `RawRequest.__init__`, with bad arguments a `ValidationError`."""

    @functools.wraps(init)
    def checked_init(self: Any, *args: Any, **kwargs: Any) -> None:
        free = _RAW_ARGUMENTS[len(args) :]
        if len(args) <= 2 and (args or "model" in kwargs) and all(name in free for name in kwargs):
            init(self, *args, **kwargs)
            return
        given = dict(zip(_RAW_ARGUMENTS, args, strict=False))
        problems: list[Problem] = []
        if len(args) > len(_RAW_ARGUMENTS):
            rule = f"RawRequest takes model and params, not {len(args)} positional arguments"
            problems.append(Problem(field=None, value=args, rule=rule))
        for name, value in kwargs.items():
            if name not in _RAW_ARGUMENTS:
                hint = did_you_mean(name, _RAW_ARGUMENTS)
                rule = f"unknown argument;{hint} RawRequest takes model and params"
                problems.append(Problem(field=name, value=value, rule=rule))
            elif name in given:
                problems.append(Problem(field=name, value=value, rule="is given twice"))
            else:
                given[name] = value
        if "model" not in given:
            problems.append(Problem(field="model", value=None, rule="is required"))
        else:
            try:
                init(self, **given)
            except ValidationError as exc:
                problems.extend(exc.problems)
        model = given.get("model")
        raise ValidationError(problems, model=model if isinstance(model, str) else None)

    return checked_init


_RAW_ARGUMENTS = ("model", "params")
# Type checkers keep seeing the attrs signature; only the errors change.
RawRequest.__init__ = _check_raw_arguments(RawRequest.__init__)  # type: ignore[method-assign]

#: What `submit`, `generate` and `Job` take: a model's request class or a
#: `RawRequest`, the two kinds of request object the client can send (each
#: has `model`, the API's model id). A union, not a protocol: the client sends
#: nothing else, and a protocol's `model` property is not met by the request
#: classes' class attribute in every type checker (pyright).
Request: TypeAlias = ModelRequest | RawRequest
