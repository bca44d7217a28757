"""
`evolink-async report JOURNAL --html FILE`: a picture of a batch run, from its journal.

The page is one self-contained HTML file (inline SVG and CSS, no script, no
external asset), so it opens offline, attaches to a ticket and survives a
copy. It shows:

- the counts: jobs by outcome, credits reserved and used, the time span;
- a timeline of jobs, created -> finished, coloured by outcome (at most
  `MAX_TIMELINE` of them, drawn evenly from the whole run);
- throughput over time: creates and finishes per time bucket;
- polls over time: the poll requests the run's processes sent per time
  bucket, summed over processes, from the journal's poll samples (exact to
  the sample: each commit carries one, and a sample at least every
  `POLL_SAMPLE_EVERY` seconds while polls go on), with the total and the
  polls per task (reads of each task, as the journal keeps them with its
  outcome); a journal from before poll samples shows "no poll data";
- latency (created -> outcome journalled) per model, for completed jobs;
- failures by code, with an example message each, and the failed jobs;
- credits per model.

The figures come from `runsummary`: a journal file read-only (no lock),
so a report can be drawn while the run is still going (jobs without an
outcome show as running), or one run of a PostgreSQL journal
(`postgresql://...` with `--run-id R`), whose page and text are those a file
of the same run gives. A run id with no job in the database is refused
(most often a typo), and no message shows the URL's password. Every text
from the journal (ids, models, codes, messages) is escaped for HTML
(`charts.text`). The journal holds no API key, so neither can the page.

Without `--html` the same figures are printed as text, or as JSON with
`--json`. Exit codes: 0 written, 2 the journal cannot be read (a database
unreachable, a run id missing or unknown) or the file cannot be written.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from .._batch.store import is_database_url
from .._errors import EvoLinkError, JournalError
from .._text import printable, printable_json
from . import charts
from .charts import Bar, Box, Series, Span, text
from .display import credits_text, seconds_text, table_lines
from .runsummary import (
    MAX_TIMELINE,
    RunSummary,
    _iso,
    ranked,
    read_database,
    read_file,
    summarize,
)

__all__ = ["MAX_TIMELINE", "RunSummary", "render_html", "run", "summarize"]

#: Time buckets on the throughput chart.
_BUCKETS: Final = 40
_PROG: Final = "evolink-async report"

#: Outcome -> (what the page calls it, its colour), in legend order.
OUTCOMES: Final = {
    "completed": ("completed", "#2e9d5b"),
    "failed": ("failed", "#d64545"),
    "cancelled": ("cancelled", "#e0a030"),
    "download_failed": ("download failed", "#9b4fc0"),
    "error": ("refused (no task)", "#777777"),
    "not_submitted": ("not submitted", "#bbbbbb"),
    "running": ("running", "#3b7dd8"),
    "creating": ("create unanswered", "#9bb8e0"),
}


# ---------------------------------------------------------------- the page

_CSS: Final = """
body { font: 14px/1.45 system-ui, sans-serif; color: #222; margin: 24px auto; max-width: 960px;
  padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 6px; }
