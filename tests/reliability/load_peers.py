"""What the load test needs: associations that send re-numbered copies of a synthetic study
until a deadline and time every C-STORE, a sampler of the service's resident memory, and
percentiles of the client's latencies and of a Prometheus histogram."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import generate_uid
from pynetdicom import AE


def renumbered(template: list[Dataset]) -> list[Dataset]:
    """The template study as a new study: fresh Study, Series and SOP Instance UIDs. The
    other elements are the template's own objects, never changed (``copy.copy`` of a
    pydicom Dataset would share, and so change, the template's elements: threads race)."""
    study, series = generate_uid(), generate_uid()
    out = []
    for ds in template:
        new, sop = Dataset(), generate_uid()
        for elem in ds:
            new.add(elem)
        new.add_new(0x0020000D, "UI", study)  # add_new puts in a new element
        new.add_new(0x0020000E, "UI", series)
        new.add_new(0x00080018, "UI", sop)
        new.file_meta = FileMetaDataset()
        for elem in ds.file_meta:
            new.file_meta.add(elem)
        new.file_meta.add_new(0x00020003, "UI", sop)
        out.append(new)
    return out


@dataclass
class Association:
    """One sending thread's record: C-STORE latencies (s), acknowledged UIDs, UIDs sent with
    no answer (the association ended first), and failure statuses."""

    latencies: list[float] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def send_until(port: int, template: list[Dataset], deadline: float, record: Association) -> None:
    """Send new studies, one association each, until ``deadline`` (monotonic). A C-STORE
    with no answer ends its association, as in a PACS: pynetdicom's SCU now and then takes
    a response for an unexpected message and waits out the DIMSE timeout (pydicom/pynetdicom
    issue 875), more often the busier the machine."""
    ae = AE(ae_title="LOAD")
    ae.acse_timeout = ae.network_timeout = 30
    ae.dimse_timeout = 20
    ae.add_requested_context(template[0].SOPClassUID, template[0].file_meta.TransferSyntaxUID)
    while time.monotonic() < deadline:
        study = renumbered(template)
        assoc = ae.associate("127.0.0.1", port, ae_title="CARDIOGATE")
        if not assoc.is_established:
            record.failures.append("association not established")
            time.sleep(0.5)
            continue
        for ds in study:
            began = time.perf_counter()
            status = assoc.send_c_store(ds).get("Status")
            record.latencies.append(time.perf_counter() - began)
            if status == 0x0000:
                record.acknowledged.append(ds.SOPInstanceUID)
            elif status is None:
                record.unanswered.append(ds.SOPInstanceUID)
                break
            else:
                record.failures.append(f"status 0x{status:04X}")
        if assoc.is_established:
            assoc.release()


class RssSampler(threading.Thread):
    """Every ``interval`` s, the summed RSS (VmRSS) of a process and all its descendants."""

    def __init__(self, pid: int, interval: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()

    def rss(self) -> int:
        total = 0
        for proc in [self.root, *self.root.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):  # a process that just ended
                total += proc.memory_info().rss
        return total

    def run(self) -> None:
        began = time.monotonic()
        while not self.stop.is_set():
            self.samples.append((time.monotonic() - began, self.rss()))
            self.stop.wait(self.interval)


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by the nearest-rank method."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def histogram(metrics: str, name: str) -> list[tuple[float, float]]:
    """(upper bound, cumulative count) of a Prometheus histogram without labels."""
    found = []
    for m in re.finditer(rf'^{name}_bucket{{le="([^"]+)"}} (\S+)$', metrics, re.MULTILINE):
        found.append((float(m.group(1)), float(m.group(2))))
    return found


def histogram_quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """As PromQL's histogram_quantile: linear within the bucket holding the q-th rank."""
    total = buckets[-1][1]
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if upper == float("inf"):
                return lower
            inside = count - below
            return lower + (upper - lower) * ((rank - below) / inside if inside else 0.0)
        lower, below = upper, count
    return lower


def machine() -> dict[str, object]:
    """Where a figure was measured."""
    model = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }
