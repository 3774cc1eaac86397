"""The issue's acceptance: Orthanc sends a study to cardiogate with its own C-STORE SCU and
gets the SR, SEG and key images back in the same study; during an Orthanc outage the
results wait in the outbox, survive a restart of cardiogate, and arrive exactly once."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import highdicom as hd
import httpx
import pytest

from cardiogate.reports.codes import CALCIUM_SCORE, CORONARY_ARTERY
from delivery_peers import calcium_ct, outbox_rows, serve_delivering, stenosis_cine, wait_for_job
from orthanc import OrthancPeer, orthanc_peer
from peers import ServeProcess, send, stop_serve


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[OrthancPeer]:
    peer = orthanc_peer(tmp_path / "orthanc", {})
    yield peer
    peer.stop()


def _stop(server: ServeProcess) -> None:
    try:
        assert stop_serve(server) == 0
    except subprocess.TimeoutExpired:
        stop_serve(server, kill=True)
        raise


def _sr_total(orthanc: OrthancPeer, instance_id: str, folder: Path) -> float:
    path = folder / f"{instance_id}.dcm"
    path.write_bytes(orthanc.get(f"/instances/{instance_id}/file"))
    sr = hd.sr.srread(path)
    for group in sr.content.get_planar_roi_measurement_groups():
        if group.finding_sites[0].value == CORONARY_ARTERY:
            [score] = group.get_measurements(name=CALCIUM_SCORE)
            return float(score.value)
    raise AssertionError("the SR has no total calcium score")


def test_orthanc_sends_a_study_and_gets_the_results_back(
    tmp_path: Path, orthanc: OrthancPeer
) -> None:
    server = serve_delivering(tmp_path, "ORTHANC", orthanc.dicom_port)
    try:
        orthanc.modalities = {"cardiogate": ["CARDIOGATE", "127.0.0.1", server.dicom_port]}
        orthanc.start()
        ct, xa = calcium_ct(), stenosis_cine()
        ct_ids, xa_ids = orthanc.upload(ct), orthanc.upload(xa)
        orthanc.store_to("cardiogate", [ct_ids["series"], xa_ids["series"]])

        ct_job = wait_for_job(server, ct[0].SeriesInstanceUID, ("delivered", "failed"))
        xa_job = wait_for_job(server, xa[0].SeriesInstanceUID, ("delivered", "failed"))
        assert (ct_job["state"], xa_job["state"]) == ("delivered", "delivered")
    finally:
        _stop(server)

    calcium = orthanc.instances_by_modality(ct_ids["study"])
    assert len(calcium["CT"]) == len(ct)
    assert len(calcium["SEG"]) == 1
    assert len(calcium["SR"]) == 1
    captures = [m for m in calcium if m not in ("CT", "SEG", "SR")]
    assert captures == ["OT"], calcium  # key image(s) and the summary page
    assert len(calcium["OT"]) >= 2, calcium
    total = _sr_total(orthanc, calcium["SR"][0], tmp_path)
    assert total == pytest.approx(ct_job["result"]["agatston"]["total"])
    assert total > 0

    stenosis = orthanc.instances_by_modality(xa_ids["study"])
    assert len(stenosis["XA"]) == len(xa)
    assert len(stenosis["SR"]) == 1
    # the SR, a key image and the summary page
    assert sum(len(v) for v in stenosis.values()) == len(xa) + 3
    tags = orthanc.get(f"/instances/{stenosis['SR'][0]}/tags?simplify")
    assert tags["StudyInstanceUID"] == xa[0].StudyInstanceUID


def test_an_outage_delays_delivery_and_nothing_arrives_twice(
    tmp_path: Path, orthanc: OrthancPeer
) -> None:
    ct = calcium_ct(61)
    server = serve_delivering(tmp_path, "ORTHANC", orthanc.dicom_port)
    try:  # Orthanc is down: the job is reported and its objects wait, retried
        assert send(server.dicom_port, ct) == [0] * len(ct)
        job = wait_for_job(server, ct[0].SeriesInstanceUID, ("reported", "failed"))
        assert job["state"] == "reported"
        wait_for_job(server, ct[0].SeriesInstanceUID, ("reported",), timeout=5)
        _wait_attempts(server)
    finally:
        _stop(server)

    server = serve_delivering(tmp_path, "ORTHANC", orthanc.dicom_port)  # restart, still down
    try:
        rows = outbox_rows(server)
        assert {r["state"] for r in rows} == {"pending"}
        orthanc.start()
        job = wait_for_job(server, ct[0].SeriesInstanceUID, ("delivered",))
        study = orthanc.study_of(ct[0].StudyInstanceUID)
        assert study is not None
        count = len(orthanc.get(f"/studies/{study}/instances"))
        assert count == len(rows) == 4  # SEG, SR, key image and summary page, each once

        # the same study again: duplicates of what is stored, so nothing runs and nothing
        # new reaches Orthanc
        assert send(server.dicom_port, ct) == [0] * len(ct)
        time.sleep(3)  # longer than the quiet period: a re-opened series would be complete
        again = wait_for_job(server, ct[0].SeriesInstanceUID, ("delivered",))
        assert again["finished_at"] == job["finished_at"]
        assert len(orthanc.get(f"/studies/{study}/instances")) == count

        # changed instances (as after a correction at the modality): the series re-opens, the
        # job runs again and its report is a new version that names the first SR
        for ds in ct:
            ds.ImageComments = "corrected and sent again"
        assert send(server.dicom_port, ct) == [0] * len(ct)
        series = ct[0].SeriesInstanceUID
        wait_for_job(server, series, ("delivered",), finished_after=job["finished_at"])
        assert len(orthanc.get(f"/studies/{study}/instances")) == 2 * count
        srs = [
            orthanc.get(f"/instances/{i}/tags?simplify")
            for i in orthanc.instances_by_modality(study)["SR"]
        ]
        assert len(srs) == 2
        [newer] = [t for t in srs if "PredecessorDocumentsSequence" in t]
        [older] = [t for t in srs if t is not newer]
        assert older["SOPInstanceUID"] in json.dumps(newer["PredecessorDocumentsSequence"])
        metrics = httpx.get(server.base_url + "/metrics", timeout=5).text
        assert "cardiogate_delivery_oldest_pending_seconds 0.0" in metrics
    finally:
        _stop(server)


def _wait_attempts(server: ServeProcess, timeout: float = 10) -> None:
    """Every outbox row pending and tried at least twice (the retries back off)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = outbox_rows(server)
        if rows and all(r["state"] == "pending" and r["attempts"] >= 2 for r in rows):
            return
        time.sleep(0.2)
    pytest.fail(f"outbox rows not retried: {outbox_rows(server)}")
