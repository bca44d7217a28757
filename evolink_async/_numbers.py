"""
What counts as a number where the SDK checks arguments and reads replies.

JSON and Python both let a `bool` pass for an `int`; nowhere in the SDK is
`True` a count or a duration, so every check here refuses it.
"""

from __future__ import annotations

import math
from typing import TypeGuard

__all__ = ["finite_number", "is_number", "is_whole"]


def is_whole(value: object) -> TypeGuard[int]:
    """True for an `int` that is not a `bool`."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> TypeGuard[int | float]:
    """True for an `int` or `float` that is not a `bool` (NaN and infinities included)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def finite_number(value: object) -> float | None:
    """`value` as a finite float if it is a real number (not a bool), else None."""
    if not is_number(value):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range
        return None
    return number if math.isfinite(number) else None
