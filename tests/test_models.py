"""
Request classes: every documented rule, at both ends, plus JSON bodies, local
files and `build_request`.

The big tables below hold one row per boundary: for every rule at least one
value that is rejected and one that is accepted, at both ends of every range.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evolink_async._errors import Problem, ValidationError
from evolink_async._models import (
    ModelRequest,
    build_request,
    local_files,
    model_specs,
    replace_files,
    request_body,
)
from evolink_async._models.images import read_image_info
from evolink_async.models import (
    MODELS,
    HappyHorseImageToVideo,
    RawRequest,
    SeedanceFastImageToVideo,
    SeedanceImageToVideo,
    Wan25ImageToVideo,
    Wan27ImageToVideo,
)

URL = "https://cdn.example.com/cat.png"
URL2 = "https://cdn.example.com/dog.jpg"
VIDEO = "https://cdn.example.com/clip.mp4"
AUDIO = "https://cdn.example.com/voice.mp3"
MIB = 1024 * 1024

SEEDANCE = SeedanceImageToVideo
FAST = SeedanceFastImageToVideo
HORSE = HappyHorseImageToVideo
WAN27 = Wan27ImageToVideo
WAN25 = Wan25ImageToVideo
ALL = (SEEDANCE, FAST, HORSE, WAN27, WAN25)

#: The smallest valid request of each model.
BASE: dict[type[ModelRequest], dict[str, Any]] = {
    SEEDANCE: {"prompt": "The camera slowly pushes in", "image_urls": [URL]},
    FAST: {"prompt": "The camera slowly pushes in", "image_urls": [URL]},
    HORSE: {"image_urls": [URL]},
    WAN27: {"image_start": URL},
    WAN25: {"prompt": "A cat playing piano", "image_urls": [URL]},
}


def make(cls: type[ModelRequest], **overrides: Any) -> ModelRequest:
    """The class's minimal request with `overrides` (None: unset)."""
    return cls(**{**BASE[cls], **overrides})


def problem_fields(exc: ValidationError) -> list[str | None]:
    return [p.field for p in exc.problems]


def assert_verdict(build: Callable[[], object], bad_field: str | None) -> None:
    """`bad_field` None: accepted. Otherwise rejected with a problem naming it."""
    if bad_field is None:
        build()
        return
    with pytest.raises(ValidationError) as info:
        build()
    assert bad_field in problem_fields(info.value), str(info.value)


# ---------------------------------------------------------------- field rules

OK = None
CHINESE_500 = "猫" * 500
WORDS_1000 = " ".join(["word"] * 1000)

