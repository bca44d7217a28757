"""
The `evolink-async` command line: `evolink-async X` lives in `_cli/X.py`.

- `main.py`: the argument parser and dispatch; it imports a command's module
  only when that command runs.
- The commands: `generate.py`, `wait.py` (and `follow`, which `generate`
  ends with), `download.py`, `validate.py`, `info.py` (`models`, `task`,
  `credits`), `mock_server.py`, `batch.py`, `demo.py` (which runs `batch`'s
  `execute`), `journal.py` (`journal status`, `journal export`), `report.py`.
- Beneath them: `apikey.py` (where the key comes from), `calls.py` (the
  client the options describe, exit codes, Ctrl-C around a call, a task's
  `--json` record), `jobfile.py` (JSONL job files: which lines are jobs,
  their checks, their count), `records.py` (the `--out` file), `display.py`
  (plain lines or the rich panel of a batch), `taskview.py` (the same for
  one task) and `charts.py` (the report's SVG). These import only the SDK.

`main` is the entry point of the `evolink-async` script and of
`python -m evolink_async`.
"""

from .main import main

__all__ = ["main"]
