"""The learning loop end to end on a running service, as docs/learning-loop.md walks it:
flagged family-B CTs -> three simulated reviewers each (errors drawn from the phantom
truth) -> fusion -> ``review export --dataset`` -> a fine-tuned candidate
(``finetune_from_reviews.py``, the committed training code, in its own process) -> shadow
mode on held-out scans -> ``models promote`` -> ``models rollback``.

What it asserts is what each user of the loop cares about: the fused labels are right more
often than any one reviewer; the candidate's card names its parent and the reviewed series;
on held-out scans of the family the flagged cases came from, the candidate counts fewer
non-coronary lesions than the serving model, and the shadow comparison shows that before
anything is promoted, while the PACS receives only the serving model's objects; promotion
and rollback change the model that signs the next result, and the API, the status page and
the metrics show every step."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from cardiogate_phantoms.family_b import make_ct_series_b
from cardiogate_phantoms.reviewers import fused_corrections, review_accuracy, simulate_review
from sqlalchemy import func, select

from cardiogate.store.tables import Instance
from delivery_peers import serve_delivering, wait_for_job
from peers import RunningSCP, ServeProcess, send, stop_serve

pytest.importorskip("torch", reason="the fine-tune step needs the train extra (PyTorch)")

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TRAINING = REPO / "models" / "training"
REVIEWERS = ("sim-1", "sim-2", "sim-3")
ERROR_RATE = 0.2
# cgtrain.families: family B's calcium training seeds start at 300 000, its held-out test
# seeds at 950 000 (the candidate card's own evaluation takes the first ones)
REVIEWED_SEEDS = range(300_000, 300_010)
SHADOW_SEEDS = range(950_040, 950_044)
PROMOTED_SEED, ROLLED_BACK_SEED = 950_050, 950_051
SLICES = 40


def _series(seed: int) -> Any:
    """A family-B calcium-scoring scan as a PACS would route it: 2.5 mm slices (the task
    takes 2-3.5 mm), the rest (body, kernel, noise, confounders) drawn from the seed."""
    return make_ct_series_b(seed, n_slices=SLICES, slice_thickness_mm=2.5)


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        "CARDIOGATE_REVIEW_REQUIRED": str(len(REVIEWERS)),
        "CARDIOGATE_REVIEW_ADJUDICATORS": json.dumps(["adj-1"]),
        "CARDIOGATE_WORKER_THREADS": "1",
    }


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CARDIOGATE_DATA_DIR": str(tmp_path / "data"),
        "CARDIOGATE_MODELS_DIR": str(tmp_path / "models"),
    }
    return subprocess.run(
        [sys.executable, "-m", "cardiogate", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _get(server: ServeProcess, path: str, **params: Any) -> Any:
    r = httpx.get(f"{server.base_url}{path}", headers=server.auth, params=params, timeout=20)
    assert r.status_code == 200, r.text
    return r.json() if "json" in r.headers.get("content-type", "") else r.text


def _review(server: ServeProcess, job_id: int, reviewer: str, body: dict[str, Any]) -> Any:
    r = httpx.post(
        f"{server.base_url}/api/v1/review/{job_id}",
        json=body,
        headers={**server.auth, "X-Cardiogate-Reviewer": reviewer},
        timeout=20,
    )
    assert r.status_code == 200, r.text
    return r.json()


def _shadow_run(server: ServeProcess, job_id: int, timeout: float = 120) -> Any:
    """The candidate's run on a job (it runs after the job is reported)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = _get(server, f"/api/v1/jobs/{job_id}/shadow")["runs"]
        if runs:
            [run] = runs
            return run
        time.sleep(0.5)
    pytest.fail(f"no shadow run of job {job_id} after {timeout:.0f} s")


def _false_lesions(phantom: Any, result: dict[str, Any]) -> int:
    """Lesions a result counts that the phantom's truth says are not coronary calcium."""
    truth = simulate_review(phantom, result, 0.0, np.random.default_rng(0))
    return sum(c["artery"] == "none" for c in truth["lesions"])


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def loop_dir(tmp_path: Path) -> Iterator[Path]:
    shutil.copytree(REPO / "models" / "calcium", tmp_path / "models" / "calcium")
    return tmp_path