# (id, class, field, value, field named in the problem or OK)
FIELD_CASES: list[tuple[str, type[ModelRequest], str, object, str | None]] = [
    # duration ranges, both ends
    ("seedance-duration-3", SEEDANCE, "duration", 3, "duration"),
    ("seedance-duration-4", SEEDANCE, "duration", 4, OK),
    ("seedance-duration-15", SEEDANCE, "duration", 15, OK),
    ("seedance-duration-16", SEEDANCE, "duration", 16, "duration"),
    ("fast-duration-3", FAST, "duration", 3, "duration"),
    ("fast-duration-4", FAST, "duration", 4, OK),
    ("fast-duration-15", FAST, "duration", 15, OK),
    ("fast-duration-16", FAST, "duration", 16, "duration"),
    ("horse-duration-2", HORSE, "duration", 2, "duration"),
    ("horse-duration-3", HORSE, "duration", 3, OK),
    ("horse-duration-15", HORSE, "duration", 15, OK),
    ("horse-duration-16", HORSE, "duration", 16, "duration"),
    ("wan27-duration-1", WAN27, "duration", 1, "duration"),
    ("wan27-duration-2", WAN27, "duration", 2, OK),
    ("wan27-duration-15", WAN27, "duration", 15, OK),
    ("wan27-duration-16", WAN27, "duration", 16, "duration"),
    ("wan25-duration-4", WAN25, "duration", 4, "duration"),
    ("wan25-duration-5", WAN25, "duration", 5, OK),
    ("wan25-duration-7", WAN25, "duration", 7, "duration"),
    ("wan25-duration-10", WAN25, "duration", 10, OK),
    ("wan25-duration-11", WAN25, "duration", 11, "duration"),
    # duration integer-ness and type
    ("duration-string", SEEDANCE, "duration", "5", "duration"),
    ("duration-bool", SEEDANCE, "duration", True, "duration"),
    ("duration-fraction", SEEDANCE, "duration", 5.5, "duration"),
    ("duration-whole-float", SEEDANCE, "duration", 5.0, OK),
    ("duration-nan", SEEDANCE, "duration", float("nan"), "duration"),
    ("duration-list", HORSE, "duration", [5], "duration"),
    ("wan27-duration-fraction", WAN27, "duration", 2.5, "duration"),
    ("wan27-duration-whole-float", WAN27, "duration", 5.0, OK),
    ("wan25-duration-bool", WAN25, "duration", False, "duration"),
    # quality enums per model
    ("seedance-quality-480p", SEEDANCE, "quality", "480p", OK),
    ("seedance-quality-720p", SEEDANCE, "quality", "720p", OK),
    ("seedance-quality-1080p", SEEDANCE, "quality", "1080p", "quality"),
    ("seedance-quality-case", SEEDANCE, "quality", "720P", "quality"),
    ("fast-quality-480p", FAST, "quality", "480p", OK),
    ("fast-quality-1080p", FAST, "quality", "1080p", "quality"),
    ("horse-quality-720p", HORSE, "quality", "720p", OK),
    ("horse-quality-1080p", HORSE, "quality", "1080p", OK),
    ("horse-quality-480p", HORSE, "quality", "480p", "quality"),
    ("wan27-quality-720p", WAN27, "quality", "720p", OK),
    ("wan27-quality-1080p", WAN27, "quality", "1080p", OK),
    ("wan27-quality-480p", WAN27, "quality", "480p", "quality"),
    ("quality-int", WAN27, "quality", 720, "quality"),
    # aspect_ratio enum (seedance)
    *[
        (f"seedance-aspect-{ratio}", SEEDANCE, "aspect_ratio", ratio, OK)
        for ratio in ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "adaptive")
    ],
    ("fast-aspect-adaptive", FAST, "aspect_ratio", "adaptive", OK),
    ("seedance-aspect-2:1", SEEDANCE, "aspect_ratio", "2:1", "aspect_ratio"),
    ("fast-aspect-16x9", FAST, "aspect_ratio", "16x9", "aspect_ratio"),
    # image list lengths
    ("seedance-images-0", SEEDANCE, "image_urls", [], "image_urls"),
    ("seedance-images-1", SEEDANCE, "image_urls", [URL], OK),
    ("seedance-images-2", SEEDANCE, "image_urls", [URL, URL2], OK),
    ("seedance-images-3", SEEDANCE, "image_urls", [URL, URL2, URL], "image_urls"),
    ("fast-images-0", FAST, "image_urls", [], "image_urls"),
    ("fast-images-2", FAST, "image_urls", [URL, URL], OK),
    ("fast-images-3", FAST, "image_urls", [URL, URL, URL], "image_urls"),
    ("horse-images-0", HORSE, "image_urls", [], "image_urls"),
    ("horse-images-1", HORSE, "image_urls", [URL], OK),
    ("horse-images-2", HORSE, "image_urls", [URL, URL2], "image_urls"),
    ("wan25-images-0", WAN25, "image_urls", [], "image_urls"),
    ("wan25-images-1", WAN25, "image_urls", (URL,), OK),
    ("wan25-images-2", WAN25, "image_urls", [URL, URL2], "image_urls"),
    ("images-bare-string", SEEDANCE, "image_urls", URL, "image_urls"),
    ("images-dict", HORSE, "image_urls", {"url": URL}, "image_urls"),
    # URL form
    ("url-http", SEEDANCE, "image_urls", ["http://cdn.example.com/a.png"], OK),
    ("url-with-port-query", HORSE, "image_urls", ["https://h.example:8443/a.png?x=1"], OK),
    ("url-ftp", SEEDANCE, "image_urls", ["ftp://cdn.example.com/a.png"], "image_urls[0]"),
    ("url-relative", SEEDANCE, "image_urls", ["cat.png"], "image_urls[0]"),
    ("url-abs-path-string", HORSE, "image_urls", ["/home/me/cat.png"], "image_urls[0]"),
    ("url-no-host", WAN25, "image_urls", ["https:///a.png"], "image_urls[0]"),
    ("url-data", SEEDANCE, "image_urls", ["data:image/png;base64,iVBORw0KGgo="], "image_urls[0]"),
    ("url-second-bad", SEEDANCE, "image_urls", [URL, "data:image/png;base64,AA"], "image_urls[1]"),
    ("url-bad-ipv6", SEEDANCE, "image_urls", ["https://[::1/a.png"], "image_urls[0]"),
    ("url-int", HORSE, "image_urls", [42], "image_urls[0]"),
    ("wan27-start-data", WAN27, "image_start", "data:image/png;base64,AA", "image_start"),
    ("wan27-start-relative", WAN27, "image_start", "frames/first.png", "image_start"),
    # prompt limits
    ("wan25-prompt-1000", WAN25, "prompt", "a" * 1000, OK),
    ("wan25-prompt-1001", WAN25, "prompt", "a" * 1001, "prompt"),
    ("wan25-prompt-1", WAN25, "prompt", "a", OK),
    ("wan25-prompt-empty", WAN25, "prompt", "", "prompt"),
    ("wan25-prompt-blank", WAN25, "prompt", "  \n", "prompt"),
    ("wan25-prompt-int", WAN25, "prompt", 5, "prompt"),
    ("wan27-prompt-5000", WAN27, "prompt", "a" * 5000, OK),
    ("wan27-prompt-5001", WAN27, "prompt", "a" * 5001, "prompt"),
    ("wan27-negative-500", WAN27, "negative_prompt", "b" * 500, OK),
    ("wan27-negative-501", WAN27, "negative_prompt", "b" * 501, "negative_prompt"),
    ("wan27-prompt-empty-optional", WAN27, "prompt", "", OK),
    ("seedance-words-1000", SEEDANCE, "prompt", WORDS_1000, OK),
    ("seedance-words-1001", SEEDANCE, "prompt", WORDS_1000 + " more", "prompt"),
    ("seedance-chinese-500", SEEDANCE, "prompt", CHINESE_500, OK),
    ("seedance-chinese-501", SEEDANCE, "prompt", CHINESE_500 + "猫", "prompt"),
    ("seedance-chinese-counts-all-chars", SEEDANCE, "prompt", "猫" + "a" * 500, "prompt"),
    ("fast-chinese-501", FAST, "prompt", CHINESE_500 + "狗", "prompt"),
    ("fast-words-1001", FAST, "prompt", WORDS_1000 + " more", "prompt"),
    ("seedance-prompt-blank", SEEDANCE, "prompt", " ", "prompt"),
    ("seedance-prompt-missing", SEEDANCE, "prompt", None, "prompt"),
    ("horse-prompt-missing", HORSE, "prompt", None, OK),
    ("horse-prompt-long-truncated", HORSE, "prompt", "a" * 6000, OK),
    ("horse-prompt-chinese-long", HORSE, "prompt", "马" * 3000, OK),
    ("horse-prompt-bytes", HORSE, "prompt", b"bytes", "prompt"),
    # seed, both ends
    ("horse-seed-0", HORSE, "seed", 0, "seed"),
    ("horse-seed-1", HORSE, "seed", 1, OK),
    ("horse-seed-max", HORSE, "seed", 2147483647, OK),
    ("horse-seed-max+1", HORSE, "seed", 2147483648, "seed"),
    ("wan27-seed-0", WAN27, "seed", 0, "seed"),
    ("wan27-seed-1", WAN27, "seed", 1, OK),
    ("wan27-seed-max", WAN27, "seed", 2147483647, OK),
    ("wan27-seed-max+1", WAN27, "seed", 2147483648, "seed"),
    ("seed-negative", HORSE, "seed", -1, "seed"),
    ("seed-string", WAN27, "seed", "42", "seed"),
    ("seed-bool", HORSE, "seed", True, "seed"),
    # booleans
    ("audio-true", SEEDANCE, "generate_audio", True, OK),
    ("audio-false", FAST, "generate_audio", False, OK),
    ("audio-string-true", SEEDANCE, "generate_audio", "true", "generate_audio"),
    ("audio-string-false", FAST, "generate_audio", "false", "generate_audio"),
    ("audio-int", SEEDANCE, "generate_audio", 1, "generate_audio"),
    ("extend-true", WAN27, "prompt_extend", True, OK),
    ("extend-false", WAN27, "prompt_extend", False, OK),
    ("extend-string", WAN27, "prompt_extend", "true", "prompt_extend"),
    ("extend-int", WAN27, "prompt_extend", 0, "prompt_extend"),
    # wan2.7 url lists
    ("wan27-mode-enum", WAN27, "generation_mode", "text_to_video", "generation_mode"),
    ("wan27-audio-1", WAN27, "audio_urls", [AUDIO], OK),
    ("wan27-audio-2", WAN27, "audio_urls", [AUDIO, AUDIO], "audio_urls"),
    ("wan27-audio-0", WAN27, "audio_urls", [], "audio_urls"),
    ("wan27-audio-path", WAN27, "audio_urls", [Path("voice.mp3")], "audio_urls[0]"),
    ("wan27-audio-string", WAN27, "audio_urls", AUDIO, "audio_urls"),
]


