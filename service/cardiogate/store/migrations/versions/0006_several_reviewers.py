"""Several reviewers per result: each verdict names its pseudonymous ``reviewer`` (earlier
ones "anonymous"), its ``role`` ("reviewer" or "adjudicator") and the reviewer's
``corrections`` (JSON); a verdict is unique per job, result digest and reviewer. The
review that settled its result's case (``settles``) takes the queue's place of "has a
verdict": every earlier verdict settled its result, as one verdict did then.

Revision ID: 0006_several_reviewers
Revises: 0005_review_backfill
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_several_reviewers"
down_revision: str | None = "0005_review_backfill"
branch_labels = None
depends_on = None


def _columns() -> list[sa.Column[object]]:
    return [
        sa.Column("reviewer", sa.String(length=64), server_default="anonymous", nullable=False),
        sa.Column("role", sa.String(length=16), server_default="reviewer", nullable=False),
        sa.Column("corrections", sa.Text(), nullable=True),
        sa.Column("settles", sa.Boolean(), server_default=sa.false(), nullable=False),
    ]


def upgrade() -> None:
    with op.batch_alter_table("reviews") as reviews:
        for column in _columns():
            reviews.add_column(column)
        reviews.drop_constraint("uq_reviews_job_result", type_="unique")
        reviews.create_unique_constraint(
            "uq_reviews_job_result_reviewer", ["job_id", "result_digest", "reviewer"]
        )
    op.execute(sa.text("UPDATE reviews SET settles = :yes").bindparams(yes=True))


def downgrade() -> None:
    """Keeps one verdict per result: the earliest."""
    conn = op.get_bind()
    conn.execute(
        sa.text(
            "DELETE FROM reviews WHERE id NOT IN (SELECT MIN(id) FROM reviews "
            "GROUP BY job_id, result_digest)"
        )
    )
    with op.batch_alter_table("reviews") as reviews:
        reviews.drop_constraint("uq_reviews_job_result_reviewer", type_="unique")
        reviews.create_unique_constraint("uq_reviews_job_result", ["job_id", "result_digest"])
        for column in ("settles", "corrections", "role", "reviewer"):
            reviews.drop_column(column)
