"""
Requests on their way out: the JSON body, and the local files to upload first.

`request_body` turns a request object into the JSON body of
`POST /v1/videos/generations`; unset (None) fields are left out, so the server
applies its own defaults. A `pathlib.Path` must be uploaded before that: the
client asks `local_files` which ones a request holds, uploads them, and sends
`replace_files(request, urls)`, the request with each `Path` swapped for its URL
and validated again.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import attrs

from .._errors import Problem, ValidationError
from .base import ModelRequest, R, RawRequest, Request

__all__ = ["local_files", "replace_files", "request_body"]


def _plain(model: str, field: str, value: object, *, paths: bool = False) -> object:
    """
    A field's JSON value: tuples become lists; a left-over Path is an error,
    or with `paths` the text "local file <path>".
    """
    items = value if isinstance(value, list | tuple) else None
    if paths:
        if items is not None:
            return [
                f"local file {item}" if isinstance(item, Path) else _json(item) for item in items
            ]
        return f"local file {value}" if isinstance(value, Path) else _json(value)
    for item in items if items is not None else (value,):
        if isinstance(item, Path):
            rule = (
                "is a local file that was not uploaded; upload it first "
                "(client.submit does this) and pass its URL"
            )
            raise ValidationError([Problem(field=field, value=item, rule=rule)], model=model)
    return _json(value)


def _json(value: object) -> object:
    """`value` with every mapping a dict and every tuple a list, as `json.dumps` needs."""
    if isinstance(value, list | tuple):
        return [_json(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _json(item) for key, item in value.items()}
    return value


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
    changed = {name: value for name, value in changes.items() if value != getattr(request, name)}
    if not changed:
        return request
    # The attrs mypy plugin cannot see that every ModelRequest is an attrs class.
    return cast(R, attrs.evolve(cast(Any, request), **changed))
