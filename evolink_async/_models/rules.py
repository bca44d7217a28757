"""
Field rules: what each request field accepts, checked and said in words.

Each rule is a small frozen value with two jobs: `check(field, value, out)`
appends a `Problem` to `out` for every way `value` breaks the rule (it never
raises, whatever the value's type), and `describe()` says the rule in words for
`evolink-async models` and the docs. The request classes (`seedance.py`,
`happyhorse.py`, `wan.py`) attach one rule to each field, so what is checked and
what is documented come from the same object and cannot drift apart.

A rule is only asked about values that are set: `None` means "unset" and is
handled by the caller (required or left out of the JSON body).

URLs are checked for form only: absolute http(s) with a host, and no `data:`
URLs (API-NOTES says generation takes URLs only). Private hosts are not refused
for *image* URLs (the local mock serves uploads on 127.0.0.1), only for
`callback_url`, where the pages forbid them (`hosts.py` reads the host as URL
parsers do and judges it). A local `Path` in an image field gets the checks of
`images.py` instead.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import attrs

from .._errors import Problem
from .hosts import callback_host_problem
from .images import ImageLimits, check_image_file

__all__ = [
    "MAX_CALLBACK_URL_LENGTH",
    "Boolean",
    "CallbackUrl",
    "Choice",
    "Integer",
    "Rule",
    "Text",
    "Url",
    "UrlList",
    "callback_url_problems",
    "did_you_mean",
    "url_form_problem",
]

#: The API refuses callback URLs longer than this (every model's page).
MAX_CALLBACK_URL_LENGTH = 2048


class Rule(Protocol):
    """A documented rule for one field's value."""

    @property
    def type_name(self) -> str:
        """The field's type in words, e.g. `integer`."""
        ...

    def check(self, field: str, value: object, out: list[Problem]) -> None:
        """Append a `Problem` to `out` for each way `value` breaks the rule."""
        ...

    def describe(self) -> str:
        """The rule in words, e.g. `4-15`."""
        ...


def did_you_mean(word: str, options: list[str] | tuple[str, ...]) -> str:
    """` did you mean 'x'?` for the closest option, or "" if none is close."""
    lowered = {option.lower(): option for option in options}
    if word.lower() in lowered:
        return f" did you mean {lowered[word.lower()]!r}?"
    starting = [option for option in options if word and option.lower().startswith(word.lower())]
    if len(starting) == 1:
        return f" did you mean {starting[0]!r}?"
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" did you mean {close[0]!r}?" if close else ""


