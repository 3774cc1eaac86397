"""kill -9 at random moments of ingest, inference and delivery (to a real Orthanc), round
after round, then: every acknowledged instance stored once, every series one delivered job,
every result object in Orthanc once.

``FAULT_ROUNDS`` (default 20) and ``FAULT_SEED`` (default 8) size and
repeat a run; ``make soak`` runs 100 rounds."""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fault_peers import Db, Pacs, SendRun, orthanc_results
from pydicom.dataset import Dataset

from cardiogate.store import Store
from delivery_peers import calcium_ct, serve_delivering, stenosis_cine
from orthanc import OrthancPeer, orthanc_peer
from peers import ServeProcess, stop_serve
from tiny_model import write_dark_spot_model, write_threshold_model

ROUNDS = int(os.environ.get("FAULT_ROUNDS", "20"))
SEED = int(os.environ.get("FAULT_SEED", "8"))
LISTENERS = os.environ.get("FAULT_LISTENERS", "1")
PHASES = ("ingest", "inference", "delivery")


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[OrthancPeer]:
    peer = orthanc_peer(tmp_path / "orthanc", {})
    peer.start()
    yield peer
    peer.stop()


def _serve(tmp_path: Path, orthanc: OrthancPeer, starts: list[float]) -> ServeProcess:
    began = time.monotonic()
    server = serve_delivering(
        tmp_path, "ORTHANC", orthanc.dicom_port, CARDIOGATE_LISTENER_PROCESSES=LISTENERS
    )
    starts.append(time.monotonic() - began)
    return server


def _at(cut: int, reached: threading.Event) -> Callable[[int], None]:
    def on_ack(acks: int) -> None:
        if acks >= cut:
            reached.set()

    return on_ack


