"""
The package's shape, checked from its source with `ast` (see ARCHITECTURE.md):

- no import cycle between the package's files, counting imports inside
  functions and under TYPE_CHECKING (they hide cycles, they do not break them);
- imports only run down the layers, and `testing/` imports nothing else of
  the SDK (it is an independent oracle of the API);
- no file over `MAX_LINES` lines;
- no module but `_client.py` touches a client's private attribute.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

PACKAGE: Final = Path(__file__).resolve().parent.parent / "evolink_async"
MAX_LINES: Final = 700

#: Layers, lowest first: a module may import its own layer and those below.
LAYERS: Final = (
    ("_version", "_numbers", "_public", "_errors", "_values", "_text", "_telemetry", "_checked"),
    ("_models", "_convert"),
    ("_api",),
    ("_watch",),
    ("_batch",),
    ("_config", "_parts"),
    ("_client", "_calls"),
    ("webhooks", "models", "_cli", "__init__", "__main__", "ray"),
)
#: Imports inside a function that close a circle on purpose, and why.
ALLOWED_LAZY: Final = {
    # `Task.from_json` is a public constructor; the converter is built on the
    # values, so the value module reaches it only when the method is called.
    ("evolink_async._values", "evolink_async._convert"),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: Final = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def imports(name: str) -> Iterator[tuple[str, bool]]:
    """(module imported, whether inside a function) for each package import in `name`."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    base = name.split(".") if is_package(name) else name.split(".")[:-1]
    lazy_nodes = {
        id(node)
        for func in ast.walk(tree)
        if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(func)
    }
    for node in ast.walk(tree):
        lazy = id(node) in lazy_nodes
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("evolink_async"):
                    yield from resolved(alias.name, [], lazy)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - node.level + 1]
                target = ".".join([*anchor, *([node.module] if node.module else [])])
            elif node.module and node.module.startswith("evolink_async"):
                target = node.module
            else:
                continue
            yield from resolved(target, [alias.name for alias in node.names], lazy)


def resolved(target: str, names: list[str], lazy: bool) -> Iterator[tuple[str, bool]]:
    """`from target import names`: the submodules named, and `target` for any other name."""
    submodules = [f"{target}.{name}" for name in names if f"{target}.{name}" in MODULES]
    yield from ((module, lazy) for module in submodules)
    if target in MODULES and (not names or len(submodules) < len(names)):
        yield target, lazy


def layer(name: str) -> int:
    top = name.split(".")[1] if "." in name else "__init__"
    for index, members in enumerate(LAYERS):
        if top in members:
            return index
    raise AssertionError(f"{name} is in no layer: add it to LAYERS and ARCHITECTURE.md")


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {name: set() for name in MODULES}
    for name in MODULES:
        for target, lazy in imports(name):
            if target == name or (lazy and (name, target) in ALLOWED_LAZY):
                continue
            edges[name].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    assert cycles(graph()) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    # The checker itself: a circle of three is reported, a chain is not.
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_imports_only_run_down_the_layers() -> None:
    upward = [
        f"{name} (layer {layer(name)}) imports {target} (layer {layer(target)})"
        for name, targets in graph().items()
        if not name.startswith("evolink_async.testing")
        for target in targets
        if not target.startswith("evolink_async.testing") and layer(target) > layer(name)
    ]
    assert upward == []


def test_testing_imports_nothing_else_of_the_sdk() -> None:
    reached = {
        f"{name} -> {target}"
        for name, targets in graph().items()
        if name.startswith("evolink_async.testing")
        for target in targets
        if not target.startswith("evolink_async.testing")
    }
    assert reached == set()


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_file_is_over_the_line_limit(name: str) -> None:
    lines = MODULES[name].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{name}: {lines} lines; split it by job"


def test_only_the_client_touches_its_private_attributes() -> None:
    offenders = []
    for name, path in MODULES.items():
        if name == "evolink_async._client":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and _names_a_client(node.value)
            ):
                offenders.append(f"{name}:{node.lineno}: .{node.attr}")  # noqa: PERF401 -- reads better than a four-level comprehension
    assert offenders == []


def _names_a_client(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in {"client", "_client", "parent"}
    if isinstance(node, ast.Attribute):
        return node.attr in {"client", "_client"}
    return False
