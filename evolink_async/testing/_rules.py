"""
The mock server's own reading of the documented request rules.

This is written from the vendor pages alone, apart from the SDK's client-side
validator, so that a property test comparing the two catches a misreading in
either. `check_create(body)` returns the first broken rule (or None); the
server turns it into an HTTP 400 `invalid_request` naming the field in
`param`.

How the pages were read where they leave room:

- **Unknown model ids are accepted** with no field checks at all, so that a
  `RawRequest` can reach models the SDK does not know yet. Only `model`
  itself must be a non-empty string.
- Known models reject **fields their page does not list** (`param` names the
  field; the first one in the body's order).
- **Integers** are JSON integers, or floats with no fraction (`5.0`); booleans
  and strings are never integers. Booleans must be JSON `true`/`false`.
  `null` is a type error for every field (leave a field out instead).
- **URLs** (images, video, audio) are absolute `http`/`https` URLs with a
  host; `data:` URLs and bare base64 are rejected.
- **Prompts**: a required prompt must hold a non-space character.
  seedance (both): "≤ 500 Chinese chars or ≤ 1000 English words" is read as:
  a prompt containing any CJK ideograph may have at most 500 characters (all
  characters counted); any other prompt at most 1000 whitespace-separated
  words. wan2.5: at most 1000 characters. wan2.7 (`prompt` 5000,
  `negative_prompt` 500) and happyhorse (2500/5000) say overflow is
  truncated, so any length is accepted.
- **wan2.7 modes**: when `generation_mode` is left out it is inferred:
  `video_urls` present -> `video_continuation`; else `image_start` and
  `image_end` -> `first_last_frame`; else `image_start` -> `first_frame`;
  else the request has no material (param `generation_mode`). Then the
  mode's required fields are checked (missing: param names the field), then
  its forbidden ones. `video_urls` and `audio_urls`, when present, must hold
  exactly one URL.
- **callback_url**: a string of at most 2048 characters, scheme `https`, a
  host that is not `localhost` and not an IP literal that is loopback,
  private, link-local, unspecified, in the shared address space
  (100.64.0.0/10, carrier-grade NAT: never a public host) or multicast (no
  one answers an HTTPS POST there); IPv4-mapped IPv6 forms included. Host
  names are not resolved.

Field checks run in the order the fields are listed below for each model;
the first problem wins.
"""

from __future__ import annotations

import ipaddress
import math
import re
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

import attrs

__all__ = ["KNOWN_MODELS", "Violation", "check_create"]

SEEDANCE: Final = "seedance-2.0-image-to-video"
SEEDANCE_FAST: Final = "seedance-2.0-fast-image-to-video"
HAPPYHORSE: Final = "happyhorse-1.0-image-to-video"
WAN27: Final = "wan2.7-image-to-video"
WAN25: Final = "wan2.5-image-to-video"

SEED_MAX: Final = 2_147_483_647
CALLBACK_URL_MAX: Final = 2048
# RFC 6598's carrier-grade NAT range: Python's ipaddress calls it neither
# private nor global.
_SHARED_ADDRESS_SPACE: Final = ipaddress.IPv4Network("100.64.0.0/10")
_SEEDANCE_ASPECT_RATIOS: Final = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "adaptive")
_WAN27_MODES: Final = ("first_frame", "first_last_frame", "video_continuation")

# CJK Unified Ideographs, Extension A, Compatibility Ideographs and the
# supplementary-plane extensions: what "Chinese characters" means here.
_CJK = re.compile(
    "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df\U0002a700-\U0002ebef]"
)


@attrs.frozen(kw_only=True, slots=True)
class Violation:
    """One broken rule: the field (`param`) and a message saying which rule."""

    param: str | None
    message: str
    code: str = "invalid_request"


_Check = Callable[[str, Any], Violation | None]


@attrs.frozen(slots=True)
class _Field:
    name: str
    check: _Check
    required: bool = False


# --------------------------------------------------------------------- values


def _is_integral(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value) and value.is_integer()


