"""
Every example in the README's models section runs against MockEvoLink.

The section between `<!-- models:start -->` and `<!-- models:end -->` holds
```python blocks that start with the note that they run inside an async
function with an open `client` (`NOTE`). Each is compiled with
`ast.PyCF_ALLOW_TOP_LEVEL_AWAIT` and awaited with a fresh mock and client, and
with no other name in scope (a block imports what it uses, as pasted); the
local images a block names (`pathlib.Path("x.png")`) are created in a temp dir
it runs in. A block passes when it completes and the mock received a create
for the model the block is about, holding only fields the block sets.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from evolink_async import EvoLinkClient, Task, TaskStatus
from evolink_async.models import MODELS
from evolink_async.testing import MockEvoLink

from .test_readme import NOTE
from .test_uploads import jpeg, png, webp

pytestmark = pytest.mark.anyio

README = Path(__file__).resolve().parent.parent / "README.md"
START = "<!-- models:start -->"
END = "<!-- models:end -->"
MARK = NOTE + "\n"
CREATE_ROUTE = "POST /v1/videos/generations"

_FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
_PATH_LITERAL = re.compile(r"""Path\(\s*["']([^"']+)["']\s*\)""")
_RAW_MODEL = re.compile(r"""RawRequest\(\s*["']([^"']+)["']""")
_IMAGES = {".png": png, ".jpg": jpeg, ".jpeg": jpeg, ".webp": webp}


class Block(NamedTuple):
    """One python block of the models section."""

    line: int  # of its first code line in README.md
    code: str

    @property
    def runnable(self) -> bool:
        return self.code.startswith(MARK)

    @property
    def expected_models(self) -> set[str]:
        """The model ids the block may create: named by id, by class, or via RawRequest."""
        found = {model for model in MODELS if f'"{model}"' in self.code}
        found |= {
            model for model, cls in MODELS.items() if re.search(rf"\b{cls.__name__}\(", self.code)
        }
        return found | set(_RAW_MODEL.findall(self.code))

    @property
    def local_files(self) -> list[str]:
        return sorted(set(_PATH_LITERAL.findall(self.code)))


def section_blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    start = text.index(START) + len(START)
    end = text.index(END, start)
    offset = text.count("\n", 0, start)
    blocks = []
    for match in _FENCE.finditer(text, start, end):
        line = offset + text.count("\n", start, match.start(1)) + 1
        blocks.append(Block(line=line, code=match.group(1)))
    return blocks


BLOCKS = [block for block in section_blocks() if block.runnable]


def test_every_python_block_in_the_section_is_run() -> None:
    blocks = section_blocks()
    assert blocks, "no python blocks between the models markers"
    skipped = [block.line for block in blocks if not block.runnable]
    assert not skipped, f"README.md blocks at lines {skipped} lack {MARK!r}"


def test_every_model_has_a_runnable_example() -> None:
    covered = set().union(*(block.expected_models for block in BLOCKS))
    assert set(MODELS) <= covered


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    return []


@pytest.mark.parametrize("block", BLOCKS, ids=[f"README.md:{b.line}" for b in BLOCKS])
async def test_readme_example_runs_against_the_mock(
    block: Block,
    client: EvoLinkClient,
    mock: MockEvoLink,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in block.local_files:
        (tmp_path / name).write_bytes(_IMAGES[Path(name).suffix.lower()]())
    monkeypatch.chdir(tmp_path)
    expected = block.expected_models
    assert expected, "the block names no model"

    code = compile(
        "\n" * (block.line - 1) + block.code,  # tracebacks point at README.md lines
        str(README),
        "exec",
        flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
    )
    namespace: dict[str, Any] = {"client": client, "__name__": "readme"}
    pending = eval(code, namespace)  # noqa: S307 -- our own README, compiled above
    if pending is not None:  # a coroutine when the block awaits
        await pending

    creates = [r.json for r in mock.requests_log if r.route == CREATE_ROUTE]
    assert creates, "the block sent no create"
    assert mock.stats.tasks_created == len(creates), "a create was refused"
    for body in creates:
        assert body["model"] in expected
        # Only fields the block sets are sent (unset fields are left out).
        assert all(re.search(rf"\b{key}\b", block.code) for key in body if key != "model"), body
    task = namespace.get("task")
    assert isinstance(task, Task)
    assert task.id in mock.tasks
    if "generate(" in block.code or ".wait(" in block.code:
        assert task.status is TaskStatus.COMPLETED
    if block.local_files:
        # Each local file was uploaded and only the upload's URL was sent.
        assert mock.stats.uploads >= len(block.local_files)
        sent = [s for body in creates for s in _strings(body)]
        for name in block.local_files:
            assert name not in sent
            assert any(s.startswith(f"{mock.url}/files/uploads/") for s in sent)
