"""Verdict rows on a real store (SQLite and PostgreSQL): one per result of a job (the
constraint, not just the check before the insert), the queue read through its index (on
SQLite, where the plan is checked), and rows written before the review columns existed
filled in once, by a migration."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from alembic import command
from sqlalchemy import event, insert, select, true, update
from sqlalchemy.exc import IntegrityError

from cardiogate.config import load_settings
from cardiogate.dicom.spool import Spool
from cardiogate.pipeline.worker import JobWorker
from cardiogate.store.reviews import get_review, review_queue
from cardiogate.store.schema import _config
from cardiogate.store.store import utcnow
from cardiogate.store.tables import Job, Review
from review_jobs import Env, calcium, review_env, stenosis


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> Iterator[Env]:
    with review_env(tmp_path, database_url) as made:
        yield made


@pytest.fixture
def sqlite_env(tmp_path: Path) -> Iterator[Env]:
    with review_env(tmp_path) as made:
        yield made


def _verdict_row(job_id: int, digest: str | None) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "result_digest": digest,
        "verdict": "agree",
        "note": "",
        "created_at": utcnow(),
    }


def test_one_verdict_per_result_of_a_job(env: Env) -> None:
    job = env.jobs.reported("calcium", calcium(140.0))
    digest = env.jobs.queue.get(job).result_digest  # type: ignore[union-attr]
    with env.store.engine.begin() as conn:
        conn.execute(insert(Review), _verdict_row(job, digest))
        conn.execute(insert(Review), _verdict_row(job, "e" * 64))  # another result: fine
    with pytest.raises(IntegrityError), env.store.engine.begin() as conn:
        conn.execute(insert(Review), _verdict_row(job, digest))


def test_the_queue_is_paged_through_its_index(sqlite_env: Env, tmp_path: Path) -> None:
    env = sqlite_env
    for _ in range(3):
        env.jobs.reported("calcium", calcium(140.0))
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, sql: str, params: Any, *_: Any) -> None:
        statements.append((sql, params))

    event.listen(env.store.engine, "before_cursor_execute", capture)
    waiting, total = review_queue(env.store, 2, 1)
    assert (len(waiting), total) == (2, 3)
    assert len(statements) == 2  # the count and the page
    db = sqlite3.connect(tmp_path / "cardiogate.db")
    try:
        for sql, params in statements:
            plan = " ".join(str(row[-1]) for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            assert "ix_jobs_review" in plan, plan
    finally:
        db.close()


def test_a_database_from_0004_gets_its_review_columns_filled_once(env: Env, tmp_path: Path) -> None:
    judged = env.jobs.reported("calcium", calcium(140.0))
    waiting = env.jobs.reported("stenosis", stenosis(True, 60.0))
    old_calcium = {"task": "calcium", "lesions": [{"peak_hu": 135.0, "artery": "LAD"}]}
    older = env.jobs.reported("calcium", calcium(500.0))
    with env.store.engine.begin() as conn:
        conn.execute(update(Job).where(Job.id == older).values(result=json.dumps(old_calcium)))
        conn.execute(insert(Review), {**_verdict_row(judged, None), "result": _result(env, judged)})
        conn.execute(update(Job).values(**_UNFILLED))  # as an older release left them
        command.downgrade(_config(conn), "0004_job_events")
        # nothing flagged yet (the queue itself reads columns of later revisions)
        assert conn.execute(select(Job.id).where(Job.needs_review == true())).all() == []

    env.store.create_schema()  # 0004 -> head
    queued, total = review_queue(env.store, 10, 0)
    assert total == 2
    assert [(f.job.id, f.reason) for f in queued] == [
        (older, "1 lesion(s) with a peak below 150 HU (threshold 130 HU)"),
        (waiting, "model probability 0.55 is within the review band 0.4-0.7"),
    ]
    verdict = get_review(env.store, judged, env.jobs.queue.get(judged).result_digest)  # type: ignore[union-attr]
    assert verdict is not None  # the verdict's digest was filled from the result it judged

    # Filled once: a row left unfilled now stays so through a restart's migration and a
    # worker start (neither back-fills any more).
    with env.store.engine.begin() as conn:
        conn.execute(update(Job).where(Job.id == older).values(**_UNFILLED))
    env.store.create_schema()
    settings = load_settings(data_dir=tmp_path, destinations=[])
    engine = SimpleNamespace(models={}, get=lambda task: None)
    worker = JobWorker(settings, env.store, Spool(settings.spool_dir), engine, {})  # type: ignore[arg-type]
    worker.start()
    worker.stop()
    assert env.jobs.queue.get(older).result_digest is None  # type: ignore[union-attr]
    assert [f.job.id for f in review_queue(env.store, 10, 0)[0]] == [waiting]


_UNFILLED = {"result_digest": None, "needs_review": False, "review_reason": None}


def _result(env: Env, job_id: int) -> str | None:
    job = env.jobs.queue.get(job_id)
    assert job is not None
    return job.result