def _int_range(low: int, high: int) -> _Check:
    def check(name: str, value: Any) -> Violation | None:
        if not _is_integral(value):
            return Violation(param=name, message=f"{name} must be an integer")
        if not low <= value <= high:
            return Violation(param=name, message=f"{name} must be between {low} and {high}")
        return None

    return check


def _int_choice(*choices: int) -> _Check:
    def check(name: str, value: Any) -> Violation | None:
        if not _is_integral(value):
            return Violation(param=name, message=f"{name} must be an integer")
        if value not in choices:
            listed = " or ".join(str(c) for c in choices)
            return Violation(param=name, message=f"{name} must be {listed}")
        return None

    return check


def _enum(*choices: str) -> _Check:
    def check(name: str, value: Any) -> Violation | None:
        if not isinstance(value, str) or value not in choices:
            return Violation(param=name, message=f"{name} must be one of {', '.join(choices)}")
        return None

    return check


def _boolean(name: str, value: Any) -> Violation | None:
    if not isinstance(value, bool):
        return Violation(param=name, message=f"{name} must be a boolean")
    return None


def _any_text(name: str, value: Any) -> Violation | None:
    if not isinstance(value, str):
        return Violation(param=name, message=f"{name} must be a string")
    return None


def _text(*, required: bool, max_chars: int | None = None) -> _Check:
    def check(name: str, value: Any) -> Violation | None:
        if not isinstance(value, str):
            return Violation(param=name, message=f"{name} must be a string")
        if required and not value.strip():
            return Violation(param=name, message=f"{name} must not be empty")
        if max_chars is not None and len(value) > max_chars:
            return Violation(param=name, message=f"{name} must be at most {max_chars} characters")
        return None

    return check


def _seedance_prompt(name: str, value: Any) -> Violation | None:
    problem = _text(required=True)(name, value)
    if problem is not None:
        return problem
    if _CJK.search(value):
        if len(value) > 500:
            return Violation(
                param=name, message=f"{name} with Chinese text must be at most 500 characters"
            )
    elif len(value.split()) > 1000:
        return Violation(param=name, message=f"{name} must be at most 1000 words")
    return None


def _url_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be a URL string"
    try:
        parts = urlsplit(value)
    except ValueError:
        return "must be a valid URL"
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return "must be an absolute http(s) URL (no data: URLs or base64)"
    return None


def _url(name: str, value: Any) -> Violation | None:
    problem = _url_problem(value)
    return Violation(param=name, message=f"{name} {problem}") if problem else None


def _url_list(low: int, high: int) -> _Check:
    def check(name: str, value: Any) -> Violation | None:
        if not isinstance(value, list):
            return Violation(param=name, message=f"{name} must be a list of URLs")
        if not low <= len(value) <= high:
            wanted = f"exactly {low}" if low == high else f"{low} to {high}"
            return Violation(
                param=name, message=f"{name} must hold {wanted} URL(s), got {len(value)}"
            )
        for item in value:
            problem = _url_problem(item)
            if problem:
                return Violation(param=name, message=f"every item of {name} {problem}")
        return None

    return check


def _callback_url(name: str, value: Any) -> Violation | None:
    if not isinstance(value, str):
        return Violation(param=name, message=f"{name} must be a string")
    if len(value) > CALLBACK_URL_MAX:
        return Violation(
            param=name, message=f"{name} must be at most {CALLBACK_URL_MAX} characters"
        )
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return Violation(param=name, message=f"{name} must be a valid URL")
    if parts.scheme.lower() != "https":
        return Violation(param=name, message=f"{name} must use https")
    if not host:
        return Violation(param=name, message=f"{name} must have a host")
    if host.lower() == "localhost":
        return Violation(param=name, message=f"{name} must not point at localhost")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        try:
            # Legacy IPv4 forms ("127.1", "2130706433") are addresses too.
            ip = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None  # a host name: not resolved, accepted
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_unspecified
        or ip.is_multicast
        or ip in _SHARED_ADDRESS_SPACE
    ):
        return Violation(
            param=name,
            message=f"{name} must not be a loopback, private, link-local or multicast address",
        )
    return None


# --------------------------------------------------------------------- models

_CALLBACK = _Field("callback_url", _callback_url)
_SEED = _Field("seed", _int_range(1, SEED_MAX))


