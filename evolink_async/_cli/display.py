"""
What `evolink-async batch` and `demo` show while a run goes: plain lines, or a rich panel.

- `Progress` holds what is shown: the run's live `BatchStats` plus what only
  the CLI counts (the total read from the file, skipped lines, a stop note).
- `Display` writes plain lines: a progress line every `every` seconds, one
  line per failed job (per job with `verbose`), notes, a summary, tables.
  It is what a pipe, a log file or a terminal without `rich` gets.
- `RichDisplay` is the same interface drawn with `rich` (an optional
  dependency): a live panel with counts, credits, throughput and ETA, with
  outcomes scrolling above it.
- `make_display` picks one; `table_lines` is the one plain table renderer
  (the `models` command and the demo's summary use it).

Outcomes are described with `evolink_async._batch.records` (`outcome_status`,
`error_code`, `error_message`), so the screen says what `--out` says.
Every line goes out through `printable`: a job id, a model id or a server's
error message cannot move the cursor, colour the terminal or add a line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final, TextIO

import attrs

from .._batch.jobs import BatchStats, JobOutcome
from .._batch.records import error_code, error_message, outcome_status
from .._text import printable

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

__all__ = [
    "RULE",
    "Display",
    "OutcomeLine",
    "Progress",
    "RichDisplay",
    "credits_text",
    "make_display",
    "seconds_text",
    "table_lines",
]

#: A row of `table_lines` drawn as dashes under each column.
RULE: Final[Sequence[str]] = ()


def seconds_text(value: float) -> str:
    """A duration as `4.2s`, `42s`, `3m07s` or `1h05m`."""
    value = max(0.0, value)
    if value < 60:
        return f"{value:.0f}s" if value >= 10 else f"{value:.1f}s"
    minutes, seconds = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def credits_text(value: float) -> str:
    """Credits as `1,240` (or `12.5`)."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _size_text(size: int) -> str:
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def table_lines(rows: Sequence[Sequence[str]], *, numbers: bool = False) -> list[str]:
    """
    Rows of cells as lines of aligned columns, two spaces apart.

    Args:
        rows: the rows, header included; a `RULE` row becomes dashes as wide
            as each column.
        numbers: right-align every column but the first (columns of counts).
    """
    cells = [row for row in rows if row]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = []
    for row in rows:
        if not row:
            lines.append("  ".join("-" * width for width in widths))
            continue
        aligned = [
            cell.rjust(width) if numbers and index else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(aligned).rstrip())
    return lines


@attrs.define(kw_only=True)
class Progress:
    """What a display shows: the run's live stats plus what the CLI counts."""

    stats: BatchStats = attrs.field(factory=BatchStats)
    total: int | None = None
    skipped: int = 0
    stopping: str | None = None

    @property
    def done(self) -> int:
        """Jobs with an outcome, skipped lines included."""
        return self.stats.finished + self.skipped

    def rate(self) -> float:
        """Jobs finished per second in this run (journalled outcomes not counted)."""
        stats = self.stats
        elapsed = stats.elapsed
        worked = stats.finished - stats.resumed
        return worked / elapsed if elapsed > 0 and worked > 0 else 0.0

    def eta(self) -> float | None:
        """Seconds left at the current pace, when the total is known."""
        if self.total is None:
            return None
        remaining = max(0, self.total - self.done)
        if remaining == 0:
            return 0.0
        rate = self.rate()
        return remaining / rate if rate > 0 else None

    def line(self) -> str:
        """The plain progress line: `[12s] 40 read, 35 created, 20 completed, ...`."""
        stats = self.stats
        read = f"{stats.read} of {self.total} read" if self.total else f"{stats.read} read"
        parts = [
            read,
            f"{stats.submitted} created",
            f"{stats.completed} completed",
            f"{stats.failed} failed",
        ]
        extras = (
            (stats.cancelled, "cancelled"),
            (stats.errors, "errors"),
            (stats.resumed, "resumed"),
            (self.skipped, "skipped"),
        )
        parts += [f"{count} {label}" for count, label in extras if count]
        parts.append(f"{stats.pending} pending")
        parts.append(
            f"credits {credits_text(stats.credits_reserved)} reserved"
            f"/{credits_text(stats.credits_used)} used"
        )
        rate = self.rate()
        if rate:
            parts.append(f"{rate:.1f} jobs/s")
        eta = self.eta()
        if eta is not None and self.done < (self.total or 0):
            parts.append(f"ETA {seconds_text(eta)}")
        return f"[{seconds_text(stats.elapsed)}] " + ", ".join(parts)


