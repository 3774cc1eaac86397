"""The review loop on a running service: a calcium CT whose lesions the fixed-rule model
cannot place in an artery with confidence is delivered and waits for review; after a
verdict, a corrected re-send that changes the result is back in the queue, and the study's
results show the new result with its objects delivered."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from pydicom.dataset import Dataset

from delivery_peers import calcium_ct, serve_delivering, wait_for_job
from peers import RunningSCP, ServeProcess, send, stop_serve


@pytest.fixture
def server(tmp_path: Path, pacs: RunningSCP) -> Iterator[ServeProcess]:
    running = serve_delivering(tmp_path, "PACS", pacs.port)
    yield running
    assert stop_serve(running) == 0


def _get(server: ServeProcess, path: str) -> Any:
    r = httpx.get(f"{server.base_url}/api/v1{path}", headers=server.auth, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def _without_the_most_calcium(series: list[Dataset]) -> list[Dataset]:
    """The series with the slice holding the most calcium corrected to soft tissue."""
    hu = [ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in series]
    worst = int(np.argmax([(h >= 130).sum() for h in hu]))
    ds = series[worst]
    soft = (40.0 - float(ds.RescaleIntercept)) / float(ds.RescaleSlope)
    pixels = ds.pixel_array.copy()
    pixels[hu[worst] >= 130] = int(soft)
    ds.PixelData = pixels.tobytes()
    return series


def test_a_corrected_resend_is_reviewed_again(
    server: ServeProcess, pacs: RunningSCP, tmp_path: Path
) -> None:
    ct = calcium_ct()
    study, series = ct[0].StudyInstanceUID, ct[0].SeriesInstanceUID
    assert send(server.dicom_port, ct) == [0] * len(ct)
    first = wait_for_job(server, series, ("delivered", "failed"))
    assert first["state"] == "delivered", first["reason"]

    [job] = _get(server, f"/studies/{study}/results")["jobs"]
    assert (job["SeriesInstanceUID"], job["task"], job["needs_review"]) == (series, "calcium", True)
    assert "whose artery is in doubt" in job["review_reason"]
    assert job["result"]["agatston"]["total"] > 0
    assert len(job["objects"]) == 4  # SR, SEG, key image (one artery), summary page
    for obj in job["objects"]:
        [delivery] = obj["deliveries"]
        assert (delivery["destination"], delivery["state"]) == (
            f"PACS@127.0.0.1:{pacs.port}",
            "sent",
        )
        assert pacs.store.get_instance(obj["SOPInstanceUID"]) is not None

    [item] = _get(server, "/review")["items"]
    assert (item["job_id"], item["reason"]) == (job["job_id"], job["review_reason"])
    verdict = {"verdict": "disagree", "note": "LM, not LAD", "result_digest": item["result_digest"]}
    url = f"{server.base_url}/api/v1/review/{job['job_id']}"
    r = httpx.post(url, json=verdict, headers=server.auth, timeout=10)
    assert r.status_code == 200, r.text
    assert _get(server, "/review")["total"] == 0

    corrected = _without_the_most_calcium(ct)
    assert send(server.dicom_port, corrected) == [0] * len(corrected)
    wait_for_job(server, series, ("delivered",), finished_after=first["finished_at"])
    [again] = _get(server, f"/studies/{study}/results")["jobs"]
    assert again["result"]["agatston"]["total"] < job["result"]["agatston"]["total"]
    assert {d["state"] for o in again["objects"] for d in o["deliveries"]} == {"sent"}
    [back] = _get(server, "/review")["items"]
    assert back["job_id"] == job["job_id"]
    assert back["result_digest"] != item["result_digest"]

    out = tmp_path / "reviews.jsonl"
    export = subprocess.run(
        [sys.executable, "-m", "cardiogate", "review", "export", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CARDIOGATE_DATA_DIR": str(server.data_dir)},
        check=False,
    )
    assert export.returncode == 0, export.stderr
    [line] = (json.loads(line) for line in out.read_text().splitlines())
    assert (line["verdict"], line["note"], line["current"]) == ("disagree", "LM, not LAD", False)
    assert line["result"] == job["result"]