def _start(tmp_path: Path, pacs: RunningSCP) -> ServeProcess:
    return serve_delivering(tmp_path, "PACS", pacs.port, **_env(tmp_path))


def _analysed(server: ServeProcess, seeds: range) -> dict[int, tuple[Any, dict[str, Any]]]:
    """Send each seed's scan; its job (delivered) and the phantom, by job id."""
    out = {}
    for seed in seeds:
        series = _series(seed)
        assert send(server.dicom_port, series.datasets) == [0] * len(series.datasets)
        job = wait_for_job(
            server, series.datasets[0].SeriesInstanceUID, ("delivered", "failed"), timeout=180
        )
        assert job["state"] == "delivered", job["reason"]
        study = series.datasets[0].StudyInstanceUID
        [job] = [
            j
            for j in _get(server, f"/api/v1/studies/{study}/results")["jobs"]
            if j["SeriesInstanceUID"] == series.datasets[0].SeriesInstanceUID
        ]
        out[job["job_id"]] = (series.phantom, job)
    return out


def test_reviews_become_a_candidate_proven_in_shadow_then_promoted_and_rolled_back(
    loop_dir: Path, pacs: RunningSCP
) -> None:
    tmp_path = loop_dir
    parent = json.loads((tmp_path / "models" / "calcium" / "card.json").read_text())
    rng = np.random.default_rng(20)

    # 1. Family-B scans arrive; the strategy queues them (unlike the training data).
    server = _start(tmp_path, pacs)
    try:
        arrived = _analysed(server, REVIEWED_SEEDS)
        queue = _get(server, "/api/v1/review", limit=100)
        assert {item["settled"] for item in queue["items"]} == {False}
        reviewed = {item["job_id"]: arrived[item["job_id"]] for item in queue["items"]}
        assert len(reviewed) >= len(REVIEWED_SEEDS) // 2, "most family-B scans are queued"

        # 2. Three reviewers each; fusion is right more often than any one of them.
        right = dict.fromkeys((*REVIEWERS, "fused"), 0)
        items = 0
        for job_id, (phantom, job) in reviewed.items():
            result = job["result"]
            for reviewer in REVIEWERS:
                body = simulate_review(phantom, result, ERROR_RATE, rng)
                n_right, n = review_accuracy(phantom, result, body)
                right[reviewer] += n_right
                _review(
                    server,
                    job_id,
                    reviewer,
                    {"verdict": "disagree", "note": "simulated", "corrections": body},
                )
            case = _get(server, f"/api/v1/review/{job_id}")
            n_right, n = review_accuracy(phantom, result, fused_corrections(case["fused"]))
            right["fused"] += n_right
            items += n
            assert case["agreement"]["reviewers"] == len(REVIEWERS)
            if not case["settled"]:  # a three-way split: the adjudicator decides
                truth = simulate_review(phantom, result, 0.0, rng)
                body = {"verdict": "disagree", "role": "adjudicator", "corrections": truth}
                assert _review(server, job_id, "adj-1", body)["settled"] is True
        accuracy = {who: n / items for who, n in right.items()}
        best_single = max(accuracy[r] for r in REVIEWERS)
        # (an item the three leave unresolved counts as wrong: the adjudicator settles it)
        assert accuracy["fused"] >= best_single + 0.05, accuracy
        assert _get(server, "/api/v1/review")["total"] == 0

        page = _get(server, "/")
        assert f"{len(reviewed)} result(s) settled by reviewers" in page
        agreement = _get(server, "/api/v1/review/agreement")
        assert agreement["cases"] == len(reviewed)
        assert {r["reviewer"] for r in agreement["per_reviewer"]} >= set(REVIEWERS)
        metrics = _get(server, "/metrics")
        assert _metric(metrics, "cardiogate_review_settled_total", task="calcium") == len(reviewed)
        assert _metric(metrics, "cardiogate_review_yield_ratio", task="calcium") > 0
    finally:
        assert stop_serve(server) == 0

    # 3. The fused labels and the series, exported for training.
    dataset = tmp_path / "dataset"
    done = _cli(
        tmp_path, "review", "export", str(tmp_path / "reviews.jsonl"), "--dataset", str(dataset)
    )
    assert done.returncode == 0, done.stderr
    manifest = [json.loads(line) for line in (dataset / "manifest.jsonl").read_text().splitlines()]
    reviewed_uids = {job["SeriesInstanceUID"] for _, job in reviewed.values()}
    assert {case["SeriesInstanceUID"] for case in manifest} == reviewed_uids

    # 4. A candidate fine-tuned by the committed training code, outside the service.
    candidate_dir = tmp_path / "models" / "candidates" / "calcium"
    finetune = subprocess.run(
        [
            sys.executable,
            str(TRAINING / "finetune_from_reviews.py"),
            "--model",
            str(tmp_path / "models" / "calcium"),
            "--dataset",
            str(dataset),
            "--out",
            str(candidate_dir),
            "--heldout",
            "a:3,b:3",
        ],
        env={**os.environ, "PYTHONPATH": f"{TRAINING}{os.pathsep}{REPO / 'service'}"},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert finetune.returncode == 0, finetune.stdout[-3000:] + finetune.stderr[-3000:]
    card = json.loads((candidate_dir / "card.json").read_text())
    lineage = card["training"]
    assert lineage["parent"]["version"] == parent["version"]
    assert lineage["parent"]["sha256"] == parent["sha256"]
    assert set(lineage["reviewed_cases"]) == reviewed_uids
    assert card["version"] != parent["version"]
    assert "not for clinical use" in card["clinical_use"]

    # 5. Shadow mode on held-out family-B scans: compared, stored, never sent.
    server = _start(tmp_path, pacs)
    try:
        shadow_jobs = _analysed(server, SHADOW_SEEDS)
        runs = {job_id: _shadow_run(server, job_id) for job_id in shadow_jobs}
        overview = {t["task"]: t for t in _get(server, "/api/v1/shadow")["tasks"]}["calcium"]
        assert overview["serving"]["version"] == parent["version"]
        assert (overview["candidate"]["version"], overview["candidate_loaded"]) == (
            card["version"],
            True,
        )
        assert overview["runs"] == len(SHADOW_SEEDS)
        serving_false = candidate_false = 0
        for job_id, (phantom, job) in shadow_jobs.items():
            run = runs[job_id]
            assert run["model_version"] == card["version"]
            serving_false += _false_lesions(phantom, job["result"])
            candidate_false += _false_lesions(phantom, run["result"])
            for obj in job["objects"]:  # the serving model's objects reach the PACS
                assert pacs.store.get_instance(obj["SOPInstanceUID"]) is not None
        print(
            f"reviewer accuracy {accuracy}; non-coronary lesions counted on {len(runs)} "
            f"held-out scans: serving {serving_false}, candidate {candidate_false}"
        )
        assert candidate_false < serving_false, (candidate_false, serving_false)
        with pacs.store.transaction() as conn:
            in_pacs = conn.execute(select(func.count()).select_from(Instance)).scalar_one()
        sent = sum(len(job["objects"]) for _, job in (*arrived.values(), *shadow_jobs.values()))
        assert in_pacs == sent  # nothing from the candidate
        page = _get(server, "/")
        assert "Shadow mode" in page
        assert card["version"] in page
        metrics = _get(server, "/metrics")
        assert _metric(metrics, "cardiogate_shadow_runs_total", task="calcium") == len(SHADOW_SEEDS)
    finally:
        assert stop_serve(server) == 0

    # 6. Promotion: the candidate signs the next result; rollback: the parent again.
    for action, version in (("promote", card["version"]), ("rollback", parent["version"])):
        done = _cli(tmp_path, "models", action, "calcium", "--by", "lead-1")
        assert done.returncode == 0, done.stderr
        assert "restart" in done.stdout
        server = _start(tmp_path, pacs)
        try:
            seed = PROMOTED_SEED if action == "promote" else ROLLED_BACK_SEED
            [(_, job)] = _analysed(server, range(seed, seed + 1)).values()
            assert job["model_version"] == version
            history = {t["task"]: t for t in _get(server, "/api/v1/shadow")["tasks"]}
            assert history["calcium"]["promotions"][-1]["action"] == action
            assert history["calcium"]["promotions"][-1]["by"] == "lead-1"
            page = _get(server, "/")
            assert "Model changes" in page
            assert f"{action}</td>" in page
            metrics = _get(server, "/metrics")
            assert _metric(metrics, "cardiogate_model_promotions_total", action=action) == 1
        finally:
            assert stop_serve(server) == 0
