"""Fill the review columns of rows written before they existed (0002): each job's result
digest, ``needs_review`` and reason from its result, and each verdict's digest from the
result it judged. Done here, once, rather than at every worker start.

The digest and the reason are computed by the code that computes them for new results
(:func:`cardiogate.store.reviews.result_digest`, each installed task's
:meth:`~cardiogate.tasks.Task.review_reason`), so a back-filled row reads as one written now
would; a job of a task no longer installed is left without a reason.

Revision ID: 0005_review_backfill
Revises: 0004_job_events
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

from cardiogate.store.reviews import MAX_REVIEW_REASON, result_digest
from cardiogate.tasks import configure_tasks

revision = "0005_review_backfill"
down_revision: str | None = "0004_job_events"
branch_labels = None
depends_on = None

_jobs = sa.table(
    "jobs",
    sa.column("id", sa.Integer()),
    sa.column("task", sa.String()),
    sa.column("result", sa.Text()),
    sa.column("result_digest", sa.String()),
    sa.column("needs_review", sa.Boolean()),
    sa.column("review_reason", sa.String()),
)
_reviews = sa.table(
    "reviews",
    sa.column("id", sa.Integer()),
    sa.column("result", sa.Text()),
    sa.column("result_digest", sa.String()),
)


def _parse(result_json: str) -> dict[str, Any]:
    try:
        parsed = json.loads(result_json)
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def upgrade() -> None:
    conn = op.get_bind()
    jobs = conn.execute(
        sa.select(_jobs.c.id, _jobs.c.task, _jobs.c.result).where(
            _jobs.c.result.is_not(None), _jobs.c.result_digest.is_(None)
        )
    ).all()
    tasks = configure_tasks()
    for job_id, task, result in jobs:
        found = tasks.get(task or "")
        reason = None if found is None else found.review_reason(_parse(result))
        conn.execute(
            sa.update(_jobs)
            .where(_jobs.c.id == job_id)
            .values(
                result_digest=result_digest(result),
                needs_review=reason is not None,
                review_reason=None if reason is None else reason[:MAX_REVIEW_REASON],
            )
        )
    verdicts = conn.execute(
        sa.select(_reviews.c.id, _reviews.c.result).where(
            _reviews.c.result.is_not(None), _reviews.c.result_digest.is_(None)
        )
    ).all()
    for review_id, result in verdicts:
        conn.execute(
            sa.update(_reviews)
            .where(_reviews.c.id == review_id)
            .values(result_digest=result_digest(result))
        )


def downgrade() -> None:
    """Nothing to undo: the columns keep values that 0002's columns may hold."""
