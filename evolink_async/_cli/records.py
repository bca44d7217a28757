"""
The `--out` file of `evolink-async batch`: one JSON record per job, as each ends.

The record itself is not defined here: an outcome's is
`JobOutcome.to_record()` and a bad line's is
`evolink_async._batch.records.invalid_record`, so `--out` and the SDK share
one schema. This module only writes the records: one line each, flushed at
once, so a crash or a Ctrl-C loses no line already reported.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

__all__ = ["ResultsFile"]


class ResultsFile:
    """`--out`: one JSON line per job, flushed as written; nothing when no path."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._file: TextIO | None = None

    def open(self) -> None:
        """Create (or empty) the file; its directory too."""
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        """Append one record and flush it to the OS (a crash loses no written line)."""
        if self._file is not None:
            self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._file.flush()

    def close(self) -> None:
        """Close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None
