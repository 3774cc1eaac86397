"""A CT with a missing middle slice fails with a reason that names the gap; when the slice
arrives late the series completes again and is re-run; the job's timeline (the API, oldest
first) still shows the first failure, then the re-queue and the report. Before job events,
the re-run overwrote the job's columns and the failure vanished from the timeline."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cardiogate_phantoms import make_ct_series

from peers import ServeProcess, send, start_serve, stop_serve
from tiny_model import write_threshold_model


@pytest.fixture
def server(tmp_path: Path) -> Any:
    write_threshold_model(tmp_path / "models" / "calcium")
    running = start_serve(
        tmp_path / "data",
        env={"CARDIOGATE_MODELS_DIR": str(tmp_path / "models"), "CARDIOGATE_QUIET_SECONDS": "1"},
    )
    yield running
    assert stop_serve(running) == 0


def _get(server: ServeProcess, path: str) -> dict[str, Any]:
    r = httpx.get(server.base_url + path, headers=server.auth, timeout=5)
    r.raise_for_status()
    return dict(r.json())


def _job_in(server: ServeProcess, series_uid: str, state: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = _get(server, f"/api/v1/series/{series_uid}")["job"]
        if job and job["state"] == state:
            return _get(server, f"/api/v1/jobs/{job['id']}")
        time.sleep(0.2)
    pytest.fail(f"series {series_uid} never had a {state} job:\n{server.log()}")


def test_the_first_failure_stays_on_the_timeline_after_the_late_slice(
    server: ServeProcess,
) -> None:
    series = make_ct_series(61, n_slices=12, rows=64, columns=64, pixel_spacing_mm=6.0).datasets
    middle = series.pop(6)
    assert send(server.dicom_port, series) == [0] * len(series)
    failed = _job_in(server, middle.SeriesInstanceUID, "failed")
    assert "gap" in failed["reason"]

    assert send(server.dicom_port, [middle]) == [0]
    job = _job_in(server, middle.SeriesInstanceUID, "reported")
    assert job["id"] == failed["id"]
    events = [e["event"] for e in job["timeline"]]
    assert events == ["queued", "started", "failed", "re-queued", "started", "reported"]
    timeline = job["timeline"]
    assert timeline[2]["detail"] == failed["reason"]
    assert timeline[3]["detail"].startswith("series completed again")
    assert [e["attempt"] for e in timeline if e["event"] == "started"] == [1, 2]
    times = [e["at"] for e in timeline]
    assert times == sorted(times)
