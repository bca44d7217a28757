"""
Request objects for every model evolink_async knows, and `RawRequest` for the
ones it does not know yet.

Each class is frozen, keyword-only, with fields named exactly as the API names
them; constructing one with a value that breaks a documented rule raises
`ValidationError` listing every problem. Optional fields default to None
("unset": left out of the JSON body, so the server applies its documented
default); the documented defaults are in each class's docstring and in
`ModelRequest.spec()`.

For type checkers: `<Model>Params` are the same fields as `TypedDict`s (what
`client.submit(model_id, **params)` takes, per model id), `<Model>JobDict`
and their union `JobDict` type batch job dicts, and `ModelId` is every model
id with a class. An editor then flags `promt=`, `quality="720P"` or an unknown
model id; the runtime checks are the classes' own.
"""

from ._models import (
    MODELS,
    FieldSpec,
    HappyHorseImageToVideo,
    HappyHorseImageToVideoJobDict,
    HappyHorseImageToVideoParams,
    JobDict,
    ModelId,
    ModelRequest,
    ModelSpec,
    RawRequest,
    Request,
    SeedanceFastImageToVideo,
    SeedanceFastImageToVideoJobDict,
    SeedanceFastImageToVideoParams,
    SeedanceImageToVideo,
    SeedanceImageToVideoJobDict,
    SeedanceImageToVideoParams,
    Wan25ImageToVideo,
    Wan25ImageToVideoJobDict,
    Wan25ImageToVideoParams,
    Wan27ImageToVideo,
    Wan27ImageToVideoJobDict,
    Wan27ImageToVideoParams,
)
from ._public import rehome

__all__ = [
    "MODELS",
    "FieldSpec",
    "HappyHorseImageToVideo",
    "HappyHorseImageToVideoJobDict",
    "HappyHorseImageToVideoParams",
    "JobDict",
    "ModelId",
    "ModelRequest",
    "ModelSpec",
    "RawRequest",
    "Request",
    "SeedanceFastImageToVideo",
    "SeedanceFastImageToVideoJobDict",
    "SeedanceFastImageToVideoParams",
    "SeedanceImageToVideo",
    "SeedanceImageToVideoJobDict",
    "SeedanceImageToVideoParams",
    "Wan25ImageToVideo",
    "Wan25ImageToVideoJobDict",
    "Wan25ImageToVideoParams",
    "Wan27ImageToVideo",
    "Wan27ImageToVideoJobDict",
    "Wan27ImageToVideoParams",
]

rehome(__name__, globals(), __all__)
del rehome
