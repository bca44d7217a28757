"""
`evolink-async validate JOBS.jsonl`: check every job of a file, sending nothing.

Each problem is printed as `FILE:LINE: id=ID: problem` (the line numbers an
editor shows), then one summary line. The checks are `batch`'s and
`client.batch`'s (`jobfile.check_job_lines`), so a file that validates runs.
Exit codes: 0 every job is valid, 1 some job is not, 2 the file cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import IO

from .jobfile import check_job_lines, problem_lines

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    """Run `evolink-async validate` with parsed `args`; return the exit code."""
    name: str = args.jobs
    try:
        stream: IO[bytes] = sys.stdin.buffer if name == "-" else Path(name).open("rb")  # noqa: SIM115 -- closed below
    except OSError as exc:
        print(f"evolink-async validate: cannot read {name}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    jobs = valid = 0
    out = sys.stdout
    try:
        for check in check_job_lines(stream):
            jobs += 1
            if check.ok:
                valid += 1
                continue
            for line in problem_lines(name, check):
                out.write(line + "\n")
    except OSError as exc:
        print(f"evolink-async validate: error reading {name}: {exc}", file=sys.stderr)
        return 2
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    invalid = jobs - valid
    out.write(f"{jobs} jobs, {valid} valid, {invalid} invalid\n")
    out.flush()
    return 1 if invalid else 0
