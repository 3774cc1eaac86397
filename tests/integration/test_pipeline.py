"""Series in over C-STORE, jobs out: routed, run on a real ONNX session, reported, ignored
or failed with a reason, and the service goes on. (The fixed-rule model checks the
plumbing; the trained model's agreement with ground truth is checked in its own tests.)"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cardiogate_phantoms import make_ct_series
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import RLELossless

from peers import ServeProcess, send, start_serve, stop_serve
from tiny_model import threshold_rule_scores, write_threshold_model

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


def _ct(seed: int, **kwargs: Any) -> list[Dataset]:
    return make_ct_series(
        seed, n_slices=12, rows=64, columns=64, pixel_spacing_mm=6.0, **kwargs
    ).datasets


def _job(server: ServeProcess, series_uid: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(
            f"{server.base_url}/api/v1/series/{series_uid}", headers=server.auth, timeout=5
        )
        if r.status_code == 401:
            pytest.fail("the API refused the service's own token")
        if r.status_code == 200:
            job = r.json()["job"]
            if job and job["state"] in ("reported", "failed", "ignored"):
                return dict(job)
        time.sleep(0.2)
    pytest.fail(f"no finished job for series {series_uid}:\n{server.log()}")


@pytest.fixture
def server(tmp_path: Path) -> Any:
    write_threshold_model(tmp_path / "models" / "calcium")
    running = start_serve(
        tmp_path / "data",
        env={"CARDIOGATE_MODELS_DIR": str(tmp_path / "models"), "CARDIOGATE_QUIET_SECONDS": "1"},
    )
    yield running
    assert stop_serve(running) == 0


def test_series_are_reported_ignored_or_failed_with_reasons(server: ServeProcess) -> None:
    calcium = _ct(51)
    contrast = _ct(52, contrast=True)
    mr = _ct(53)
    for ds in mr:
        ds.Modality, ds.SOPClassUID = "MR", MR_IMAGE_STORAGE
        ds.file_meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
    corrupt = _ct(54)
    corrupt[5].compress(RLELossless)  # well-formed encapsulation, undecodable fragment:
    corrupt[5].PixelData = encapsulate([b"\x01" + b"\x00" * 63 + b"not RLE at all!!"])
    for series in (calcium, contrast, mr, corrupt):
        assert send(server.dicom_port, series) == [0] * len(series)

    job = _job(server, calcium[0].SeriesInstanceUID)
    assert (job["state"], job["task"], job["provider"]) == (
        "reported",
        "calcium",
        "CPUExecutionProvider",
    )
    expected = threshold_rule_scores(calcium, artery=2, above_hu=150)
    assert job["result"]["agatston"]["LAD"] == pytest.approx(expected.agatston["LAD"], abs=0.01)
    assert job["result"]["agatston"]["total"] > 0

    assert _job(server, contrast[0].SeriesInstanceUID)["reason"] == (
        "not scored: contrast-enhanced (ContrastBolusAgent is set)"
    )
    assert _job(server, mr[0].SeriesInstanceUID)["reason"] == "modality MR is not analysed"
    failed = _job(server, corrupt[0].SeriesInstanceUID)
    assert failed["state"] == "failed"
    assert "cannot be decoded" in failed["reason"]

    after = _ct(55)  # the service goes on after a failed job
    assert send(server.dicom_port, after) == [0] * len(after)
    assert _job(server, after[0].SeriesInstanceUID)["state"] == "reported"
    metrics = httpx.get(server.base_url + "/metrics", timeout=5).text
    assert 'cardiogate_jobs_total{outcome="failed",task="calcium"} 1.0' in metrics
