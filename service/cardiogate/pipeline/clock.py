"""The time the pipeline reads, injectable so that tests set it instead of sleeping.

A clock is called for naive UTC now, the form every timestamp column holds; a plain
function such as :func:`~cardiogate.store.store.utcnow` (the default) is one, and so is the
``clock`` that :class:`~cardiogate.store.jobs.JobQueue` and
:class:`~cardiogate.store.outbox.Outbox` take.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from cardiogate.store.store import utcnow


class Clock(Protocol):
    def __call__(self) -> datetime:
        """Naive UTC now."""
        ...


SYSTEM_CLOCK: Clock = utcnow
