"""
`PollPolicy`: the knobs of polling, checked when made.

How the planner uses each of them is told in `planner.py`'s docstring.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from .._checked import checked_arguments
from .._errors import ValidationError
from .._numbers import finite_number
from .._text import short_repr

__all__ = ["PollPolicy"]


def _number(rule: str, test: Callable[[float], bool]) -> Callable[[Any, Any, Any], None]:
    """An attrs validator: a finite real number passing `test`, else a message with `rule`."""

    def check(_: Any, attribute: attrs.Attribute[float], value: object) -> None:
        number = finite_number(value)
        if number is None or not test(number):
            raise ValidationError(
                f"PollPolicy.{attribute.name}={short_repr(value)}: must be a finite number {rule}"
            )

    return check


_positive = _number("> 0", lambda v: v > 0)
_non_negative = _number(">= 0", lambda v: v >= 0)
_unit_fraction = _number(">= 0 and < 1", lambda v: 0 <= v < 1)
_share = _number("> 0 and <= 1 (a fraction of the estimate)", lambda v: 0 < v <= 1)
_at_least_one = _number(">= 1", lambda v: v >= 1)


def _boolean(_: Any, attribute: attrs.Attribute[bool], value: bool) -> None:
    if not isinstance(value, bool):
        raise ValidationError(
            f"PollPolicy.{attribute.name}={short_repr(value)}: must be True or False"
        )


@checked_arguments
@attrs.frozen(kw_only=True)
class PollPolicy:
    """
    When to poll a running task, and how hard a client may poll overall.

    Every field is keyword-only with a default; use `attrs.evolve` for a
    variation. Time fields are seconds on the caller's clock; the other
    numbers are ratios, so scaling `min_interval`, `max_interval`,
    `default_estimate` and the server's `estimated_time` by one factor scales
    every planned delay by it. See `evolink_async._watch.planner` for the model.

    Args:
        min_interval: Floor between two polls of one task, and before the
            first (seconds, > 0).
        max_interval: Ceiling between two polls of one task, and before the
            first (seconds, >= `min_interval`). While the poll budget is
            short it stretches with the planning pressure (see
            `next_poll_at`): planned, rather than broken at random by polls
            queueing for the budget. With `learned_gaps` (the default) a
            model whose progress says nothing may also go past it, where
            its own finished tasks show none could finish.
        max_polls_per_second: Budget shared by every waiter of one client:
            a ceiling on poll requests per second (> 0), or None (the
            default) for as many as the server allows. Either way the
            watcher finds the server's own limit from its 429s and polls
            just under it (see `_watch/rate.py`), starting at this value
            (or 50/s) and growing while polls wait for the budget; it plans
            sparser polls while the budget is nearly spent (see
            `next_poll_at`'s `pressure`).
        batch_endpoint: Poll due tasks in groups through `POST /v1/tasks/batch`
            (seen in EvoLink's own clients, not documented) instead of one
            `GET /v1/tasks/{id}` each.
        jitter: Each interval moves by up to +/- this fraction (>= 0, < 1),
            staying within the bounds, so tasks created together do not poll
            in lockstep.
        default_estimate: Seconds assumed for a task whose `estimated_time` is
            missing, zero, negative or not a number (> 0).
        first_poll_fraction: The first poll comes after this fraction of the
            estimate (> 0, <= 1), within the bounds: early enough to catch
            early finishers, and to see progress while it can still help.
        estimate_spread: How far the server's `estimated_time` is trusted: the
            log-standard-deviation of the duration around it (> 0; 0.4 means
            within a factor of 1.5 two times in three). Progress that
            contradicts the estimate overrides it regardless.
        progress_noise: How far progress may be from linear in time: the
            log-standard-deviation of `elapsed / progress` as a duration
            estimate near progress 0, shrinking linearly to nothing at 100
            (>= 0).
        progress_noise_floor: A log-standard-deviation added (in quadrature)
            at every progress level (>= 0): even 95 % may be some way from
            done (a last encoding or upload step).
        conflict_threshold: When the progress-based estimate and the server's
            disagree by more than this many combined log-spreads (> 0), the
            server's spread is widened until they do not: a wildly wrong
            estimate gives way to progress within a poll or two.
        latency_weight: How many polls one estimated duration of detection
            delay is worth (> 0). Higher polls more often around the expected
            finish, lower saves polls.
        latency_target: Where a task is likely to finish (the durations that
            hold 95 % of its chances), polls are at most this fraction of its
            estimated duration apart (> 0, <= 1), so that the 95th-percentile
            detection delay stays near it when the spread is wide.
        overdue_spread: A task is overdue once it runs this many log-spreads
            past its estimated finish (>= 0); from then on polls back off.
        backoff: Once overdue, each interval is this multiple of the previous
            one (>= 1), up to `max_interval`.
        learned_gaps: Once a model's progress proves to say nothing and its
            finished tasks give it a poll schedule (the fewest polls for
            its real durations), follow that schedule even where two of
            its times are further apart than `max_interval`: a poll the
            ceiling forced in between would find no task finished, as no
            task of the model finished there. Only gaps that end before the
            longest run seen (finished, or still running) stretch; past it
            the ceiling holds. Likewise, once the model's finished tasks
            proved its progress lines good, a line that puts the finish
            within half of `latency_target` skips there in one gap. False
            (a strict ceiling, for an application that wants a fresh
            snapshot of every task at least every `max_interval`) keeps
            every gap within `max_interval`.

    Raises:
        ValidationError: A field breaks its rule; the message names the
            field, the value and the rule.
    """

    min_interval: float = attrs.field(default=2.0, validator=_positive)
    max_interval: float = attrs.field(default=60.0, validator=_positive)
    max_polls_per_second: float | None = attrs.field(
        default=None, validator=attrs.validators.optional(_positive)
    )
    batch_endpoint: bool = attrs.field(default=False, validator=_boolean)
    jitter: float = attrs.field(default=0.1, validator=_unit_fraction)
    default_estimate: float = attrs.field(default=120.0, validator=_positive)
    first_poll_fraction: float = attrs.field(default=0.2, validator=_share)
    estimate_spread: float = attrs.field(default=0.4, validator=_positive)
    progress_noise: float = attrs.field(default=0.3, validator=_non_negative)
    progress_noise_floor: float = attrs.field(default=0.1, validator=_non_negative)
    conflict_threshold: float = attrs.field(default=1.5, validator=_positive)
    latency_weight: float = attrs.field(default=180.0, validator=_positive)
    latency_target: float = attrs.field(default=0.08, validator=_share)
    overdue_spread: float = attrs.field(default=2.0, validator=_non_negative)
    backoff: float = attrs.field(default=1.5, validator=_at_least_one)
    learned_gaps: bool = attrs.field(default=True, validator=_boolean)

    def __attrs_post_init__(self) -> None:
        if self.min_interval > self.max_interval:
            raise ValidationError(
                f"PollPolicy.min_interval={self.min_interval!r}: must be <= "
                f"max_interval ({self.max_interval!r})"
            )

    def scaled(self, factor: float) -> PollPolicy:
        """
        This policy for a clock that runs `factor` times real time (a mock
        server's `time_scale`): every time field times `factor`, the poll
        budget divided by it, so polling behaves as against the real API,
        only faster. (A budget of None stays None: it is found from the
        server's 429s, which count real seconds.)

        Raises:
            ValidationError: `factor` is not a finite number > 0.
        """
        number = finite_number(factor)
        if number is None or number <= 0:
            raise ValidationError(f"factor={factor!r}: must be a finite number > 0")
        return attrs.evolve(
            self,
            min_interval=self.min_interval * number,
            max_interval=self.max_interval * number,
            default_estimate=self.default_estimate * number,
            max_polls_per_second=(
                None if self.max_polls_per_second is None else self.max_polls_per_second / number
            ),
        )
