"""
Learning from finished tasks: how a model's real durations compare with the
`estimated_time` the server reports, and whether its progress says anything.

Pure and clock-free like the planner: `Calibrator.learn` takes what one
finished task showed (its estimate, how long it really ran, what the planner
saw of its progress) and `Calibrator.get` returns the frozen `Calibration`
the planner plans the model's next tasks with. Memory is bounded: a few
numbers and a small histogram per model, for at most `MAX_MODELS` models.

What is learned, per model:

- **Duration.** The log-ratio ``x = log(actual / estimate)`` as an
  exponentially weighted mean and variance over the last `WINDOW` tasks,
  starting from a prior of `PRIOR_WEIGHT` pseudo-tasks at ``x = 0`` (the
  estimate is right) with the policy's `estimate_spread`. One task moves the
  mean by at most ``CAP`` spreads over the weight, so an outlier cannot
  throw it. The same samples fill a histogram of ``x`` (bins of `BIN` log
  units over ``±RANGE``), which keeps a bimodal population bimodal: the
  planner plans from it whenever progress does not inform.
- **Progress.** A finished task whose progress moved before the end (a value
  strictly between 0 and 100) is evidence that progress informs; one seen
  running past half its duration still at 0 is evidence that it does not.
  A model is *flat* once flat evidence outweighs moving evidence
  `FLAT_ODDS` to 1 (and at least `MIN_FLAT` tasks showed it): its progress
  is then ignored, and its tasks follow one poll schedule, the one with the
  fewest expected polls for its durations (`schedule.fewest_polls`, over
  `POINTS` quantiles of the histogram) that finds 99 % of them within the
  policy's `latency_target` of their mean duration. It is computed again
  every `RESCHEDULE` tasks (every quarter of its tasks while it has fewer
  than four times that).
- **How good progress is.** For each finished task, the planner's two
  progress predictions (`planner.progress_predictions`: from the progress
  level and when it was reached, and from the line through two progress
  readings), as made early (at the first readings) and last (at the poll
  before the finish), are scored against the real duration: the log error,
  kept apart by the share still to go when the prediction was made
  (`TO_GO_BINS` bins). Per bin, their weighted mean (a bias) and root mean
  square (the noise) replace the policy's fixed `progress_noise` once
  `MIN_SAMPLES` tasks scored them.

The real duration is known to lie between the last poll that saw the task
running and the one that saw it finished; the middle of that bracket stands
in for it. Only completed tasks teach: failed and cancelled ones end early.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

from .schedule import fewest_polls

__all__ = [
    "BIN",
    "LIKELY",
    "MAX_MODELS",
    "RANGE",
    "TO_GO_BINS",
    "WINDOW",
    "Calibration",
    "Calibrator",
    "ErrorStats",
    "Finished",
    "dump_snapshot",
    "parse_snapshot",
]

#: Tasks a model's statistics remember (exponential weighting), so a model
#: that changes speed is followed.
WINDOW: Final = 200
#: Pseudo-tasks of the prior (estimate right, policy spread).
PRIOR_WEIGHT: Final = 3.0
#: One task moves the mean by at most this many spreads times its weight.
CAP: Final = 3.0
#: Histogram bin width and half-range, in log units of actual / estimate
#: (0.15 is about 16 %; +-3 is a factor of 20 either way).
BIN: Final = 0.15
RANGE: Final = 3.0
_BINS: Final = round(2 * RANGE / BIN)
#: The share of durations the likeliest histogram bins must hold to be
#: "likely": where the planner keeps polls close together.
LIKELY: Final = 0.95
#: Real tasks needed before the histogram, or a progress score, is used.
MIN_SAMPLES: Final = 5
#: Flat evidence must outweigh moving evidence this many times, from at
#: least MIN_FLAT tasks, before a model's progress is ignored.
FLAT_ODDS: Final = 4.0
MIN_FLAT: Final = 3
#: Quantile points of the histogram a flat model's schedule is fitted to.
POINTS: Final = 100
#: The share of a flat model's tasks its schedule may find later than the
#: target: a fifth of the 5 % a 95th percentile allows, leaving the rest to
#: tasks planned before the model was calibrated, durations the histogram
#: has not seen yet, jitter and a busy loop.
SCHEDULE_LATE: Final = 0.01
#: A flat model's schedule is computed again after this many more tasks.
RESCHEDULE: Final = 16
#: The format of `Calibrator.snapshot`; `restore` takes this one only.
SNAPSHOT_VERSION: Final = 1
#: Kept snapshot text longer than this is not read back (a snapshot is a few
#: numbers per model, for at most MAX_MODELS models: tens of kilobytes).
MAX_SNAPSHOT_CHARS: Final = 1 << 20
#: Model ids longer than this are not restored from a snapshot.
MAX_MODEL_NAME: Final = 256
#: Models remembered; the least recently used is forgotten first.
MAX_MODELS: Final = 64
#: A progress prediction's scored error is clipped to this (log units), so
#: one absurd prediction does not drown the rest.
MAX_ERROR: Final = 3.0
#: The least noise a progress score claims (log units): the real duration
#: it is scored against is itself only known to between two polls.
MIN_NOISE: Final = 0.01
#: Progress scores are kept apart by the share still to go, in this many
#: equal bins: a prediction at 10 % is worse than one at 90 %.
TO_GO_BINS: Final = 4


@attrs.frozen(slots=True)
class ErrorStats:
    """
    How one kind of progress prediction did at one share to go: the log
    error's weight (tasks, decayed), mean (`bias`) and spread (`noise`).
    """

    weight: float
    bias: float
    noise: float


@attrs.frozen(kw_only=True, slots=True)
class Calibration:
    """
    What the planner knows of a model from its finished tasks.

    Attributes:
        shift: Mean of ``log(actual / estimate)``: plan from
            ``estimate * exp(shift)``.
        spread: Log-standard-deviation of the duration around that.
        cdf: Cumulative shares of ``log(actual / estimate)`` at the histogram
            bin edges (``-RANGE``, ``-RANGE + BIN``, ... ``RANGE``), or None
            while too few tasks finished.
        likely: Per histogram bin, whether it is among the likeliest bins
            that together hold `LIKELY` of the durations (empty without a
            histogram).
        flat: The model's progress does not inform: ignore it.
        schedule: For a flat model, its tasks' poll times, in multiples of
            the reported estimate from creation (empty: plan otherwise).
        latency: The detection delay `schedule` aims at, in the same unit
            (0 without a schedule).
        seen: The longest a finished task of the model was seen to run (at
            least), in the same unit: the schedule's gaps up to there are
            evidence, past it a guess (a task still running shows it can
            run so long, not that none finishes sooner).
        level: Scores of the level-and-bracket prediction, one per
            `TO_GO_BINS` bin of the share still to go (None: too few).
        line: The same for the two-reading line prediction.
        samples: Real tasks learned from (decayed).
    """

    shift: float = 0.0
    spread: float
    cdf: tuple[float, ...] | None = None
    likely: tuple[bool, ...] = ()
    flat: bool = False
    schedule: tuple[float, ...] = ()
    latency: float = 0.0
    seen: float = 0.0
    level: tuple[ErrorStats | None, ...] = (None,) * TO_GO_BINS
    line: tuple[ErrorStats | None, ...] = (None,) * TO_GO_BINS
    samples: float = 0.0

    def is_likely(self, x: float) -> bool:
        """Whether ``log(actual / estimate) = x`` falls in a likely bin."""
        if not self.likely:
            return False
        return self.likely[min(_BINS - 1, max(0, int((x + RANGE) / BIN)))]

    def level_score(self, to_go: float) -> ErrorStats | None:
        """The level prediction's score at this share still to go."""
        return self.level[_to_go_bin(to_go)]

    def line_score(self, to_go: float) -> ErrorStats | None:
        """The line prediction's score at this share still to go."""
        return self.line[_to_go_bin(to_go)]

    def survival(self, x: float) -> float:
        """P(log(actual / estimate) > x) from the histogram (piecewise uniform)."""
        cdf = self.cdf
        if cdf is None:  # pragma: no cover -- callers check
            raise ValueError("no histogram")
        position = (x + RANGE) / BIN
        if position <= 0.0:
            return 1.0 - cdf[0]
        if position >= _BINS:
            return 1.0 - cdf[-1]
        index = int(position)
        low = cdf[index]
        return 1.0 - (low + (cdf[index + 1] - low) * (position - index))


