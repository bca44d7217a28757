"""
`Learned`: a batch run's journal keeps what the watcher learned of each
model (`_watch/calibration.py`), so a resumed run, or the next run on the
same journal, starts calibrated instead of polling its first tasks blind.

Read once when the run starts; kept again at most every `SAVE_EVERY`
seconds while outcomes come in, and when the run ends. It is a head start,
never a reason to fail: a journal that cannot keep it, or kept something
unreadable, costs a log line.
"""

from __future__ import annotations

import logging
import time
from typing import Final

from .._errors import JournalError
from .._watch.calibration import Calibrator
from .store import JobJournal

__all__ = ["SAVE_EVERY", "Learned"]

logger = logging.getLogger("evolink_async")

#: Seconds between two saves while a run goes on.
SAVE_EVERY: Final = 60.0


class Learned:
    """Moves a watcher's calibration between it and a run's journal."""

    __slots__ = ("_calibrator", "_journal", "_saved_at")

    def __init__(self, journal: JobJournal, calibrator: Calibrator) -> None:
        self._journal = journal
        self._calibrator = calibrator
        self._saved_at = time.monotonic()

    async def restore(self) -> None:
        """Take up what the journal kept, if anything."""
        try:
            data = await self._journal.load_calibration()
        except JournalError as exc:
            logger.warning("the journal's calibration could not be read: %s", exc)
            return
        if data is not None:
            models = self._calibrator.restore(data)
            logger.info("polling starts from the journal's calibration of %d model(s)", models)

    async def save(self, *, unless_recent: bool = False) -> None:
        """Keep the calibration (`unless_recent`: only if `SAVE_EVERY` has passed)."""
        now = time.monotonic()
        if unless_recent and now - self._saved_at < SAVE_EVERY:
            return
        self._saved_at = now
        if not len(self._calibrator):
            return
        try:
            await self._journal.save_calibration(self._calibrator.snapshot())
        except JournalError as exc:
            logger.warning("the calibration could not be kept in the journal: %s", exc)
