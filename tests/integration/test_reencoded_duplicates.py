"""An instance we hold, re-sent by a real SCU in another transfer syntax (re-encoded by
dcmtk), is a duplicate: success, the stored file and rows unchanged. Different content in
that syntax still replaces the older."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pydicom
import pytest
from cardiogate_phantoms import make_ct_series
from prometheus_client import REGISTRY
from pydicom.uid import UID, ExplicitVRLittleEndian, JPEGLSLossless
from reencoding import REENCODERS, data_set, reencode, send_files

from delivery_peers import calcium_ct, serve_delivering, wait_for_job
from peers import RunningSCP, ServeProcess, send, stop_serve

SUCCESS = 0x0000


def received(status: str) -> float:
    """cardiogate_instances_received_total for CT instances with ``status``."""
    value = REGISTRY.get_sample_value(
        "cardiogate_instances_received_total", {"modality": "CT", "status": status}
    )
    return value or 0.0


@pytest.mark.parametrize("syntax", list(REENCODERS), ids=lambda s: UID(s).keyword)
def test_the_same_instance_in_another_syntax_is_a_duplicate_and_changed_pixels_replace(
    scp: RunningSCP,
    tmp_path: Path,
    syntax: UID,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ds = make_ct_series(61, n_slices=1, rows=64, columns=64).datasets[0]
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert send(scp.port, [ds]) == [SUCCESS]
    row = scp.store.get_instance(ds.SOPInstanceUID)
    assert row is not None
    stored = scp.spool.absolute(row.path)
    stored_bytes, series = stored.read_bytes(), scp.store.get_series(ds.SeriesInstanceUID)
    duplicates, replaced = received("duplicate"), received("replaced")

    caplog.set_level("INFO", logger="cardiogate.dicom.ingest")
    again = reencode(ds, tmp_path / "same", syntax)
    assert send_files(scp.port, [again], syntax) == [SUCCESS]
    assert stored.read_bytes() == stored_bytes
    assert scp.store.get_instance(ds.SOPInstanceUID) == row
    assert scp.store.get_series(ds.SeriesInstanceUID) == series
    assert (received("duplicate"), received("replaced")) == (duplicates + 1, replaced)
    assert f"the same content in transfer syntax {syntax}" in caplog.text

    pixels = ds.pixel_array.copy()
    pixels[31, 17] += 1
    ds.PixelData = pixels.tobytes()
    changed = reencode(ds, tmp_path / "changed", syntax)
    assert send_files(scp.port, [changed], syntax) == [SUCCESS]
    assert data_set(stored) == data_set(changed)
    assert pydicom.dcmread(stored).file_meta.TransferSyntaxUID == syntax
    assert np.array_equal(pydicom.dcmread(stored).pixel_array, pixels)
    assert (received("duplicate"), received("replaced")) == (duplicates + 1, replaced + 1)
    assert "(decoded pixels of frame 1 differ); the newer replaced the older" in caplog.text


def test_a_changed_attribute_in_another_syntax_replaces(scp: RunningSCP, tmp_path: Path) -> None:
    ds = make_ct_series(62, n_slices=1, rows=64, columns=64).datasets[0]
    assert send(scp.port, [ds]) == [SUCCESS]
    replaced = received("replaced")
    ds.SeriesDescription = "corrected"
    changed = reencode(ds, tmp_path, JPEGLSLossless)
    assert send_files(scp.port, [changed], JPEGLSLossless) == [SUCCESS]
    row = scp.store.get_instance(ds.SOPInstanceUID)
    assert row is not None
    assert pydicom.dcmread(scp.spool.absolute(row.path)).SeriesDescription == "corrected"
    assert received("replaced") == replaced + 1


def _detail(server: ServeProcess, job_id: int) -> dict[str, Any]:
    r = httpx.get(f"{server.base_url}/api/v1/jobs/{job_id}", headers=server.auth, timeout=5)
    assert r.status_code == 200
    return dict(r.json())


@pytest.fixture
def server(tmp_path: Path, pacs: RunningSCP) -> Iterator[ServeProcess]:
    running = serve_delivering(tmp_path, "PACS", pacs.port)
    yield running
    assert stop_serve(running) == 0


@pytest.mark.slow
def test_a_reported_series_sent_again_in_another_syntax_is_not_reported_again(
    server: ServeProcess, pacs: RunningSCP, tmp_path: Path
) -> None:
    ct = calcium_ct(63)
    uid = ct[0].SeriesInstanceUID
    assert send(server.dicom_port, ct) == [SUCCESS] * len(ct)
    job = wait_for_job(server, uid, ("delivered",))
    first = _detail(server, job["id"])
    assert len(first["report_versions"]) == 1
    reports = {s.SeriesInstanceUID for s in pacs.store.series_of_study(ct[0].StudyInstanceUID)}

    again = [reencode(ds, tmp_path / "again", JPEGLSLossless) for ds in ct]
    assert send_files(server.dicom_port, again, JPEGLSLossless) == [SUCCESS] * len(ct)
    # A series sent afterwards and delivered: the worker has had every chance to run the
    # first again (a re-opened series would be complete and queued before this one).
    later = calcium_ct(64)
    assert send(server.dicom_port, later) == [SUCCESS] * len(later)
    wait_for_job(server, later[0].SeriesInstanceUID, ("delivered",))

    after = _detail(server, job["id"])
    assert after["report_versions"] == first["report_versions"]
    assert after["timeline"] == first["timeline"]
    assert after["state"] == "delivered"
    assert {s.SeriesInstanceUID for s in pacs.store.series_of_study(ct[0].StudyInstanceUID)} == (
        reports
    )
    metrics = httpx.get(server.base_url + "/metrics", timeout=5).text
    assert 'cardiogate_instances_received_total{modality="CT",status="duplicate"} 12.0' in metrics