@attrs.frozen(kw_only=True)
class OutcomeLine:
    """The parts of one finished job's line on screen."""

    status: str
    job_id: str
    model: str
    credits: str
    path: str
    problem: str
    resumed: bool

    @classmethod
    def of(cls, outcome: JobOutcome, *, relative_to: Path | None = None) -> OutcomeLine:
        """The line of `outcome`; file paths shown relative to `relative_to` if given."""
        status = outcome_status(outcome.task, outcome.error)
        task = outcome.task
        used = task.usage.credits_used if task is not None and task.usage is not None else None
        path = ""
        if outcome.path is not None:
            path = str(outcome.path)
            if relative_to is not None and outcome.path.is_relative_to(relative_to):
                path = str(outcome.path.relative_to(relative_to))
            with contextlib.suppress(OSError):
                path += f" ({_size_text(outcome.path.stat().st_size)})"
        problem = ""
        if not outcome.ok:
            code = error_code(outcome.error)
            if status == "cancelled":
                problem = "cancelled on the server"
            else:
                message = error_message(outcome.error) or ""
                problem = f"[{code}] {message}" if code else message
        return cls(
            status=status,
            job_id=printable(outcome.job_id),
            model=printable(outcome.job.request.model),
            credits=f"{credits_text(used)} credits" if used else "",
            path=printable(path),
            problem=printable(problem),
            resumed=outcome.resumed,
        )

    @property
    def detail(self) -> str:
        """What follows the model: credits and file, or the problem."""
        text = f"{self.credits:>11}  {self.path}" if not self.problem else self.problem
        if self.resumed:
            text += "  (from the journal)"
        return text.rstrip()


#: Width of the model column: the longest known model id.
_MODEL_WIDTH: Final = 32


class Display:
    """
    The plain display: progress lines every `every` seconds, one line per
    failed job (per job with `verbose`), notes; all on `out` (stdout).
    """

    def __init__(self, out: TextIO, *, every: float, verbose: bool, title: str) -> None:
        self.out = out
        self.every = every
        self.verbose = verbose
        self.title = title
        self.progress = Progress()
        #: Show downloaded files relative to this directory (None: as given).
        self.paths_relative_to: Path | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._id_width = 18

    def start(self) -> None:
        """Start showing progress (inside the running loop)."""
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                self.print(self.progress.line())
            except BrokenPipeError:
                # Nobody reads the lines any more; the run goes on, and the
                # next line the run itself prints ends the command.
                return

    def print(self, text: str, style: str = "") -> None:
        """One line of output, control characters escaped."""
        self.out.write(printable(text) + "\n")
        self.out.flush()

    def note(self, text: str) -> None:
        """A remark about the run (a Ctrl-C, a skipped line...)."""
        self.print(text, "yellow")

    def outcome(self, outcome: JobOutcome) -> None:
        """Show a finished job (only failures unless verbose)."""
        if outcome.ok and not self.verbose:
            return
        line = OutcomeLine.of(outcome, relative_to=self.paths_relative_to)
        self._id_width = max(self._id_width, min(len(line.job_id), 40))
        self.print(
            f"  {line.status:<10} {line.job_id:<{self._id_width}}  "
            f"{line.model:<{_MODEL_WIDTH}}  {line.detail}".rstrip()
        )

    def stop(self) -> None:
        """Stop the periodic lines and print the last one."""
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
            self.print(self.progress.line())

    def abort(self) -> None:
        """Leave the terminal usable before exiting at once."""
        self.out.flush()

    def summary(self, lines: list[tuple[str, str]]) -> None:
        """Print the closing summary: (text, style) lines (styled where the display has styles)."""
        for text, style in lines:
            self.print(text, style)

    def table(
        self,
        header: Sequence[str],
        rows: Sequence[Sequence[str]],
        footer: Sequence[str],
        *,
        styles: Mapping[str, str] | None = None,
    ) -> None:
        """
        A table of counts: a header, rows and a totals row, the columns after
        the first right-aligned. `styles` (column name -> style) is for the
        rich display; plain lines have none.
        """
        for line in table_lines([header, RULE, *rows, RULE, footer], numbers=True):
            self.print(f"  {line}")


