"""Orthanc (the Debian package's ``/usr/sbin/Orthanc``) as a real PACS for the tests: a
generated JSON configuration on free loopback ports, its storage and index in a folder of
the test's, plugins off (or only the DICOMweb plugin, :func:`dicomweb_config`), and a few
REST calls."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom.dataset import Dataset

from peers import free_port

ORTHANC = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")  # orthanc-dicomweb


@dataclass
class OrthancPeer:
    """One Orthanc configuration; :meth:`start` and :meth:`stop` keep its storage."""

    folder: Path
    dicom_port: int
    http_port: int
    modalities: dict[str, list[str | int]]
    proc: subprocess.Popen[bytes] | None = None
    extra_config: dict[str, Any] = field(default_factory=dict)  # merged over the defaults

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 20) -> None:
        config = {
            "Name": "cardiogate-test",
            "StorageDirectory": str(self.folder / "storage"),
            "IndexDirectory": str(self.folder / "index"),
            "DicomAet": "ORTHANC",
            "DicomPort": self.dicom_port,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "Plugins": [],
            "DicomModalities": self.modalities,
        } | self.extra_config
        path = self.folder / "orthanc.json"
        path.write_text(json.dumps(config))
        with (self.folder / "orthanc.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [ORTHANC, str(path)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"Orthanc exited:\n{self.log()}")
            try:
                if httpx.get(self.url + "/system", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"Orthanc not up in {timeout} s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None

    def log(self) -> str:
        path = self.folder / "orthanc.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- REST ------------------------------------------------------------------------------

    def get(self, path: str) -> Any:
        r = httpx.get(self.url + path, timeout=10)
        r.raise_for_status()
        return r.json() if "json" in r.headers.get("content-type", "") else r.content

    def upload(self, datasets: list[Dataset]) -> dict[str, str]:
        """POST /instances each dataset; returns the Orthanc IDs of its study and series."""
        ids: dict[str, str] = {}
        for ds in datasets:
            buffer = BytesIO()
            ds.save_as(buffer, enforce_file_format=True)
            r = httpx.post(self.url + "/instances", content=buffer.getvalue(), timeout=30)
            r.raise_for_status()
            ids = {"study": r.json()["ParentStudy"], "series": r.json()["ParentSeries"]}
        return ids

    def store_to(self, modality: str, resources: list[str]) -> None:
        """Orthanc's own C-STORE SCU: send these resources to a configured modality."""
        r = httpx.post(
            f"{self.url}/modalities/{modality}/store",
            json={"Resources": resources, "Synchronous": True},
            timeout=60,
        )
        r.raise_for_status()

    def study_of(self, StudyInstanceUID: str) -> str | None:
        r = httpx.post(self.url + "/tools/lookup", content=StudyInstanceUID.encode(), timeout=10)
        r.raise_for_status()
        found = [x["ID"] for x in r.json() if x["Type"] == "Study"]
        return found[0] if found else None

    def instances_by_modality(self, study_id: str) -> dict[str, list[str]]:
        """The instance IDs of a study, by their series' Modality."""
        by_modality: dict[str, list[str]] = {}
        for series in self.get(f"/studies/{study_id}/series"):
            modality = series["MainDicomTags"].get("Modality", "")
            by_modality.setdefault(modality, []).extend(series["Instances"])
        return by_modality


def orthanc_peer(folder: Path, modalities: dict[str, list[str | int]]) -> OrthancPeer:
    if not shutil.which(ORTHANC) and not Path(ORTHANC).exists():
        if os.environ.get("CI"):
            pytest.fail("Orthanc is not installed")
        pytest.skip("Orthanc is not installed")
    folder.mkdir(parents=True, exist_ok=True)
    return OrthancPeer(folder, free_port(), free_port(), modalities)


def dicomweb_config() -> dict[str, Any]:
    """``extra_config`` loading the DICOMweb plugin (Debian's orthanc-dicomweb) at
    ``/dicom-web/`` (QIDO-RS, WADO-RS, PS3.18); skips without it, fails under CI."""
    if not DICOMWEB_PLUGIN.exists():
        if os.environ.get("CI"):  # .ci/run installs orthanc-dicomweb: missing is a failure
            pytest.fail(f"Orthanc's DICOMweb plugin is not installed ({DICOMWEB_PLUGIN})")
        pytest.skip(f"Orthanc's DICOMweb plugin is not installed ({DICOMWEB_PLUGIN})")
    return {
        "Plugins": [str(DICOMWEB_PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
    }
