"""A job's timeline as rows of its own (``job_events``), so that a failure, a late
instance and a re-run all stay on it, oldest first. Jobs that exist already get the
events their columns still tell (created, started, finished), once, here.

Revision ID: 0004_job_events
Revises: 0003_replicas
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_job_events"
down_revision: str | None = "0003_replicas"
branch_labels = None
depends_on = None

# The event each finished state leaves; a delivered job was reported first.
_FINISHED = {"failed": "failed", "ignored": "ignored", "reported": "reported"}


def upgrade() -> None:
    events = op.create_table(
        "job_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
    )
    op.create_index("ix_job_events_job_id", "job_events", ["job_id"])
    jobs = sa.table(
        "jobs",
        sa.column("id", sa.Integer()),
        sa.column("state", sa.String()),
        sa.column("reason", sa.Text()),
        sa.column("attempts", sa.Integer()),
        sa.column("created_at", sa.DateTime()),
        sa.column("started_at", sa.DateTime()),
        sa.column("finished_at", sa.DateTime()),
        sa.column("updated_at", sa.DateTime()),
    )
    conn = op.get_bind()
    rows: list[dict[str, object]] = []
    for job in conn.execute(sa.select(jobs)).mappings():
        rows.append({"job_id": job["id"], "at": job["created_at"], "event": "queued"})
        if job["started_at"] is not None:
            rows.append(
                {
                    "job_id": job["id"],
                    "at": job["started_at"],
                    "event": "started",
                    "attempt": job["attempts"],
                }
            )
        state = "reported" if job["state"] == "delivered" else job["state"]
        if job["finished_at"] is not None and state in _FINISHED:
            detail = job["reason"] if state in ("failed", "ignored") else None
            rows.append(
                {"job_id": job["id"], "at": job["finished_at"], "event": state, "detail": detail}
            )
        if job["state"] == "delivered":
            rows.append({"job_id": job["id"], "at": job["updated_at"], "event": "delivered"})
    if rows:
        op.bulk_insert(events, [{"attempt": None, "detail": None, **row} for row in rows])


def downgrade() -> None:
    op.drop_index("ix_job_events_job_id", table_name="job_events")
    op.drop_table("job_events")