@pytest.mark.parametrize(
    ("cls", "field", "value", "bad_field"),
    [case[1:] for case in FIELD_CASES],
    ids=[case[0] for case in FIELD_CASES],
)
def test_field_rule(
    cls: type[ModelRequest], field: str, value: object, bad_field: str | None
) -> None:
    assert_verdict(lambda: make(cls, **{field: value}), bad_field)


def test_whole_float_is_sent_as_int() -> None:
    assert request_body(make(WAN27, duration=5.0))["duration"] == 5
    assert type(request_body(make(SEEDANCE, duration=6.0))["duration"]) is int
    assert request_body(make(HORSE, seed=42.0))["seed"] == 42


# ---------------------------------------------------------------- wan2.7 modes

WAN_MODE_CASES: list[tuple[str, dict[str, Any], str | None]] = [
    ("first-frame-ok", {"generation_mode": "first_frame", "image_start": URL}, OK),
    (
        "first-frame-audio-ok",
        {"generation_mode": "first_frame", "image_start": URL, "audio_urls": [AUDIO]},
        OK,
    ),
    ("first-frame-needs-start", {"generation_mode": "first_frame"}, "image_start"),
    (
        "first-frame-forbids-end",
        {"generation_mode": "first_frame", "image_start": URL, "image_end": URL2},
        "image_end",
    ),
    (
        "first-frame-forbids-video",
        {"generation_mode": "first_frame", "image_start": URL, "video_urls": [VIDEO]},
        "video_urls",
    ),
    (
        "first-last-ok",
        {"generation_mode": "first_last_frame", "image_start": URL, "image_end": URL2},
        OK,
    ),
    (
        "first-last-audio-ok",
        {
            "generation_mode": "first_last_frame",
            "image_start": URL,
            "image_end": URL2,
            "audio_urls": [AUDIO],
        },
        OK,
    ),
    (
        "first-last-needs-end",
        {"generation_mode": "first_last_frame", "image_start": URL},
        "image_end",
    ),
    (
        "first-last-needs-start",
        {"generation_mode": "first_last_frame", "image_end": URL2},
        "image_start",
    ),
    (
        "first-last-forbids-video",
        {
            "generation_mode": "first_last_frame",
            "image_start": URL,
            "image_end": URL2,
            "video_urls": [VIDEO],
        },
        "video_urls",
    ),
    ("continuation-ok", {"generation_mode": "video_continuation", "video_urls": [VIDEO]}, OK),
    (
        "continuation-end-ok",
        {"generation_mode": "video_continuation", "video_urls": [VIDEO], "image_end": URL2},
        OK,
    ),
    ("continuation-needs-video", {"generation_mode": "video_continuation"}, "video_urls"),
    (
        "continuation-two-videos",
        {"generation_mode": "video_continuation", "video_urls": [VIDEO, VIDEO]},
        "video_urls",
    ),
    (
        "continuation-no-videos",
        {"generation_mode": "video_continuation", "video_urls": []},
        "video_urls",
    ),
    (
        "continuation-forbids-start",
        {"generation_mode": "video_continuation", "video_urls": [VIDEO], "image_start": URL},
        "image_start",
    ),
    (
        "continuation-forbids-audio",
        {"generation_mode": "video_continuation", "video_urls": [VIDEO], "audio_urls": [AUDIO]},
        "audio_urls",
    ),
    (
        "continuation-video-data-url",
        {"generation_mode": "video_continuation", "video_urls": ["data:video/mp4;base64,AA"]},
        "video_urls[0]",
    ),
    (
        "continuation-video-path",
        {"generation_mode": "video_continuation", "video_urls": [Path("clip.mp4")]},
        "video_urls[0]",
    ),
    # generation_mode omitted: inferred from the materials, then checked
    ("inferred-first-frame", {"image_start": URL}, OK),
    ("inferred-first-frame-audio", {"image_start": URL, "audio_urls": [AUDIO]}, OK),
    ("inferred-first-last", {"image_start": URL, "image_end": URL2}, OK),
    ("inferred-continuation", {"video_urls": [VIDEO]}, OK),
    ("inferred-continuation-end", {"video_urls": [VIDEO], "image_end": URL2}, OK),
    (
        "inferred-continuation-forbids-start",
        {"video_urls": [VIDEO], "image_start": URL},
        "image_start",
    ),
    (
        "inferred-continuation-forbids-audio",
        {"video_urls": [VIDEO], "audio_urls": [AUDIO]},
        "audio_urls",
    ),
    ("inferred-no-material", {"prompt": "a cat"}, "generation_mode"),
    ("inferred-end-only", {"image_end": URL2}, "generation_mode"),
    ("inferred-audio-only", {"audio_urls": [AUDIO]}, "generation_mode"),
]


