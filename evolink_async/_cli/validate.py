"""
`evolink-async validate JOBS.jsonl`: check every job of a file, sending nothing.

Each problem is printed as `FILE:LINE: id=ID: problem` (the line numbers an
editor shows), then one summary line; with `--json`, one JSON object per bad
job (`line`, `id`, `problems`) and a last one with the counts. Image fields
may name local files by a path relative to the jobs file (as `batch` reads
them); those files are checked too. The checks are `batch`'s and
`client.batch`'s (`jobfile.check_job_lines`), so a file that validates runs.
Exit codes: 0 every job is valid, 1 some job is not, 2 the file cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from .._text import printable_json
from .jobfile import check_job_lines, folder_of, problem_lines

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
    # Relative image paths are read against the file's folder (stdin: here).
    base = Path.cwd() if name == "-" else folder_of(Path(name))
    try:
        for check in check_job_lines(stream, base=base):
            jobs += 1
            if check.ok:
                valid += 1
                continue
            if args.json:
                record = {"line": check.line, "id": check.id, "problems": list(check.problems)}
                out.write(_json_line(record))
                continue
            for line in problem_lines(name, check):
                out.write(line + "\n")
    except BrokenPipeError:
        raise  # stdout closed (`| head`): `main` ends the command
    except OSError as exc:
        print(f"evolink-async validate: error reading {name}: {exc}", file=sys.stderr)
        return 2
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    invalid = jobs - valid
    if args.json:
        out.write(_json_line({"jobs": jobs, "valid": valid, "invalid": invalid}))
    else:
        out.write(f"{jobs} jobs, {valid} valid, {invalid} invalid\n")
    out.flush()
    return 1 if invalid else 0


def _json_line(record: Mapping[str, object]) -> str:
    return printable_json(json.dumps(record, ensure_ascii=False)) + "\n"
