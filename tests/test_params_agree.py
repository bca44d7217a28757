"""
The TypedDicts and Literal types that type checkers see agree with the request
classes that check requests at run time.

`evolink_async/_models/params.py` is written out by hand (a type checker
cannot read a TypedDict made at run time), so every one of its types is
checked here against the classes and their `spec()`: the model ids
(`ModelId`), each `<Model>Params` (keys in the page's order, required or not,
the very types of the class's constructor), each `<Model>JobDict` (the same
plus `id`, `model`, `metadata`), the enum-like fields' Literal types against
their rules, and the client's overloads (one per model id, its fields the
model's TypedDict).
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import attrs
import pytest

import evolink_async
import evolink_async.models as models
from evolink_async import EvoLinkClient
from evolink_async._batch.jobs import JOB_KEYS
from evolink_async._models.base import ModelRequest, _field_doc
from evolink_async._models.rules import Choice, Integer

CLASSES = list(models.MODELS.values())
IDS = [cls.model for cls in CLASSES]


def params_of(cls: type[ModelRequest]) -> Any:
    return getattr(models, f"{cls.__name__}Params")


def job_dict_of(cls: type[ModelRequest]) -> Any:
    return getattr(models, f"{cls.__name__}JobDict")


def members(tp: object) -> tuple[object, ...]:
    """The members of a union (`X | None` -> (X, None)), or (tp,)."""
    if get_origin(tp) in (Union, types.UnionType):
        return get_args(tp)
    return (tp,)


def without_none(tp: object) -> object:
    rest = [member for member in members(tp) if member is not type(None)]
    return rest[0] if len(rest) == 1 else Union[tuple(rest)]  # noqa: UP007


def literal_values(tp: object) -> tuple[object, ...] | None:
    """The values of a Literal type (through `| None`), or None if it is no Literal."""
    inner = without_none(tp)
    return get_args(inner) if get_origin(inner) is Literal else None


def constructor_types(cls: type[ModelRequest]) -> dict[str, object]:
    """
    Each keyword of `cls(...)` and the type a type checker gives it: the
    converter's parameter where the field has a converter (as the attrs
    plugins read it), else the field's own type.
    """
    attrs.resolve_types(cls)
    found: dict[str, object] = {}
    for field in attrs.fields(cls):
        converter: Any = field.converter
        if converter is None:
            found[field.name] = field.type
        else:
            hints = get_type_hints(converter)
            first = next(iter(inspect.signature(converter).parameters))
            found[field.name] = hints[first]
    return found


def test_model_id_is_every_model_with_a_class() -> None:
    assert get_args(models.ModelId) == tuple(models.MODELS)
    assert evolink_async.ModelId is models.ModelId


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_params_have_the_fields_of_the_spec(cls: type[ModelRequest]) -> None:
    params = params_of(cls)
    spec = cls.spec()
    assert list(get_type_hints(params)) == [f.name for f in spec.fields]
    assert params.__required_keys__ == {f.name for f in spec.fields if f.required}
    assert params.__optional_keys__ == {f.name for f in spec.fields if not f.required}


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_params_have_the_types_of_the_constructor(cls: type[ModelRequest]) -> None:
    hints = get_type_hints(params_of(cls))
    expected = constructor_types(cls)
    assert hints == expected
    spec = {f.name: f for f in cls.spec().fields}
    for name, tp in hints.items():
        # Required fields take no None; optional ones take None ("unset").
        assert (type(None) in members(tp)) is (not spec[name].required), name


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_literal_types_are_the_rules_values(cls: type[ModelRequest]) -> None:
    hints = get_type_hints(params_of(cls))
    spec = {f.name: f for f in cls.spec().fields}
    for field in attrs.fields(cls):
        rule = _field_doc(field).rule
        values = literal_values(hints[field.name])
        if isinstance(rule, Choice):
            assert values == rule.values, field.name
            assert spec[field.name].limits == ", ".join(rule.values)
        elif isinstance(rule, Integer) and rule.choices is not None:
            assert values == rule.choices, field.name
            assert spec[field.name].limits.startswith(" or ".join(map(str, rule.choices)))
        else:
            assert values is None, f"{field.name} is a Literal but its rule is {rule!r}"


def test_the_enum_like_fields() -> None:
    # The rules and the Literal types come from one source (`get_args`), so a
    # Literal holding a value its rule refuses, or the reverse, cannot be written.
    literal_fields = {
        (cls.model, field.name)
        for cls in CLASSES
        for field in attrs.fields(cls)
        if literal_values(get_type_hints(params_of(cls))[field.name]) is not None
    }
    assert literal_fields == {
        ("seedance-2.0-image-to-video", "quality"),
        ("seedance-2.0-image-to-video", "aspect_ratio"),
        ("seedance-2.0-fast-image-to-video", "quality"),
        ("seedance-2.0-fast-image-to-video", "aspect_ratio"),
        ("happyhorse-1.0-image-to-video", "quality"),
        ("wan2.7-image-to-video", "generation_mode"),
        ("wan2.7-image-to-video", "quality"),
        ("wan2.5-image-to-video", "duration"),
    }


@pytest.mark.parametrize("cls", CLASSES, ids=IDS)
def test_job_dicts_are_the_params_and_the_job_keys(cls: type[ModelRequest]) -> None:
    job = job_dict_of(cls)
    params = params_of(cls)
    hints = get_type_hints(job)
    assert set(hints) == set(get_type_hints(params)) | JOB_KEYS
    assert job.__required_keys__ == params.__required_keys__ | {"model"}
    assert hints["model"] == Literal[cls.model]
    assert {name: hints[name] for name in get_type_hints(params)} == get_type_hints(params)
    # What `read_job` takes for an id and metadata (None: not given).
    assert hints["id"] == str | int | None
    assert get_origin(without_none(hints["metadata"])) is not None


def test_job_dict_is_the_union_of_every_models_job_dict() -> None:
    assert set(get_args(models.JobDict)) == {job_dict_of(cls) for cls in CLASSES}


@pytest.mark.parametrize("method", [EvoLinkClient.submit, EvoLinkClient.generate])
def test_the_client_has_one_overload_per_model(method: Callable[..., Any]) -> None:
    overloads = typing.get_overloads(method)
    by_model: dict[object, object] = {}
    request_overloads = 0
    for overload in overloads:
        hints = get_type_hints(overload)
        target = hints["model_or_request"]
        if get_origin(target) is Literal:
            (model,) = get_args(target)
            unpacked = hints["params"]
            assert get_origin(unpacked) is typing.Unpack
            by_model[model] = get_args(unpacked)[0]
        else:
            assert target == models.Request
            assert "params" not in hints  # no fields beside a request object
            request_overloads += 1
    assert request_overloads == 1
    assert by_model == {cls.model: params_of(cls) for cls in CLASSES}
    # Keyword options are the same in every overload as in the implementation.
    options = [
        name for name, p in inspect.signature(method).parameters.items() if p.kind is p.KEYWORD_ONLY
    ]
    for overload in overloads:
        keywords = [
            name
            for name, p in inspect.signature(overload).parameters.items()
            if p.kind is p.KEYWORD_ONLY
        ]
        assert keywords == options


@pytest.mark.parametrize(
    "name",
    [name for name in models.__all__ if name.endswith(("Params", "JobDict"))],
)
def test_typed_dicts_are_public_at_both_faces(name: str) -> None:
    assert getattr(evolink_async, name) is getattr(models, name)
    value = getattr(models, name)
    if inspect.isclass(value):
        assert typing.is_typeddict(value)
        assert value.__doc__