def _kind(value: object) -> str:
    """`a string`, `a boolean`, ...: for "not X" messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


@attrs.frozen(kw_only=True)
class Integer:
    """
    An integer in `[min, max]`, or one of `choices` when given.

    `bool` is rejected although it is an `int` subclass (`True` is no duration),
    and so are strings and fractional floats. A float with no fraction (`5.0`)
    is a JSON integer too; the request classes convert it to `5` before this
    rule sees it.
    """

    min: int
    max: int
    choices: tuple[int, ...] | None = None
    unit: str = ""

    type_name = "integer"

    def describe(self) -> str:
        """E.g. `4-15 seconds` or `5 or 10 seconds`."""
        if self.choices is not None:
            text = " or ".join(str(c) for c in self.choices)
        else:
            text = f"{self.min}-{self.max}"
        return f"{text} {self.unit}".rstrip()

    def _rule(self) -> str:
        if self.choices is not None:
            return f"must be {' or '.join(str(c) for c in self.choices)}"
        return f"must be an integer from {self.min} to {self.max}"

    def check(self, field: str, value: object, out: list[Problem]) -> None:
        """Type, integer-ness and range."""
        if isinstance(value, float):
            rule = f"{self._rule()} (not a whole number)"
            out.append(Problem(field=field, value=value, rule=rule))
        elif isinstance(value, bool) or not isinstance(value, int):
            out.append(
                Problem(field=field, value=value, rule=f"{self._rule()}, not {_kind(value)}")
            )
        elif self.choices is not None:
            if value not in self.choices:
                out.append(Problem(field=field, value=value, rule=self._rule()))
        elif not self.min <= value <= self.max:
            out.append(Problem(field=field, value=value, rule=self._rule()))


@attrs.frozen(kw_only=True)
class Choice:
    """One of a fixed set of strings, spelled exactly (`720p`, not `720P`)."""

    values: tuple[str, ...]

    type_name = "string"

    def describe(self) -> str:
        """E.g. `480p, 720p`."""
        return ", ".join(self.values)

    def check(self, field: str, value: object, out: list[Problem]) -> None:
        """Type and membership, with a did-you-mean."""
        allowed = ", ".join(repr(v) for v in self.values)
        if not isinstance(value, str):
            rule = f"must be one of {allowed}, not {_kind(value)}"
            out.append(Problem(field=field, value=value, rule=rule))
        elif value not in self.values:
            hint = did_you_mean(value, self.values)
            out.append(Problem(field=field, value=value, rule=f"must be one of {allowed};{hint}"))


@attrs.frozen
class Boolean:
    """A real `True`/`False`: strings like `"true"` and the ints 0/1 are rejected."""

    type_name = "boolean"

    def describe(self) -> str:
        """`true or false`."""
        return "true or false"

    def check(self, field: str, value: object, out: list[Problem]) -> None:
        """Type only."""
        if not isinstance(value, bool):
            rule = f"must be a boolean (True or False), not {_kind(value)}"
            out.append(Problem(field=field, value=value, rule=rule))


# CJK ideographs (unified, extension A, compatibility, supplementary planes):
# what the Seedance page's "Chinese chars" means here.
_CHINESE = re.compile(
    "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df\U0002a700-\U0002ebef]"
)


@attrs.frozen(kw_only=True)
class Text:
    """
    A string, with the page's length limit when the server rejects (rather
    than truncates) longer text.

    `max_chars` counts characters. `max_chinese`/`max_words` is Seedance's
    "<= 500 Chinese chars or <= 1000 English words": a text containing any
    Chinese ideograph may have at most `max_chinese` characters (all of them
    counted), any other text at most `max_words` whitespace-separated words.
    `note` documents limits the server enforces by truncating, which are not
    checked.
    """

    required: bool = False
    max_chars: int | None = None
    max_chinese: int | None = None
    max_words: int | None = None
    note: str = ""

    type_name = "string"

    def describe(self) -> str:
        """E.g. `<= 1000 characters`."""
        parts = []
        if self.required:
            parts.append("not blank")
        if self.max_chars is not None:
            parts.append(f"<= {self.max_chars} chars")
        if self.max_chinese is not None and self.max_words is not None:
            parts.append(
                f"with Chinese text <= {self.max_chinese} chars, else <= {self.max_words} words"
            )
        if self.note:
            parts.append(self.note)
        return "; ".join(parts)

    def check(self, field: str, value: object, out: list[Problem]) -> None:
        """Type, blankness (when required) and length."""
        if not isinstance(value, str):
            out.append(
                Problem(field=field, value=value, rule=f"must be a string, not {_kind(value)}")
            )
            return
        if self.required and not value.strip():
            out.append(Problem(field=field, value=value, rule="is required and must not be blank"))
            return
        if self.max_chars is not None and len(value) > self.max_chars:
            rule = f"must be at most {self.max_chars} characters (it has {len(value)})"
            out.append(Problem(field=field, value=value, rule=rule))
        if self.max_chinese is not None and self.max_words is not None:
            if _CHINESE.search(value):
                if len(value) > self.max_chinese:
                    rule = (
                        f"with Chinese text must be at most {self.max_chinese} characters "
                        f"(it has {len(value)})"
                    )
                    out.append(Problem(field=field, value=value, rule=rule))
            else:
                words = len(value.split())
                if words > self.max_words:
                    rule = f"must be at most {self.max_words} words (it has {words})"
                    out.append(Problem(field=field, value=value, rule=rule))


def url_form_problem(value: str) -> str | None:
    """Why `value` is not an absolute http(s) URL with a host, or None if it is."""
    if value[:5].lower() == "data:":
        return (
            "base64 data URLs are not supported by the API (URLs only); "
            "upload the file instead: pass a pathlib.Path"
        )
    try:
        parts = urlsplit(value)
        host = parts.hostname
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        return (
            "must be an absolute http:// or https:// URL "
            "(for a local file, pass pathlib.Path(...) and it is uploaded first)"
        )
    if not host:
        return "must be an absolute URL with a host"
    return None


def _check_ref(field: str, value: object, images: ImageLimits | None, out: list[Problem]) -> None:
    """One URL, or (for image fields) a local `Path` to upload."""
    if isinstance(value, Path):
        if images is None:
            rule = (
                "local files can only be uploaded for image fields: the files API "
                "takes images only (jpeg/png/gif/webp); host this file and pass its URL"
            )
            out.append(Problem(field=field, value=value, rule=rule))
            return
        out.extend(
            Problem(field=field, value=value, rule=r) for r in check_image_file(value, images)
        )
        return
    if not isinstance(value, str):
        want = "a URL string or a pathlib.Path" if images is not None else "a URL string"
        out.append(Problem(field=field, value=value, rule=f"must be {want}, not {_kind(value)}"))
        return
    problem = url_form_problem(value)
    if problem is not None:
        out.append(Problem(field=field, value=value, rule=problem))


def _ref_type(images: ImageLimits | None) -> str:
    return "URL | Path" if images is not None else "URL"


@attrs.frozen(kw_only=True)
class Url:
    """One absolute http(s) URL; for image fields (`images` set) also a local `Path`."""

    images: ImageLimits | None = None

    @property
    def type_name(self) -> str:
        """`URL | Path` or `URL`."""
        return _ref_type(self.images)

    def describe(self) -> str:
        """`http(s) URL`: absolute, no data: URLs."""
        return "http(s) URL"

    def check(self, field: str, value: object, out: list[Problem]) -> None:
        """URL form, or the local file's checks for a Path."""
        _check_ref(field, value, self.images, out)


