"""The status page's shadow mode section: each task's serving and candidate models, their
runs, agreement and the jobs they disagreed on; absent without a candidate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cardiogate.api import create_api
from cardiogate.learning.shadow import record_shadow
from cardiogate.tasks import configure_tasks
from review_jobs import Env, FakeHealth, calcium, review_env


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with review_env(tmp_path) as made:
        yield made


def _run(env: Env, serving: float, candidate: float) -> int:
    results = [{**calcium(300.0), "agatston": {"total": t, "LAD": t}} for t in (serving, candidate)]
    job_id = env.jobs.reported("calcium", results[0])
    comparison = configure_tasks()["calcium"].compare(*results)
    model = ("calcium-candidate", "2.1.0")
    record_shadow(env.store, job_id, "calcium", model, json.dumps(results[1]), comparison)
    return job_id


def test_without_a_candidate_the_page_has_no_shadow_section(env: Env) -> None:
    page = TestClient(create_api(env.store, FakeHealth())).get("/")
    assert page.status_code == 200
    assert 'id="shadow"' not in page.text


def test_the_page_shows_serving_beside_the_candidate(env: Env) -> None:
    _run(env, 50.0, 55.0)
    disagreed = _run(env, 50.0, 150.0)
    page = TestClient(create_api(env.store, FakeHealth())).get("/")
    assert page.status_code == 200
    section = page.text.split('<section id="shadow">')[1].split("</section>")[0]
    assert "<h2>Shadow mode</h2>" in section
    assert '<tr data-task="calcium"><td>calcium</td><td>none</td>' in section
    assert "calcium-candidate 2.1.0" in section
    assert "(not loaded)" in section
    assert '<td class="agreement">50%</td>' in section
    assert f'<a href="/api/v1/jobs/{disagreed}/shadow">{disagreed}</a>' in section
    assert "never sent" in section
