"""Two ``cardiogate serve`` replicas on one real PostgreSQL database: they receive studies
concurrently and every job runs, is reported and is delivered exactly once; a replica
killed mid-job leaves no job stranded and none reported twice (its own restart takes the
job back, or with a shared data directory the other replica takes it over when its lease
expires); the API of either replica shows every study."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cardiogate_phantoms import make_ct_series
from pydicom.dataset import Dataset

from peers import ServeProcess, free_port, send, stop_serve
from postgres import PostgresCluster
from replica_peers import Database, counting_scp, serve_replica, write_slow_model
from tiny_model import write_threshold_model

pytestmark = pytest.mark.slow


def _ct(seed: int, size: int = 64, slices: int = 12) -> list[Dataset]:
    return make_ct_series(
        seed, n_slices=slices, rows=size, columns=size, pixel_spacing_mm=6.0
    ).datasets


@pytest.fixture
def db(postgres: PostgresCluster) -> Iterator[Database]:
    database = Database(postgres.new_database())
    yield database
    database.dispose()


def _stop(*servers: ServeProcess) -> None:
    for server in servers:
        try:
            stop_serve(server)
        except Exception:
            stop_serve(server, kill=True)


def _reported_lines(*servers: ServeProcess) -> int:
    return sum(s.log().count(" reported in ") for s in servers)


def _check_delivered_once(db: Database, received: Counter[str]) -> None:
    """Every job has one report version; every outbox row is unique, sent, owned by the
    replica that ran the job; the PACS got each object once."""
    jobs = {j["id"]: j for j in db.rows("SELECT * FROM jobs")}
    versions = Counter(r["job_id"] for r in db.rows("SELECT job_id FROM report_versions"))
    assert versions == Counter(dict.fromkeys(jobs, 1))
    outbox = db.rows("SELECT * FROM outbox")
    keys = [(r["job_id"], r["destination"], r["sop_instance_uid"]) for r in outbox]
    assert len(keys) == len(set(keys)) >= 2 * len(jobs)
    for row in outbox:
        assert (row["state"], row["replica_id"]) == ("sent", jobs[row["job_id"]]["claimed_by"])
    assert received == Counter(r["sop_instance_uid"] for r in outbox)
    assert set(received.values()) == {1}


def test_two_replicas_receive_concurrently_and_each_job_runs_once(
    tmp_path: Path, postgres: PostgresCluster, db: Database
) -> None:
    write_threshold_model(tmp_path / "models" / "calcium")
    url = db.url
    with counting_scp(free_port()) as pacs:
        a = serve_replica(tmp_path, "a", url, pacs.port)
        b = serve_replica(tmp_path, "b", url, pacs.port)
        try:
            sent = {"a": [_ct(60 + i) for i in range(3)], "b": [_ct(70 + i) for i in range(3)]}
            statuses: list[int] = []

            def push(server: ServeProcess, studies: list[list[Dataset]]) -> None:
                for series in studies:
                    statuses.extend(send(server.dicom_port, series))

            pushers = [
                threading.Thread(target=push, args=(a, sent["a"])),
                threading.Thread(target=push, args=(b, sent["b"])),
            ]
            for t in pushers:
                t.start()
            for t in pushers:
                t.join(120)
            assert statuses == [0] * 72

            for replica, studies in sent.items():
                for series in studies:
                    job = db.wait_job(series[0].SeriesInstanceUID, ("delivered", "failed"))
                    assert job["state"] == "delivered", job["reason"]
                    # run where its instances are spooled, claimed once
                    assert (job["replica_id"], job["claimed_by"], job["attempts"]) == (
                        replica,
                        replica,
                        1,
                    )
            _check_delivered_once(db, pacs.received)
            assert _reported_lines(a, b) == 6

            every_study = {s[0].StudyInstanceUID for studies in sent.values() for s in studies}
            for server in (a, b):
                page = httpx.get(
                    f"{server.base_url}/api/v1/studies", headers=server.auth, timeout=5
                ).json()
                assert {s["StudyInstanceUID"] for s in page["items"]} == every_study
        finally:
            _stop(a, b)


def _kill_mid_job(
    db: Database, replicas: dict[str, ServeProcess], series: list[Dataset]
) -> dict[str, Any]:
    """Send a slow series to the first replica and SIGKILL the replica that claimed its
    job while the job is running; returns the job's row after the kill."""
    first = next(iter(replicas.values()))
    assert send(first.dicom_port, series) == [0] * len(series)
    running = db.wait_job(series[0].SeriesInstanceUID, ("running", "reported", "delivered"))
    assert running["state"] == "running"
    stop_serve(replicas[running["claimed_by"]], kill=True)
    killed = db.job(series[0].SeriesInstanceUID)
    assert killed is not None
    assert killed["state"] == "running", "the kill did not land mid-job"
    assert db.reopened(series[0].SeriesInstanceUID) == 0, "completed mid-send: raise quiet"
    return killed


