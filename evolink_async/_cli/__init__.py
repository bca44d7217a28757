"""
The `evolink-async` command line: `evolink-async X` lives in `_cli/X.py`.

- `main.py`: the argument parser and dispatch; it imports a command's module
  only when that command runs.
- The commands: `validate.py`, `info.py` (`models`, `task`, `credits`),
  `mock_server.py`, `batch.py`, `demo.py` (which runs `batch`'s `execute`),
  `journal.py` (`journal status`, `journal export`), `report.py`.
- Beneath them: `jobfile.py` (JSONL job files: which lines are jobs, their
  checks, their count), `records.py` (the `--out` file), `display.py`
  (plain lines or the rich panel) and `charts.py` (the report's SVG). These
  import only the SDK.

`main` is the entry point of the `evolink-async` script and of
`python -m evolink_async`.
"""

from .main import main

__all__ = ["main"]
