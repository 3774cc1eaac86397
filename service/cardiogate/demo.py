"""``cardiogate demo``: the whole path on one machine, in under a minute.

The service runs in-process on free loopback ports with a temporary data folder and the
shipped models; a small Storage SCP (the demo's PACS) is its one destination. Each installed
task with demo data and a loaded model gives a phantom study (:meth:`Task.demo_case`:
cardiogate's own are a calcium CT and an LCA angiogram with a 75% LAD stenosis); they go in
over C-STORE, and the summary compares what came back with the phantoms' truth, as each task
words it.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt

from cardiogate.config import load_settings
from cardiogate.dicom.status import STORED, Status
from cardiogate.errors import CardiogateError
from cardiogate.logs import setup_logging
from cardiogate.store.jobs import DELIVERED, FAILED, IGNORED, REPORTED, RUNNING, JobQueue
from cardiogate.tasks import DemoCase, Task, Tasks, load_tasks

log = logging.getLogger(__name__)

NOTICE = (
    "Research software, not for clinical use: the models were trained on synthetic "
    "phantoms only, and so were these studies."
)
RECEIVER_AE = "DEMOPACS"
_STEPS = {RUNNING: "analysing", REPORTED: "reported", DELIVERED: "delivered"}
_SHIPPED_MODELS = Path(__file__).resolve().parents[2] / "models"


class Receiver:
    """The demo's PACS: a Storage SCP on loopback writing each instance to ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ae = AE(ae_title=RECEIVER_AE)
        for cx in AllStoragePresentationContexts:
            if cx.abstract_syntax is not None:
                self.ae.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        self._server: Any = None

    def start(self) -> int:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._server = self.ae.start_server(
            ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, self._on_c_store)]
        )
        return int(self._server.socket.getsockname()[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()

    def _on_c_store(self, event: Any) -> int:
        try:
            ds: Dataset = event.dataset
            ds.file_meta = event.file_meta
            kind = _kind(ds)
            ds.save_as(self.folder / f"{kind}_{ds.SOPInstanceUID}.dcm", enforce_file_format=True)
        except (OSError, AttributeError, ValueError) as e:
            log.error("receiver could not store an instance: %s", e)
            return int(Status.OUT_OF_RESOURCES)
        return int(Status.SUCCESS)


def _kind(ds: Dataset) -> str:
    """``SR``, ``SEG``, ``SUMMARY`` or ``KEY`` (the summary page and the key images are
    Secondary Captures, told apart by their series description)."""
    name = str(getattr(ds.SOPClassUID, "name", ""))
    if "SR" in name or ds.get("Modality") == "SR":
        return "SR"
    if ds.get("Modality") == "SEG":
        return "SEG"
    if "summary" in str(ds.get("SeriesDescription", "")).lower():
        return "SUMMARY"
    return "KEY"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def push(port: int, ae_title: str, datasets: list[Dataset]) -> None:
    """C-STORE ``datasets`` over one association; raise unless every one was stored."""
    ae = AE(ae_title="DEMOSCU")
    for ds in datasets:
        ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", port, ae_title=ae_title)
    if not assoc.is_established:
        raise CardiogateError(f"the service at 127.0.0.1:{port} refused the association")
    try:
        # Nagle would hold each small PDU for the peer's delayed ACK (~40 ms on loopback)
        if assoc.dul.socket and assoc.dul.socket.socket:
            assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for ds in datasets:
            status = assoc.send_c_store(ds)
            if "Status" not in status or int(status.Status) not in STORED:
                raise CardiogateError(f"C-STORE of {ds.SOPInstanceUID} failed: {status}")
    finally:
        assoc.release()


@dataclass
class DemoStudy:
    task: Task
    case: DemoCase
    steps_shown: int = 0

    @property
    def label(self) -> str:
        return self.case.label

    @property
    def SeriesInstanceUID(self) -> str:
        return str(self.case.datasets[0].SeriesInstanceUID)


def _studies(tasks: Tasks, loaded: set[str]) -> list[DemoStudy]:
    """A phantom study for each installed task that has demo data and a loaded model."""
    studies = []
    for task in tasks.values():
        if task.name not in loaded:
            continue
        case = task.demo_case()
        if case is not None:
            studies.append(DemoStudy(task, case))
    if not studies:
        raise CardiogateError("no installed task with a loaded model has demo data")
    return studies


def _watch(queue: JobQueue, studies: list[DemoStudy], say: Any, timeout: float) -> dict[str, Any]:
    """Poll the jobs, one line per step reached, until every job is delivered (or failed)."""
    jobs: dict[str, Any] = {}
    order = list(_STEPS)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for study in studies:
            job = queue.for_series(study.SeriesInstanceUID)
            if job is None:
                continue
            jobs[study.SeriesInstanceUID] = job
            if job.state in (FAILED, IGNORED):
                raise CardiogateError(f"{study.label}: job {job.state}: {job.reason}")
            reached = order.index(job.state) + 1 if job.state in order else 0
            for step in order[study.steps_shown : reached]:
                say(f"{study.label}: {_STEPS[step]}")
            study.steps_shown = max(study.steps_shown, reached)
        if all(s.steps_shown == len(order) for s in studies):
            return jobs
        time.sleep(0.1)
    raise CardiogateError(f"the jobs were not all delivered within {timeout:.0f} s")


def _summary(studies: list[DemoStudy], jobs: dict[str, Any], received: Path) -> dict[str, Any]:
    """Per task (by name): the series, its job's state and the task's own comparison of
    the result with the truth; the files the demo PACS received."""
    files: dict[str, list[str]] = {"SR": [], "SEG": [], "KEY": [], "SUMMARY": []}
    for path in sorted(received.glob("*.dcm")):
        files[path.name.split("_", 1)[0]].append(str(path))
    summary: dict[str, Any] = {"notice": NOTICE, "tasks": [s.task.name for s in studies]}
    for study in studies:
        job = jobs[study.SeriesInstanceUID]
        summary[study.task.name] = {
            "SeriesInstanceUID": study.SeriesInstanceUID,
            "state": job.state,
            **study.task.demo_summary(json.loads(job.result), study.case.truth),
        }
    summary["received"] = files
    return summary


def format_summary(summary: dict[str, Any], tasks: Tasks) -> str:
    """The summary as the human reads it."""
    lines: list[str] = []
    for name in summary["tasks"]:
        lines += ["", *tasks[name].demo_lines(summary[name])]
    gone = " (removed at exit: --keep DIR keeps them)" if "removed" in summary else ""
    lines += ["", f"Received by the demo PACS{gone}"]
    for kind, label in (("SR", "SR"), ("SEG", "SEG"), ("KEY", "key image"), ("SUMMARY", "summary")):
        lines += [f"  {label:<10}{path}" for path in summary["received"][kind]]
    lines += ["", summary["notice"]]
    return "\n".join(lines)


def run_demo(keep: Path | None, as_json: bool, out: TextIO = sys.stdout) -> int:
    """Run the demo; ``keep`` keeps the data folders there, else a temporary one is removed."""
    from cardiogate.app import Application  # uvicorn and onnxruntime: only when run

    started = time.monotonic()
    progress = sys.stderr if as_json else out

    def say(text: str) -> None:
        progress.write(f"[{time.monotonic() - started:5.1f} s] {text}\n")
        progress.flush()

    root = keep if keep is not None else Path(tempfile.mkdtemp(prefix="cardiogate-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    progress.write(f"cardiogate demo. {NOTICE}\n")
    receiver = Receiver(root / "received")
    receiver_port = receiver.start()
    defaults = load_settings()
    models = defaults.models_dir if defaults.models_dir.is_dir() else _SHIPPED_MODELS
    settings = load_settings(
        data_dir=root / "data",
        models_dir=models,
        dicom_host="127.0.0.1",
        dicom_port=_free_port(),
        http_host="127.0.0.1",
        http_port=0,
        quiet_seconds=1.0,
        listener_processes=1,
        min_free_disk_mb=1,
        destinations=[{"ae_title": RECEIVER_AE, "host": "127.0.0.1", "port": receiver_port}],
        delivery_poll_seconds=0.2,
        delivery_initial_delay_seconds=0.5,
        delivery_max_delay_seconds=2.0,
    )
    setup_logging("WARNING", settings.log_format)
    tasks = load_tasks(settings)
    app = Application(settings)
    try:
        app.start()
        say(f"service up: DICOM on 127.0.0.1:{app.dicom_port}, models from {models}")
        studies = _studies(tasks, set(app.loaded_models()))
        for study in studies:
            push(app.dicom_port, settings.ae_title, study.case.datasets)
            n = len(study.case.datasets)
            say(f"{study.label}: received ({n} instance{'s' if n > 1 else ''} over C-STORE)")
        jobs = _watch(JobQueue(app.store), studies, say, timeout=90)
        summary = _summary(studies, jobs, receiver.folder)
    finally:
        app.stop()
        receiver.stop()
    summary["seconds"] = round(time.monotonic() - started, 1)
    if keep is None:
        shutil.rmtree(root, ignore_errors=True)
        summary["removed"] = str(root)
    if as_json:
        out.write(json.dumps(summary, indent=2) + "\n")
    else:
        out.write(format_summary(summary, tasks) + "\n")
        tail = "" if keep is None else f"; the data are in {root}"
        out.write(f"\nDone in {summary['seconds']} s{tail}.\n")
    return 0