def test_a_replica_killed_mid_job_takes_its_job_back_on_restart(
    tmp_path: Path, postgres: PostgresCluster, db: Database
) -> None:
    write_slow_model(tmp_path / "models" / "calcium")
    url = db.url
    slow = _ct(80, size=96, slices=16)
    uid = slow[0].SeriesInstanceUID
    with counting_scp(free_port()) as pacs:
        a = serve_replica(tmp_path, "a", url, pacs.port)
        b = serve_replica(tmp_path, "b", url, pacs.port)
        try:
            killed = _kill_mid_job(db, {"a": a, "b": b}, slow)
            assert killed["claimed_by"] == "a"  # a's spool has the series: only a runs it
            time.sleep(5)  # the 3 s lease expires; b must leave the job (a's spool has it)
            assert db.job(uid) == killed

            restarted = serve_replica(tmp_path, "a", url, pacs.port)  # same id and data
            job = db.wait_job(uid, ("delivered", "failed"))
            assert (job["state"], job["claimed_by"], job["attempts"]) == ("delivered", "a", 2)
            _check_delivered_once(db, pacs.received)
            assert _reported_lines(a, restarted, b) == 1
        finally:
            _stop(a, b)
            if "restarted" in locals():
                _stop(restarted)


def test_with_a_shared_data_directory_the_other_replica_takes_over_after_the_lease(
    tmp_path: Path, postgres: PostgresCluster, db: Database
) -> None:
    write_slow_model(tmp_path / "models" / "calcium")
    url = db.url
    slow = _ct(81, size=96, slices=16)
    shared = tmp_path / "shared"
    with counting_scp(free_port()) as pacs:
        a = serve_replica(tmp_path, "a", url, pacs.port, shared, CARDIOGATE_SPOOL_SHARED="true")
        b = serve_replica(tmp_path, "b", url, pacs.port, shared, CARDIOGATE_SPOOL_SHARED="true")
        try:
            killed = _kill_mid_job(db, {"a": a, "b": b}, slow)  # either may have claimed it
            survivor = "b" if killed["claimed_by"] == "a" else "a"
            job = db.wait_job(slow[0].SeriesInstanceUID, ("delivered", "failed"))
            assert (job["state"], job["claimed_by"], job["attempts"]) == ("delivered", survivor, 2)
            assert job["started_at"] >= killed["claim_expires_at"]  # taken over after the lease
            _check_delivered_once(db, pacs.received)
            assert _reported_lines(a, b) == 1
            # The operator sees the take-over in the job API of the replica that is left.
            left = {"a": a, "b": b}[survivor]
            shown = httpx.get(
                f"{left.base_url}/api/v1/jobs/{job['id']}", headers=left.auth, timeout=5
            ).json()
            assert (shown["claimed_by"], shown["attempts"]) == (survivor, 2)
        finally:
            _stop(a, b)