@attrs.frozen(kw_only=True, slots=True)
class Finished:
    """
    What one completed task showed, for `Calibrator.learn`.

    Attributes:
        estimate: The estimate its plan started from (seconds, > 0).
        duration: How long it really ran (seconds, > 0), or the middle of
            `within`.
        within: When the polls bracketed the finish loosely, the bracket
            (seconds after creation): the duration lies in it, and the
            histogram shares the task out over it as its durations so far
            say, the mean takes the histogram's mean over it; None: exact.
        moved: A poll saw its progress strictly between 0 and 100.
        flat: A poll past half its duration saw it running at progress 0.
        level: Level-and-bracket predictions of its duration, each with the
            share still to go when it was made.
        line: Two-reading line predictions, the same way.
    """

    estimate: float
    duration: float
    within: tuple[float, float] | None = None
    moved: bool = False
    flat: bool = False
    level: tuple[tuple[float, float], ...] = ()
    line: tuple[tuple[float, float], ...] = ()


def _to_go_bin(to_go: float) -> int:
    return min(TO_GO_BINS - 1, max(0, int(to_go * TO_GO_BINS)))


class _Errors:
    __slots__ = ("mean", "square", "weight")

    def __init__(self) -> None:
        self.weight = 0.0
        self.mean = 0.0
        self.square = 0.0

    def add(self, error: float) -> None:
        self.weight = min(self.weight + 1.0, WINDOW)
        rate = 1.0 / self.weight
        self.mean += rate * (error - self.mean)
        self.square += rate * (error * error - self.square)

    def stats(self) -> ErrorStats | None:
        if self.weight < MIN_SAMPLES:
            return None
        variance = self.square - self.mean * self.mean
        return ErrorStats(self.weight, self.mean, max(MIN_NOISE, math.sqrt(max(variance, 0.0))))


