"""The docs site followed literally (issue 19): a real Orthanc set up with the configuration
``docs/pacs.md`` tells the reader to add, ``cardiogate serve`` with the variables it names,
a series sent with its REST call, the result read with the API call of
``docs/getting-started.md``, and the reason a series was not analysed found with the jobs
API and ``cardiogate route explain`` (``docs/routing.md``). Only hosts and ports are
replaced, by free loopback ones."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from cardiogate_phantoms import make_ct_series
from pydicom.dataset import Dataset

from delivery_peers import calcium_ct, write_models
from orthanc import OrthancPeer, orthanc_peer
from peers import REPO, ServeProcess, start_serve, stop_serve

DOCS = REPO / "docs"
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>\w+)\n(?P<body>.*?)^(?P=indent)```", re.M | re.S)
PATIENT_AND_STUDY = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyDescription",
)


def _section(page: str, heading: str) -> str:
    text = (DOCS / page).read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _blocks(section: str, lang: str) -> list[str]:
    """The fenced code blocks of one language, without the list item's indentation."""
    found = []
    for m in FENCE.finditer(section):
        if m["lang"] == lang:
            indent = len(m["indent"])
            found.append("".join(line[indent:] for line in m["body"].splitlines(True)))
    return found


def _command(block: str) -> list[str]:
    return shlex.split(block.replace("\\\n", " "))


def _documented_orthanc() -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """What the Orthanc section gives: Orthanc's configuration keys, cardiogate's variables
    (from ``VAR=value ... cardiogate serve``) and the REST call that sends a series."""
    section = _section("pacs.md", "Orthanc")
    [config_block] = _blocks(section, "json")
    config = json.loads(config_block)
    env: dict[str, str] = {}
    store: list[str] = []
    for block in _blocks(section, "bash"):
        words = _command(block)
        if words[:2] == ["curl", "-X"]:
            store = words
            continue
        assignments = [w for w in words if re.match(r"^CARDIOGATE_\w+=", w)]
        assert words[len(assignments) :] == ["cardiogate", "serve"], block
        for assignment in assignments:
            name, value = assignment.split("=", 1)
            env[name] = value
    assert store, "docs/pacs.md shows no REST call that sends a series to cardiogate"
    return config, env, store


def _same_study(datasets: list[Dataset], like: Dataset) -> list[Dataset]:
    for ds in datasets:
        for keyword in PATIENT_AND_STUDY:
            if keyword in like:
                setattr(ds, keyword, like.get(keyword))
        ds.SeriesNumber = 4
    return datasets


