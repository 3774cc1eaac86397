"""Shadow mode and model promotions: candidate results beside the serving ones
(``shadow_results``), every promote and rollback (``model_promotions``), and why a job was
selected for review (``jobs.review_criterion``).

Revision ID: 0007_shadow_and_promotions
Revises: 0006_several_reviewers
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_shadow_and_promotions"
down_revision: str | None = "0006_several_reviewers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("review_criterion", sa.String(length=32), nullable=True))
    op.create_table(
        "shadow_results",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.Integer(), sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("task", sa.String(length=16), nullable=False),
        sa.Column("model_name", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=32), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("result_digest", sa.String(length=64), nullable=False),
        sa.Column("comparison", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("job_id", "model_version", name="uq_shadow_job_version"),
    )
    op.create_index("ix_shadow_results_job_id", "shadow_results", ["job_id"])
    op.create_index("ix_shadow_results_created_at", "shadow_results", ["created_at"])
    op.create_table(
        "model_promotions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("task", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("from_version", sa.String(length=32), nullable=True),
        sa.Column("to_version", sa.String(length=32), nullable=False),
        sa.Column("by", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(length=2000), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_model_promotions_task", "model_promotions", ["task"])


def downgrade() -> None:
    op.drop_index("ix_model_promotions_task", table_name="model_promotions")
    op.drop_table("model_promotions")
    op.drop_index("ix_shadow_results_created_at", table_name="shadow_results")
    op.drop_index("ix_shadow_results_job_id", table_name="shadow_results")
    op.drop_table("shadow_results")
    op.drop_column("jobs", "review_criterion")
