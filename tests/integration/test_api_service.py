"""Every ``/api/v1`` route against a running ``cardiogate serve`` whose jobs came in over
C-STORE: one calcium CT delivered to a real Storage SCP, and one CT whose slices repeat a
position, which fails and is retried. No response names the patient."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom.dataset import Dataset

from delivery_peers import calcium_ct, serve_delivering, wait_for_job
from peers import RunningSCP, ServeProcess, send, stop_serve

PATIENT_NAME = "DOE^JANE^QUINCY"
PATIENT_ID = "MRN-4711-0815"


@pytest.fixture
def server(tmp_path: Path, pacs: RunningSCP) -> Iterator[ServeProcess]:
    running = serve_delivering(tmp_path, "PACS", pacs.port)
    yield running
    assert stop_serve(running) == 0


def _named(series: list[Dataset]) -> list[Dataset]:
    for ds in series:
        ds.PatientName = PATIENT_NAME
        ds.PatientID = PATIENT_ID
    return series


class Client:
    """The API as an operator's script sees it; remembers every body it read."""

    def __init__(self, server: ServeProcess) -> None:
        self.http = httpx.Client(base_url=server.base_url, headers=server.auth, timeout=15)
        self.bodies: list[str] = []

    def get(self, path: str, **params: Any) -> Any:
        r = self.http.get(f"/api/v1{path}", params=params)
        assert r.status_code == 200, r.text
        self.bodies.append(r.text)
        return r.json()

    def post(self, path: str, expect: int = 200, **body: Any) -> Any:
        r = self.http.post(f"/api/v1{path}", json=body or None)
        assert r.status_code == expect, r.text
        self.bodies.append(r.text)
        return r.json()


def test_every_route_on_a_running_service_with_real_jobs(server: ServeProcess) -> None:
    good = _named(calcium_ct(seed=51))
    broken = _named(calcium_ct(seed=52))
    broken[1].ImagePositionPatient = broken[0].ImagePositionPatient  # a repeated slice
    assert send(server.dicom_port, good + broken) == [0] * (len(good) + len(broken))
    study, series = good[0].StudyInstanceUID, good[0].SeriesInstanceUID
    delivered = wait_for_job(server, series, ("delivered", "failed"))
    assert delivered["state"] == "delivered", delivered["reason"]
    failed = wait_for_job(server, broken[0].SeriesInstanceUID, ("failed",))
    api = Client(server)

    studies = api.get("/studies")
    assert {s["StudyInstanceUID"] for s in studies["items"]} >= {study}
    shown = api.get(f"/studies/{study}")
    assert series in {s["SeriesInstanceUID"] for s in shown["series"]}
    assert api.get(f"/series/{series}")["job"]["state"] == "delivered"

    jobs = api.get("/jobs", task="calcium")
    assert jobs["total"] == 2
    assert [j["state"] for j in api.get("/jobs", state="failed")["items"]] == ["failed"]
    (job,) = [j for j in jobs["items"] if j["state"] == "delivered"]
    detail = api.get(f"/jobs/{job['id']}")
    events = [e["event"] for e in detail["timeline"]]
    assert events[:3] == ["queued", "started", "reported"]
    assert "delivered" in events
    assert detail["result"]["agatston"]["total"] > 0
    assert {o["state"] for o in detail["objects"]} == {"sent"}
    assert len(detail["objects"]) >= 3  # SR, SEG and key image
    assert detail["report_versions"]
    assert detail["errors"] == []

    results = api.get(f"/studies/{study}/results")
    (calcium,) = [j for j in results["jobs"] if j["state"] == "delivered"]
    assert calcium["result"]["agatston"] == detail["result"]["agatston"]

    (model,) = [m for m in api.get("/models") if m["task"] == "calcium"]
    assert model["provider"] == "CPUExecutionProvider"
    (destination,) = api.get("/destinations")
    assert destination["ae_title"] == "PACS"
    assert destination["sent"] == len(detail["objects"])
    assert destination["dead"] == 0
    echo = api.post("/destinations/PACS/echo")
    assert echo["success"] is True
    assert echo["round_trip_ms"] > 0

    # a delivered job is not retried; the failed one is, and fails again for the same reason
    api.post(f"/jobs/{job['id']}/retry", expect=409)
    retry = api.post(f"/jobs/{failed['id']}/retry")
    assert retry["action"] == "requeued"
    again = wait_for_job(
        server, broken[0].SeriesInstanceUID, ("failed",), finished_after=failed["finished_at"]
    )
    assert again["attempts"] == failed["attempts"] + 1
    assert again["reason"] == failed["reason"]

    # the fixed-rule model is unsure of every artery, so the delivered result waits for review
    queue = api.get("/review")
    (item,) = [i for i in queue["items"] if i["job_id"] == job["id"]]
    assert "artery" in item["reason"]
    verdict = api.post(f"/review/{job['id']}", verdict="agree", note="checked in the viewer")
    assert verdict["verdict"] == "agree"
    assert job["id"] not in {i["job_id"] for i in api.get("/review")["items"]}
    api.post(f"/review/{job['id']}", expect=409, verdict="disagree")

    for body in api.bodies:
        assert PATIENT_NAME.split("^")[0] not in body
        assert PATIENT_ID not in body
    assert PATIENT_ID not in server.log()
    assert "DOE" not in server.log()
