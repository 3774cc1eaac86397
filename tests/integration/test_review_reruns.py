"""A verdict is about one result: a re-run whose different result is flagged again is back
in the review queue, the earlier verdict kept with the result it judged; a re-run that
says the same keeps its verdict. Over a real SQLite store and the API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cardiogate.review_export import export_reviews
from review_jobs import Env, calcium, review_env


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with review_env(tmp_path) as made:
        yield made


def _queue(env: Env) -> list[tuple[int, str]]:
    page = env.api.get("/api/v1/review").json()
    assert page["total"] == len(page["items"])
    return [(item["job_id"], item["result_digest"]) for item in page["items"]]


def _verdict(env: Env, job_id: int, verdict: str, **extra: Any) -> Any:
    return env.api.post(f"/api/v1/review/{job_id}", json={"verdict": verdict, **extra})


def test_a_rerun_flagged_again_is_back_with_the_earlier_verdict_kept(
    env: Env, tmp_path: Path
) -> None:
    job = env.jobs.reported("calcium", calcium(140.0))
    [(_, first)] = _queue(env)
    assert _verdict(env, job, "disagree", note="noise", result_digest=first).status_code == 200
    assert _queue(env) == []

    env.jobs.rerun(job, "calcium", calcium(140.0, (320.0, 0.5)))  # a corrected re-send
    [(listed, second)] = _queue(env)
    assert (listed, second != first) == (job, True)
    stale = _verdict(env, job, "agree", result_digest=first)
    assert stale.status_code == 409
    assert "has a new result since it was listed" in stale.json()["error"]["message"]
    agreed = _verdict(env, job, "agree", result_digest=second)
    assert agreed.status_code == 200
    assert agreed.json()["result_digest"] == second
    again = _verdict(env, job, "disagree")
    assert again.status_code == 409
    assert "already has a verdict on this result" in again.json()["error"]["message"]
    assert _queue(env) == []

    out = tmp_path / "reviews.jsonl"
    assert export_reviews(env.store, out) == 2
    earlier, later = (json.loads(line) for line in out.read_text().splitlines())
    assert (earlier["verdict"], earlier["note"], earlier["current"]) == ("disagree", "noise", False)
    assert earlier["result"] == calcium(140.0)
    assert (later["verdict"], later["current"]) == ("agree", True)
    assert later["result"] == calcium(140.0, (320.0, 0.5))


def test_a_rerun_that_says_the_same_keeps_its_verdict(env: Env) -> None:
    job = env.jobs.reported("calcium", calcium(140.0, timing=0.1))
    assert _verdict(env, job, "agree").status_code == 200
    env.jobs.rerun(job, "calcium", calcium(140.0, timing=0.7))  # only the timings differ
    assert _queue(env) == []
    assert _verdict(env, job, "disagree").status_code == 409


def test_only_a_flagged_current_result_waits(env: Env) -> None:
    job = env.jobs.reported("calcium", calcium(140.0))
    assert [j for j, _ in _queue(env)] == [job]
    assert env.jobs.queue.requeue([job]) == 1  # running again: its old result is not shown
    assert _queue(env) == []
    claimed = env.jobs.queue.claim()
    assert claimed is not None
    env.jobs.finish(job, "calcium", calcium(500.0))  # the new result is clear
    assert _queue(env) == []
    assert _verdict(env, job, "agree").status_code == 409
    env.jobs.rerun(job, "calcium", calcium((600.0, 0.4)))
    assert [j for j, _ in _queue(env)] == [job]
