"""
Request objects for every model evolink_async knows, and `RawRequest` for the
ones it does not know yet.

Each class is frozen, keyword-only, with fields named exactly as the API names
them; constructing one with a value that breaks a documented rule raises
`ValidationError` listing every problem. Optional fields default to None
("unset": left out of the JSON body, so the server applies its documented
default); the documented defaults are in each class's docstring and in
`ModelRequest.spec()`.
"""

from ._models import (
    MODELS,
    FieldSpec,
    HappyHorseImageToVideo,
    ModelRequest,
    ModelSpec,
    RawRequest,
    Request,
    SeedanceFastImageToVideo,
    SeedanceImageToVideo,
    Wan25ImageToVideo,
    Wan27ImageToVideo,
)
from ._public import rehome

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
]

rehome(__name__, globals(), __all__)
del rehome
