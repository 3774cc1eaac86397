"""The outbox: one row per result object and destination, durable across restarts.

A row is ``pending`` until a C-STORE of its object succeeds (``sent``) or has failed
``max_attempts`` times (``dead``, a dead letter an operator must look at). Rows are staged in
the transaction that marks their job ``reported`` (:func:`stage`); the job becomes
``delivered`` in the transaction that marks its last row sent. A claim moves a row's
``next_attempt_at`` forward by a lease instead of changing its state, so a sender that dies
mid-batch leaves rows that are simply due again later. A row's file is in the outbox
directory of the replica that ran the job (``replica_id``): only that replica claims it,
unless the data directory is shared (:mod:`.replicas`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, Table, and_, delete, exists, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from cardiogate.store.jobs import REPORTED, deliver
from cardiogate.store.records import (
    DEAD,
    PENDING,
    SENT,
    DeliveredJob,
    OutboxRow,
    OutboxStats,
    Recorded,
    StagedObject,
)
from cardiogate.store.store import Store, utcnow
from cardiogate.store.tables import Job, OutboxItem

__all__ = [
    "DEAD",
    "PENDING",
    "SENT",
    "DeliveredJob",
    "Outbox",
    "OutboxRow",
    "OutboxStats",
    "Recorded",
    "RetryPolicy",
    "StagedObject",
    "outbox_counts",
    "reset_dead",
    "stage",
]

_outbox: Table = OutboxItem.__table__  # type: ignore[assignment]
_jobs: Table = Job.__table__  # type: ignore[assignment]


class RetryPolicy(Protocol):
    @property
    def max_attempts(self) -> int: ...

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failure."""
        ...


def _record(row: Any) -> OutboxRow:
    m = row._mapping
    return OutboxRow(
        id=m["id"],
        job_id=m["job_id"],
        destination=m["destination"],
        SOPClassUID=m["sop_class_uid"],
        SOPInstanceUID=m["sop_instance_uid"],
        path=m["path"],
        state=m["state"],
        attempts=m["attempts"],
        next_attempt_at=m["next_attempt_at"],
        last_error=m["last_error"],
        created_at=m["created_at"],
        sent_at=m["sent_at"],
    )


def stage(
    conn: Connection,
    job_id: int,
    objects: Sequence[StagedObject],
    destinations: Sequence[str],
    now: datetime | None = None,
    replica_id: str | None = None,
) -> None:
    """Replace the job's rows with one pending row per object and destination (a re-run of
    the job sends its objects again; deterministic UIDs make the PACS replace, not add);
    ``replica_id`` names the replica whose outbox directory holds the files."""
    now = now or utcnow()
    conn.execute(delete(_outbox).where(_outbox.c.job_id == job_id))
    rows = [
        {
            "job_id": job_id,
            "destination": destination,
            "sop_class_uid": obj.SOPClassUID,
            "sop_instance_uid": obj.SOPInstanceUID,
            "path": obj.path,
            "state": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
            "replica_id": replica_id,
        }
        for destination in destinations
        for obj in objects
    ]
    if rows:
        conn.execute(insert(_outbox), rows)


