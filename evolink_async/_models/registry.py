"""
The models this SDK validates: model id -> request class, and params -> request.

`build_request` is how `client.submit(model_id, **params)` becomes a request
object. Required fields are required keyword arguments of each class, so type
checkers flag a missing one; at run time a missing or unknown field is a
`ValidationError` like any other problem, never a `TypeError`, whether the
class is called directly or through `build_request`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .._errors import Problem, ValidationError
from .base import ModelRequest, ModelSpec, RawRequest, Request, sort_params
from .happyhorse import HappyHorseImageToVideo
from .rules import did_you_mean
from .seedance import SeedanceFastImageToVideo, SeedanceImageToVideo
from .wan import Wan25ImageToVideo, Wan27ImageToVideo

__all__ = ["MODELS", "build_request", "model_specs"]

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
                f"model_or_request={model_or_request!r}: expected a model id or a request "
                f"object, not {type(model_or_request).__name__}"
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
    fields = {key: value for key, value in params.items() if key != "model"}
    kwargs, problems = sort_params(cls, fields)
    if "model" in params and params["model"] != model:
        rule = f"names a different model than {model!r}; give the model once"
        problems.insert(0, Problem(field="model", value=params["model"], rule=rule))
    try:
        request = cls(**kwargs)
    except ValidationError as exc:
        problems.extend(exc.problems)
    if problems:
        raise ValidationError(problems, model=model)
    return request


def model_specs() -> tuple[ModelSpec, ...]:
    """The spec of every model in `MODELS`, in a stable order."""
    return tuple(cls.spec() for cls in MODELS.values())