class _Model:
    __slots__ = (
        "cached",
        "flat",
        "histogram",
        "latency",
        "level",
        "line",
        "longest",
        "mean",
        "moved",
        "running",
        "samples",
        "schedule",
        "scheduled_at",
        "variance",
        "weight",
    )

    def __init__(self, spread: float) -> None:
        self.weight = PRIOR_WEIGHT
        self.samples = 0.0
        self.mean = 0.0
        self.variance = spread * spread
        self.histogram = _prior_histogram(spread)
        self.moved = 0.0
        self.flat = 0.0
        self.level = [_Errors() for _ in range(TO_GO_BINS)]
        self.line = [_Errors() for _ in range(TO_GO_BINS)]
        self.cached: Calibration | None = None
        self.schedule: tuple[float, ...] = ()
        self.latency = 0.0
        self.longest = -math.inf
        self.scheduled_at = -math.inf
        self.running: tuple[float, ...] = ()


def _normal_cdf(x: float, spread: float) -> float:
    return 0.5 * math.erfc(-x / (spread * math.sqrt(2.0)))


def _prior_histogram(spread: float) -> list[float]:
    """Bin masses of a normal(0, spread) over the histogram's range."""
    edges = [-RANGE + i * BIN for i in range(_BINS + 1)]
    cdf = [_normal_cdf(edge, spread) for edge in edges]
    masses = [cdf[i + 1] - cdf[i] for i in range(_BINS)]
    total = sum(masses)
    return [mass / total for mass in masses]


def dump_snapshot(snapshot: Mapping[str, Any]) -> str:
    """`Calibrator.snapshot` data as compact JSON text, for a journal to keep."""
    return json.dumps(snapshot, separators=(",", ":"), allow_nan=False)


