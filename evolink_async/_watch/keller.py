"""
Keller's optimal checking interval: how long to wait before the next poll of
a task still running, given the chance it finishes in each stretch of time.

Checking at a rate of ``sqrt(lambda * h / 2)`` per second (``h`` the hazard)
minimises expected polls + ``lambda`` x expected detection delay; the
discrete form used here is the smallest ``d`` with ``lambda * d * q(d) / 2 >=
1``, ``q(d)`` the chance of finishing within ``d``. Pure arithmetic; the
planner (`planner.py`) supplies ``lambda`` and the survival function.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final

__all__ = ["keller_interval", "lognormal_survival"]

# Bisection steps over [low, high] in log space: 8 halvings of the default
# 30x range (min_interval to max_interval) give ~1.4% precision, well under
# the default 10% jitter, for a fixed, small cost per call.
_SOLVE_STEPS: Final = 8
_SQRT2: Final = math.sqrt(2.0)


def lognormal_survival(log_t: float, mu: float, sigma: float) -> float:
    """P(T > t) for a lognormal T with median e**mu and log-spread sigma."""
    return 0.5 * math.erfc((log_t - mu) / (sigma * _SQRT2))


def keller_interval(
    lam: float,
    *,
    elapsed: float,
    survival: Callable[[float], float],
    low: float,
    high: float,
) -> float:
    """
    The smallest d in [low, high] with lam * d * P(done by +d | running) / 2 >= 1.

    `lam` is the price of one second of delay, in polls; `survival(log t)`
    is P(T > t), `elapsed` the task's age.
    """
    alive = survival(math.log(elapsed))
    if not alive > 0.0:
        return high

    def excess(d: float) -> float:
        done = 1.0 - survival(math.log(elapsed + d)) / alive
        return lam * d * done * 0.5 - 1.0

    if not excess(high) >= 0.0:
        return high
    if excess(low) >= 0.0:
        return low
    lo, hi = math.log(low), math.log(high)
    for _ in range(_SOLVE_STEPS):
        mid = 0.5 * (lo + hi)
        if excess(math.exp(mid)) >= 0.0:
            hi = mid
        else:
            lo = mid
    return math.exp(hi)