class Outbox:
    """Claims, outcomes and recovery of outbox rows; ``clock`` is injectable for tests."""

    def __init__(self, store: Store, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.clock = clock

    def claim_due(self, destination: str, limit: int, lease_seconds: float) -> list[OutboxRow]:
        """Pending rows of ``destination`` that are due, oldest first, leased for a while."""
        now = self.clock()
        with self.store.transaction() as conn:
            due = select(_outbox).where(
                _outbox.c.state == PENDING,
                _outbox.c.destination == destination,
                _outbox.c.next_attempt_at <= now,
                self.store.replica.may_use(_outbox.c.replica_id),
            )
            if self.store.engine.dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            rows = [
                _record(r)
                for r in conn.execute(due.order_by(_outbox.c.job_id, _outbox.c.id).limit(limit))
            ]
            if rows:
                conn.execute(
                    update(_outbox)
                    .where(_outbox.c.id.in_([r.id for r in rows]))
                    .values(next_attempt_at=now + timedelta(seconds=lease_seconds))
                )
        return rows

    def record(
        self,
        sent: Sequence[OutboxRow],
        failed: Sequence[tuple[OutboxRow, str]],
        policy: RetryPolicy,
    ) -> Recorded:
        """Mark ``sent`` rows sent and ``failed`` rows due again after the policy's delay (or
        dead after its last attempt); jobs whose rows are now all sent become delivered."""
        now = self.clock()
        dead = retried = 0
        with self.store.transaction() as conn:
            if sent:
                conn.execute(
                    update(_outbox)
                    .where(_outbox.c.id.in_([r.id for r in sent]), _outbox.c.state == PENDING)
                    .values(state=SENT, sent_at=now, updated_at=now, last_error=None)
                )
            for row, error in failed:
                attempts = row.attempts + 1
                values: dict[str, Any] = {
                    "attempts": attempts,
                    "last_error": error[:1000],
                    "updated_at": now,
                }
                if attempts >= policy.max_attempts:
                    values["state"] = DEAD
                    dead += 1
                else:
                    values["next_attempt_at"] = now + timedelta(seconds=policy.delay(attempts))
                    retried += 1
                conn.execute(
                    update(_outbox)
                    .where(_outbox.c.id == row.id, _outbox.c.state == PENDING)
                    .values(**values)
                )
            delivered = deliver(conn, sorted({r.job_id for r in sent}), now)
        return Recorded(len(sent), retried, dead, delivered)

    def rows_of_job(self, job_id: int) -> list[OutboxRow]:
        return self.rows_of_jobs([job_id])

    def rows_of_jobs(self, job_ids: Sequence[int]) -> list[OutboxRow]:
        """The rows of several jobs (one query), in the order they were staged."""
        if not job_ids:
            return []
        with self.store.transaction() as conn:
            rows = conn.execute(
                select(_outbox).where(_outbox.c.job_id.in_(job_ids)).order_by(_outbox.c.id)
            )
            return [_record(r) for r in rows]

    def stats(self) -> OutboxStats:
        with self.store.transaction() as conn:
            oldest, pending = conn.execute(
                select(func.min(_outbox.c.created_at), func.count()).where(
                    _outbox.c.state == PENDING
                )
            ).one()
            dead = conn.execute(
                select(func.count()).select_from(_outbox).where(_outbox.c.state == DEAD)
            ).scalar_one()
        return OutboxStats(oldest, int(pending), int(dead))

    # -- recovery at start-up ---------------------------------------------------------------

    def unstaged_reported_jobs(self) -> list[int]:
        """Reported jobs with no outbox row at all (reported while no destination was set)."""
        with self.store.transaction() as conn:
            return list(
                conn.execute(
                    select(_jobs.c.id).where(
                        _jobs.c.state == REPORTED,
                        ~exists().where(_outbox.c.job_id == _jobs.c.id),
                    )
                ).scalars()
            )

    def pending_paths(self) -> list[tuple[int, str]]:
        """(job, path) of every pending row whose file this replica should have, to find
        objects whose file went missing."""
        with self.store.transaction() as conn:
            return [
                (int(j), str(p))
                for j, p in conn.execute(
                    select(_outbox.c.job_id, _outbox.c.path)
                    .where(
                        _outbox.c.state == PENDING,
                        self.store.replica.may_use(_outbox.c.replica_id),
                    )
                    .distinct()
                )
            ]

    def release_claims(self) -> int:
        """Make every pending row of this replica that is due later due now; returns how
        many were.

        For the start-up of the only sender of those rows (one service on SQLite, or a
        replica whose outbox no other replica reads): a row due later may be leased by the
        sender a kill -9 stopped mid-batch, and the lease (a whole batch's timeouts, over an
        hour by default) would hold its object back that long. A row waiting out a backoff
        delay is tried once more at once, which a restart may well warrant."""
        now = self.clock()
        with self.store.transaction() as conn:
            released = conn.execute(
                update(_outbox)
                .where(
                    _outbox.c.state == PENDING,
                    _outbox.c.next_attempt_at > now,
                    self.store.replica.may_use(_outbox.c.replica_id),
                )
                .values(next_attempt_at=now)
            ).rowcount
        return int(released)

    def add_destination(self, destination: str) -> int:
        """Give every reported job's objects a pending row for a newly configured
        destination (only those in this replica's outbox, each replica adds its own);
        returns how many rows were added."""
        now = self.clock()
        mine = _outbox.alias("mine")
        with self.store.transaction() as conn:
            objects = conn.execute(
                select(
                    _outbox.c.job_id,
                    _outbox.c.sop_class_uid,
                    _outbox.c.sop_instance_uid,
                    _outbox.c.path,
                    _outbox.c.replica_id,
                )
                .join(_jobs, _jobs.c.id == _outbox.c.job_id)
                .where(
                    _jobs.c.state == REPORTED,
                    self.store.replica.may_use(_outbox.c.replica_id),
                    ~exists().where(
                        and_(mine.c.job_id == _outbox.c.job_id, mine.c.destination == destination)
                    ),
                )
                .distinct()
            ).all()
            rows = [
                {
                    "job_id": job_id,
                    "destination": destination,
                    "sop_class_uid": sop_class,
                    "sop_instance_uid": sop_instance,
                    "path": path,
                    "state": PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                    "replica_id": replica_id,
                }
                for job_id, sop_class, sop_instance, path, replica_id in objects
            ]
            if rows:  # replicas sharing a data directory may add the same rows at once
                return len(conn.execute(_insert_new(self.store, rows)).all())
        return 0


def _insert_new(store: Store, rows: list[dict[str, Any]]) -> Any:
    """An insert of outbox rows that skips those already there."""
    dialect = postgresql if store.engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(_outbox).values(rows).on_conflict_do_nothing().returning(_outbox.c.id)


# -- operators (API) --------------------------------------------------------------------------


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