p.sub, p.note { color: #666; margin: 2px 0 10px; }
.tiles { display: flex; flex-wrap: wrap; gap: 10px; margin: 16px 0; }
.tile { border: 1px solid #ddd; border-radius: 6px; padding: 8px 14px; min-width: 110px; }
.tile b { display: block; font-size: 20px; }
.tile span { color: #666; font-size: 12px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eee; vertical-align: top; }
th { color: #555; font-weight: 600; }
td.num, th.num { text-align: right; }
code { font: 12px ui-monospace, monospace; word-break: break-all; }
svg { display: block; margin: 6px 0; }
"""


def _tile(value: str, label: str, colour: str | None = None) -> str:
    style = f' style="border-left: 5px solid {colour}"' if colour else ""
    return f'<div class="tile"{style}><b>{text(value)}</b><span>{text(label)}</span></div>'


def _legend(summary: RunSummary) -> list[tuple[str, str]]:
    """The outcomes this run has, in the usual order."""
    return [shown for status, shown in OUTCOMES.items() if summary.outcomes.get(status)]


def _timeline(summary: RunSummary) -> str:
    if not summary.sample or summary.first is None:
        return (
            '<p class="note">This journal records no times (it predates them), '
            "so there is no timeline.</p>"
        )
    start = summary.first

    def rel(moment: float | None) -> float | None:
        return None if moment is None else moment - start

    ordered = sorted(summary.sample, key=lambda item: min(m for m in item[2:] if m is not None))
    spans = []
    for job_id, status, begun, created, finished in ordered:
        name, colour = OUTCOMES.get(status, (status, "#777777"))
        took = ""
        if created is not None and finished is not None:
            took = f", {seconds_text(finished - created)} created -> finished"
        spans.append(
            Span(
                label=job_id,
                begun=rel(begun),
                created=rel(created),
                finished=rel(finished),
                colour=colour,
                note=name + took,
            )
        )
    shown = len(spans)
    note = (
        f"All {shown} jobs"
        if shown == summary.timed
        else f"{shown} of {summary.timed} jobs, drawn evenly from the whole run"
    )
    return (
        f'<p class="note">{text(note)}; each bar runs from the create to the outcome '
        "(grey before it: waiting for the create to answer; hatched: no outcome yet). "
        "Hover a bar for its job.</p>"
        + charts.timeline_chart(
            spans, span=max(summary.span, 1e-3), legend=_legend(summary), label="timeline of jobs"
        )
    )


def _counts(moments: Iterable[float], start: float, bucket: float) -> tuple[int, ...]:
    return _weighted(((moment, 1) for moment in moments), start, bucket)


def _weighted(items: Iterable[tuple[float, int]], start: float, bucket: float) -> tuple[int, ...]:
    counts = [0] * _BUCKETS
    for moment, weight in items:
        index = min(_BUCKETS - 1, max(0, int((moment - start) / bucket)))
        counts[index] += weight
    return tuple(counts)


def _throughput(summary: RunSummary) -> str:
    if summary.first is None or not (summary.creates or summary.finishes):
        return '<p class="note">No creates or outcomes with a time in this journal.</p>'
    bucket = max(summary.span, 1e-3) / _BUCKETS
    series = [
        Series(
            name="tasks created",
            colour="#3b7dd8",
            counts=_counts(summary.creates, summary.first, bucket),
        ),
        Series(
            name="outcomes",
            colour="#2e9d5b",
            counts=_counts(summary.finishes, summary.first, bucket),
        ),
    ]
    return '<p class="note">Creates and outcomes per time slice.</p>' + charts.series_chart(
        series, bucket=bucket, label="throughput over time"
    )


def _polls(summary: RunSummary) -> str:
    if summary.polls_sent is None or summary.first is None:
        return (
            '<p class="note">No poll data: this journal keeps no poll samples '
            "(it predates them, or no process of the run sent a poll).</p>"
        )
    bucket = max(summary.span, 1e-3) / _BUCKETS
    series = [
        Series(
            name="polls sent",
            colour="#e07b39",
            counts=_weighted(summary.polls, summary.first, bucket),
        )
    ]
    per_task = summary.polls_per_task
    reads = (
        f" Tasks were read {summary.task_polls:,} times, {per_task:.1f} per task"
        f" ({summary.polled_tasks:,} tasks; a batch poll reads several in one request)."
        if per_task is not None
        else ""
    )
    return (
        f'<p class="note">{summary.polls_sent:,} poll requests in all (every process of '
        "the run, summed), each counted at the sample that followed it: one with every "
        "journal write, and one a second while polls go on and nothing is written."
        f"{text(reads)}</p>" + charts.series_chart(series, bucket=bucket, label="polls over time")
    )


def _latency(summary: RunSummary) -> str:
    boxes = [
        Box(label=model, values=tuple(sorted(row.latencies)))
        for model, row in sorted(summary.models.items())
        if row.latencies
    ]
    if not boxes:
        return '<p class="note">No completed job with both times recorded.</p>'
    return (
        '<p class="note">Completed jobs, from the create to the outcome (download '
        "included): the box holds the middle half, the black line is the median, each tick "
        "one job.</p>" + charts.box_chart(boxes, colour="#2e9d5b", label="latency per model")
    )


def _failures(summary: RunSummary) -> str:
    if not summary.failure_codes:
        return '<p class="note">No job failed.</p>'
    bars = [
        Bar(label=code, value=count, colour="#d64545")
        for code, count in ranked(summary.failure_codes)
    ]
    rows = "".join(
        f"<tr><td><code>{text(code)}</code></td><td class='num'>{count}</td>"
        f"<td>{text(summary.failure_examples.get(code, ''))}</td></tr>"
        for code, count in ranked(summary.failure_codes)
    )
    jobs = "".join(
        f"<tr><td><code>{text(f.job_id)}</code></td><td>{text(f.model)}</td>"
        f"<td>{text(OUTCOMES.get(f.status, (f.status, ''))[0])}</td>"
        f"<td><code>{text(f.code)}</code></td><td>{text(f.message)}</td></tr>"
        for f in summary.failures
    )
    failed = sum(summary.failure_codes.values())
    more = (
        f'<p class="note">The first {len(summary.failures)} of {failed} by job id are listed.</p>'
        if failed > len(summary.failures)
        else ""
    )
    return (
        charts.bar_chart(bars, label="failures by code")
        + "<table><tr><th>code</th><th class='num'>jobs</th><th>example message</th></tr>"
        + rows
        + "</table><h3>Jobs that did not complete</h3>"
        + "<table><tr><th>job</th><th>model</th><th>outcome</th><th>code</th><th>message</th></tr>"
        + jobs
        + "</table>"
        + more
    )


def _credits(summary: RunSummary) -> str:
    rows = [
        (m, r) for m, r in sorted(summary.models.items()) if r.credits_reserved or r.credits_used
    ]
    if not rows:
        return '<p class="note">No credits recorded.</p>'
    bars = [
        Bar(
            label=model,
            value=row.credits_used,
            behind=row.credits_reserved,
            colour="#2e6fb0",
            note=(
                f"{credits_text(row.credits_used)} used of "
                f"{credits_text(row.credits_reserved)} reserved"
            ),
        )
        for model, row in rows
    ]
    return (
        '<p class="note">Dark: credits used; light: reserved (a failed or cancelled task '
        "gives its reservation back).</p>" + charts.bar_chart(bars, label="credits per model")
    )


def _models_table(summary: RunSummary) -> str:
    rows = []
    for model, row in sorted(summary.models.items()):
        ordered = sorted(row.latencies)
        median = charts.quantile(ordered, 0.5)
        rows.append(
            f"<tr><td>{text(model)}</td><td class='num'>{row.jobs}</td>"
            f"<td class='num'>{row.completed}</td>"
            f"<td class='num'>{text(seconds_text(median) if ordered else '-')}</td>"
            f"<td class='num'>{text(credits_text(row.credits_used))}</td></tr>"
        )
    return (
        "<table><tr><th>model</th><th class='num'>jobs</th><th class='num'>completed</th>"
        "<th class='num'>median latency</th><th class='num'>credits used</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def render_html(summary: RunSummary, *, title: str) -> str:
    """The whole report page: one HTML document, nothing outside it."""
    outcomes = summary.outcomes
    tiles = [_tile(f"{summary.jobs:,}", "jobs")]
    for status, (name, colour) in OUTCOMES.items():
        if outcomes.get(status):
            tiles.append(_tile(f"{outcomes[status]:,}", name, colour))
    if summary.polls_sent is not None:
        tiles.append(_tile(f"{summary.polls_sent:,}", "polls sent"))
    if summary.polls_per_task is not None:
        tiles.append(_tile(f"{summary.polls_per_task:.1f}", "polls per task"))
    tiles.append(_tile(credits_text(summary.credits_used), "credits used"))
    tiles.append(_tile(credits_text(summary.credits_reserved), "credits reserved"))
    if summary.first is not None:
        tiles.append(_tile(seconds_text(summary.span), "first create to last outcome"))
    when = ""
    if summary.first is not None and summary.last is not None:
        when = f"{_iso(summary.first)} to {_iso(summary.last)} (UTC)"
    sections = [
        ("Timeline of jobs", _timeline(summary)),
        ("Throughput over time", _throughput(summary)),
        ("Polls over time", _polls(summary)),
        ("Latency per model", _latency(summary)),
        ("Failures by code", _failures(summary)),
        ("Credits", _credits(summary)),
        ("Per model", _models_table(summary)),
    ]
    body = "".join(f"<h2>{text(name)}</h2>{content}" for name, content in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{text(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{text(title)}</h1>"
        f'<p class="sub">{text(when)}</p>'
        f'<div class="tiles">{"".join(tiles)}</div>'
        f"{body}"
        "</body></html>\n"
    )


# ---------------------------------------------------------------- the command


def _text_lines(summary: RunSummary, journal: str) -> list[str]:
    lines = [f"{journal}: {summary.jobs} jobs"]
    if summary.first is not None:
        lines[0] += f", {seconds_text(summary.span)} from the first create to the last outcome"
    counts = [[OUTCOMES.get(s, (s, ""))[0], str(n)] for s, n in ranked(summary.outcomes)]
    if counts:
        lines += ["", *table_lines([["outcome", "jobs"], *counts], numbers=True)]
    if summary.failure_codes:
        codes = [[code, str(n)] for code, n in ranked(summary.failure_codes)]
        lines += ["", *table_lines([["failure code", "jobs"], *codes], numbers=True)]
    models = []
    for model, row in sorted(summary.models.items()):
        ordered = sorted(row.latencies)
        models.append(
            [
                model,
                str(row.jobs),
                str(row.completed),
                seconds_text(charts.quantile(ordered, 0.5)) if ordered else "-",
                credits_text(row.credits_used),
            ]
        )
    if models:
        header = ["model", "jobs", "completed", "median latency", "credits used"]
        lines += ["", *table_lines([header, *models], numbers=True)]
    if summary.polls_sent is not None:
        per_task = summary.polls_per_task
        lines += [
            "",
            f"polls: {summary.polls_sent} sent"
            + (f", {per_task:.1f} per task" if per_task is not None else ""),
        ]
    else:
        lines += ["", "polls: no poll data in this journal"]
    lines += [
        "",
        f"credits: {credits_text(summary.credits_reserved)} reserved, "
        f"{credits_text(summary.credits_used)} used",
    ]
    return [printable(line) for line in lines]


def _write(path: Path, page: str) -> None:
    """Write `page` to `path` through a temporary file, so a reader never sees half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(page, encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def run(args: argparse.Namespace) -> int:
    """Run `evolink-async report` with parsed `args`; return the exit code."""
    run_id: str | None = getattr(args, "run_id", None)
    html_path = Path(args.html) if args.html else None
    if html_path is not None and html_path.is_dir():
        print(f"{_PROG}: --html {html_path}: is a directory", file=sys.stderr)
        return 2
    if is_database_url(args.journal):
        if not run_id:
            print(f"{_PROG}: a PostgreSQL journal needs --run-id R", file=sys.stderr)
            return 2
        try:
            where, summary = asyncio.run(read_database(args.journal, run_id))
        except BrokenPipeError:
            raise  # stdout closed (`| head`): `main` ends the command
        except (EvoLinkError, OSError) as exc:
            print(f"{_PROG}: {printable(str(exc))}", file=sys.stderr)
            return 2
        name, title = f"{where} run {run_id}", f"evolink-async run: {run_id}"
    else:
        journal = Path(args.journal)
        if html_path is not None and journal.exists() and html_path.resolve() == journal.resolve():
            print(f"{_PROG}: --html {html_path}: that is the journal itself", file=sys.stderr)
            return 2
        try:
            summary = read_file(journal, run_id)
        except JournalError as exc:
            print(f"{_PROG}: {printable(exc)}", file=sys.stderr)
            return 2
        name, title = str(journal), f"evolink-async run: {journal.name}"
    return _output(args, summary, html_path, name=name, title=args.title or title)


def _output(
    args: argparse.Namespace, summary: RunSummary, html_path: Path | None, *, name: str, title: str
) -> int:
    """Write the page (with `--html`) and print the figures; the exit code."""
    if html_path is not None:
        try:
            _write(html_path, render_html(summary, title=title))
        except OSError as exc:
            print(f"{_PROG}: cannot write {html_path}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    if args.json:
        record = summary.to_json()
        record["html"] = str(html_path) if html_path is not None else None
        print(printable_json(json.dumps(record, ensure_ascii=False, indent=2)))
    elif html_path is not None:
        done = summary.outcomes.get("completed", 0)
        print(
            printable(
                f"wrote {html_path}: {summary.jobs} jobs, {done} completed; open it in a browser"
            )
        )
    else:
        sys.stdout.write("\n".join(_text_lines(summary, name)) + "\n")
    return 0