def parse_snapshot(text: str | None) -> object:
    """Kept snapshot text as data for `Calibrator.restore`; None if absent or unreadable."""
    if text is None or len(text) > MAX_SNAPSHOT_CHARS:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _restored(fields: object, spread: float) -> _Model | None:
    """A model's statistics from `Calibrator.snapshot` data, or None if unreadable."""
    if not isinstance(fields, dict):
        return None

    def number(key: str, low: float, high: float) -> float | None:
        value = fields.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        value = float(value)
        return value if math.isfinite(value) and low <= value <= high else None

    def errors(key: str) -> list[_Errors] | None:
        rows = fields.get(key)
        if not isinstance(rows, list) or len(rows) != TO_GO_BINS:
            return None
        out = []
        for row in rows:
            if not (isinstance(row, list) and len(row) == 3):
                return None
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in row):
                return None
            weight, mean, square = (float(v) for v in row)
            if not (0.0 <= weight <= WINDOW and abs(mean) <= MAX_ERROR):
                return None
            if not 0.0 <= square <= MAX_ERROR * MAX_ERROR:
                return None
            item = _Errors()
            item.weight, item.mean, item.square = weight, mean, square
            out.append(item)
        return out

    weight = number("weight", PRIOR_WEIGHT, WINDOW)
    samples = number("samples", 0.0, WINDOW)
    mean = number("mean", -RANGE, RANGE)
    variance = number("variance", 0.0, RANGE * RANGE)
    moved = number("moved", 0.0, WINDOW)
    flat = number("flat", 0.0, WINDOW)
    histogram = fields.get("histogram")
    level, line = errors("level"), errors("line")
    if (
        weight is None
        or samples is None
        or mean is None
        or variance is None
        or moved is None
        or flat is None
        or level is None
        or line is None
        or not isinstance(histogram, list)
        or len(histogram) != _BINS
    ):
        return None
    masses = []
    for mass in histogram:
        if isinstance(mass, bool) or not isinstance(mass, int | float):
            return None
        if not (math.isfinite(mass) and 0.0 <= mass <= 1.0):
            return None
        masses.append(float(mass))
    total = sum(masses)
    if not total > 0.0:
        return None
    stats = _Model(spread)
    stats.weight, stats.samples, stats.mean, stats.variance = weight, samples, mean, variance
    stats.histogram = [mass / total for mass in masses]
    stats.moved, stats.flat = moved, flat
    stats.level, stats.line = level, line
    return stats


def _bin(x: float) -> int:
    return min(_BINS - 1, max(0, int((x + RANGE) / BIN)))


def _bracket_shares(
    histogram: Sequence[float],
    within: tuple[float, float] | None,
    estimate: float,
    duration: float,
) -> list[tuple[int, float]]:
    """
    How one finished task is shared out over the histogram's bins: all in
    its duration's bin when exact; over the bins its bracket spans, as the
    histogram weighs them (evenly where it holds nothing), when not.
    """
    if within is None:
        return [(_bin(math.log(duration / estimate)), 1.0)]
    low, high = within
    first = 0 if low <= 0.0 else _bin(math.log(low / estimate))
    last = _bin(math.log(high / estimate))
    masses = histogram[first : last + 1]
    total = sum(masses)
    if not total > 0.0:
        return [(index, 1.0 / (last - first + 1)) for index in range(first, last + 1)]
    return [(first + offset, mass / total) for offset, mass in enumerate(masses) if mass > 0.0]


def _is_flat(stats: _Model) -> bool:
    return stats.flat >= MIN_FLAT and stats.flat > FLAT_ODDS * stats.moved


def _reschedule_due(stats: _Model) -> bool:
    """
    Whether a flat model's schedule is due again: every `RESCHEDULE` tasks,
    and sooner while it has few (each of the first tasks moves it most).
    """
    return stats.samples - stats.scheduled_at >= min(RESCHEDULE, max(1.0, stats.samples / 4))


def _cumulative(masses: Sequence[float]) -> tuple[float, ...]:
    """Cumulative shares at the bin edges, normalised to end at 1."""
    total = sum(masses) or 1.0
    running = 0.0
    edges = [0.0]
    for mass in masses:
        running += mass
        edges.append(min(1.0, running / total))
    return tuple(edges)


def _with_running(
    histogram: Sequence[float], samples: float, running: Sequence[float]
) -> list[float]:
    """
    The histogram (of `samples` finished tasks) with the tasks still running
    added, each as its share of the finished durations longer than its age
    (the "redistribution to the right" of a Kaplan-Meier estimate).
    """
    masses = [mass * samples for mass in histogram]
    # above[i]: the finished share longer than bin i's start; each running
    # task from bin i on adds histogram[j] / above[i] to every bin j >= i.
    above = [0.0] * (_BINS + 1)
    for index in range(_BINS - 1, -1, -1):
        above[index] = above[index + 1] + histogram[index]
    starting = [0.0] * _BINS
    for x in running:
        first = min(_BINS - 1, max(0, int((x + RANGE) / BIN)))
        if above[first] > 0.0:
            starting[first] += 1.0 / above[first]
        else:
            masses[first] += 1.0
    weight = 0.0
    for index in range(_BINS):
        weight += starting[index]
        masses[index] += histogram[index] * weight
    return masses


