"""What the operator API reads and resets beyond the queue itself: a job's report
versions, outbox counts per destination, and dead outbox rows put back in line."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, func, select, update

from cardiogate.store.outbox import DEAD, PENDING
from cardiogate.store.store import Store, utcnow
from cardiogate.store.tables import OutboxItem, ReportVersion

_outbox: Table = OutboxItem.__table__  # type: ignore[assignment]
_versions: Table = ReportVersion.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """One report version of a job: what it was built with and its SR's UIDs."""

    version_index: int
    model_version: str
    StudyInstanceUID: str
    SeriesInstanceUID: str
    SOPInstanceUID: str
    SOPClassUID: str
    created_at: datetime


def versions_of_job(store: Store, job_id: int) -> list[VersionRecord]:
    with store.transaction() as conn:
        rows = conn.execute(
            select(_versions)
            .where(_versions.c.job_id == job_id)
            .order_by(_versions.c.version_index)
        )
        return [
            VersionRecord(
                r.version_index,
                r.model_version,
                r.sr_study_instance_uid,
                r.sr_series_instance_uid,
                r.sr_sop_instance_uid,
                r.sr_sop_class_uid,
                r.created_at,
            )
            for r in rows
        ]


def outbox_counts(store: Store) -> dict[str, dict[str, int]]:
    """Row counts per destination name (``AE@host:port``) and state."""
    counts: dict[str, dict[str, int]] = {}
    with store.transaction() as conn:
        rows = conn.execute(
            select(_outbox.c.destination, _outbox.c.state, func.count()).group_by(
                _outbox.c.destination, _outbox.c.state
            )
        )
        for destination, state, n in rows:
            counts.setdefault(destination, {})[state] = int(n)
    return counts


def reset_dead(store: Store, job_id: int) -> int:
    """Put a job's dead rows back to pending, attempts 0 and due now (the sender polls);
    returns how many."""
    now = utcnow()
    with store.transaction() as conn:
        return int(
            conn.execute(
                update(_outbox)
                .where(_outbox.c.job_id == job_id, _outbox.c.state == DEAD)
                .values(state=PENDING, attempts=0, next_attempt_at=now, updated_at=now)
            ).rowcount
        )
