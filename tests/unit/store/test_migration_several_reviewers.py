"""Migration ``0006_several_reviewers`` on SQLite: a verdict written before it becomes the
anonymous reviewer's, and settles its result (one verdict did), so the queue stays as it
was; a second reviewer may then judge a new result of the same job."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, text

from cardiogate.store import Store
from cardiogate.store.reviews import review_queue, reviews_of
from cardiogate.store.schema import _config

AT = datetime(2025, 3, 1)


def test_an_earlier_verdict_is_anonymous_and_settles_its_result(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = create_engine(url)
    with engine.begin() as conn:  # a database as release 0005 left it, one judged job
        command.upgrade(_config(conn), "0005_review_backfill")
        conn.execute(
            text(
                "INSERT INTO jobs (id, series_instance_uid, study_instance_uid, task, state, "
                "attempts, result, result_digest, needs_review, created_at, updated_at, "
                "finished_at) VALUES (1, '1.2.3', '1.2', 'calcium', 'reported', 1, '{}', "
                ":digest, :yes, :at, :at, :at)"
            ),
            {"digest": "d" * 64, "yes": True, "at": AT},
        )
        conn.execute(
            text(
                "INSERT INTO reviews (job_id, result_digest, verdict, note, result, created_at) "
                "VALUES (1, :digest, 'agree', '', '{}', :at)"
            ),
            {"digest": "d" * 64, "at": AT},
        )
    engine.dispose()

    store = Store(url)
    store.create_schema()
    (review,) = reviews_of(store, 1, "d" * 64)
    assert (review.reviewer, review.role, review.corrections, review.settles) == (
        "anonymous",
        "reviewer",
        None,
        True,
    )
    assert review_queue(store, 10, 0) == ([], 0)
    with store.engine.begin() as conn:  # another reviewer on the same result: allowed now
        conn.execute(
            text(
                "INSERT INTO reviews (job_id, result_digest, verdict, note, created_at, "
                "reviewer) VALUES (1, :digest, 'disagree', '', :at, 'r-2')"
            ),
            {"digest": "d" * 64, "at": AT},
        )
    assert [r.reviewer for r in reviews_of(store, 1, "d" * 64)] == ["anonymous", "r-2"]
    store.dispose()
