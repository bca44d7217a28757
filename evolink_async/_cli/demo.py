"""
`evolink-async demo`: the batch runner on the example jobs, against an embedded mock.

What a new user sees first. The example jobs (24 across all five models; one
refused by the content policy, one with an unreadable image, one cancelled)
run through the same code as `evolink-async batch JOBS --mock --download DIR`:
live progress, a line per job, results and downloads; then a summary per
model (jobs, outcomes, status polls, credits) and what to try next.

No key and no network: a `MockEvoLink` runs on loopback with its clock 50x
fast, so minutes of generation take seconds.

Where the jobs come from: `examples/jobs.jsonl` of the source checkout the
package runs from (so editing that file changes the demo). An installed wheel
has no `examples/` (the build ships the package only), so the module carries
the same lines in `EMBEDDED_JOBS`; a test keeps the two identical.
`demo --write-jobs FILE` writes those lines to FILE, to edit and run.

What the demo makes stays in `--output` (default `demo-output/`, ignored by
git) for the user to open afterwards: `videos/` (each checked byte for byte
against what the mock served), `results.jsonl` (the `--out` records),
`demo.journal` and `report.html` (`evolink-async report` of that journal).
A run first removes those files of the last demo, and nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import math
import os
import sys
import time
from pathlib import Path
from typing import Final, TextIO

import attrs

from .._batch.jobs import JobOutcome
from .._batch.journal import read_entries
from .._client import EvoLinkClient
from .._models import MODELS
from .._watch.policy import PollPolicy
from ..testing import MockEvoLink
from .batch import EXIT_INTERRUPTED, MOCK_TIME_SCALE, execute
from .display import Display, credits_text, make_display
from .jobfile import count_jobs
from .records import ResultsFile
from .report import render_html, summarize

__all__ = ["EMBEDDED_JOBS", "EXAMPLE_JOBS", "run", "run_demo"]

#: The example jobs in a source checkout.
EXAMPLE_JOBS: Final = Path(__file__).resolve().parents[2] / "examples" / "jobs.jsonl"
#: Seconds between progress lines when stdout is not a terminal.
_PLAIN_PROGRESS_EVERY: Final = 1.5
#: The poll loop a naive client would run, for comparison (the API's own
#: examples poll every few seconds; 2 s is also `PollPolicy.min_interval`).
_NAIVE_POLL_SECONDS: Final = 2.0

#: Colours of the summary table's outcome columns (rich display only).
_COLUMN_STYLES: Final = {"ok": "green", "failed": "red", "cancelled": "yellow"}

#: A copy of examples/jobs.jsonl for installs without the examples directory.
EMBEDDED_JOBS: Final = """\
# Example jobs for `evolink-async batch` (and what `evolink-async demo` runs against the mock).
# One JSON object per line: {"id": ..., "model": ..., "metadata": {...}, <the model's fields>}.
# Blank lines and lines starting with # are skipped. `mock:fail=<code>` / `mock:cancel` in a
# prompt make the mock server fail / cancel that task (the real API just sees a prompt).
{"id": "sunrise-pan-01", "model": "seedance-2.0-image-to-video", "prompt": "The camera pans slowly across a misty valley as the sun rises", "image_urls": ["https://example.com/valley.jpg"], "duration": 5, "metadata": {"campaign": "spring"}}
{"id": "meadow-push-02", "model": "seedance-2.0-image-to-video", "prompt": "The camera slowly pushes in and the grass sways in the wind", "image_urls": ["https://example.com/meadow.jpg"], "quality": "480p"}
{"id": "city-night-03", "model": "seedance-2.0-image-to-video", "prompt": "Neon signs flicker on as rain starts to fall on a busy street", "image_urls": ["https://example.com/street.jpg"], "aspect_ratio": "9:16", "generate_audio": false}
{"id": "bloom-timelapse-04", "model": "seedance-2.0-image-to-video", "prompt": "A flower bud opens into full bloom", "image_urls": ["https://example.com/bud.jpg", "https://example.com/bloom.jpg"], "aspect_ratio": "1:1", "duration": 6}
{"id": "ocean-day-05", "model": "seedance-2.0-fast-image-to-video", "prompt": "A smooth transition from sunrise to sunset over the ocean", "image_urls": ["https://example.com/sunrise.jpg", "https://example.com/sunset.jpg"], "aspect_ratio": "adaptive"}
{"id": "kite-beach-06", "model": "seedance-2.0-fast-image-to-video", "prompt": "A red kite dances above the dunes", "image_urls": ["https://example.com/kite.jpg"], "duration": 4}
{"id": "coffee-pour-07", "model": "seedance-2.0-fast-image-to-video", "prompt": "Slow motion: milk swirls into a cup of coffee", "image_urls": ["https://example.com/coffee.jpg"], "quality": "480p", "metadata": {"client": "cafe-42"}}
{"id": "skyline-dolly-08", "model": "seedance-2.0-fast-image-to-video", "prompt": "A drone glides between glass towers at golden hour", "image_urls": ["https://example.com/skyline.jpg"], "aspect_ratio": "21:9"}
{"id": "cat-run-09", "model": "happyhorse-1.0-image-to-video", "prompt": "Make the cat run on the grass", "image_urls": ["https://example.com/cat.png"]}
{"id": "horse-gallop-10", "model": "happyhorse-1.0-image-to-video", "prompt": "A white horse gallops along the shoreline", "image_urls": ["https://example.com/horse.png"], "quality": "1080p", "seed": 42}
{"id": "lantern-float-11", "model": "happyhorse-1.0-image-to-video", "image_urls": ["https://example.com/lanterns.png"], "duration": 4}
{"id": "piano-cat-12", "model": "wan2.7-image-to-video", "prompt": "A cat playing piano", "image_start": "https://example.com/first_frame.jpg", "generation_mode": "first_frame"}
{"id": "day-to-night-13", "model": "wan2.7-image-to-video", "prompt": "The square turns from day to night", "image_start": "https://example.com/square-day.jpg", "image_end": "https://example.com/square-night.jpg", "generation_mode": "first_last_frame", "quality": "1080p"}
{"id": "waves-continue-14", "model": "wan2.7-image-to-video", "prompt": "The waves keep rolling in", "video_urls": ["https://example.com/waves.mp4"], "generation_mode": "video_continuation"}
{"id": "forest-fog-15", "model": "wan2.7-image-to-video", "prompt": "Fog drifts between tall pine trees", "negative_prompt": "people, text", "image_start": "https://example.com/forest.jpg", "seed": 7, "duration": 4}
{"id": "paper-boat-16", "model": "wan2.5-image-to-video", "prompt": "A paper boat drifts down a rainy street", "image_urls": ["https://example.com/boat.png"]}
{"id": "snow-village-17", "model": "wan2.5-image-to-video", "prompt": "Snow falls gently over a quiet mountain village", "image_urls": ["https://example.com/village.png"], "duration": 5}
{"id": "robot-wave-18", "model": "wan2.5-image-to-video", "prompt": "A small robot waves hello", "image_urls": ["https://example.com/robot.png"], "metadata": {"campaign": "launch"}}
{"id": "firework-show-19", "model": "wan2.5-image-to-video", "prompt": "Fireworks burst over the harbour", "image_urls": ["https://example.com/harbour.png"], "duration": 10}
{"id": "refused-prompt-20", "model": "seedance-2.0-image-to-video", "prompt": "mock:fail=content_policy_violation A request the provider refuses", "image_urls": ["https://example.com/refused.jpg"]}
{"id": "broken-image-21", "model": "happyhorse-1.0-image-to-video", "prompt": "mock:fail=image_processing_error An image the provider cannot read", "image_urls": ["https://example.com/corrupt.png"]}
{"id": "cancelled-22", "model": "wan2.5-image-to-video", "prompt": "mock:cancel A task cancelled before it finished", "image_urls": ["https://example.com/cancel.png"]}
{"id": "balloon-rise-23", "model": "seedance-2.0-fast-image-to-video", "prompt": "Hot air balloons rise over the valley at dawn", "image_urls": ["https://example.com/balloons.jpg"], "duration": 5}
{"id": "train-window-24", "model": "wan2.7-image-to-video", "prompt": "Countryside rushes past a train window", "image_start": "https://example.com/train.jpg", "prompt_extend": true}
"""  # noqa: E501 -- JSONL: one job per line, as in the file


@attrs.define(kw_only=True)
class _ModelRow:
    jobs: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    polls: int = 0
    naive_polls: int = 0
    credits: float = 0.0


#: What a demo writes in its output folder (all a new demo removes there).
_MADE: Final = (
    "results.jsonl",
    "demo.journal",
    "demo.journal-wal",
    "demo.journal-shm",
    "report.html",
)


def run(args: argparse.Namespace | None = None) -> int:
    """Run `evolink-async demo`; 0 when it ran to the end (its failed jobs are part of the show)."""
    output = Path(args.output if args is not None else "demo-output")
    write_jobs: str | None = args.write_jobs if args is not None else None
    if write_jobs is not None:
        return _write_jobs(write_jobs)
    if output.exists() and not output.is_dir():
        print(f"evolink-async demo: --output {output}: not a directory", file=sys.stderr)
        return 2
    try:
        return asyncio.run(run_demo(sys.stdout, output))
    except KeyboardInterrupt:
        print("\nevolink-async demo: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def example_jobs() -> str:
    """The example jobs' text: the checkout's file, else the embedded copy."""
    if EXAMPLE_JOBS.is_file():
        return EXAMPLE_JOBS.read_text(encoding="utf-8")
    return EMBEDDED_JOBS


def _write_jobs(name: str) -> int:
    text = example_jobs()
    jobs = sum(1 for line in text.splitlines() if line.strip() and not line.startswith("#"))
    if name == "-":
        sys.stdout.write(text)
        return 0
    path = Path(name)
    try:
        with path.open("x", encoding="utf-8") as stream:  # never over a file of the user's
            stream.write(text)
    except FileExistsError:
        print(f"evolink-async demo: --write-jobs {path}: exists; name a new file", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"evolink-async demo: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {jobs} example jobs to {path}; try them against the mock:")
    print(f"  evolink-async validate {path}")
    print(f"  evolink-async batch {path} --mock --download out/videos --out out/results.jsonl")
    return 0


def _jobs_file(output: Path) -> tuple[Path, str]:
    """(the jobs file to run, how to name it to the user)."""
    if EXAMPLE_JOBS.is_file():
        return EXAMPLE_JOBS, _shown(EXAMPLE_JOBS)
    copy = output / "jobs.jsonl"
    copy.write_text(EMBEDDED_JOBS, encoding="utf-8")
    return copy, "the built-in example jobs"


def _shown(path: Path) -> str:
    """`path` relative to here when it is below here, else as it is."""
    try:
        shown = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)
    return shown if not shown.startswith("..") else str(path)


def _clear(output: Path) -> None:
    """Remove what the last demo left in `output` (its own files only)."""
    for name in _MADE:
        (output / name).unlink(missing_ok=True)
    videos = output / "videos"
    if videos.is_dir():
        for stale in [*videos.glob("*.mp4"), *videos.glob(".*.part")]:
            stale.unlink(missing_ok=True)


async def run_demo(out: TextIO, output: Path | None = None) -> int:
    """
    Run the example jobs against an embedded mock, with progress and a
    summary; keep the videos, results, journal and report in `output`.
    """
    started = time.monotonic()
    root = output if output is not None else Path("demo-output")
    root.mkdir(parents=True, exist_ok=True)
    _clear(root)
    jobs, shown = _jobs_file(root)
    total = count_jobs(jobs)
    display = make_display(
        out, every=_PLAIN_PROGRESS_EVERY, verbose=True, title="evolink-async demo"
    )
    display.paths_relative_to = root
    _intro(display, total, shown)
    outcomes: list[JobOutcome] = []
    results = ResultsFile(root / "results.jsonl")
    results.open()
    try:
        async with MockEvoLink(time_scale=MOCK_TIME_SCALE, seed=7) as mock:
            async with EvoLinkClient(
                mock.api_key,
                base_url=mock.url,
                files_base_url=mock.url,
                poll=PollPolicy().scaled(MOCK_TIME_SCALE),
            ) as client:
                report = await execute(
                    client,
                    jobs,
                    display=display,
                    results=results,
                    journal=root / "demo.journal",
                    download=root / "videos",
                    total=total,
                    on_outcome=outcomes.append,
                )
            rows = _rows(outcomes, mock)
            verified, size = _verify(outcomes, mock)
            polls = sum(len(times) for times in mock.stats.polls.values())
    finally:
        results.close()
    elapsed = time.monotonic() - started
    _summary(display, rows, verified=verified, size=size, polls=polls, elapsed=elapsed)
    if report.interrupted:
        display.print("Interrupted: the demo's mock server is gone; run it again any time.")
        return EXIT_INTERRUPTED
    page = root / "report.html"
    summary = await asyncio.to_thread(summarize, read_entries(root / "demo.journal"))
    await asyncio.to_thread(
        page.write_text, render_html(summary, title="evolink-async demo"), "utf-8"
    )
    _kept(display, root, verified)
    _next_steps(display, shown if EXAMPLE_JOBS.is_file() else "my-jobs.jsonl")
    return 0


def _kept(display: Display, root: Path, videos: int) -> None:
    where = _shown(root)
    display.print(f"Kept in {where}/ to open now:", "bold")
    display.print(f"  {where}/videos/         {videos} videos (one per completed job)")
    display.print(f"  {where}/results.jsonl   one JSON record per job, as `batch --out` writes")
    display.print(f"  {where}/report.html     the run in a picture: open it in a browser")
    display.print(f"  {where}/demo.journal    the journal (`evolink-async report` draws it)")
    display.print("")


def _intro(display: Display, total: int, shown: str) -> None:
    scale = 1 / MOCK_TIME_SCALE
    lines = [
        f"evolink-async demo: {total} video jobs from {shown}, across all {len(MODELS)} models,",
        "run by the batch runner against an embedded mock of the EvoLink API (no key, no",
        f"network; its clock runs {scale:g}x fast, so a 165 s generation takes "
        f"{165 * MOCK_TIME_SCALE:.1f} s).",
        "Watch it create, poll, download and journal; two jobs fail and one is cancelled",
        "on purpose, to show what that looks like.",
        "",
    ]
    for line in lines:
        display.print(line, "bold" if line.startswith("evolink-async demo") else "")


def _rows(outcomes: list[JobOutcome], mock: MockEvoLink) -> dict[str, _ModelRow]:
    rows: dict[str, _ModelRow] = collections.defaultdict(_ModelRow)
    for outcome in outcomes:
        row = rows[outcome.job.request.model]
        row.jobs += 1
        task = outcome.task
        if outcome.ok:
            row.completed += 1
        elif task is not None and task.status.value == "cancelled":
            row.cancelled += 1
        else:
            row.failed += 1
        if task is None:
            continue
        row.polls += len(mock.stats.polls.get(task.id, ()))
        planned = mock.tasks.get(task.id)
        if planned is not None:
            # A loop polling every 2 s of API time until the task ended.
            run_time = (planned.finishes_at - planned.created_at) / MOCK_TIME_SCALE
            row.naive_polls += max(1, math.ceil(run_time / _NAIVE_POLL_SECONDS))
        if task.usage is not None and task.usage.credits_used:
            row.credits += task.usage.credits_used
    return dict(sorted(rows.items()))


def _verify(outcomes: list[JobOutcome], mock: MockEvoLink) -> tuple[int, int]:
    """(downloaded files whose bytes match what the mock served, their total size)."""
    verified = size = 0
    for outcome in outcomes:
        if outcome.path is None or outcome.task is None:
            continue
        data = outcome.path.read_bytes()
        if data == mock.video_bytes(outcome.task.id):
            verified += 1
            size += len(data)
    return verified, size


def _summary(
    display: Display,
    rows: dict[str, _ModelRow],
    *,
    verified: int,
    size: int,
    polls: int,
    elapsed: float,
) -> None:
    total = _ModelRow()
    for row in rows.values():
        for field in attrs.fields(_ModelRow):
            setattr(total, field.name, getattr(total, field.name) + getattr(row, field.name))
    header = ["model", "jobs", "ok", "failed", "cancelled", "polls", "per job", "credits"]
    table = [
        [
            model,
            str(row.jobs),
            str(row.completed),
            str(row.failed),
            str(row.cancelled),
            str(row.polls),
            f"{row.polls / row.jobs:.1f}" if row.jobs else "-",
            credits_text(row.credits),
        ]
        for model, row in rows.items()
    ]
    footer = [
        "all models",
        str(total.jobs),
        str(total.completed),
        str(total.failed),
        str(total.cancelled),
        str(total.polls),
        f"{total.polls / total.jobs:.1f}" if total.jobs else "-",
        credits_text(total.credits),
    ]
    display.print("")
    display.table(header, table, footer, styles=_COLUMN_STYLES)
    display.print("")
    tasks = total.jobs
    display.print(
        f"{total.completed} of {tasks} generations completed, {total.failed} failed, "
        f"{total.cancelled} cancelled; {polls} status polls for {tasks} tasks in {elapsed:.1f}s",
        "bold",
    )
    display.print(
        f"Polling: {polls / max(tasks, 1):.1f} polls per task, planned from each task's "
        f"estimate (a fixed {_NAIVE_POLL_SECONDS:g} s loop: ~{total.naive_polls:,})."
    )
    display.print(
        f"Downloads: {verified} videos, {size / (1024 * 1024):.1f} MB, identical to what the "
        "server sent; each written atomically."
    )
    display.print("")


def _next_steps(display: Display, jobs: str) -> None:
    steps = [
        ("evolink-async demo --write-jobs my-jobs.jsonl", "the example jobs, to edit"),
        (f"evolink-async validate {jobs}", "check a jobs file; sends nothing"),
        ("evolink-async models", "every model's fields, defaults and limits"),
        (f"evolink-async batch {jobs} --mock --download out/videos --out out/results.jsonl", ""),
        (
            f"evolink-async mock-server --time-scale {MOCK_TIME_SCALE:g}",
            "a local API to test your own code",
        ),
        ("export EVOLINK_API_KEY=sk-...", "then for real (Ctrl-C stops; run again to resume):"),
        ("evolink-async batch my-jobs.jsonl --download out/videos --out results.jsonl", ""),
        ("evolink-async generate wan2.5-image-to-video --prompt 'A cat' --image cat.png", ""),
    ]
    width = max(len(command) for command, what in steps if what)
    display.print("Try next:", "bold")
    for command, what in steps:
        display.print(f"  {command:<{width}}  # {what}" if what else f"  {command}", "cyan")