@pytest.mark.parametrize(
    ("params", "bad_field"),
    [case[1:] for case in WAN_MODE_CASES],
    ids=[case[0] for case in WAN_MODE_CASES],
)
def test_wan27_generation_mode_rule(params: dict[str, Any], bad_field: str | None) -> None:
    assert_verdict(lambda: Wan27ImageToVideo(**params), bad_field)


def test_inferred_mode_is_named_in_the_message() -> None:
    with pytest.raises(ValidationError) as info:
        Wan27ImageToVideo(video_urls=[VIDEO], image_start=URL)
    assert "video_continuation" in str(info.value)
    assert "inferred" in str(info.value)


# ---------------------------------------------------------------- callback_url


def long_url(length: int) -> str:
    head = "https://hooks.example.com/"
    return head + "a" * (length - len(head))


CALLBACK_CASES: list[tuple[str, object, bool]] = [
    ("public-host", "https://hooks.example.com/evolink", True),
    ("public-ipv4", "https://8.8.8.8/hook", True),
    ("public-172-32", "https://172.32.0.1/hook", True),
    ("public-ipv6", "https://[2606:4700:4700::1111]/hook", True),
    ("with-port-and-query", "https://hooks.example.com:8443/h?task=1", True),
    ("length-2048", long_url(2048), True),
    ("length-2049", long_url(2049), False),
    ("http", "http://hooks.example.com/evolink", False),
    ("ftp", "ftp://hooks.example.com/evolink", False),
    ("not-a-url", "hooks.example.com/evolink", False),
    ("loopback", "https://127.0.0.1/hook", False),
    ("loopback-other", "https://127.8.9.10:8443/hook", False),
    ("private-10", "https://10.1.2.3/hook", False),
    ("private-192-168", "https://192.168.1.10/hook", False),
    ("private-172-16", "https://172.16.0.1/hook", False),
    ("private-172-31", "https://172.31.255.254/hook", False),
    ("link-local", "https://169.254.169.254/latest/meta-data", False),
    ("unspecified", "https://0.0.0.0/hook", False),
    ("ipv6-loopback", "https://[::1]/hook", False),
    ("ipv6-loopback-port", "https://[::1]:8443/hook", False),
    ("ipv6-link-local", "https://[fe80::1]/hook", False),
    ("ipv6-unique-local", "https://[fd12:3456::1]/hook", False),
    ("ipv6-mapped-loopback", "https://[::ffff:127.0.0.1]/hook", False),
    ("localhost", "https://localhost/hook", False),
    ("localhost-upper", "https://LOCALHOST:8443/hook", False),
    ("localhost-subdomain", "https://api.localhost/hook", False),
    ("data-url", "data:text/plain,hello", False),
    ("not-a-string", 12345, False),
]


@pytest.mark.parametrize("cls", ALL, ids=lambda cls: cls.model)
@pytest.mark.parametrize(
    ("url", "ok"),
    [case[1:] for case in CALLBACK_CASES],
    ids=[case[0] for case in CALLBACK_CASES],
)
def test_callback_url_rule(cls: type[ModelRequest], url: object, ok: bool) -> None:
    assert_verdict(lambda: make(cls, callback_url=url), None if ok else "callback_url")


# ---------------------------------------------------------------- whole requests


@pytest.mark.parametrize(("cls", "field"), [(cls, f) for cls, fs in BASE.items() for f in fs])
def test_required_field_missing(cls: type[ModelRequest], field: str) -> None:
    # wan2.7 needs some material rather than one fixed field.
    expected = "generation_mode" if cls is WAN27 else field
    params = {k: v for k, v in BASE[cls].items() if k != field}
    with pytest.raises(ValidationError) as info:
        build_request(cls.model, params)
    assert expected in problem_fields(info.value)


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(ValidationError) as info:
        SeedanceImageToVideo(
            prompt="x",
            image_urls=[URL],
            duration=3,
            quality="1080p",  # type: ignore[arg-type]
            generate_audio="true",  # type: ignore[arg-type]
        )
    assert problem_fields(info.value) == ["duration", "quality", "generate_audio"]
    assert "3 problems" in str(info.value)


def test_message_names_field_value_and_rule() -> None:
    with pytest.raises(ValidationError) as info:
        make(SEEDANCE, duration=16)
    message = str(info.value)
    assert "seedance-2.0-image-to-video" in message
    assert "duration=16" in message
    assert "from 4 to 15" in message
    (problem,) = info.value.problems
    assert (problem.field, problem.value) == ("duration", 16)


def test_validation_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="duration"):
        make(WAN25, duration=6)


