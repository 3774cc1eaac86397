"""Review flags on jobs and verdicts per result (the review queue in SQL).

Jobs gain ``result_digest``, ``needs_review`` and ``review_reason`` (filled for older rows
by ``0005_review_backfill``); a verdict is
keyed by job and result digest instead of by job alone.

Revision ID: 0002_review_per_result
Revises: 0001_baseline
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_review_per_result"
down_revision: str | None = "0001_baseline"
branch_labels = None
depends_on = None

# The baseline's unique job_id of reviews has no name of ours: PostgreSQL named it, and
# SQLite's must be named through a naming convention to be dropped (batch mode).
_PG_UNIQUE_JOB = "reviews_job_id_key"
_SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    op.add_column("jobs", sa.Column("result_digest", sa.String(length=64), nullable=True))
    op.add_column(
        "jobs", sa.Column("needs_review", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column("jobs", sa.Column("review_reason", sa.String(length=500), nullable=True))
    op.create_index("ix_jobs_review", "jobs", ["needs_review", "finished_at"])
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("reviews", naming_convention=_SQLITE_NAMES) as reviews:
            reviews.drop_constraint("uq_reviews_job_id", type_="unique")
            reviews.add_column(sa.Column("result_digest", sa.String(length=64), nullable=True))
            reviews.create_unique_constraint("uq_reviews_job_result", ["job_id", "result_digest"])
    else:
        op.drop_constraint(_PG_UNIQUE_JOB, "reviews", type_="unique")
        op.add_column("reviews", sa.Column("result_digest", sa.String(length=64), nullable=True))
        op.create_unique_constraint("uq_reviews_job_result", "reviews", ["job_id", "result_digest"])
    op.create_index("ix_reviews_job_id", "reviews", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_reviews_job_id", table_name="reviews")
    with op.batch_alter_table("reviews") as reviews:
        reviews.drop_constraint("uq_reviews_job_result", type_="unique")
        reviews.drop_column("result_digest")
        reviews.create_unique_constraint(_PG_UNIQUE_JOB, ["job_id"])
    op.drop_index("ix_jobs_review", table_name="jobs")
    with op.batch_alter_table("jobs") as jobs:
        for column in ("review_reason", "needs_review", "result_digest"):
            jobs.drop_column(column)
