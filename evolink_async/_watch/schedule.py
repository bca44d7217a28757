"""
The fewest polls for a 95th-percentile detection delay, when nothing but
"not finished yet" is ever learned between polls.

Without progress, every task of a model gets the same poll times, counted
from its creation: a fixed sequence ``t_1 < t_2 < ...``. A task that ends at
``T`` is found by the first ``t_k >= T``, at the cost of ``k`` polls and a
delay of ``t_k - T``. `fewest_polls` finds, for durations given as equally
likely points, the sequence with the fewest expected polls among those that
find all but a `share` of the tasks within ``latency``; the planner follows
it for a model whose progress does not inform (see `calibration.py`).

The method is a dynamic program over the points. Expected polls are the sum,
over polls, of the share of tasks still running at the poll before (each
running task pays for the next poll). Two facts keep the search small and
exact for the points:

- A later poll is never worse from there on: the best continuation from an
  earlier one, shifted to start no earlier, catches every task no later and
  with no more polls.
- So the next poll is as late as it may be: if it leaves the first ``c`` of
  the running tasks late, it sits at the ``(c + 1)``-th running task's end
  plus ``latency``, just in time for that one.

Every poll of some best sequence thus sits at a point plus ``latency``, and
the states are (which point the last poll served, late tasks still allowed):
``(n + 1) x (budget + 1)`` states of ``budget + 1`` choices each.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Final

__all__ = ["PAST_SCHEDULE", "fewest_polls", "interval_after"]

#: A task that outlives its schedule is polled at the schedule's latency
#: until this multiple of the schedule's last time (the longest durations
#: are the last a model's finished tasks show), and backs off after that.
PAST_SCHEDULE: Final = 1.5


def fewest_polls(
    points: Sequence[float], latency: float, *, share: float = 0.05
) -> tuple[float, ...]:
    """
    The poll times (in the points' unit, from creation) with the fewest
    expected polls that find all but `share` of tasks ending at `points`
    (equally likely) within `latency`. The last time is at or after the
    latest point, so every task is found. Empty if `points` is.
    """
    ends = sorted(point for point in points if point > 0.0 and math.isfinite(point))
    n = len(ends)
    if n == 0 or not latency > 0.0:
        return ()
    budget = int(n * share)
    # State j: the last poll served point j (it is at ends[j - 1] + latency),
    # j = 0 for creation. done[j]: how many tasks ended by that poll.
    done = [0] + [bisect.bisect_right(ends, ends[j - 1] + latency) for j in range(1, n + 1)]
    # best[j][b]: fewest polls (summed over tasks) from state j, with b late
    # tasks still allowed; choice[j][b]: the next state (n + 1: one last
    # poll at the latest end, leaving the rest late).
    best = [[0.0] * (budget + 1) for _ in range(n + 1)]
    choice = [[0] * (budget + 1) for _ in range(n + 1)]
    for j in range(n, -1, -1):
        running = n - done[j]
        for b in range(budget + 1):
            if running == 0:
                best[j][b], choice[j][b] = 0.0, -1
                continue
            cost, pick = math.inf, -1
            if running <= b:
                cost, pick = float(running), n + 1
            for late in range(min(b, running - 1) + 1):
                target = done[j] + late + 1
                total = running + best[target][b - late]
                if total < cost:
                    cost, pick = total, target
            best[j][b], choice[j][b] = cost, pick
    times: list[float] = []
    j, b = 0, budget
    while True:
        pick = choice[j][b]
        if pick < 0:
            break
        if pick == n + 1:
            times.append(ends[-1])
            break
        times.append(ends[pick - 1] + latency)
        b -= pick - done[j] - 1
        j = pick
    return tuple(times)


def interval_after(
    schedule: Sequence[float],
    position: float,
    *,
    latency: float,
    jitter: float,
    stride: int = 1,
    polled: bool = True,
) -> float | None:
    """
    How long after `position` (a task's age, in the schedule's unit) to poll
    next: until the `stride`-th next time of `schedule`. A poll made within
    `jitter` of a gap before a time stood for that time (`polled`: the task
    was polled at `position`). Past the schedule, every `latency` until
    `PAST_SCHEDULE` times its last time; None after that (back off).
    """
    if not schedule:
        return None
    index = bisect.bisect_right(schedule, position)
    if index < len(schedule) and polled:
        # A poll jittered a little early stood for the scheduled time just
        # ahead: the next one is the time after that. (A poll further ahead,
        # one the `max_interval` ceiling forced, stood for none.)
        previous = schedule[index - 1] if index else 0.0
        if schedule[index] - position <= jitter * (schedule[index] - previous) + 1e-9:
            index += 1
    index += max(1, stride) - 1
    if index < len(schedule):
        return schedule[index] - position
    # Past the schedule: the task outlived the durations its model showed so
    # far. Those come from tasks that finished, so the longest are the last
    # to be learned: keep to the schedule's latency a while longer (its
    # tail is the likeliest to be short of tasks), then back off.
    if position <= PAST_SCHEDULE * schedule[-1] and latency > 0.0:
        return latency
    return None
