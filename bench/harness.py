"""What the end-to-end benchmarks share: the machine line every figure is printed with, a
real Orthanc and a real ``cardiogate serve`` (the helpers of ``tests/orthanc.py`` and
``tests/peers.py``, used without pytest), the synthetic studies and distinct copies of them,
C-STORE with the time of the last response, and the job API.

The serve subprocess imports this checkout's ``service/`` (PYTHONPATH), loads the shipped
models from ``models/`` and runs them on the ONNX Runtime CPU provider.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO / "tests", REPO / "service"):  # this checkout's code and the real peers
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import httpx  # noqa: E402
import psutil  # noqa: E402
import pydicom  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402
from pynetdicom import AE  # noqa: E402

from orthanc import ORTHANC, OrthancPeer  # noqa: E402
from peers import ServeProcess, free_port, start_serve, stop_serve  # noqa: E402

CPU_PROVIDER = "CPUExecutionProvider"
CALLING_AE = "BENCHPACS"
QUIET_LOAD = 0.5  # a 1-minute load average below this counts as a quiet machine


# -- the machine ---------------------------------------------------------------------------


def end_to_end_parser(description: str, name: str) -> argparse.ArgumentParser:
    """The options ``turnaround.py`` and ``throughput.py`` share; ``name`` names the JSON."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quiet", type=float, default=2.0, help="CARDIOGATE_QUIET_SECONDS (2)")
    parser.add_argument("--ct-slices", type=int, default=64)
    parser.add_argument("--xa-frames", type=int, default=60)
    parser.add_argument("--data", type=Path, help="keep/reuse the synthetic studies here")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / f"{name}.json")
    parser.add_argument(
        "--record", action="store_true", help="also copy the JSON to bench/records/"
    )
    return parser


def machine() -> dict[str, Any]:
    """CPU model (as lscpu names it), cores, date, load average now: print with every figure."""
    cpu = ""
    if shutil.which("lscpu"):
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        cpu = next(
            (ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")),
            "",
        )
    import onnxruntime

    return {
        "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu": cpu or platform.processor() or "unknown",
        "logical_cpus": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "kernel": platform.release(),
        "onnxruntime": onnxruntime.__version__,
    }


def print_machine(m: dict[str, Any]) -> None:
    load = m["load_average_at_start"]
    print(
        f"machine: {m['cpu']}, {m['logical_cpus']} logical CPUs ({m['physical_cores']} "
        f"physical), {m['ram_gib']} GiB, Python {m['python']}, onnxruntime {m['onnxruntime']}"
    )
    print(f"date (UTC): {m['date_utc']}; load average at start: {load[0]}, {load[1]}, {load[2]}")
    if load[0] >= QUIET_LOAD:
        print(f"WARNING: 1-minute load {load[0]} >= {QUIET_LOAD}: the machine is not quiet")


# -- statistics ----------------------------------------------------------------------------


def p95(values: list[float]) -> float:
    """95th percentile, linear interpolation between the order statistics (with five runs
    it lies between the largest two)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "p95": round(p95(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


# -- the peers -----------------------------------------------------------------------------


def start_orthanc(folder: Path) -> OrthancPeer:
    """The Debian package's Orthanc on free loopback ports, storing into ``folder``."""
    if not Path(ORTHANC).exists():
        raise SystemExit(f"Orthanc is not installed ({ORTHANC}; apt-get install orthanc)")
    folder.mkdir(parents=True, exist_ok=True)
    peer = OrthancPeer(folder, free_port(), free_port(), {})
    peer.start(timeout=60)
    return peer


def serve_settings(quiet_seconds: float, **extra: str) -> dict[str, str]:
    """The environment of the benchmarked serve, apart from ports and folders: everything a
    figure depends on is set here and recorded with the figures."""
    return {
        "CARDIOGATE_QUIET_SECONDS": str(quiet_seconds),
        "CARDIOGATE_MODELS_DIR": str(REPO / "models"),
        "CARDIOGATE_PROVIDERS": json.dumps([CPU_PROVIDER]),
        "CARDIOGATE_LOG_LEVEL": "WARNING",
        **extra,
    }


def start_cardiogate(
    work: Path, orthanc: OrthancPeer, settings: dict[str, str]
) -> tuple[ServeProcess, dict[str, str]]:
    """``cardiogate serve`` from this checkout, delivering to ``orthanc``; waits for /readyz."""
    env = {
        **settings,
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(REPO / "service"), os.environ.get("PYTHONPATH")) if p
        ),
        "CARDIOGATE_API_TOKEN": secrets.token_urlsafe(24),
        "CARDIOGATE_DESTINATIONS": json.dumps(
            [{"ae_title": "ORTHANC", "host": "127.0.0.1", "port": orthanc.dicom_port}]
        ),
    }
    return start_serve(work / "data", env=env, ready_timeout=180), env


