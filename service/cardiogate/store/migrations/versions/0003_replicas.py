"""Replicas sharing one database: the owner of each row's files, and job claims as leases.

Revision ID: 0003_replicas
Revises: 0002_review_per_result
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_replicas"
down_revision: str | None = "0002_review_per_result"
branch_labels = None
depends_on = None

_REPLICA = sa.String(length=64)


def upgrade() -> None:
    op.add_column("series", sa.Column("replica_id", _REPLICA, nullable=True))
    op.add_column("jobs", sa.Column("replica_id", _REPLICA, nullable=True))
    op.add_column("jobs", sa.Column("claimed_by", _REPLICA, nullable=True))
    op.add_column("jobs", sa.Column("claim_expires_at", sa.DateTime(), nullable=True))
    op.add_column("outbox", sa.Column("replica_id", _REPLICA, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as outbox:
        outbox.drop_column("replica_id")
    with op.batch_alter_table("jobs") as jobs:
        for column in ("claim_expires_at", "claimed_by", "replica_id"):
            jobs.drop_column(column)
    with op.batch_alter_table("series") as series:
        series.drop_column("replica_id")