def test_choice_suggests_the_right_spelling() -> None:
    with pytest.raises(ValidationError, match="did you mean '720p'"):
        make(HORSE, quality="720P")


def test_requests_are_frozen() -> None:
    request = SeedanceImageToVideo(prompt="x", image_urls=[URL])
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        request.duration = 6  # type: ignore[misc]


def test_model_is_readable_on_class_and_instance() -> None:
    for model_id, cls in MODELS.items():
        assert cls.model == model_id
        assert make(cls).model == model_id
    assert set(MODELS) == {
        "seedance-2.0-image-to-video",
        "seedance-2.0-fast-image-to-video",
        "happyhorse-1.0-image-to-video",
        "wan2.7-image-to-video",
        "wan2.5-image-to-video",
    }


# Any JSON-ish value for any field: a ValidationError or a request, never another error.
_ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.binary(max_size=5),
    st.lists(st.one_of(st.text(max_size=20), st.integers()), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(
    model=st.sampled_from(sorted(MODELS)),
    data=st.data(),
)
def test_any_values_raise_only_validation_error(model: str, data: st.DataObject) -> None:
    names = [f.name for f in attrs.fields(MODELS[model])] + ["bogus"]
    params = data.draw(st.dictionaries(st.sampled_from(names), _ANY, max_size=6))
    try:
        request = build_request(model, params)
    except ValidationError as exc:
        problems = exc.problems
    else:
        request_body(request)
        return
    assert problems
    assert all(isinstance(p, Problem) for p in problems)


# ---------------------------------------------------------------- JSON bodies

FULL: list[tuple[ModelRequest, dict[str, Any]]] = [
    (
        SeedanceImageToVideo(
            prompt="sunrise to sunset",
            image_urls=[URL, URL2],
            duration=6,
            quality="480p",
            aspect_ratio="adaptive",
            generate_audio=False,
            callback_url="https://hooks.example.com/done",
        ),
        {
            "model": "seedance-2.0-image-to-video",
            "prompt": "sunrise to sunset",
            "image_urls": [URL, URL2],
            "duration": 6,
            "quality": "480p",
            "aspect_ratio": "adaptive",
            "generate_audio": False,
            "callback_url": "https://hooks.example.com/done",
        },
    ),
    (
        SeedanceFastImageToVideo(prompt="zoom", image_urls=[URL], duration=15, aspect_ratio="9:16"),
        {
            "model": "seedance-2.0-fast-image-to-video",
            "prompt": "zoom",
            "image_urls": [URL],
            "duration": 15,
            "aspect_ratio": "9:16",
        },
    ),
    (
        HappyHorseImageToVideo(
            image_urls=[URL], prompt="run", quality="1080p", duration=3, seed=42
        ),
        {
            "model": "happyhorse-1.0-image-to-video",
            "image_urls": [URL],
            "prompt": "run",
            "quality": "1080p",
            "duration": 3,
            "seed": 42,
        },
    ),
    (
        Wan27ImageToVideo(
            generation_mode="first_last_frame",
            prompt="a cat",
            negative_prompt="blurry",
            image_start=URL,
            image_end=URL2,
            audio_urls=[AUDIO],
            quality="1080p",
            duration=10,
            seed=7,
            prompt_extend=True,
            callback_url="https://hooks.example.com/done",
        ),
        {
            "model": "wan2.7-image-to-video",
            "generation_mode": "first_last_frame",
            "prompt": "a cat",
            "negative_prompt": "blurry",
            "image_start": URL,
            "image_end": URL2,
            "audio_urls": [AUDIO],
            "quality": "1080p",
            "duration": 10,
            "seed": 7,
            "prompt_extend": True,
            "callback_url": "https://hooks.example.com/done",
        },
    ),
    (
        Wan27ImageToVideo(video_urls=[VIDEO], duration=15),
        {"model": "wan2.7-image-to-video", "video_urls": [VIDEO], "duration": 15},
    ),
    (
        Wan25ImageToVideo(prompt="piano", image_urls=[URL], duration=10),
        {
            "model": "wan2.5-image-to-video",
            "prompt": "piano",
            "image_urls": [URL],
            "duration": 10,
        },
    ),
]


@pytest.mark.parametrize(
    ("request_", "body"), FULL, ids=[type(r).__name__ + str(i) for i, (r, _) in enumerate(FULL)]
)
def test_request_body_is_exact(request_: ModelRequest, body: dict[str, Any]) -> None:
    got = request_body(request_)
    assert got == body
    assert list(got) == list(body)  # the model first, then the page's field order
    # The body rebuilds an equal request: nothing lost, nothing added.
    again = build_request(got["model"], {k: v for k, v in got.items() if k != "model"})
    assert again == request_


@pytest.mark.parametrize("cls", ALL, ids=lambda cls: cls.model)
def test_unset_fields_are_left_out(cls: type[ModelRequest]) -> None:
    body = request_body(make(cls))
    expected = {"model": cls.model, **BASE[cls]}
    assert body == expected
    # Documented defaults are documentation only: never sent on the user's behalf.
    for spec in cls.spec().fields:
        if spec.default is not None:
            assert spec.name not in body


def test_documented_defaults_are_in_the_spec_and_docstring() -> None:
    defaults = {(spec.model, f.name): f.default for spec in model_specs() for f in spec.fields}
    assert defaults["seedance-2.0-image-to-video", "duration"] == 5
    assert defaults["seedance-2.0-image-to-video", "quality"] == "720p"
    assert defaults["seedance-2.0-image-to-video", "aspect_ratio"] == "16:9"
    assert defaults["seedance-2.0-fast-image-to-video", "generate_audio"] is True
    assert defaults["happyhorse-1.0-image-to-video", "duration"] == 5
    assert defaults["happyhorse-1.0-image-to-video", "quality"] == "720p"
    assert defaults["wan2.7-image-to-video", "quality"] == "720p"
    assert defaults["wan2.7-image-to-video", "duration"] == 5
    assert defaults["wan2.7-image-to-video", "prompt_extend"] is False
    assert defaults["wan2.5-image-to-video", "duration"] is None
    assert "API default 5" in (SeedanceImageToVideo.__doc__ or "")
    # The spec lists exactly the class's attrs fields: it cannot drift.
    for cls in ALL:
        assert [f.name for f in cls.spec().fields] == [a.name for a in attrs.fields(cls)]


# ---------------------------------------------------------------- build_request


def test_unknown_keyword_lists_fields_with_did_you_mean() -> None:
    with pytest.raises(ValidationError) as info:
        build_request("seedance-2.0-image-to-video", {**BASE[SEEDANCE], "durration": 5})
    (problem,) = info.value.problems
    assert problem.field == "durration"
    assert "did you mean 'duration'" in problem.rule
    assert "prompt, image_urls, duration, quality, aspect_ratio, generate_audio" in problem.rule


def test_unknown_keyword_and_bad_value_reported_together() -> None:
    params = {"image_urls": [URL], "negative_prompt": "x", "duration": 99}
    with pytest.raises(ValidationError) as info:
        build_request("happyhorse-1.0-image-to-video", params)
    assert problem_fields(info.value) == ["negative_prompt", "duration"]


def test_missing_required_fields_are_a_validation_error_not_type_error() -> None:
    with pytest.raises(ValidationError) as info:
        build_request("wan2.5-image-to-video", {"duration": 7})
    assert problem_fields(info.value) == ["prompt", "image_urls", "duration"]


def test_unknown_model_names_raw_request() -> None:
    with pytest.raises(ValidationError) as info:
        build_request("seedance-2.0-image-to-vide", {"prompt": "x"})
    message = str(info.value)
    assert "RawRequest('seedance-2.0-image-to-vide', params)" in message
    assert "did you mean 'seedance-2.0-image-to-video'" in message


def test_model_keyword_must_match() -> None:
    same = build_request(WAN25.model, {**BASE[WAN25], "model": WAN25.model})
    assert request_body(same)["model"] == WAN25.model
    with pytest.raises(ValidationError, match="different model"):
        build_request(WAN25.model, {**BASE[WAN25], "model": "wan2.7-image-to-video"})


def test_request_object_passes_through() -> None:
    request = make(HORSE)
    assert build_request(request, {}) is request
    with pytest.raises(ValidationError, match="not both"):
        build_request(request, {"seed": 3})
    with pytest.raises(ValidationError, match="request object"):
        build_request(42, {})  # type: ignore[arg-type]


# ---------------------------------------------------------------- RawRequest


def test_raw_request_is_sent_as_is() -> None:
    params = {"prompt": "anything", "duration": 99, "nested": {"a": [1, 2]}, "flag": "true"}
    request = RawRequest("brand-new-model", params)
    assert build_request(request, {}) is request
    assert request_body(request) == {"model": "brand-new-model", **params}
    assert next(iter(request_body(request))) == "model"
    # Known models may be sent raw too, bypassing the checks.
    raw = RawRequest(WAN25.model, {"duration": 7})
    assert request_body(raw) == {"model": WAN25.model, "duration": 7}


def test_raw_request_params_are_a_copy() -> None:
    params: dict[str, Any] = {"a": 1}
    request = RawRequest("m", params)
    params["a"] = 2
    assert request.params["a"] == 1


@pytest.mark.parametrize(
    ("model", "params"),
    [("", {}), ("  ", {}), (None, {}), ("m", ["not", "a", "mapping"]), ("m", {"model": "other"})],
    ids=["empty", "blank", "none", "params-list", "params-other-model"],
)
def test_raw_request_shape_is_checked(model: Any, params: Any) -> None:
    with pytest.raises(ValidationError):
        RawRequest(model, params)


# ---------------------------------------------------------------- local files


def png(width: int, height: int, *, alpha: bool = False) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6 if alpha else 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
    )


def jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    exif = b"\xff\xe1" + struct.pack(">H", 2 + 300) + b"Exif\x00\x00" + b"\x00" * 294
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + exif + sof + b"\xff\xda"


def webp_vp8x(width: int, height: int) -> bytes:
    payload = (
        b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    )
    return (
        b"RIFF"
        + struct.pack("<I", 4 + 8 + len(payload))
        + b"WEBPVP8X"
        + struct.pack("<I", len(payload))
        + payload
    )


def webp_vp8(width: int, height: int) -> bytes:
    frame = b"\x00\x00\x00" + b"\x9d\x01\x2a" + struct.pack("<HH", width, height)
    return (
        b"RIFF"
        + struct.pack("<I", 4 + 8 + len(frame))
        + b"WEBPVP8 "
        + struct.pack("<I", len(frame))
        + frame
    )


def webp_vp8l(width: int, height: int) -> bytes:
    bits = (width - 1) | ((height - 1) << 14)
    frame = b"\x2f" + bits.to_bytes(4, "little")
    return (
        b"RIFF"
        + struct.pack("<I", 4 + 8 + len(frame))
        + b"WEBPVP8L"
        + struct.pack("<I", len(frame))
        + frame
    )


def gif(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00"


def bmp(width: int, height: int) -> bytes:
    return b"BM" + b"\x00" * 16 + struct.pack("<ii", width, height) + b"\x00" * 8


TIFF = b"II*\x00" + b"\x00" * 16


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    def write(name: str, data: bytes, size: int | None = None) -> Path:
        path = tmp_path / name
        with path.open("wb") as stream:
            stream.write(data)
            if size is not None:
                stream.truncate(size)  # sparse: no real disk use
        return path

    return write


# (id, class, file name, content, total size or None, OK or a piece of the rule)
FILE_CASES: list[tuple[str, type[ModelRequest], str, bytes, int | None, str | None]] = [
    ("png-ok", SEEDANCE, "a.png", png(1280, 720), None, OK),
    ("jpeg-ok", SEEDANCE, "a.jpg", jpeg(1280, 720), None, OK),
    ("webp-vp8x-ok", SEEDANCE, "a.webp", webp_vp8x(1280, 720), None, OK),
    ("webp-vp8-ok", HORSE, "a.webp", webp_vp8(800, 800), None, OK),
    ("webp-vp8l-ok", WAN27, "a.webp", webp_vp8l(640, 480), None, OK),
    ("name-does-not-matter", SEEDANCE, "photo.bin", png(1280, 720), None, OK),
    ("text-named-png", SEEDANCE, "fake.png", b"hello, I am text\n", None, "first bytes"),
    ("empty-file", HORSE, "empty.png", b"", None, "first bytes"),
    ("gif-seedance", SEEDANCE, "a.gif", gif(800, 800), None, "accepts jpeg, png, webp"),
    ("gif-fast-ok", FAST, "a.gif", gif(800, 800), None, OK),
    ("bmp-wan25-files-api", WAN25, "a.bmp", bmp(800, 800), None, "files API"),
    ("bmp-wan27-files-api", WAN27, "a.bmp", bmp(800, 800), None, "files API"),
    ("bmp-seedance", SEEDANCE, "a.bmp", bmp(800, 800), None, "accepts jpeg, png, webp"),
    ("tiff-fast-files-api", FAST, "a.tiff", TIFF, None, "files API"),
    ("gif-wan25", WAN25, "a.gif", gif(800, 800), None, "accepts jpeg, png, bmp, webp"),
    # size limits, both sides (sparse files)
    ("seedance-30mb", SEEDANCE, "big.png", png(1280, 720), 30 * MIB, OK),
    ("seedance-30mb+1", SEEDANCE, "big.png", png(1280, 720), 30 * MIB + 1, "up to 30 MB"),
    ("fast-30mb+1", FAST, "big.png", png(1280, 720), 30 * MIB + 1, "up to 30 MB"),
    ("horse-10mb", HORSE, "big.png", png(1280, 720), 10 * MIB, OK),
    ("horse-10mb+1", HORSE, "big.png", png(1280, 720), 10 * MIB + 1, "up to 10 MB"),
    ("wan25-10mb", WAN25, "big.png", png(1280, 720), 10 * MIB, OK),
    ("wan25-10mb+1", WAN25, "big.png", png(1280, 720), 10 * MIB + 1, "up to 10 MB"),
    ("wan27-20mb", WAN27, "big.png", png(1280, 720), 20 * MIB, OK),
    ("wan27-20mb+1", WAN27, "big.png", png(1280, 720), 20 * MIB + 1, "up to 20 MB"),
    # pixel limits, both ends
    ("seedance-300px", SEEDANCE, "a.png", png(300, 300), None, OK),
    ("seedance-299px", SEEDANCE, "a.png", png(299, 400), None, ">= 300 px"),
    ("seedance-6000px", SEEDANCE, "a.png", png(6000, 6000), None, OK),
    ("seedance-6001px", SEEDANCE, "a.jpg", jpeg(6001, 6000), None, "<= 6000 px"),
    ("seedance-aspect-2.5", SEEDANCE, "a.png", png(1000, 400), None, OK),
    ("seedance-aspect-2.5+", SEEDANCE, "a.png", png(1001, 400), None, "aspect"),
    ("seedance-aspect-0.4", SEEDANCE, "a.png", png(400, 1000), None, OK),
    ("seedance-aspect-0.4-", SEEDANCE, "a.png", png(400, 1001), None, "aspect"),
    ("horse-300px", HORSE, "a.jpg", jpeg(300, 300), None, OK),
    ("horse-299px", HORSE, "a.jpg", jpeg(300, 299), None, ">= 300 px"),
    ("wan25-360px", WAN25, "a.png", png(360, 360), None, OK),
    ("wan25-359px", WAN25, "a.png", png(359, 360), None, ">= 360 px"),
    ("wan25-2000px", WAN25, "a.png", png(2000, 2000), None, OK),
    ("wan25-2001px", WAN25, "a.png", png(2001, 2000), None, "<= 2000 px"),
    ("wan27-240px", WAN27, "a.png", png(240, 240), None, OK),
    ("wan27-239px", WAN27, "a.png", png(239, 240), None, ">= 240 px"),
    ("wan27-8000px", WAN27, "a.png", png(8000, 1000), None, OK),
    ("wan27-8001px", WAN27, "a.png", png(8001, 1001), None, "<= 8000 px"),
    ("wan27-aspect-8", WAN27, "a.png", png(1920, 240), None, OK),
    ("wan27-aspect-8+", WAN27, "a.png", png(1928, 240), None, "aspect"),
    # transparency (wan pages: not supported)
    ("wan25-rgba", WAN25, "a.png", png(800, 800, alpha=True), None, "transparency"),
    ("wan27-rgba", WAN27, "a.png", png(800, 800, alpha=True), None, "transparency"),
    ("seedance-rgba-ok", SEEDANCE, "a.png", png(800, 800, alpha=True), None, OK),
]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (png(1281, 719), ("png", 1281, 719, False)),
        (png(10, 20, alpha=True), ("png", 10, 20, True)),
        (jpeg(1281, 719), ("jpeg", 1281, 719, None)),
        # WebP headers say whether there is alpha (VP8X flag, VP8L bit; VP8 never).
        (webp_vp8x(1281, 719), ("webp", 1281, 719, False)),
        (webp_vp8(1281, 719), ("webp", 1281, 719, False)),
        (webp_vp8l(1281, 719), ("webp", 1281, 719, False)),
        (gif(1281, 719), ("gif", 1281, 719, None)),
        (bmp(1281, -719), ("bmp", 1281, 719, None)),
        (TIFF, ("tiff", None, None, None)),
        (b"\xff\xd8\xff\xe0", ("jpeg", None, None, None)),  # truncated: size unknown
        (b"plain text", (None, None, None, None)),
    ],
    ids=[
        "png",
        "png-rgba",
        "jpeg",
        "webp-vp8x",
        "webp-vp8",
        "webp-vp8l",
        "gif",
        "bmp",
        "tiff",
        "jpeg-truncated",
        "text",
    ],
)
def test_image_headers_are_read(
    write: Callable[..., Path], data: bytes, expected: tuple[object, ...]
) -> None:
    info = read_image_info(write("image", data))
    assert (info.format, info.width, info.height, info.alpha) == expected