def _quantiles(cdf: tuple[float, ...], count: int) -> list[float]:
    """`count` equally likely log-ratios from a histogram's cumulative shares."""
    top = cdf[-1]
    values: list[float] = []
    index = 0
    for i in range(count):
        level = (i + 0.5) / count * top
        while index < _BINS - 1 and cdf[index + 1] < level:
            index += 1
        low, high = cdf[index], cdf[index + 1]
        within = (level - low) / (high - low) if high > low else 0.5
        values.append(-RANGE + (index + within) * BIN)
    return values


def _score(predicted: float, duration: float) -> float | None:
    """A prediction's log error, clipped; None if unusable."""
    if not (predicted > 0.0 and math.isfinite(predicted)):
        return None
    error = math.log(duration / predicted)
    return max(-MAX_ERROR, min(MAX_ERROR, error))


class Calibrator:
    """
    Running calibrations for the models a watcher has seen finish.

    Args:
        spread: The prior log-spread of durations around the estimate (the
            policy's `estimate_spread`).
        latency_target: The 95th-percentile detection delay a flat model's
            schedule aims at, as a share of the calibrated estimate (the
            policy's `latency_target`).
    """

    __slots__ = ("_latency", "_models", "_spread")

    def __init__(self, spread: float, latency_target: float = 0.08) -> None:
        self._spread = spread
        self._latency = latency_target
        self._models: OrderedDict[str, _Model] = OrderedDict()

    def __len__(self) -> int:
        return len(self._models)

    def get(self, model: str | None) -> Calibration | None:
        """The calibration to plan `model`'s tasks with; None before any finished."""
        if model is None:
            return None
        stats = self._models.get(model)
        if stats is None:
            return None
        cached = stats.cached
        if cached is None:
            cached = stats.cached = self._calibration(stats)
        return cached

    def learn(self, model: str | None, finished: Finished) -> None:
        """Fold one completed task of `model` in."""
        if model is None:
            return
        estimate, duration = finished.estimate, finished.duration
        if not (estimate > 0.0 and duration > 0.0):
            return
        if not (math.isfinite(estimate) and math.isfinite(duration)):
            return
        stats = self._models.get(model)
        if stats is None:
            stats = self._models[model] = _Model(self._spread)
            while len(self._models) > MAX_MODELS:
                self._models.popitem(last=False)
        else:
            self._models.move_to_end(model)
        stats.cached = None
        stats.weight = min(stats.weight + 1.0, WINDOW)
        stats.samples = min(stats.samples + 1.0, WINDOW)
        rate = 1.0 / stats.weight
        histogram = stats.histogram
        share = _bracket_shares(histogram, finished.within, estimate, duration)
        x = sum(weight * (-RANGE + (index + 0.5) * BIN) for index, weight in share)
        if finished.within is None:
            x = math.log(duration / estimate)
            stats.longest = max(stats.longest, x)
        elif finished.within[0] > 0.0:
            stats.longest = max(stats.longest, math.log(finished.within[0] / estimate))
        spread = math.sqrt(stats.variance)
        capped = min(stats.mean + CAP * spread, max(stats.mean - CAP * spread, x))
        delta = capped - stats.mean
        stats.mean += rate * delta
        stats.variance = (1.0 - rate) * (stats.variance + rate * delta * delta)
        for i in range(_BINS):
            histogram[i] *= 1.0 - rate
        for index, weight in share:
            histogram[index] += rate * weight
        keep = 1.0 - 1.0 / WINDOW
        stats.moved = stats.moved * keep + finished.moved
        stats.flat = stats.flat * keep + finished.flat
        for bins, predictions in ((stats.level, finished.level), (stats.line, finished.line)):
            for predicted, to_go in predictions:
                error = _score(predicted, duration)
                if error is not None and 0.0 < to_go <= 1.0:
                    bins[_to_go_bin(to_go)].add(error)

    def wants_running(self, model: str) -> bool:
        """Whether `model` is flat and due a new schedule: `running` first."""
        stats = self._models.get(model)
        if stats is None or not _is_flat(stats) or stats.samples < MIN_SAMPLES:
            return False
        return not stats.schedule or _reschedule_due(stats)

    def snapshot(self) -> dict[str, Any]:
        """
        What was learned, as JSON-ready data for `restore` (a batch journal
        keeps it, so a resumed run starts calibrated). Running tasks and
        schedules are left out: they are worked out again.
        """
        models: dict[str, Any] = {}
        for name, stats in self._models.items():
            models[name] = {
                "weight": stats.weight,
                "samples": stats.samples,
                "mean": stats.mean,
                "variance": stats.variance,
                "histogram": list(stats.histogram),
                "moved": stats.moved,
                "flat": stats.flat,
                "level": [[e.weight, e.mean, e.square] for e in stats.level],
                "line": [[e.weight, e.mean, e.square] for e in stats.line],
            }
        return {"version": SNAPSHOT_VERSION, "models": models}

    def restore(self, data: object) -> int:
        """
        Take up what `snapshot` gave (of this or an earlier run); returns how
        many models it restored. Anything unreadable (another version, a
        value out of range) is left out, model by model: a calibration is a
        head start, never a reason to fail.
        """
        if not isinstance(data, dict) or data.get("version") != SNAPSHOT_VERSION:
            return 0
        models = data.get("models")
        if not isinstance(models, dict):
            return 0
        restored = 0
        for name, fields in list(models.items())[-MAX_MODELS:]:
            stats = _restored(fields, self._spread) if isinstance(name, str) else None
            if stats is not None and len(name) <= MAX_MODEL_NAME:
                self._models.pop(name, None)
                self._models[name] = stats
                restored += 1
        while len(self._models) > MAX_MODELS:
            self._models.popitem(last=False)
        return restored

    def running(self, model: str, ratios: Sequence[float]) -> None:
        """
        The ages of `model`'s tasks still running, as ``log(age / estimate)``:
        each lasts at least that long. A flat model's next schedule counts
        them (see `_with_running`), so durations long enough that few have
        finished yet are not taken for rare.
        """
        stats = self._models.get(model)
        if stats is not None:
            stats.running = tuple(x for x in ratios if math.isfinite(x))
            stats.schedule = ()
            stats.cached = None

    def _calibration(self, stats: _Model) -> Calibration:
        cdf: tuple[float, ...] | None = None
        likely: tuple[bool, ...] = ()
        if stats.samples >= MIN_SAMPLES:
            histogram = stats.histogram
            running = 0.0
            edges = [0.0]
            for mass in histogram:
                running += mass
                edges.append(min(1.0, running))
            cdf = tuple(edges)
            chosen = [False] * _BINS
            held = 0.0
            for index in sorted(range(_BINS), key=histogram.__getitem__, reverse=True):
                if held >= LIKELY * running:
                    break
                chosen[index] = True
                held += histogram[index]
            likely = tuple(chosen)
        flat = _is_flat(stats)
        if not (flat and cdf is not None):
            stats.schedule = ()
        elif not stats.schedule or _reschedule_due(stats):
            shares = _with_running(stats.histogram, stats.samples, stats.running)
            points = [math.exp(x) for x in _quantiles(_cumulative(shares), POINTS)]
            # The target is a share of the mean duration, not of the median:
            # for two populations the median sits in the shorter one.
            stats.latency = self._latency * sum(points) / len(points)
            stats.schedule = fewest_polls(points, stats.latency, share=SCHEDULE_LATE)
            stats.scheduled_at = stats.samples
        return Calibration(
            shift=stats.mean,
            spread=math.sqrt(max(stats.variance, 0.0)),
            cdf=cdf,
            likely=likely,
            flat=flat,
            schedule=stats.schedule,
            latency=stats.latency if stats.schedule else 0.0,
            seen=math.exp(stats.longest) if stats.schedule else 0.0,
            level=tuple(errors.stats() for errors in stats.level),
            line=tuple(errors.stats() for errors in stats.line),
            samples=stats.samples,
        )
