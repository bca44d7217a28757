"""
Constructors that refuse bad arguments with `ValidationError`, not `TypeError`.

attrs makes an `__init__` that raises Python's own `TypeError` for an unknown
keyword, a missing one or a positional argument where only keywords go. The
SDK's promise is a `ValidationError` naming the argument and the rule for
every bad input, so the public value classes wrap their `__init__` with
`checked_arguments`. Type checkers keep seeing the attrs signature.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import attrs

from ._errors import Problem, ValidationError

__all__ = ["checked_arguments"]

C = TypeVar("C", bound=type)


def checked_arguments(cls: C) -> C:
    """Wrap the attrs-made `__init__` of `cls`: bad arguments are a `ValidationError`."""
    init: Callable[..., None] = cls.__init__  # type: ignore[misc]
    fields = attrs.fields(cls)
    names = tuple(field.alias for field in fields if field.init)
    required = tuple(
        field.alias for field in fields if field.init and field.default is attrs.NOTHING
    )
    positional = sum(1 for field in fields if field.init and not field.kw_only)

    @functools.wraps(init)
    def checked_init(self: Any, *args: Any, **params: Any) -> None:
        problems: list[Problem] = []
        if len(args) > positional:
            rule = (
                f"{cls.__name__} takes keyword arguments only"
                if not positional
                else f"{cls.__name__} takes {positional} positional argument(s), "
                f"not {len(args)}; pass the others by keyword"
            )
            problems.append(Problem(field=None, value=args, rule=rule))
        given = set(names[: len(args)]) | set(params)
        for name in params:
            if name not in names:
                rule = f"unknown argument for {cls.__name__}; valid: {', '.join(names)}"
                problems.append(Problem(field=name, value=params[name], rule=rule))
        problems.extend(
            Problem(field=name, value=None, rule="required")
            for name in required
            if name not in given
        )
        if problems:
            raise ValidationError(problems)
        init(self, *args, **params)

    cls.__init__ = checked_init  # type: ignore[misc]
    return cls