def image_request(cls: type[ModelRequest], image: object) -> ModelRequest:
    if cls is WAN27:
        return Wan27ImageToVideo(image_start=image)  # type: ignore[arg-type]
    return make(cls, image_urls=[image])


@pytest.mark.parametrize(
    ("cls", "name", "data", "size", "expected"),
    [case[1:] for case in FILE_CASES],
    ids=[case[0] for case in FILE_CASES],
)
def test_local_image_checks(
    write: Callable[..., Path],
    cls: type[ModelRequest],
    name: str,
    data: bytes,
    size: int | None,
    expected: str | None,
) -> None:
    path = write(name, data, size)
    if expected is None:
        request = image_request(cls, path)
        assert local_files(request) == (path,)
        return
    with pytest.raises(ValidationError) as info:
        image_request(cls, path)
    (problem,) = info.value.problems
    assert problem.value == path
    assert expected in problem.rule, problem.rule


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not found"):
        make(SEEDANCE, image_urls=[tmp_path / "nope.png"])
    with pytest.raises(ValidationError, match="not a regular file"):
        make(HORSE, image_urls=[tmp_path])


def test_path_like_string_is_not_a_file() -> None:
    with pytest.raises(ValidationError, match=r"pathlib\.Path"):
        make(SEEDANCE, image_urls=["./cat.png"])