@attrs.frozen(kw_only=True)
class UrlList:
    """A list of `min_items`..`max_items` URLs (image lists also take `Path`s)."""

    min_items: int
    max_items: int
    images: ImageLimits | None = None

    @property
    def type_name(self) -> str:
        """E.g. `list[URL | Path]`."""
        return f"list[{_ref_type(self.images)}]"

    def _count(self) -> str:
        if self.min_items == self.max_items:
            return f"exactly {self.min_items} item{'s' if self.min_items != 1 else ''}"
        return f"{self.min_items}-{self.max_items} items"

    def describe(self) -> str:
        """E.g. `1-2 http(s) URLs`."""
        return f"{self._count()}, http(s) URLs"

    def check(self, field: str, value: object, out: list[Problem]) -> None:
        """List type, length, then every item (problems name `field[i]`)."""
        if isinstance(value, str | Path):
            rule = f"must be a list ({self._count()}), not a single value: wrap it in [...]"
            out.append(Problem(field=field, value=value, rule=rule))
            return
        if not isinstance(value, tuple | list):
            rule = f"must be a list ({self._count()}), not {_kind(value)}"
            out.append(Problem(field=field, value=value, rule=rule))
            return
        if not self.min_items <= len(value) <= self.max_items:
            rule = f"must have {self._count()} (it has {len(value)})"
            if not value:
                rule += "; leave the field out to send none"
            out.append(Problem(field=field, value=value, rule=rule))
        for index, item in enumerate(value):
            _check_ref(f"{field}[{index}]", item, self.images, out)


def callback_url_problems(value: str) -> list[str]:
    """Every way `value` breaks the API's callback_url rules."""
    problems: list[str] = []
    if len(value) > MAX_CALLBACK_URL_LENGTH:
        problems.append(
            f"must be at most {MAX_CALLBACK_URL_LENGTH} characters (it has {len(value)})"
        )
    form = url_form_problem(value)
    if form is not None:
        return [*problems, form]
    if urlsplit(value).scheme.lower() != "https":
        problems.append("must use https:// (the API only calls back over HTTPS)")
    host = callback_host_problem(value)
    if host is not None:
        problems.append(host)
    return problems


@attrs.frozen
class CallbackUrl:
    """The API's callback_url rules: https, <= 2048 chars, a public host."""

    type_name = "URL"

    def describe(self) -> str:
        """The rules in words."""
        return (
            f"https; <= {MAX_CALLBACK_URL_LENGTH} chars; no localhost, no private, loopback, "
            "link-local, multicast or reserved IP"
        )

    def check(self, field: str, value: object, out: list[Problem]) -> None:
        """Type, scheme, length and host."""
        if not isinstance(value, str):
            out.append(
                Problem(field=field, value=value, rule=f"must be a URL string, not {_kind(value)}")
            )
            return
        out.extend(Problem(field=field, value=value, rule=r) for r in callback_url_problems(value))
