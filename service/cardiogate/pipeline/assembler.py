"""Series assembly: DICOM has no end-of-series signal, so a series is complete when no
instance has arrived for ``quiet_seconds``. A late instance re-opens it (the listener sets
it back to ``receiving``). State lives in the database, so a restart resumes where it was.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from cardiogate.errors import StoreError
from cardiogate.metrics import SERIES_COMPLETED
from cardiogate.pipeline.clock import SYSTEM_CLOCK, Clock
from cardiogate.store import Store

log = logging.getLogger(__name__)


class SeriesAssembler:
    """Polls the store every ``poll_seconds`` and marks quiet series complete, quiet as of
    ``clock`` (the system's; the instances' receive times are the store's)."""

    def __init__(
        self,
        store: Store,
        quiet_seconds: float,
        poll_seconds: float,
        on_complete: Callable[[list[str]], None] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.store = store
        self.clock = clock
        self.on_complete = on_complete
        self.quiet = timedelta(seconds=quiet_seconds)
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> list[str]:
        """Complete every series quiet for the quiet period; return their UIDs."""
        now = self.clock()
        completed = self.store.complete_quiet_series(now - self.quiet, now)
        for uid in completed:
            log.info("series %s complete after %.0f s quiet", uid, self.quiet.total_seconds())
        SERIES_COMPLETED.inc(len(completed))
        if completed and self.on_complete is not None:
            self.on_complete(completed)
        return completed

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.run_once()
            except StoreError as e:
                log.error("series assembly skipped a round: %s", e)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="series-assembler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