def test_local_files_in_order_without_repeats(write: Callable[..., Path]) -> None:
    first = write("first.png", png(800, 600))
    last = write("last.jpg", jpeg(800, 600))
    request = Wan27ImageToVideo(image_start=first, image_end=last)
    assert local_files(request) == (first, last)
    same_twice = make(SEEDANCE, image_urls=[last, last])
    assert local_files(same_twice) == (last,)
    mixed = make(SEEDANCE, image_urls=[URL, first])
    assert local_files(mixed) == (first,)
    assert local_files(make(HORSE)) == ()


def test_request_body_refuses_local_files(write: Callable[..., Path]) -> None:
    path = write("a.png", png(800, 600))
    with pytest.raises(ValidationError, match="not uploaded"):
        request_body(make(HORSE, image_urls=[path]))
    with pytest.raises(ValidationError, match="not uploaded"):
        request_body(Wan27ImageToVideo(image_start=path))


def test_replace_files_swaps_paths_for_urls(write: Callable[..., Path]) -> None:
    first = write("first.png", png(800, 600))
    last = write("last.png", png(800, 600))
    request = make(SEEDANCE, image_urls=[first, last], duration=8)
    uploaded = replace_files(request, {first: URL, last: URL2})
    assert request_body(uploaded) == {
        "model": SEEDANCE.model,
        "prompt": BASE[SEEDANCE]["prompt"],
        "image_urls": [URL, URL2],
        "duration": 8,
    }
    assert type(uploaded) is SeedanceImageToVideo
    assert local_files(request) == (first, last)  # the original is untouched

    partly = replace_files(request, {first: URL})
    assert local_files(partly) == (last,)

    wan = Wan27ImageToVideo(image_start=first, image_end=last)
    assert request_body(replace_files(wan, {first: URL, last: URL2}))["image_end"] == URL2

    no_paths = make(HORSE)
    assert replace_files(no_paths, {first: URL}) is no_paths


def test_replace_files_validates_again(write: Callable[..., Path]) -> None:
    path = write("a.png", png(800, 600))
    with pytest.raises(ValidationError, match="data URLs"):
        replace_files(make(HORSE, image_urls=[path]), {path: "data:image/png;base64,AA"})


def test_raw_request_paths_are_uploaded_too(write: Callable[..., Path]) -> None:
    path = write("a.png", png(800, 600))
    raw = RawRequest("future-model", {"image": path, "images": [path, URL], "n": 1})
    assert local_files(raw) == (path,)
    with pytest.raises(ValidationError, match="not uploaded"):
        request_body(raw)
    sent = replace_files(raw, {path: URL2})
    assert request_body(sent) == {
        "model": "future-model",
        "image": URL2,
        "images": [URL2, URL],
        "n": 1,
    }


@pytest.mark.parametrize(
    "host", ["127.1", "2130706433", "0x7f.0.0.1", "0177.0.0.1", "10.1", "192.168.1"]
)
def test_callback_to_a_loopback_or_private_address_in_legacy_form_is_refused(host: str) -> None:
    from evolink_async.testing._rules import check_create

    params = {
        "prompt": "A cat",
        "image_urls": ["https://example.com/cat.png"],
        "callback_url": f"https://{host}/hook",
    }
    with pytest.raises(ValidationError, match="callback_url"):
        build_request("wan2.5-image-to-video", params)
    assert check_create({"model": "wan2.5-image-to-video", **params}) is not None
