"""
Where a command's API key comes from: `--api-key-file`, `EVOLINK_API_KEY`, or `--api-key`.

A key given on the command line is visible to every user of the machine
(`ps`, `/proc/*/cmdline`) and lands in shell history, so `--api-key` still
works but prints a warning on stderr; `--api-key-file PATH` (the key alone,
surrounding whitespace ignored) and the `EVOLINK_API_KEY` variable do not.
The key itself is never printed: messages name the option or the file.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Final

__all__ = ["KEY_WARNING", "KeyOptionError", "add_key_options", "resolve_key"]

KEY_WARNING: Final = (
    "warning: --api-key puts the key on the command line, where other users of this "
    "machine can read it (ps); use EVOLINK_API_KEY or --api-key-file instead"
)
#: A key file larger than this is not a key file.
_MAX_KEY_FILE: Final = 4096


class KeyOptionError(Exception):
    """The key options cannot be used (both given, an unreadable or empty file)."""


def add_key_options(parser: argparse.ArgumentParser) -> None:
    """Add `--api-key-file` and `--api-key` to a command's parser."""
    parser.add_argument(
        "--api-key-file",
        metavar="PATH",
        help="read the API key from this file (default: the EVOLINK_API_KEY variable)",
    )
    parser.add_argument(
        "--api-key",
        metavar="KEY",
        help="the API key itself (visible to other users in ps: prefer the two above)",
    )


def resolve_key(args: argparse.Namespace, prog: str) -> str | None:
    """
    The API key from the parsed options or the environment; None when there is none.

    Warns on stderr (naming `prog`) when the key came from `--api-key`.

    Raises:
        KeyOptionError: both options were given, or the key file cannot be
            read or holds no key.
    """
    given: str | None = getattr(args, "api_key", None)
    path_text: str | None = getattr(args, "api_key_file", None)
    if given and path_text:
        raise KeyOptionError("--api-key and --api-key-file: give one of them")
    if path_text:
        return _read_key_file(Path(path_text))
    if given:
        print(f"{prog}: {KEY_WARNING}", file=sys.stderr, flush=True)
        return given
    return os.environ.get("EVOLINK_API_KEY") or None


def _read_key_file(path: Path) -> str:
    try:
        with path.open("rb") as stream:
            data = stream.read(_MAX_KEY_FILE + 1)
    except OSError as exc:
        raise KeyOptionError(
            f"--api-key-file {path}: cannot read ({exc.strerror or type(exc).__name__})"
        ) from None
    if len(data) > _MAX_KEY_FILE:
        raise KeyOptionError(f"--api-key-file {path}: too large to be a key file")
    try:
        key = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise KeyOptionError(f"--api-key-file {path}: not text") from None
    if not key:
        raise KeyOptionError(f"--api-key-file {path}: holds no key")
    if any(char.isspace() for char in key):
        raise KeyOptionError(f"--api-key-file {path}: holds more than one word (the key alone)")
    return key