def stop_cardiogate(server: ServeProcess) -> int:
    try:
        return stop_serve(server, timeout=60)
    except subprocess.TimeoutExpired:
        return stop_serve(server, kill=True)


# -- data ----------------------------------------------------------------------------------


def base_series(root: Path, ct_slices: int, xa_frames: int) -> tuple[list[Path], list[Path]]:
    """The two studies of bench/inference.py, written once under ``root`` and reused: a
    ``ct_slices``-slice 512x512 calcium CT (seed 7) and a ``xa_frames``-frame 512x512 XA
    cine (seed 11, one multi-frame instance)."""
    from cardiogate_phantoms import make_ct_series, make_xa_cine, write_series

    ct_dir, xa_dir = root / f"ct{ct_slices}", root / f"xa{xa_frames}"
    ct = sorted(ct_dir.glob("*.dcm"))
    if len(ct) != ct_slices:
        print(f"generating a {ct_slices}-slice 512x512 CT in {ct_dir} ...", flush=True)
        shutil.rmtree(ct_dir, ignore_errors=True)
        ct = write_series(make_ct_series(7, n_slices=ct_slices, rows=512, columns=512), ct_dir)
    xa = sorted(xa_dir.glob("*.dcm"))
    if len(xa) != 1:  # the folder's name carries the frame count
        print(f"generating a {xa_frames}-frame 512x512 XA cine in {xa_dir} ...", flush=True)
        shutil.rmtree(xa_dir, ignore_errors=True)
        xa = write_series(make_xa_cine(11, frames=xa_frames, rows=512, columns=512), xa_dir)
    return ct, xa


def copy_study(paths: list[Path], dest: Path, tag: str) -> tuple[list[Path], dict[str, str]]:
    """The same instances as a new study: new Study, Series and SOP Instance UIDs derived from
    the old ones and ``tag`` (so every run is new work for the service, not a duplicate it
    skips); pixels and everything else unchanged."""
    dest.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    uids: dict[str, str] = {}
    for path in paths:
        ds = pydicom.dcmread(path)
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            new = generate_uid(entropy_srcs=[str(getattr(ds, keyword)), tag])
            setattr(ds, keyword, new)
            uids[keyword] = new
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        target = dest / path.name
        ds.save_as(target, enforce_file_format=True)
        out.append(target)
    return out, uids


# -- DICOM ---------------------------------------------------------------------------------


def c_store(port: int, paths: list[Path], called_ae: str = "CARDIOGATE") -> float:
    """Send the files over one association (pynetdicom streams each file as it is on disk);
    return the wall-clock time (``time.time()``) of the last C-STORE response."""
    ae = AE(ae_title=CALLING_AE)
    for path in paths[:1]:
        meta = pydicom.dcmread(path, stop_before_pixels=True)
        ae.add_requested_context(meta.SOPClassUID, meta.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", port, ae_title=called_ae)
    if not assoc.is_established:
        raise RuntimeError("cardiogate refused the association")
    last = 0.0
    try:
        for path in paths:
            status = assoc.send_c_store(path)
            last = time.time()
            if "Status" not in status or int(status.Status) != 0x0000:
                raise RuntimeError(f"C-STORE of {path.name} answered {status}")
    finally:
        assoc.release()
    return last


def dcmtk_storescu() -> str:
    """dcmtk's storescu (not pynetdicom's console script of the same name in the venv)."""
    from ingest import find_dcmtk

    return find_dcmtk("storescu", None)


# -- the service's API ---------------------------------------------------------------------


def api(server: ServeProcess, path: str) -> Any:
    r = httpx.get(server.base_url + path, headers=server.auth, timeout=30)
    r.raise_for_status()
    return r.json()


def epoch(timestamp: str) -> float:
    """An API timestamp (ISO 8601, UTC) as seconds since the epoch."""
    return dt.datetime.fromisoformat(timestamp).timestamp()


def network_seconds(server: ServeProcess) -> dict[str, float]:
    """``cardiogate_inference_seconds_sum`` by model: seconds spent inside ONNX Runtime."""
    text = httpx.get(server.base_url + "/metrics", timeout=30).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "cardiogate_inference_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_sum"):
                out[sample.labels["model"]] = out.get(sample.labels["model"], 0.0) + sample.value
    return out


def orthanc_has(orthanc: OrthancPeer, StudyInstanceUID: str, sop_uids: set[str]) -> bool:
    """Whether Orthanc's REST API lists every one of ``sop_uids`` in the study."""
    study = orthanc.study_of(StudyInstanceUID)
    if study is None:
        return False
    instances = orthanc.get(f"/studies/{study}/instances")
    stored = {i["MainDicomTags"]["SOPInstanceUID"] for i in instances}
    return sop_uids <= stored


def write_json(payload: dict[str, Any], path: Path, record: Path | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"\nresults written to {path}")
    if record is not None:
        record.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, record)
        print(f"record copied to {record}")
