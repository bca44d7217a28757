"""
Inline SVG charts for `evolink-async report`: pure functions from numbers to markup.

Each chart is one `<svg>` element with its own axes, labels and legend, and
a `<title>` on every mark (the browser shows it on hover: no script needed).
Nothing here reads a file or the journal: the report hands in numbers and
labels, and every label goes through `text` (control characters escaped by
`printable`, then HTML-escaped), so a job id or a server's error message can
never become markup.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Final

import attrs

from .._text import printable
from .display import seconds_text

__all__ = [
    "WIDTH",
    "Bar",
    "Box",
    "Series",
    "Span",
    "bar_chart",
    "box_chart",
    "duration_text",
    "nice_ticks",
    "quantile",
    "series_chart",
    "text",
    "timeline_chart",
]

#: Width of every chart, in CSS pixels (the page is laid out for it).
WIDTH: Final = 920
_FONT: Final = 'font-family="system-ui, sans-serif" font-size="12"'
_AXIS: Final = "#666"
_GRID: Final = "#e4e4e4"


def text(value: object) -> str:
    """`value` as text safe in HTML and SVG: controls escaped, then `<>&"'` escaped."""
    return html.escape(printable(value), quote=True)


def _num(value: float) -> str:
    """A coordinate, short: `12.5`, `3`."""
    return f"{value:.1f}".removesuffix(".0")


def nice_ticks(high: float, count: int = 6) -> list[float]:
    """Round tick values from 0 to at least `high` (about `count` of them)."""
    if not high > 0 or not math.isfinite(high):
        return [0.0, 1.0]
    raw = high / max(1, count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ticks = [0.0]
    while ticks[-1] < high - 1e-9:
        ticks.append(ticks[-1] + step)
    return ticks


def quantile(ordered: Sequence[float], share: float) -> float:
    """The `share` quantile of sorted values (linear between neighbours)."""
    if not ordered:
        return math.nan
    position = share * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def duration_text(seconds: float) -> str:
    """A duration for an axis or a label: `40 ms` under a tenth of a second, else `4.2s`."""
    if 0 < seconds < 0.1:
        return f"{seconds * 1000:.0f} ms"
    return seconds_text(seconds)


def _count_text(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _svg(height: float, body: list[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{_num(height)}" '
        f'viewBox="0 0 {WIDTH} {_num(height)}" role="img" aria-label="{text(label)}" {_FONT}>'
        + "".join(body)
        + "</svg>"
    )


def _legend(items: Sequence[tuple[str, str]], x: float, y: float) -> list[str]:
    """Coloured squares with their names, in a row starting at (x, y)."""
    parts = []
    for name, colour in items:
        parts.append(
            f'<rect x="{_num(x)}" y="{_num(y - 9)}" width="10" height="10" fill="{colour}"/>'
        )
        parts.append(f'<text x="{_num(x + 14)}" y="{_num(y)}">{text(name)}</text>')
        x += 24 + 7 * len(name)
    return parts


def _time_axis(
    left: float, right: float, top: float, bottom: float, span: float
) -> tuple[list[str], float]:
    """Vertical grid lines and labels for 0..span seconds; the scale (px per s)."""
    scale = (right - left) / span
    parts = []
    for tick in nice_ticks(span):
        if tick > span * 1.001:
            break
        x = left + tick * scale
        parts.append(
            f'<line x1="{_num(x)}" y1="{_num(top)}" x2="{_num(x)}" y2="{_num(bottom)}" '
            f'stroke="{_GRID}"/>'
        )
        parts.append(
            f'<text x="{_num(x)}" y="{_num(bottom + 14)}" text-anchor="middle" '
            f'fill="{_AXIS}">{text(duration_text(tick))}</text>'
        )
    return parts, scale


@attrs.frozen(kw_only=True)
class Span:
    """One job on the timeline: seconds from the run's start, its outcome's colour."""

    label: str
    begun: float | None
    created: float | None
    finished: float | None
    colour: str
    note: str


def timeline_chart(
    spans: Sequence[Span], *, span: float, legend: Sequence[tuple[str, str]], label: str
) -> str:
    """
    One thin bar per job, from created to finished (sent but not yet created:
    the lighter part before), coloured by outcome; unfinished jobs run to the
    end of the chart, hatched.
    """
    left, right, top = 12.0, WIDTH - 12.0, 26.0
    row = max(2.0, min(12.0, 420.0 / max(1, len(spans))))
    bottom = top + row * len(spans) + 4
    body, scale = _time_axis(left, right, top, bottom, span)
    body.insert(
        0,
        '<defs><pattern id="open" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="3" height="6" fill="#3b7dd8"/>'
        "</pattern></defs>",
    )
    body += _legend(legend, left, 14)
    gap = 1.0 if row >= 4 else 0.0
    for index, job in enumerate(spans):
        y = top + index * row
        start = job.created if job.created is not None else job.begun
        if start is None:
            continue
        end = job.finished if job.finished is not None else span
        title = f"<title>{text(job.label)}: {text(job.note)}</title>"
        if job.begun is not None and job.created is not None and job.created > job.begun:
            body.append(
                f'<rect x="{_num(left + job.begun * scale)}" y="{_num(y)}" '
                f'width="{_num(max(0.5, (job.created - job.begun) * scale))}" '
                f'height="{_num(row - gap)}" fill="#c8c8c8">{title}</rect>'
            )
        fill = job.colour if job.finished is not None else "url(#open)"
        body.append(
            f'<rect x="{_num(left + start * scale)}" y="{_num(y)}" '
            f'width="{_num(max(1.0, (end - start) * scale))}" height="{_num(row - gap)}" '
            f'fill="{fill}">{title}</rect>'
        )
    return _svg(bottom + 22, body, label)


@attrs.frozen(kw_only=True)
class Series:
    """A named line of counts per time bucket."""

    name: str
    colour: str
    counts: tuple[int, ...]


def series_chart(series: Sequence[Series], *, bucket: float, label: str) -> str:
    """Counts per bucket of `bucket` seconds, one line per series, on a shared axis."""
    left, right, top, bottom = 48.0, WIDTH - 12.0, 28.0, 208.0
    buckets = max((len(s.counts) for s in series), default=0)
    span = bucket * max(1, buckets)
    body, scale = _time_axis(left, right, top, bottom, span)
    high = max((max(s.counts, default=0) for s in series), default=0)
    ticks = nice_ticks(max(1.0, float(high)), 5)
    per = (bottom - top) / ticks[-1]
    for tick in ticks:
        y = bottom - tick * per
        body.append(
            f'<line x1="{_num(left)}" y1="{_num(y)}" x2="{_num(right)}" y2="{_num(y)}" '
            f'stroke="{_GRID}"/>'
        )
        body.append(
            f'<text x="{_num(left - 6)}" y="{_num(y + 4)}" text-anchor="end" '
            f'fill="{_AXIS}">{text(_count_text(tick))}</text>'
        )
    body += _legend([(s.name, s.colour) for s in series], left, 14)
    for line in series:
        points = []
        for index, count in enumerate(line.counts):
            x = left + (index + 0.5) * bucket * scale
            points.append(f"{_num(x)},{_num(bottom - count * per)}")
            body.append(
                f'<circle cx="{_num(x)}" cy="{_num(bottom - count * per)}" r="2.5" '
                f'fill="{line.colour}"><title>{text(line.name)}: {count} in '
                f"{text(duration_text(index * bucket))}-"
                f"{text(duration_text((index + 1) * bucket))}</title></circle>"
            )
        if points:
            body.append(
                f'<polyline points="{" ".join(points)}" fill="none" '
                f'stroke="{line.colour}" stroke-width="2"/>'
            )
    body.append(
        f'<text x="{_num(left)}" y="{_num(bottom + 30)}" fill="{_AXIS}">'
        f"per {text(duration_text(bucket))}</text>"
    )
    return _svg(bottom + 36, body, label)


@attrs.frozen(kw_only=True)
class Box:
    """The latencies of one group (a model), sorted."""

    label: str
    values: tuple[float, ...]


def box_chart(boxes: Sequence[Box], *, colour: str, label: str) -> str:
    """
    One row per group: min-max whiskers, the middle half boxed, the median
    marked, and (up to 400 values) a tick for every value.
    """
    left, right, top, row = 250.0, WIDTH - 230.0, 20.0, 34.0
    bottom = top + row * len(boxes)
    high = max((b.values[-1] for b in boxes if b.values), default=1.0)
    body, scale = _time_axis(left, right, top, bottom, high)
    for index, box in enumerate(boxes):
        mid = top + index * row + row / 2
        body.append(
            f'<text x="{_num(left - 10)}" y="{_num(mid + 4)}" text-anchor="end">'
            f"{text(box.label)}</text>"
        )
        values = box.values
        if not values:
            continue
        low, q1, med, q3, q9, top_value = (
            quantile(values, share) for share in (0.0, 0.25, 0.5, 0.75, 0.9, 1.0)
        )

        def x(value: float) -> str:
            return _num(left + value * scale)

        shown = f"n={len(values)}, median {duration_text(med)}, p90 {duration_text(q9)}"
        summary = f"{shown}, max {duration_text(top_value)}"
        body.append(
            f'<line x1="{x(low)}" y1="{_num(mid)}" x2="{x(top_value)}" y2="{_num(mid)}" '
            f'stroke="{_AXIS}"/>'
        )
        body.append(
            f'<rect x="{x(q1)}" y="{_num(mid - 9)}" width="{_num(max(1.0, (q3 - q1) * scale))}" '
            f'height="18" fill="{colour}" fill-opacity="0.35" stroke="{colour}">'
            f"<title>{text(box.label)}: {text(summary)}</title></rect>"
        )
        if len(values) <= 400:
            for value in values:
                body.append(
                    f'<line x1="{x(value)}" y1="{_num(mid - 5)}" x2="{x(value)}" '
                    f'y2="{_num(mid + 5)}" stroke="{colour}" stroke-opacity="0.6"/>'
                )
        body.append(
            f'<line x1="{x(med)}" y1="{_num(mid - 11)}" x2="{x(med)}" y2="{_num(mid + 11)}" '
            f'stroke="#222" stroke-width="2"/>'
        )
        body.append(
            f'<text x="{_num(right + 10)}" y="{_num(mid + 4)}" fill="{_AXIS}">{text(shown)}</text>'
        )
    return _svg(bottom + 22, body, label)


@attrs.frozen(kw_only=True)
class Bar:
    """One horizontal bar: a label, its value, and an optional lighter value behind it."""

    label: str
    value: float
    colour: str
    behind: float | None = None
    note: str = ""


def bar_chart(bars: Sequence[Bar], *, label: str, behind_colour: str = "#d8d8d8") -> str:
    """Horizontal bars with their values at the end; `behind` drawn first, lighter."""
    left, right, top, row = 250.0, WIDTH - 220.0, 8.0, 26.0
    high = max((max(b.value, b.behind or 0.0) for b in bars), default=0.0) or 1.0
    scale = (right - left) / high
    body = []
    for index, bar in enumerate(bars):
        y = top + index * row
        body.append(
            f'<text x="{_num(left - 10)}" y="{_num(y + 15)}" text-anchor="end">'
            f"{text(bar.label)}</text>"
        )
        title = f"<title>{text(bar.label)}: {text(bar.note or _count_text(bar.value))}</title>"
        if bar.behind is not None:
            body.append(
                f'<rect x="{_num(left)}" y="{_num(y + 3)}" '
                f'width="{_num(max(1.0, bar.behind * scale))}" height="16" '
                f'fill="{behind_colour}">{title}</rect>'
            )
        body.append(
            f'<rect x="{_num(left)}" y="{_num(y + 3)}" width="{_num(max(1.0, bar.value * scale))}" '
            f'height="16" fill="{bar.colour}">{title}</rect>'
        )
        shown = bar.note or _count_text(bar.value)
        end = max(bar.value, bar.behind or 0.0) * scale
        body.append(
            f'<text x="{_num(left + end + 8)}" y="{_num(y + 15)}" fill="{_AXIS}">'
            f"{text(shown)}</text>"
        )
    return _svg(top + row * len(bars) + 8, body, label)
