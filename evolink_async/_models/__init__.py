"""
Requests: one frozen, validated class per model, plus `RawRequest`. Pure code.

Nothing here does I/O beyond reading the header of a local image; nothing here
imports the rest of the SDK except `_errors`. Each file has one job, and they
import each other by file, downwards in this order:

- `images.py`: a local image's header (format, size, alpha) and `ImageLimits`,
  a model's limits for one input image.
- `hosts.py`: the host of a callback URL as URL parsers read it (WHATWG,
  IDNA), and whether it is a public address.
- `rules.py`: field rules (`Integer`, `Choice`, `Text`, `UrlList`, ...), each
  able to check a value and to describe itself in words.
- `base.py`: the framework: `ModelRequest` (validated at construction, every
  problem raised at once), field metadata, `FieldSpec`/`ModelSpec`, the
  generated docstrings, and `RawRequest` for models this SDK does not know.
- `seedance.py`, `happyhorse.py`, `wan.py`: the request classes, one file per
  vendor page family; each file says how it reads its pages where they are
  loose.
- `registry.py`: `MODELS` (model id -> class), `build_request` (model id +
  params -> request) and `model_specs`.
- `params.py`: the same fields as `TypedDict`s (`<Model>Params`, and
  `<Model>JobDict` for batch job dicts) and `ModelId`, for type checkers: the
  client's overloads use them; nothing at run time does.
- `body.py`: request -> JSON body (`request_body`), and the local `Path`s to
  upload first (`local_files`, `replace_files`).

The client uses four helpers from here: `build_request`, `request_body`,
`local_files` and `replace_files`. The public faces are `evolink_async.models`
and the top-level package, which re-export the request classes.
"""

from .base import FieldSpec, ModelRequest, ModelSpec, R, RawRequest, Request
from .body import local_files, replace_files, request_body
from .happyhorse import HappyHorseImageToVideo
from .params import (
    HappyHorseImageToVideoJobDict,
    HappyHorseImageToVideoParams,
    JobDict,
    ModelId,
    SeedanceFastImageToVideoJobDict,
    SeedanceFastImageToVideoParams,
    SeedanceImageToVideoJobDict,
    SeedanceImageToVideoParams,
    Wan25ImageToVideoJobDict,
    Wan25ImageToVideoParams,
    Wan27ImageToVideoJobDict,
    Wan27ImageToVideoParams,
)
from .registry import MODELS, build_request, model_specs
from .seedance import SeedanceFastImageToVideo, SeedanceImageToVideo
from .wan import Wan25ImageToVideo, Wan27ImageToVideo

# The names the rest of the SDK reaches as `_models.X`.
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
    "R",
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
    "build_request",
    "local_files",
    "model_specs",
    "replace_files",
    "request_body",
]