def _seedance_fields() -> tuple[_Field, ...]:
    return (
        _Field("prompt", _seedance_prompt, required=True),
        _Field("image_urls", _url_list(1, 2), required=True),
        _Field("duration", _int_range(4, 15)),
        _Field("quality", _enum("480p", "720p")),
        _Field("aspect_ratio", _enum(*_SEEDANCE_ASPECT_RATIOS)),
        _Field("generate_audio", _boolean),
        _CALLBACK,
    )


_FIELDS: Final[Mapping[str, tuple[_Field, ...]]] = {
    SEEDANCE: _seedance_fields(),
    SEEDANCE_FAST: _seedance_fields(),
    HAPPYHORSE: (
        _Field("image_urls", _url_list(1, 1), required=True),
        _Field("prompt", _any_text),
        _Field("quality", _enum("720p", "1080p")),
        _Field("duration", _int_range(3, 15)),
        _SEED,
        _CALLBACK,
    ),
    WAN27: (
        _Field("generation_mode", _enum(*_WAN27_MODES)),
        _Field("prompt", _any_text),
        _Field("negative_prompt", _any_text),
        _Field("image_start", _url),
        _Field("image_end", _url),
        _Field("video_urls", _url_list(1, 1)),
        _Field("audio_urls", _url_list(1, 1)),
        _Field("quality", _enum("720p", "1080p")),
        _Field("duration", _int_range(2, 15)),
        _SEED,
        _Field("prompt_extend", _boolean),
        _CALLBACK,
    ),
    WAN25: (
        _Field("prompt", _text(required=True, max_chars=1000), required=True),
        _Field("image_urls", _url_list(1, 1), required=True),
        _Field("duration", _int_choice(5, 10)),
        _CALLBACK,
    ),
}

#: The model ids whose documented rules `check_create` enforces.
KNOWN_MODELS: Final = frozenset(_FIELDS)

# mode -> (required fields, forbidden fields)
_WAN27_MODE_RULES: Final[Mapping[str, tuple[Sequence[str], Sequence[str]]]] = {
    "first_frame": (("image_start",), ("image_end", "video_urls")),
    "first_last_frame": (("image_start", "image_end"), ("video_urls",)),
    "video_continuation": (("video_urls",), ("image_start", "audio_urls")),
}


def _wan27_modes(body: Mapping[str, Any]) -> Violation | None:
    mode = body.get("generation_mode")
    if mode is None:
        if "video_urls" in body:
            mode = "video_continuation"
        elif "image_start" in body and "image_end" in body:
            mode = "first_last_frame"
        elif "image_start" in body:
            mode = "first_frame"
        else:
            return Violation(
                param="generation_mode",
                message=(
                    "no material: give image_start (first_frame), image_start and "
                    "image_end (first_last_frame) or video_urls (video_continuation)"
                ),
            )
    required, forbidden = _WAN27_MODE_RULES[mode]
    for name in required:
        if name not in body:
            return Violation(param=name, message=f"{name} is required in {mode} mode")
    for name in forbidden:
        if name in body:
            return Violation(param=name, message=f"{name} is not accepted in {mode} mode")
    return None


def check_create(body: Mapping[str, Any]) -> Violation | None:
    """
    The first documented rule `body` (a create request's JSON) breaks, or None.

    Unknown model ids pass with any fields; see the module docstring for how
    each rule was read.
    """
    model = body.get("model")
    if "model" not in body:
        return Violation(param="model", message="model is required")
    if not isinstance(model, str) or not model.strip():
        return Violation(param="model", message="model must be a non-empty string")
    fields = _FIELDS.get(model)
    if fields is None:
        return None
    allowed = {f.name for f in fields}
    for name in body:
        if name != "model" and name not in allowed:
            return Violation(param=name, message=f"unknown field {name!r} for model {model}")
    for spec in fields:
        if spec.name not in body:
            if spec.required:
                return Violation(param=spec.name, message=f"{spec.name} is required")
            continue
        problem = spec.check(spec.name, body[spec.name])
        if problem is not None:
            return problem
    if model == WAN27:
        return _wan27_modes(body)
    return None
