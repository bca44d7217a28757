"""
Public names report the module users import them from, not the private room
that defines them (as anyio does): `EvoLinkClient.__module__ == "evolink_async"`,
so reprs, tracebacks, pickles and docs name the stable path, and moving a
class between private files changes nothing a user sees.

An attrs class's string annotations are resolved first, in the module that
wrote them: afterwards `typing.get_type_hints` would look them up in the
public module instead.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

__all__ = ["rehome"]


def rehome(module: str, namespace: Mapping[str, Any], names: Iterable[str]) -> None:
    """Set `__module__` to `module` for each class and function in `names` defined privately."""
    for name in names:
        value = namespace[name]
        if (inspect.isclass(value) or inspect.isfunction(value)) and value.__module__.startswith(
            "evolink_async._"
        ):
            if inspect.isclass(value) and attrs.has(value):
                attrs.resolve_types(value)
            value.__module__ = module
