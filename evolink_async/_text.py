"""
Text from elsewhere made safe to show: `printable` for a terminal or a log line.

A server's error message, a task id, a request id or a callback body can
hold anything, and so can a job file: a terminal escape sequence (ESC `[`),
a newline or carriage return that forges a log line, a C1 control
(U+0080-U+009F; some terminals take U+009B for ESC `[`), a bidi override
that shows the rest of a line reversed, a zero-width character, a line
separator, a lone surrogate that no UTF-8 stream can even write.
`printable` escapes each as Python's `repr` does (`\\x1b`, `\\n`, `\\u202e`,
`\\ud800`) and leaves every other character alone, so accents, CJK and emoji
read as sent. `printable_json` does the same to JSON text with JSON's own
escapes (`\\u001b`), so the output still parses to the very same value.

The escaped class is every character Python would not print
(`str.isprintable` is false: controls, format characters, surrogates, line
and paragraph separators, private-use and unassigned code points) except
spaces, which move nothing.
"""

from __future__ import annotations

import unicodedata
from typing import Final

__all__ = ["printable", "printable_json", "short_repr"]

#: Escapes Python's `repr` uses for the usual controls.
_SHORT: Final = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _unsafe(char: str) -> bool:
    return not char.isprintable() and unicodedata.category(char) != "Zs"


def _python_escape(char: str) -> str:
    code = ord(char)
    short = _SHORT.get(char)
    if short is not None:
        return short
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _json_escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    # JSON spells a character beyond the BMP as its UTF-16 surrogate pair.
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def printable(text: object) -> str:
    """
    `str(text)` with every control, format or unpaired character escaped.

    The result holds no character that moves the cursor, starts an escape
    sequence, breaks the line or reorders text, and encodes to UTF-8. Text
    that needs no escape comes back unchanged; escaping twice changes
    nothing more.
    """
    value = text if isinstance(text, str) else str(text)
    if value.isprintable():
        return value
    return "".join(_python_escape(char) if _unsafe(char) else char for char in value)


def printable_json(text: str) -> str:
    """
    JSON text (as `json.dumps` writes it) with the same characters escaped
    as `printable` escapes, in JSON's `\\uXXXX` form.

    Newlines are kept: `json.dumps` escapes every newline inside a string,
    so a raw one is indentation. The result parses to the same value.
    """
    if text.isprintable():
        return text
    return "".join(_json_escape(char) if char != "\n" and _unsafe(char) else char for char in text)


def short_repr(value: object, limit: int = 80) -> str:
    """
    `repr(value)` for a message, at most about `limit` characters; a value
    with no repr (an int too long to write, a `__repr__` that raises) is
    named by its type.
    """
    try:
        text = repr(value)
    except Exception:  # a number too long to write, a __repr__ that raises
        return f"<{type(value).__name__} that cannot be shown>"
    if len(text) > limit:
        return f"{text[: limit - 15]}...<{len(text)} chars>"
    return text
