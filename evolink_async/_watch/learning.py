"""
`Learning`: the watcher's memory of finished tasks, and what follows from it.

The `Calibrator` (pure, in `calibration.py`) learns per model; this keeps,
beside it, the calibration each model's waiting tasks were planned with.
When a finished task moves a model's calibration far from that (by
`REPLAN_SHIFT`, or the histogram or flat-progress verdict changes), every
waiting task of the model is queued to be planned again, and the watcher
re-plans a few of them (`REPLANS_PER_POLL`) after each finished task: the
tasks created before the first ones finished are not left on a plan from
an estimate that proved wrong, and a client watching 100,000 tasks never
stalls its event loop re-planning them.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Final

from .calibration import MAX_MODELS, Calibration, Calibrator, Finished
from .entry import WatchEntry
from .policy import PollPolicy

__all__ = ["REPLANS_PER_POLL", "REPLAN_SHIFT", "Learning"]

#: When a model's calibration moves by more than this (log units of its
#: duration's bias or spread), its waiting tasks are planned again.
REPLAN_SHIFT: Final = 0.2
#: Queued re-plans done after each finished task.
REPLANS_PER_POLL: Final = 256
#: Running tasks looked at (the oldest first) when a flat model's schedule
#: is computed: the tasks that have run longest say most about how long the
#: longest take.
RUNNING_SAMPLE: Final = 2048


class Learning:
    """Calibrations per model, and the waiting tasks to plan again."""

    __slots__ = ("_planned_with", "_prior", "_replans", "calibrator")

    def __init__(self, policy: PollPolicy) -> None:
        #: What finished tasks taught, per model.
        self.calibrator = Calibrator(policy.estimate_spread, policy.latency_target)
        # Until a model's first task finishes, its tasks are planned from
        # the policy alone: this is what that amounts to.
        self._prior = Calibration(spread=policy.estimate_spread)
        self._planned_with: dict[str, Calibration] = {}
        self._replans: deque[str] = deque()

    def calibration(self, entry: WatchEntry) -> Calibration | None:
        """The calibration to plan `entry` with (by its model), if any."""
        latest = entry.latest
        return self.calibrator.get(latest.model if latest is not None else None)

    def learn(
        self,
        model: str | None,
        finished: Finished | None,
        entries: Mapping[str, WatchEntry],
        now: float,
    ) -> None:
        """
        Teach the calibrator a completed task of `model`; queue the model's
        waiting tasks in `entries` for re-planning if its calibration moved.
        """
        if model is None or finished is None:
            return
        calibrator = self.calibrator
        calibrator.learn(model, finished)
        if calibrator.wants_running(model):
            # A schedule is due: tell the calibrator how long the model's
            # running tasks have run, from the oldest (the longest-lived).
            ratios = []
            for entry in itertools.islice(entries.values(), RUNNING_SAMPLE):
                latest = entry.latest
                if latest is not None and latest.model == model:
                    state = entry.state
                    age = now - state.started_at
                    if age > 0.0 and state.estimate > 0.0:
                        ratios.append(math.log(age / state.estimate))
            calibrator.running(model, ratios)
        calibration = calibrator.get(model)
        if calibration is None:  # pragma: no cover -- it has just learned one
            return
        before = self._planned_with.get(model, self._prior)
        if not _moved(before, calibration):
            return
        self._planned_with.pop(model, None)
        self._planned_with[model] = calibration
        while len(self._planned_with) > MAX_MODELS:
            del self._planned_with[next(iter(self._planned_with))]
        self._replans.extend(
            task_id
            for task_id, entry in entries.items()
            if entry.latest is not None and entry.latest.model == model
        )

    def due_replans(self, entries: Mapping[str, WatchEntry]) -> Iterator[WatchEntry]:
        """Up to `REPLANS_PER_POLL` queued entries still waiting for their next poll."""
        replans = self._replans
        for _ in range(min(len(replans), REPLANS_PER_POLL)):
            entry = entries.get(replans.popleft())
            if entry is not None and not entry.polling and entry.seq > 0 and not entry.hinted:
                yield entry


def _moved(before: Calibration, after: Calibration) -> bool:
    """Whether a model's calibration changed enough to plan its tasks again."""
    return (
        abs(after.shift - before.shift) > REPLAN_SHIFT
        or abs(math.log(after.spread / before.spread)) > REPLAN_SHIFT
        or (after.cdf is None) != (before.cdf is None)
        or after.flat != before.flat
    )
