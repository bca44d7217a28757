"""
Every python code block in README.md runs, so the README cannot rot.

- Blocks starting with `NOTE` ("Inside an async function, with `client` an
  open EvoLinkClient") are top-level-await snippets, run with `client` (an
  `EvoLinkClient` on a MockEvoLink) and nothing else in scope: whatever else
  they use, they import, as a reader pasting them would have to.
- Whole programs (`asyncio.run(main())`) run as a subprocess with
  `EVOLINK_API_KEY` / `EVOLINK_BASE_URL` pointing at a `mock-server`.
- Other blocks are executed as modules (they define an app, a policy, a test);
  any `test_*` coroutine they define is then run. FastAPI is in the `dev`
  extra: its block runs like any other (a missing FastAPI fails it).

Every block runs as pasted: nothing is added to its text, and it gets no name
it does not define or import (but `client`, for the blocks that say so). The
models section (between its markers) is run by test_readme_models.py, the
same way.
"""

from __future__ import annotations

import ast
import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from evolink_async.testing import MockEvoLink

from .conftest import make_client

README = Path(__file__).resolve().parent.parent / "README.md"
#: The first line of a block that runs inside an async function with a client.
NOTE = "# Inside an async function, with `client` an open EvoLinkClient (see Quickstart)."


def blocks() -> list[tuple[int, str]]:
    """(line number, code) of every python block outside the models section."""
    text = README.read_text()
    start, end = text.find("<!-- models:start -->"), text.find("<!-- models:end -->")
    found = []
    for match in re.finditer(r"```python\n(.*?)```", text, re.S):
        if start <= match.start() <= end:
            continue
        found.append((text.count("\n", 0, match.start()) + 1, match.group(1)))
    return found


def kind(code: str) -> str:
    if code.startswith(NOTE + "\n"):
        return "client"
    if "asyncio.run(" in code:
        return "program"
    return "module"


BLOCKS = blocks()


def test_the_readme_has_blocks_of_every_kind() -> None:
    kinds = {kind(code) for _, code in BLOCKS}
    assert kinds == {"client", "program", "module"}
    assert len(BLOCKS) >= 7


def test_links_work_on_the_pypi_page() -> None:
    # PyPI shows README.md alone: a relative link (to ARCHITECTURE.md, say)
    # would lead nowhere there.
    targets = re.findall(r"\]\(([^)\s]+)\)", README.read_text())
    assert targets
    relative = [t for t in targets if not t.startswith(("https://", "http://", "#"))]
    assert relative == []


def every_python_block() -> list[tuple[int, str]]:
    """(line number, code) of every python block, the models section's included."""
    text = README.read_text()
    return [
        (text.count("\n", 0, match.start()) + 1, match.group(1))
        for match in re.finditer(r"```python\n(.*?)```", text, re.S)
    ]


@pytest.mark.parametrize(
    ("line", "code"), every_python_block(), ids=[f"line-{n}" for n, _ in every_python_block()]
)
def test_a_block_is_python_as_pasted_or_says_where_it_goes(line: int, code: str) -> None:
    # Top-level `await` is only valid inside an async function: a block that
    # needs one says so on its first line; every other block compiles as it is.
    try:
        compile(code, f"README.md:{line}", "exec")
    except SyntaxError:
        assert code.startswith(NOTE + "\n"), f"README.md:{line} is not Python as pasted"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "code",
    [code for _, code in BLOCKS if kind(code) == "client"],
    ids=[f"line-{line}" for line, code in BLOCKS if kind(code) == "client"],
)
async def test_client_snippet_runs(
    code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mock: MockEvoLink
) -> None:
    monkeypatch.chdir(tmp_path)
    async with make_client(mock) as client:
        # `client` and nothing else: the block imports what it uses.
        scope: dict[str, Any] = {"client": client, "__name__": "readme_block"}
        compiled = compile(code, str(README), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        result = eval(compiled, scope)  # noqa: S307 -- our own README, run on purpose
        if asyncio.iscoroutine(result):
            await result
    assert mock.stats.tasks_created > 0


@pytest.mark.parametrize(
    "code",
    [code for _, code in BLOCKS if kind(code) == "program"],
    ids=[f"line-{line}" for line, code in BLOCKS if kind(code) == "program"],
)
def test_program_runs_against_the_mock_server(
    code: str, tmp_path: Path, mock_server: tuple[str, str]
) -> None:
    url, key = mock_server
    script = tmp_path / "program.py"
    script.write_text(code)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVOLINK_")}
    env.update(EVOLINK_API_KEY=key, EVOLINK_BASE_URL=url, EVOLINK_FILES_BASE_URL=url)
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert url in result.stdout  # it printed the video URL the mock serves
    videos = list(tmp_path.rglob("*.mp4"))
    assert videos and all(v.stat().st_size > 0 for v in videos)


@pytest.mark.parametrize(
    "code",
    [code for _, code in BLOCKS if kind(code) == "module"],
    ids=[f"line-{line}" for line, code in BLOCKS if kind(code) == "module"],
)
def test_module_block_runs(code: str) -> None:
    scope: dict[str, Any] = {"__name__": "readme_block"}
    exec(compile(code, str(README), "exec"), scope)  # noqa: S102 -- our own README
    tests = [value for name, value in scope.items() if name.startswith("test_")]
    for test in tests:
        asyncio.run(test())
