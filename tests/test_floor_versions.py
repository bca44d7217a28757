"""
The declared dependency floors are the ones CI tests, and CI tests every
supported Python.

`make test-floor` installs `.ci/floor-constraints.txt` and runs the suite, so
a floor in `pyproject.toml` that differs from its pin there is a floor no test
has seen. Known-bad versions stay below the floors. `make test-pythons` runs
the suite on every Python the classifiers name besides the one `make test`
uses, and a Python that is missing fails instead of being skipped.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parent.parent
#: Versions a floor must stay above, and why.
KNOWN_BAD: Final = {
    "aiohttp": [
        ("3.9.0", "a read timeout raises a bare CancelledError"),
        ("3.10.7", "close() can raise CancelledError and leak the session; no auto_decompress="),
    ],
    "cattrs": [("23.2.0", "yanked")],
}


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def floors() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    found = {}
    for requirement in project["dependencies"]:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9.]+)", requirement)
        assert match, f"{requirement!r}: every runtime dependency needs a plain >= floor"
        found[match.group(1).lower()] = match.group(2)
    return found


def pins() -> dict[str, str]:
    found = {}
    for line in (REPO / ".ci" / "floor-constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, pinned = line.partition("==")
            found[name.strip().lower()] = pinned.strip()
    return found


def test_every_floor_is_pinned_for_the_floor_run() -> None:
    assert pins() == floors()


def test_floors_are_above_known_bad_versions() -> None:
    declared = floors()
    for name, bad in KNOWN_BAD.items():
        for release, why in bad:
            assert version(declared[name]) > version(release), f"{name} {release}: {why}"


def test_ci_runs_the_floors_and_every_other_python_before_make_test() -> None:
    run = (REPO / ".ci" / "run").read_text()
    steps = [line.strip() for line in run.splitlines() if "make " in line and "#" not in line]
    assert steps[-1] == "make test", steps
    assert any("make test-floor" in step for step in steps)
    assert any("make test-pythons" in step for step in steps)
    makefile = (REPO / "Makefile").read_text()
    target = re.search(r"^test-pythons:(.*)$", makefile, re.MULTILINE)
    assert target, "no test-pythons target"
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    minimum = project["requires-python"].removeprefix(">=")
    named = {
        classifier.rsplit(" :: ", 1)[1]
        for classifier in project["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", classifier)
    }
    # `make test` runs on the oldest; each newer one has its own run.
    assert set(target.group(1).split()) == {f"test-py{v}" for v in named - {minimum}}


def test_a_missing_python_fails_the_run_loudly() -> None:
    result = subprocess.run(
        [str(REPO / ".ci" / "suite-on"), "python", "3.99"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "Python 3.99 is not installed" in result.stderr
    assert not (REPO / ".venv-3.99").exists()