def _wait_phase(db: Db, phase: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and phase not in db.phase():
        time.sleep(0.01)


@pytest.mark.slow
@pytest.mark.orthanc
@pytest.mark.timeout(300 + 50 * ROUNDS)
def test_kill_9_at_random_moments_loses_and_duplicates_nothing(
    tmp_path: Path, orthanc: OrthancPeer
) -> None:
    # The calcium rule sees one lesion in these phantoms (at 150 HU, 78: the SR takes 10 s)
    write_threshold_model(tmp_path / "models" / "calcium", above_hu=800)
    write_dark_spot_model(tmp_path / "models" / "stenosis")
    rng = random.Random(SEED)
    targets = [PHASES[i % len(PHASES)] for i in range(ROUNDS)]
    rng.shuffle(targets)
    pacs = Pacs()
    kills: Counter[str] = Counter()
    starts: list[float] = []
    began = time.monotonic()

    for r, target in enumerate(targets):
        pacs.studies.append(calcium_ct(100 + r) if r % 2 == 0 else stenosis_cine(500 + r))
        server = _serve(tmp_path, orthanc, starts)
        db = Db(server.data_dir)
        batch = pacs.unacknowledged()
        cut = rng.randint(1, max(1, sum(map(len, batch)) - 1))
        reached = threading.Event()
        run = SendRun(pacs, server.dicom_port, batch, _at(cut, reached))
        run.start()
        if target == "ingest":
            reached.wait(60)
            time.sleep(rng.uniform(0, 0.02))  # the next C-STORE is on its way
        else:
            run.join(60)
            _wait_phase(db, target)
            time.sleep(rng.uniform(0, 0.2 if target == "inference" else 0.03))
        mid_association = run.in_association
        stop_serve(server, kill=True)  # SIGKILL to the process group: main and listeners
        phases = db.phase() | ({"ingest"} if mid_association else set())
        kills.update(phases or {"idle"})
        run.join(30)
        assert not run.is_alive()

    # Recovery: the PACS sends what is still unacknowledged until every instance is.
    server = _serve(tmp_path, orthanc, starts)
    try:
        for _ in range(5):
            if not pacs.unacknowledged():
                break
            run = SendRun(pacs, server.dicom_port, pacs.unacknowledged(), lambda n: None)
            run.start()
            run.join(120)
        assert pacs.unacknowledged() == []
        series = {s[0].SeriesInstanceUID: s for s in pacs.studies}
        db = Db(server.data_dir)
        print(
            f"\nkill loop: {ROUNDS} rounds (seed {SEED}) in {time.monotonic() - began:.0f} s; "
            f"kills while {dict(sorted(kills.items()))}; service start {min(starts):.1f}-"
            f"{max(starts):.1f} s (median {sorted(starts)[len(starts) // 2]:.1f}); "
            f"instances acknowledged {len(pacs.acknowledged)}, C-STOREs "
            f"{sum(pacs.attempts.values())}, resends {pacs.resends}"
        )
        _wait_quiet(db, set(series), timeout=60 + 10 * ROUNDS)  # calcium jobs: 2-15 s each
    finally:
        assert stop_serve(server) == 0, server.log()

    loop_seconds = time.monotonic() - began
    jobs = _check_spool_and_jobs(server.data_dir, pacs, series)
    objects = _check_orthanc(orthanc, db, pacs, jobs)
    print(
        f"kill loop, at quiescence after {loop_seconds:.0f} s: series {len(series)}, jobs "
        f"delivered {len(jobs)}, report versions {objects['versions']}; result objects in "
        f"Orthanc {objects['in_orthanc']} (of the current versions {objects['current']})"
    )
    # The loop did what it claims: kills landed in each phase.
    for phase in PHASES:
        assert kills[phase] >= ROUNDS // 10, kills


def _wait_quiet(db: Db, series: set[str], timeout: float) -> None:
    """Every series complete, its job delivered and nothing pending, twice 1 s apart."""
    deadline = time.monotonic() + timeout
    marks = ",".join("?" * len(series))
    settled = 0
    while time.monotonic() < deadline and settled < 2:
        done = db.count(
            f"SELECT count(*) FROM series JOIN jobs USING (series_instance_uid) WHERE "
            f"series.state = 'complete' AND jobs.state = 'delivered' AND "
            f"series_instance_uid IN ({marks})",
            *series,
        )
        busy = db.count("SELECT count(*) FROM outbox WHERE state != 'sent'")
        settled = settled + 1 if done == len(series) and busy == 0 else 0
        time.sleep(1)
    assert settled == 2, [
        dict(r)
        for r in db.rows(
            "SELECT jobs.id, series.state AS series, jobs.state, jobs.reason FROM series "
            "LEFT JOIN jobs USING (series_instance_uid)"
        )
    ] + [dict(r) for r in db.rows("SELECT job_id, state, attempts, last_error FROM outbox")]


def _check_spool_and_jobs(
    data_dir: Path, pacs: Pacs, series: dict[str, list[Dataset]]
) -> dict[int, str]:
    """Every acknowledged instance is one row and one file; every series one delivered job
    with a result. Returns job id -> series."""
    spool = data_dir / "spool"
    files = Counter(p.name for p in spool.rglob("*.dcm"))
    assert files == Counter(f"{uid}.dcm" for uid in pacs.acknowledged)
    db = Db(data_dir)
    rows = db.rows("SELECT sop_instance_uid, series_instance_uid, path FROM instances")
    assert sorted(r["sop_instance_uid"] for r in rows) == sorted(pacs.acknowledged)
    for row in rows:
        assert (spool / row["path"]).is_file()
    by_series = Counter(r["series_instance_uid"] for r in rows)
    assert by_series == {uid: len(s) for uid, s in series.items()}
    assert list((spool / ".tmp").iterdir()) == []

    jobs = db.rows("SELECT id, series_instance_uid, state, result FROM jobs")
    assert sorted(j["series_instance_uid"] for j in jobs) == sorted(series)
    for job in jobs:
        assert job["state"] == "delivered", dict(job)
        assert job["result"]
    return {j["id"]: j["series_instance_uid"] for j in jobs}


def _check_orthanc(
    orthanc: OrthancPeer, db: Db, pacs: Pacs, jobs: dict[int, str]
) -> dict[str, int]:
    """One report version per distinct input; the current version's objects all in
    Orthanc; no SR that no version names; per study, no more objects of a kind than
    versions (an object sent twice under two UIDs would exceed it)."""
    sources = {ds.SOPInstanceUID for s in pacs.studies for ds in s}
    held = orthanc_results(orthanc, sources)
    assert len({o.sop_instance_uid for o in held}) == len(held)
    versions = db.rows("SELECT job_id, input_digest, sr_sop_instance_uid FROM report_versions")
    outbox = db.rows("SELECT job_id, sop_instance_uid, state FROM outbox")
    reopened = {
        r["series_instance_uid"]: r["reopened_count"]
        for r in db.rows("SELECT series_instance_uid, reopened_count FROM series")
    }
    store = Store(f"sqlite:///{db.path}")
    try:
        for job_id, series in jobs.items():
            digests = [v["input_digest"] for v in versions if v["job_id"] == job_id]
            assert len(set(digests)) == len(digests), f"a rebuild of job {job_id} made a version"
            assert 1 <= len(digests) <= 1 + reopened[series]
            assert store.input_digest(series) in digests
    finally:
        store.dispose()
    assert {r["state"] for r in outbox} == {"sent"}
    held_uids = {o.sop_instance_uid for o in held}
    assert {r["sop_instance_uid"] for r in outbox} <= held_uids
    assert {o.sop_instance_uid for o in held if o.modality == "SR"} <= {
        v["sr_sop_instance_uid"] for v in versions
    }
    study_of_job = {
        j["id"]: j["study_instance_uid"] for j in db.rows("SELECT id, study_instance_uid FROM jobs")
    }
    versions_by_study = Counter(study_of_job[v["job_id"]] for v in versions)
    kinds = Counter((o.study_instance_uid, o.modality) for o in held if o.modality != "OT")
    for (study, modality), n in kinds.items():
        assert n <= versions_by_study[study], (study, modality, n)
    # Key images (one per artery) and summary pages are Secondary Captures, several per
    # version: each has its own series and instance number, so one sent twice under two
    # UIDs would hold one place twice.
    places = Counter((o.study_instance_uid, o.slot) for o in held if o.modality == "OT")
    assert all(n == 1 for n in places.values()), places
    return {"versions": len(versions), "in_orthanc": len(held), "current": len(outbox)}