def _jobs(server: ServeProcess, token: str) -> list[dict[str, Any]]:
    """``curl -H "Authorization: Bearer $(cat data/api-token)" .../api/v1/jobs``."""
    r = httpx.get(
        server.base_url + "/api/v1/jobs",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    r.raise_for_status()
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def _wait_for_jobs(
    server: ServeProcess, token: str, wanted: dict[str, str], timeout: float = 45
) -> dict[str, dict[str, Any]]:
    """The jobs of these series once each is in its wanted state."""
    deadline = time.monotonic() + timeout
    by_series: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        by_series = {j["SeriesInstanceUID"]: j for j in _jobs(server, token)}
        states = {uid: by_series.get(uid, {}).get("state") for uid in wanted}
        if states == wanted:
            return by_series
        if any(s == "failed" for s in states.values()):
            break
        time.sleep(0.3)
    pytest.fail(f"jobs not in {wanted}: {by_series}\n{server.log()[-3000:]}")


@pytest.mark.slow
@pytest.mark.orthanc
def test_the_orthanc_walkthrough_of_the_docs_works(tmp_path: Path) -> None:
    config, documented_env, store_call = _documented_orthanc()
    orthanc = orthanc_peer(tmp_path / "orthanc", {})

    [destination] = json.loads(documented_env["CARDIOGATE_DESTINATIONS"])
    assert (destination["ae_title"], destination["port"]) == (
        config["DicomAet"],
        config["DicomPort"],
    ), "the destination in the docs is not the Orthanc configured above it"
    destination |= {"host": "127.0.0.1", "port": orthanc.dicom_port}
    env = documented_env | {"CARDIOGATE_DESTINATIONS": json.dumps([destination])}
    plumbing = {  # the test's own: tiny models, short waits
        "CARDIOGATE_MODELS_DIR": str(write_models(tmp_path / "models")),
        "CARDIOGATE_QUIET_SECONDS": "1",
        "CARDIOGATE_LISTENER_PROCESSES": "1",
        "CARDIOGATE_DELIVERY_INITIAL_DELAY_SECONDS": "0.2",
        "CARDIOGATE_DELIVERY_POLL_SECONDS": "0.2",
    }
    server = start_serve(tmp_path / "data", env=plumbing | env)
    try:
        modalities = config.pop("DicomModalities")
        ae_title, _, _ = modalities["cardiogate"]
        modalities["cardiogate"] = [ae_title, "127.0.0.1", server.dicom_port]
        config["DicomPort"] = orthanc.dicom_port
        orthanc.modalities, orthanc.extra_config = modalities, config
        orthanc.start()
        _walk_through(tmp_path, orthanc, server, store_call)
    finally:
        orthanc.stop()
        try:
            assert stop_serve(server) == 0
        except subprocess.TimeoutExpired:
            stop_serve(server, kill=True)
            raise


def _walk_through(
    tmp_path: Path, orthanc: OrthancPeer, server: ServeProcess, store_call: list[str]
) -> None:
    ct = calcium_ct()
    thin = make_ct_series(  # a 1 mm reconstruction: not analysed by default
        52,
        n_slices=12,
        rows=64,
        columns=64,
        pixel_spacing_mm=6.0,
        slice_thickness_mm=1.0,
        study_instance_uid=ct[0].StudyInstanceUID,
    ).datasets
    ct_ids = orthanc.upload(ct)
    thin_ids = orthanc.upload(_same_study(thin, ct[0]))
    assert thin_ids["study"] == ct_ids["study"]

    # the documented REST call, with the two series' Orthanc IDs in the body
    url = urlparse(store_call[store_call.index("-X") + 2])
    body = json.loads(store_call[store_call.index("-d") + 1])
    assert body == ["<series id>"], store_call
    r = httpx.post(
        orthanc.url + url.path,
        content=json.dumps([ct_ids["series"], thin_ids["series"]]),
        timeout=60,
    )
    assert r.status_code == 200, r.text

    # the token as getting-started.md reads it: cat data/api-token
    token = (server.data_dir / "api-token").read_text(encoding="ascii").strip()
    calcium_uid, thin_uid = ct[0].SeriesInstanceUID, thin[0].SeriesInstanceUID
    jobs = _wait_for_jobs(server, token, {calcium_uid: "delivered", thin_uid: "ignored"})
    assert jobs[calcium_uid]["task"] == "calcium"
    reason = jobs[thin_uid]["reason"]
    assert reason == "slice thickness 1 mm is outside 2-3.5 mm"

    study_uid = ct[0].StudyInstanceUID
    results = httpx.get(
        f"{server.base_url}/api/v1/studies/{study_uid}/results",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    ).json()
    [calcium] = [j for j in results["jobs"] if j["SeriesInstanceUID"] == calcium_uid]
    assert calcium["result"]["agatston"]["total"] > 0

    # the SR is in Orthanc, in the source study, as series 9501
    series = orthanc.get(f"/studies/{ct_ids['study']}/series")
    numbers = {s["MainDicomTags"].get("SeriesNumber"): s["MainDicomTags"] for s in series}
    assert numbers["9501"]["Modality"] == "SR", numbers

    # docs/routing.md: cardiogate route explain STUDY_INSTANCE_UID --data-dir ...
    explain = subprocess.run(
        [sys.executable, "-m", "cardiogate", "route", "explain", study_uid]
        + ["--data-dir", str(server.data_dir), "--models-dir", str(tmp_path / "models")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert explain.returncode == 0, explain.stderr
    rows = {line.split()[0]: line for line in explain.stdout.splitlines() if line[:1].isdigit()}
    assert "ignored" in rows["4"].split(), explain.stdout
    assert rows["4"].rstrip().endswith(reason), explain.stdout
    assert "delivered" in rows[str(ct[0].SeriesNumber)].split(), explain.stdout
