"""Studies with known patient names and IDs go through a running service (delivered to a
real Storage SCP, a malformed instance refused, a stranger's association rejected); then no
identifier appears in any log line (DEBUG on), the metrics, any GET route of the API, the
status page or a thumbnail."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE

from delivery_peers import calcium_ct, serve_delivering, stenosis_cine, wait_for_job
from peers import RunningSCP, ServeProcess, stop_serve
from tiny_model import write_dark_spot_model, write_threshold_model

IDENTIFIERS = {
    "PatientName": "ZYXWOLSKI^QUENTINA^MARGARETHE",
    "PatientID": "PID-99317-XQ",
    "PatientBirthDate": "19511107",
    "OtherPatientIDs": "ALTID-55821",
    "AccessionNumber": "ACC7731904",
    "ReferringPhysicianName": "VONDRAKOVA^ILSE^DR",
    "InstitutionName": "ST HILDEGUNDE HOSPITAL",
}
CANNOT_UNDERSTAND = 0xC000
SENDER = "PRIVACYSCU"


def needles() -> set[str]:
    """Every value as sent, with '^' as a space and as nothing, each name component, and
    the birth date as an ISO date; all lower case (the search ignores case)."""
    found = set()
    for value in IDENTIFIERS.values():
        found |= {value, value.replace("^", " "), value.replace("^", "")}
        found |= {part for part in value.split("^") if len(part) > 3}
    found.add("1951-11-07")
    return {n.lower() for n in found}


def leaks(text: str) -> list[str]:
    lowered = text.lower()
    return sorted(n for n in needles() if n in lowered)


def _named(series: list[Dataset]) -> list[Dataset]:
    for ds in series:
        for keyword, value in IDENTIFIERS.items():
            setattr(ds, keyword, value)
    return series


@pytest.fixture
def server(tmp_path: Path, pacs: RunningSCP) -> Iterator[ServeProcess]:
    write_threshold_model(tmp_path / "models" / "calcium", above_hu=800)  # a few lesions
    write_dark_spot_model(tmp_path / "models" / "stenosis")
    running = serve_delivering(
        tmp_path,
        "PACS",
        pacs.port,
        CARDIOGATE_LOG_LEVEL="DEBUG",
        CARDIOGATE_ALLOWED_CALLING_AETS=f'["{SENDER}"]',
    )
    yield running
    if running.proc.poll() is None:
        stop_serve(running, kill=True)


def _send(port: int, datasets: list[Dataset]) -> list[int]:
    ae = AE(ae_title=SENDER)
    for ds in datasets:
        ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", port, ae_title="CARDIOGATE")
    assert assoc.is_established
    try:
        return [int(assoc.send_c_store(ds).Status) for ds in datasets]
    finally:
        assoc.release()


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_no_identifier_in_logs_metrics_api_page_or_thumbnails(
    server: ServeProcess, pacs: RunningSCP
) -> None:
    ct, xa = _named(calcium_ct(83)), _named(stenosis_cine(84))
    malformed = _named(calcium_ct(85))[:2]
    del malformed[0].SeriesInstanceUID  # refused: Cannot understand, and logged
    malformed[1].PatientBirthDate = "19511107X"  # invalid: pydicom would quote it if validating
    assert _send(server.dicom_port, ct + xa) == [0] * (len(ct) + len(xa))
    assert _send(server.dicom_port, malformed)[0] == CANNOT_UNDERSTAND
    stranger = AE(ae_title="STRANGER")
    stranger.add_requested_context(ct[0].SOPClassUID)
    assert stranger.associate("127.0.0.1", server.dicom_port, ae_title="CARDIOGATE").is_rejected
    jobs = [
        wait_for_job(server, series[0].SeriesInstanceUID, ("delivered", "failed"))
        for series in (ct, xa)
    ]
    assert [j["state"] for j in jobs] == ["delivered", "delivered"]

    bodies = _everything_served(server, ct + xa, [j["id"] for j in jobs])
    assert stop_serve(server) == 0
    log = server.log()
    assert " DEBUG " in log  # debug lines were written, and searched
    assert "C-STORE refused" in log  # the refusal's error path ran
    assert "STRANGER" in log  # the rejected association was logged
    # The search finds them where they belong: the results carry the patient to the PACS.
    received = [p.read_bytes().decode("latin-1") for p in pacs.spool.root.rglob("*.dcm")]
    assert received
    assert all(leaks(obj) for obj in received)
    print(f"\nprivacy: searched {len(bodies)} responses and {len(log.splitlines())} log lines")
    found = {where: leaks(text) for where, text in bodies.items()}
    found["log"] = leaks(log)
    assert {where: hits for where, hits in found.items() if hits} == {}


def _everything_served(
    server: ServeProcess, instances: list[Dataset], job_ids: list[int]
) -> dict[str, str]:
    """Every GET route of the OpenAPI document with its path parameters filled in from what
    was sent, the status page, the thumbnails, the metrics and the probes: URL -> body."""
    values = {
        "StudyInstanceUID": sorted({ds.StudyInstanceUID for ds in instances}),
        "SeriesInstanceUID": sorted({ds.SeriesInstanceUID for ds in instances}),
        "job_id": [str(j) for j in job_ids],
        "id": [str(j) for j in job_ids],
    }
    http = httpx.Client(base_url=server.base_url, headers=server.auth, timeout=15)
    schema = http.get("/openapi.json").json()
    urls = ["/", "/metrics", "/healthz", "/readyz", "/openapi.json"]
    for path, operations in schema["paths"].items():
        if "get" not in operations:
            continue
        expanded = [path]
        for name in re.findall(r"{(\w+)}", path):
            assert name in values, f"no value for {{{name}}} of {path}"
            expanded = [p.replace(f"{{{name}}}", v) for p in expanded for v in values[name]]
        urls += expanded
    assert sum(u.startswith("/api/v1/") for u in urls) >= 10
    bodies = {}
    for url in urls:
        r = http.get(url)
        assert r.status_code == 200, (url, r.status_code, r.text[:200])
        bodies[url] = r.content.decode("latin-1")
    for job_id in job_ids:  # a job without a key image has no thumbnail
        r = http.get(f"/jobs/{job_id}/thumbnail.png")
        assert r.status_code in (200, 404), r.status_code
        if r.status_code == 200:
            bodies[f"/jobs/{job_id}/thumbnail.png"] = r.content.decode("latin-1")
    assert any(b.startswith("\x89PNG") for b in bodies.values()), "no thumbnail searched"
    return bodies