_STATUS_STYLE: Final = {
    "completed": ("✓", "green"),
    "failed": ("✗", "red"),
    "cancelled": ("⊘", "yellow"),
    "download_failed": ("✗", "red"),
    "error": ("✗", "red"),
    "not_submitted": ("·", "dim"),
}


class RichDisplay(Display):
    """The terminal display: a live panel (rich) with outcomes scrolling above it."""

    def __init__(self, out: TextIO, *, every: float, verbose: bool, title: str) -> None:
        super().__init__(out, every=every, verbose=verbose, title=title)
        from rich.console import Console

        self.console: Console = Console(file=out, highlight=False)
        self._live: Live | None = None

    def start(self) -> None:
        """Start the live panel."""
        from rich.live import Live

        self._live = Live(
            console=self.console,
            get_renderable=self._render,
            refresh_per_second=8,
            transient=False,
            redirect_stderr=True,
            redirect_stdout=False,
        )
        self._live.start()

    def print(self, text: str, style: str = "") -> None:
        """One line above the live panel (long lines left to the terminal to wrap)."""
        self.console.print(
            printable(text), style=style or None, markup=False, highlight=False, soft_wrap=True
        )

    def outcome(self, outcome: JobOutcome) -> None:
        """A coloured line for a finished job (only failures unless verbose)."""
        if outcome.ok and not self.verbose:
            return
        from rich.text import Text

        line = OutcomeLine.of(outcome, relative_to=self.paths_relative_to)
        mark, style = _STATUS_STYLE.get(line.status, ("?", ""))
        self._id_width = max(self._id_width, min(len(line.job_id), 40))
        text = Text.assemble(
            (f" {mark} ", style),
            (f"{line.job_id:<{self._id_width}}", "bold"),
            "  ",
            (f"{line.status:<10}", style),
            "  ",
            (f"{line.model:<{_MODEL_WIDTH}}", "dim"),
            "  ",
            (line.detail, "dim" if outcome.ok else style),
        )
        if outcome.ok:
            text.no_wrap = True
            text.overflow = "ellipsis"
        self.console.print(text, highlight=False)

    def stop(self) -> None:
        """Draw the panel a last time and leave it on screen."""
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None

    def abort(self) -> None:
        """Stop the live panel (restores the cursor) before exiting at once."""
        self.stop()

    def table(
        self,
        header: Sequence[str],
        rows: Sequence[Sequence[str]],
        footer: Sequence[str],
        *,
        styles: Mapping[str, str] | None = None,
    ) -> None:
        """The table of counts as a rich table, the totals row as its footer."""
        from rich import box
        from rich.table import Table

        table = Table(box=box.SIMPLE_HEAD, show_footer=True, pad_edge=False)
        every = [header, *rows, footer]
        for index, (name, total) in enumerate(zip(header, footer, strict=True)):
            table.add_column(
                name,
                footer=total,
                justify="left" if index == 0 else "right",
                no_wrap=True,
                min_width=max(len(row[index]) for row in every),
                style=(styles or {}).get(name),
                footer_style="bold",
            )
        for row in rows:
            table.add_row(*row)
        self.console.print(table)

    def _render(self) -> RenderableType:
        from rich.console import Group
        from rich.panel import Panel
        from rich.progress_bar import ProgressBar
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        progress = self.progress
        stats = progress.stats
        total = progress.total
        done = progress.done
        finished = stats.finished_at is not None
        head = Table.grid(padding=(0, 2))
        head.add_column(no_wrap=True)
        head.add_column(no_wrap=True)
        head.add_column(no_wrap=True, justify="right")
        bar = ProgressBar(
            total=float(total) if total else None,
            completed=float(done),
            width=36,
            pulse=not total and not finished,
        )
        count = f"{done}/{total} jobs" if total else f"{done} jobs"
        if total:
            count += f"  {100 * done // max(total, 1):>3}%"
        eta = progress.eta()
        if finished:
            verb = "stopped after" if progress.stopping else "done in"
            timing = f"{verb} {seconds_text(stats.elapsed)}"
        elif eta is not None:
            timing = f"{seconds_text(stats.elapsed)} elapsed, ~{seconds_text(eta)} left"
        else:
            timing = f"{seconds_text(stats.elapsed)} elapsed"
        head.add_row(bar, Text(count, style="bold"), Text(timing, style="cyan"))

        counts = Text()
        cells = [
            ("read", stats.read, ""),
            ("created", stats.submitted, ""),
            ("pending", stats.pending, "cyan"),
            ("completed", stats.completed, "green"),
            ("failed", stats.failed, "red" if stats.failed else ""),
            ("cancelled", stats.cancelled, "yellow" if stats.cancelled else ""),
        ]
        if stats.errors:
            cells.append(("errors", stats.errors, "red"))
        if stats.resumed:
            cells.append(("resumed", stats.resumed, "blue"))
        if progress.skipped:
            cells.append(("skipped", progress.skipped, "yellow"))
        for index, (label, value, style) in enumerate(cells):
            if index:
                counts.append("   ")
            counts.append(f"{label} ", style="dim")
            counts.append(str(value), style=style or "bold")
        money = Text()
        money.append("credits ", style="dim")
        money.append(credits_text(stats.credits_reserved), style="bold")
        money.append(" reserved, ", style="dim")
        money.append(credits_text(stats.credits_used), style="bold")
        money.append(" used", style="dim")
        rate = progress.rate()
        if rate:
            money.append("   throughput ", style="dim")
            money.append(f"{rate:.1f} jobs/s", style="bold")
        if stats.downloaded:
            money.append("   downloaded ", style="dim")
            money.append(str(stats.downloaded), style="bold")
        rows: list[RenderableType] = [head, counts, money]
        if progress.stopping:
            rows.append(Text(progress.stopping, style="yellow"))
        body: RenderableType = Group(*rows)
        if not finished:
            state = Table.grid(padding=(0, 1))
            state.add_row(Spinner("dots", style="cyan"), body)
            body = state
        return Panel(
            body,
            title=Text(f" {self.title} ", style="bold"),
            title_align="left",
            border_style="green" if finished else "blue",
            # A fixed width: a panel that resized with its numbers would jitter.
            width=min(self.console.width, 100),
            padding=(0, 1),
        )


def make_display(out: TextIO, *, every: float, verbose: bool, title: str) -> Display:
    """
    The rich live display when `out` is a terminal and `rich` is installed,
    else plain periodic lines.
    """
    interactive = out.isatty() and os.environ.get("TERM") != "dumb"
    if interactive:
        try:
            import rich  # noqa: F401 -- only checking that it is there
        except ImportError:
            interactive = False
    if interactive:
        return RichDisplay(out, every=every, verbose=verbose, title=title)
    return Display(out, every=every, verbose=verbose, title=title)
