"""
The poll bound: the fewest expected polls per task of ANY poll schedule that
uses no progress information, for a given p95 detection latency.

A schedule without progress information is a fixed sequence of poll times
0 < t1 < t2 < ..., the same for every task, measured from its creation. A
task that finishes at T is detected by the first poll t_k >= T: it costs k
polls and a delay of t_k - T. Times are in units of the nominal estimate (the
true mean run time), as are latencies. For a duration distribution and a
latency L, the bound is the minimum over schedules of E[polls] such that at
most 5 % of tasks wait longer than L (so that the 95th percentile of delay is
at most L). Any fixed-interval poller, and any planner that ignores progress,
makes at least this many polls at that p95 latency; a planner that reads
progress may do better.

**Method: an exact dynamic program on event times.** The distribution is n
equally likely points T_1 <= ... <= T_n: the durations a benchmark's mock
drew, or the quantiles of a density (`from_density`, `lognormal_mixture`);
n x 5 % of them (rounded down) may be left "uncovered" (delay > L).
E[polls] = sum over k of P(T > t_{k-1}) (t_0 = 0), so the cost of each poll
is the share of tasks still running at the poll before it. Two facts make the
search exact rather than approximate:

1. The best cost from a poll at time p with budget b left, V(p, b), never
   rises with p: from a later p, keep the polls of the best schedule from p
   that lie after it; each task is caught no later and by no more polls, and
   the first interval only loses uncovered tasks.
2. So from a poll at p, the next poll that leaves exactly c of the running
   tasks uncovered is best placed as late as c allows: at T_(m+c+1) + L,
   where m tasks ended by p, which just covers the (c+1)-th running task.

So every poll of some best schedule sits at some T_j + L, and the dynamic
program runs over those n + 1 states (creation, and "polled at T_j + L") and
the budget left, b = 0..n x 5 %: V(j, b) = S(p_j) + min over c of
V(next(j, c), b - c), where S(p_j) is the share of tasks running at p_j.
That is the fine time grid the problem needs, with no rounding: it holds
every time a best schedule can poll at, so the result is the exact optimum
for the n points, found in O(n x budget^2) steps (pure Python: about 0.05 s
for 500 tasks, 0.5 s for 1,000 quantile points).

For a density, n quantile points stand for it. Points leave gaps between
them that a schedule fitted to them slips through (a poll can come one gap
later than the density allows), so the bound on points is slightly below the
density's and rises towards it with n: by under 1 % from 1,000 to 2,000
points (checked by `--check`). The same holds for a benchmark's drawn
durations: their bound is the exact one for those very tasks, a few % below
the bound of the distribution they were drawn from (more at small
latencies, where a gap is a larger share of L).

Run (from the repository root):

    .venv/bin/python benchmarks/poll_bound.py            # the bound curve of the scenarios
    .venv/bin/python benchmarks/poll_bound.py --check    # self-checks (a few seconds)

`poll_efficiency.py` imports `bound` and computes it on each run's own drawn
durations at each contender's measured p95 latency.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import math
import random
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Final

#: The share of tasks allowed a delay above the latency: a 95th percentile.
SHARE: Final = 0.05
#: Quantile points standing for a density (see the module docstring).
POINTS: Final = 1000
#: Latencies of the printed curve, as fractions of the nominal estimate.
LATENCIES: Final = (0.01, 0.02, 0.03, 0.05, 0.075, 0.10, 0.15, 0.20, 0.30)
#: The duration distributions of poll_efficiency.py's scenarios: (label,
#: mixture of (weight, factor of the mean), lognormal sigma).
DISTRIBUTIONS: Final = (
    ("sigma 0.3 (A, C-J)", ((1.0, 1.0),), 0.3),
    ("sigma 0.8 (B, K)", ((1.0, 1.0),), 0.8),
    ("bimodal 80% 0.6x, 20% 2.5x, sigma 0.3 (L, M)", ((0.8, 0.6), (0.2, 2.5)), 0.3),
)


def _sorted_points(durations: Iterable[float]) -> list[float]:
    points = sorted(float(d) for d in durations)
    if not points:
        raise ValueError("durations must not be empty")
    if not (points[0] > 0 and math.isfinite(points[-1])):
        raise ValueError("durations must be finite and > 0")
    return points


def _solve(
    points: Sequence[float], latency: float, share: float
) -> tuple[float, list[list[int]], list[int]]:
    """
    The dynamic program over sorted `points`: (best expected polls, the
    choice c per state and budget, the tasks ended by each state's poll).
    """
    if not latency >= 0 or not 0 <= share < 1:
        raise ValueError(f"need latency >= 0 and 0 <= share < 1, got {latency!r}, {share!r}")
    n = len(points)
    budget = math.floor(share * n + 1e-9)
    # State 0: creation (no task ended); state j >= 1: a poll at points[j-1] + latency.
    ended = [0] + [bisect.bisect_right(points, p + latency) for p in points]
    zeros = [0.0] * (budget + 1)
    # values[n + 1]: every task detected (the last poll left the rest uncovered).
    values: list[list[float]] = [zeros] * (n + 2)
    choices: list[list[int]] = [[]] * (n + 2)
    for state in range(n, -1, -1):
        done = ended[state]
        running = n - done
        if running == 0:
            continue  # nothing left to detect: no more polls
        cost = running / n
        # Leaving c running tasks uncovered, the next poll catches the one after
        # them at delay exactly L (state done + c + 1); c == running: one last
        # poll after every task, all of them uncovered (the final state, n + 1).
        nexts = [values[done + c + 1] for c in range(min(budget, running - 1) + 1)]
        if running <= budget:
            nexts.append(values[n + 1])
        row: list[float] = []
        picks: list[int] = []
        for left in range(budget + 1):
            options = [nexts[c][left - c] for c in range(min(left, len(nexts) - 1) + 1)]
            best = min(options)
            row.append(cost + best)
            picks.append(options.index(best))
        values[state] = row
        choices[state] = picks
    return values[0][budget], choices, ended


def bound(durations: Iterable[float], latency: float, *, share: float = SHARE) -> float:
    """
    The fewest expected polls per task of any progress-free schedule with at
    most `share` of tasks detected later than `latency`.

    Args:
        durations: equally likely run times (samples, or `from_density`
            quantiles), in units of the nominal estimate; all finite, > 0.
        latency: the allowed delay, same units (0.05: 5 % of the estimate).
        share: the share of tasks allowed above it (0.05: a p95).
    """
    return _solve(_sorted_points(durations), latency, share)[0]


def curve(
    durations: Iterable[float], latencies: Iterable[float], *, share: float = SHARE
) -> list[tuple[float, float]]:
    """`(latency, bound)` for each latency, on the same durations."""
    points = _sorted_points(durations)
    return [(latency, _solve(points, latency, share)[0]) for latency in latencies]


def schedule(durations: Iterable[float], latency: float, *, share: float = SHARE) -> list[float]:
    """The poll times of a best schedule (what `bound` counts), up to the last task's end."""
    points = _sorted_points(durations)
    n = len(points)
    _, choices, ended = _solve(points, latency, share)
    times: list[float] = []
    state, left = 0, math.floor(share * n + 1e-9)
    while ended[state] < n:
        c = choices[state][left]
        running = n - ended[state]
        if c == running:
            times.append(points[-1])
            break
        state, left = ended[state] + c + 1, left - c
        times.append(points[state - 1] + latency)
    return times


def expected_polls(durations: Sequence[float], times: Sequence[float]) -> tuple[float, list[float]]:
    """A schedule's (mean polls per task, delays) on `durations`; every task must be caught."""
    polls: list[int] = []
    delays: list[float] = []
    for duration in durations:
        index = bisect.bisect_left(times, duration)
        if index == len(times):
            raise ValueError(f"no poll at or after {duration}")
        polls.append(index + 1)
        delays.append(times[index] - duration)
    return sum(polls) / len(polls), delays


def from_density(
    times: Sequence[float], density: Sequence[float], points: int = POINTS
) -> list[float]:
    """
    `points` equally likely durations standing for a density given on a fine
    time grid: the (i + 0.5) / points quantiles of its piecewise-linear CDF
    (trapezoid rule), interpolated linearly between grid times.
    """
    if len(times) != len(density) or len(times) < 2:
        raise ValueError("times and density must be the same length, at least 2")
    cdf = [0.0]
    for i in range(1, len(times)):
        step = times[i] - times[i - 1]
        if not step > 0 or density[i] < 0:
            raise ValueError("times must increase and the density be >= 0")
        cdf.append(cdf[-1] + step * (density[i] + density[i - 1]) / 2)
    total = cdf[-1]
    if not total > 0:
        raise ValueError("the density has no mass")
    out: list[float] = []
    for i in range(points):
        target = (i + 0.5) / points * total
        j = max(1, bisect.bisect_left(cdf, target))
        low, high = cdf[j - 1], cdf[j]
        share = (target - low) / (high - low) if high > low else 0.0
        out.append(times[j - 1] + share * (times[j] - times[j - 1]))
    return out


def lognormal_mixture(
    components: Sequence[tuple[float, float]], sigma: float, points: int = POINTS
) -> list[float]:
    """
    The (i + 0.5) / points quantiles of the mock's run-time distribution in
    units of the mean: component (weight, factor) is a lognormal with mean
    `factor` and log-spread `sigma`, as `MockEvoLink(duration_mixture=...)`.
    """
    total = sum(weight for weight, _ in components)

    def cdf(t: float) -> float:
        value = 0.0
        for weight, factor in components:
            z = (math.log(t / factor) + sigma * sigma / 2) / sigma
            value += weight / total * 0.5 * (1 + math.erf(z / math.sqrt(2)))
        return value

    out: list[float] = []
    for i in range(points):
        target = (i + 0.5) / points
        low, high = 1e-6, 1e3
        for _ in range(80):  # bisection on the log scale: far below float spacing
            mid = math.sqrt(low * high)
            low, high = (mid, high) if cdf(mid) < target else (low, mid)
        out.append(math.sqrt(low * high))
    return out


# -- self-checks -----------------------------------------------------------------


def _brute_force(points: Sequence[float], latency: float, share: float) -> float:
    """The best schedule by enumeration over T_j, T_j + L and a coarse grid (tiny n only)."""
    n = len(points)
    budget = math.floor(share * n + 1e-9)
    top = max(points) + latency
    candidates = sorted(
        {*points, *(p + latency for p in points), *(top * k / 12 for k in range(1, 13))}
    )
    best = math.inf
    for size in range(1, n + 1):
        for times in itertools.combinations(candidates, size):
            if times[-1] < max(points):
                continue
            polls, delays = expected_polls(points, times)
            if sum(d > latency + 1e-12 for d in delays) <= budget:
                best = min(best, polls)
    return best


def run_checks() -> list[tuple[bool, str]]:
    """The self-checks: known cases, brute force on tiny sets, monotony, convergence."""
    checks: list[tuple[bool, str]] = []

    def check(ok: bool, text: str) -> None:
        checks.append((ok, text))

    value = bound([1.0] * 100, 0.0)
    check(value == 1.0, f"point mass at 1.0, latency 0: {value:g} poll (1)")
    value = bound([1.0] * 100, 0.0, share=0.0)
    check(value == 1.0, f"point mass at 1.0, latency 0, no task late: {value:g} poll (1)")

    grid = [i / 1000 for i in range(1001)]
    uniform = from_density(grid, [1.0] * len(grid))
    # For the density, polls every 0.1 catch every task within 0.1: 1 + 0.9 + ...
    # + 0.1 = 5.5 polls; with 5 % late, best the first 5 % (polls at 0.15, 0.25,
    # ..., 0.95, 1): 5.05. Points leave gaps a schedule slips through (each poll
    # can come a point's gap later): a little below, never above.
    for share, exact in ((0.0, 5.5), (SHARE, 5.05)):
        value = bound(uniform, 0.1, share=share)
        check(
            exact * 0.99 <= value <= exact,
            f"uniform [0, 1], latency 0.1, {100 * share:g} % late: {value:.3f}"
            f" ({exact} for the density, at most 1 % below with {POINTS} points)",
        )
    times = schedule(uniform, 0.1)
    polls, delays = expected_polls(uniform, times)
    late = sum(d > 0.1 + 1e-12 for d in delays) / len(delays)
    check(
        abs(polls - value) < 1e-9 and late <= SHARE,
        f"its schedule {', '.join(f'{t:.3f}' for t in times[:3])}, ...: {polls:.3f} polls,"
        f" {100 * late:.1f} % late",
    )

    rng = random.Random(7)
    worst = 0.0
    for _ in range(6):
        points = sorted(rng.lognormvariate(0.0, 0.5) for _ in range(6))
        latency = rng.uniform(0.02, 0.6)
        exact, brute = bound(points, latency, share=1 / 6), _brute_force(points, latency, 1 / 6)
        worst = max(worst, abs(exact - brute))
    check(worst < 1e-9, f"6 random 6-task sets against brute force: largest gap {worst:.2g}")

    sigma3 = lognormal_mixture(((1.0, 1.0),), 0.3)
    values = [polls for _, polls in curve(sigma3, LATENCIES)]
    check(
        all(a >= b for a, b in itertools.pairwise(values)),
        "the bound never rises with the latency (sigma 0.3)",
    )
    for latency in (0.03, 0.1):
        coarse = bound(sigma3, latency)
        fine = bound(lognormal_mixture(((1.0, 1.0),), 0.3, 2 * POINTS), latency)
        check(
            abs(coarse - fine) / fine < 0.01,
            f"sigma 0.3, latency {latency:g}: {coarse:.3f} with {POINTS} points,"
            f" {fine:.3f} with {2 * POINTS} (< 1 % apart)",
        )
    # A fixed poller every d is a progress-free schedule: never below the bound.
    for interval in (0.03, 0.06, 0.09):
        grid_times = [interval * k for k in range(1, int(max(sigma3) / interval) + 2)]
        polls, delays = expected_polls(sigma3, grid_times)
        p95 = sorted(delays)[math.ceil(0.95 * len(delays)) - 1]
        check(
            polls >= bound(sigma3, p95) - 1e-9,
            f"fixed every {interval:g}: {polls:.2f} polls at p95 {p95:.3f} >="
            f" bound {bound(sigma3, p95):.2f}",
        )
    return checks


# -- main ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--check", action="store_true", help="run the self-checks only")
    parser.add_argument(
        "--points", type=int, default=POINTS, help=f"quantile points per density ({POINTS})"
    )
    args = parser.parse_args(argv)
    if args.check:
        checks = run_checks()
        for ok, text in checks:
            print(f"{'PASS' if ok else 'FAIL'}  {text}")
        passed = sum(ok for ok, _ in checks)
        verdict = "PASS" if passed == len(checks) else "FAIL"
        print(f"summary: poll bound self-checks {passed}/{len(checks)} {verdict}")
        return 0 if verdict == "PASS" else 1
    began = time.perf_counter()
    print(
        "# poll bound: fewest expected polls/task of any progress-free schedule at a p95"
        f" latency (in % of the mean run time); {args.points} quantile points per distribution"
    )
    cells = "".join(f" {100 * x:5.1f} % |" for x in LATENCIES)
    print(f"| {'distribution':<47} |{cells}")
    print("|" + "-" * 49 + "|" + "--------:|" * len(LATENCIES))
    parts: list[str] = []
    for label, mixture, sigma in DISTRIBUTIONS:
        points = lognormal_mixture(mixture, sigma, args.points)
        values = curve(points, LATENCIES)
        print(f"| {label:<47} |" + "".join(f" {polls:7.2f} |" for _, polls in values))
        at = dict(values)
        parts.append(f"{label.split(' (')[0]}: {at[0.03]:.2f} at 3 %, {at[0.10]:.2f} at 10 %")
    print(f"(computed in {time.perf_counter() - began:.1f} s)")
    print(f"summary: poll bound (polls/task at p95 latency): {'; '.join(parts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
