"""Throughput: studies per hour delivered on this machine under a mixed workload.

A real Orthanc and a real ``cardiogate serve`` (this checkout, the shipped models on the
ONNX Runtime CPU provider, delivering to that Orthanc) run on loopback. A PACS is played by
``--associations`` dcmtk ``storescu`` senders working through a list of studies together,
one association per study as a PACS forwards them: two 64-slice 512x512 calcium CTs for
every 60-frame 512x512 XA cine (the pattern repeats), each a copy of the same synthetic
study under new UIDs. Sending stops after ``--studies`` studies or ``--duration`` seconds,
whichever comes first; the bench then waits until every sent study is delivered (each job's
result objects acknowledged by Orthanc, checked there through its REST API).

Reported: studies/hour = studies delivered / (first C-STORE -> last delivery), which
includes filling and draining the pipeline; the steady rate between the first and the last
delivery; per-study last instance -> delivered (median, p95) under that load; the CPU
busy fraction of the whole machine and the CPU seconds of cardiogate's process tree over
the window; the maximum queue depth (jobs queued, and queued + running, from the jobs API,
sampled every 0.5 s; ``cardiogate_jobs_by_state`` counts the same rows).

    .venv/bin/python bench/throughput.py [--studies 12] [--duration S] [--associations 3]
        [--quiet 2] [--data DIR] [--json bench/results/throughput.json] [--record]
"""

from __future__ import annotations

import argparse
import queue
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from harness import (
    CALLING_AE,
    REPO,
    api,
    base_series,
    copy_study,
    dcmtk_storescu,
    end_to_end_parser,
    epoch,
    machine,
    orthanc_has,
    print_machine,
    serve_settings,
    start_cardiogate,
    start_orthanc,
    stop_cardiogate,
    summary,
    write_json,
)
from ingest import dcmtk_env, tree_cpu_seconds
from peers import ServeProcess

PATTERN = ("calcium", "calcium", "stenosis")


@dataclass
class Study:
    index: int
    case: str
    folder: Path
    uids: dict[str, str]
    instances: int
    sent_start: float = 0.0
    sent_end: float = 0.0


def sender(
    storescu: str, port: int, todo: queue.Queue[Study], deadline: float, errors: list[str]
) -> None:
    """Send studies from ``todo``, one ``storescu`` association each, until it is empty or
    the deadline has passed."""
    while time.time() < deadline:
        try:
            study = todo.get_nowait()
        except queue.Empty:
            return
        cmd = [storescu, "-aet", CALLING_AE, "-aec", "CARDIOGATE", "+sd", "+sp", "*.dcm", "-q"]
        cmd += ["127.0.0.1", str(port), str(study.folder)]
        study.sent_start = time.time()
        done = subprocess.run(cmd, env=dcmtk_env(), capture_output=True, text=True, check=False)
        study.sent_end = time.time()
        if done.returncode != 0:
            errors.append(f"study {study.index}: storescu {done.returncode}: {done.stdout}")
            study.sent_end = 0.0


class QueueSampler:
    """The largest number of jobs queued, and queued + running, seen every 0.5 s."""

    def __init__(self, server: ServeProcess) -> None:
        self.server = server
        self.max_queued = 0
        self.max_backlog = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="queue-sampler")

    def _count(self, state: str) -> int:
        return int(api(self.server, f"/api/v1/jobs?state={state}&limit=1")["total"])

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            queued, running = self._count("queued"), self._count("running")
            self.max_queued = max(self.max_queued, queued)
            self.max_backlog = max(self.max_backlog, queued + running)
            self.samples += 1

    def __enter__(self) -> QueueSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all CPUs."""
    t = psutil.cpu_times()
    idle = t.idle + getattr(t, "iowait", 0.0)
    total = sum(t)
    return total - idle, total


def wait_all_delivered(server: ServeProcess, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    delivered = 0
    while time.monotonic() < deadline:
        for bad in ("failed", "ignored"):
            page = api(server, f"/api/v1/jobs?state={bad}&limit=5")
            if page["total"]:
                raise RuntimeError(f"{page['total']} job(s) {bad}: {page['items']}")
        delivered = int(api(server, "/api/v1/jobs?state=delivered&limit=1")["total"])
        if delivered >= n:
            return
        time.sleep(0.5)
    raise RuntimeError(f"only {delivered} of {n} studies delivered after {timeout} s")


def main(argv: list[str] | None = None) -> int:
    parser = end_to_end_parser(__doc__.split("\n\n")[0], "throughput")
    parser.add_argument("--studies", type=int, default=12, help="studies at most (12)")
    parser.add_argument("--duration", type=float, help="stop sending new studies after S s")
    parser.add_argument("--associations", type=int, default=3, help="concurrent senders (3)")
    parser.add_argument(
        "--workers", type=int, help="CARDIOGATE_WORKER_THREADS (the service's default, 1)"
    )
    args = parser.parse_args(argv)
    if args.studies < 1 or args.associations < 1:
        parser.error("--studies and --associations must be >= 1")

    m = machine()
    print_machine(m)
    storescu = dcmtk_storescu()
    workers = {} if args.workers is None else {"CARDIOGATE_WORKER_THREADS": str(args.workers)}
    settings = serve_settings(args.quiet, **workers)
    with tempfile.TemporaryDirectory(prefix="cardiogate-throughput-") as tmp_name:
        tmp = Path(tmp_name)
        ct, xa = base_series(args.data or tmp / "series", args.ct_slices, args.xa_frames)
        print(f"writing {args.studies} studies (copies under new UIDs) ...", flush=True)
        studies: list[Study] = []
        for i in range(args.studies):
            case = PATTERN[i % len(PATTERN)]
            source = ct if case == "calcium" else xa
            files, uids = copy_study(source, tmp / f"study{i:03d}", f"throughput-{i}")
            studies.append(Study(i, case, tmp / f"study{i:03d}", uids, len(files)))
        orthanc = start_orthanc(tmp / "orthanc")
        try:
            server, env = start_cardiogate(tmp, orthanc, settings)
            try:
                result = run(server, storescu, studies, args)
                jobs = {
                    s.index: api(server, f"/api/v1/series/{s.uids['SeriesInstanceUID']}")["job"]
                    for s in result["sent"]
                }
                details = {i: api(server, f"/api/v1/jobs/{j['id']}") for i, j in jobs.items()}
                for s in result["sent"]:
                    sops = {o["SOPInstanceUID"] for o in details[s.index]["objects"]}
                    if not sops or not orthanc_has(orthanc, s.uids["StudyInstanceUID"], sops):
                        raise RuntimeError(f"study {s.index}: results missing in Orthanc")
            finally:
                rc = stop_cardiogate(server)
                if rc != 0:
                    print(f"WARNING: cardiogate exited {rc}:\n{server.log()[-3000:]}")
        finally:
            orthanc.stop()

    sent: list[Study] = result["sent"]
    delivered_at = {
        i: max(epoch(e["at"]) for e in d["timeline"] if e["event"] == "delivered")
        for i, d in details.items()
    }
    t0 = min(s.sent_start for s in sent)
    t_end = max(delivered_at.values())
    first = min(delivered_at.values())
    window = t_end - t0
    per_study = [delivered_at[s.index] - s.sent_end for s in sent]
    counts = {case: sum(1 for s in sent if s.case == case) for case in ("calcium", "stenosis")}
    cores = psutil.cpu_count() or 1
    out = {
        "studies_delivered": len(sent),
        "by_case": counts,
        "instances": sum(s.instances for s in sent),
        "window_s": round(window, 2),
        "studies_per_hour": round(len(sent) / window * 3600, 1),
        "steady_studies_per_hour": (
            round((len(sent) - 1) / (t_end - first) * 3600, 1) if len(sent) > 1 else None
        ),
        "sending_s": round(max(s.sent_end for s in sent) - t0, 2),
        "last_instance_to_delivered_s": summary(per_study),
        "machine_cpu_busy_fraction": round(result["busy_s"] / result["total_s"], 3),
        "cardiogate_cpu_s": round(result["cardiogate_cpu_s"], 1),
        "cardiogate_cpu_fraction_of_all_cores": round(
            result["cardiogate_cpu_s"] / (result["wall_s"] * cores), 3
        ),
        "max_jobs_queued": result["max_queued"],
        "max_jobs_queued_or_running": result["max_backlog"],
        "queue_samples": result["samples"],
    }
    print_machine(m)
    print(
        f"\n## Throughput: {len(sent)} studies ({counts['calcium']} calcium CT of "
        f"{args.ct_slices} slices, {counts['stenosis']} XA cine of {args.xa_frames} frames, "
        f"512x512), {args.associations} concurrent storescu associations, quiet period "
        f"{args.quiet:g} s, CPU provider, worker threads "
        f"{env.get('CARDIOGATE_WORKER_THREADS', '1 (default)')}\n"
    )
    print(
        "| studies/hour | steady studies/hour | window | per study, last instance -> "
        "delivered, median / p95 | machine CPU busy | cardiogate CPU | max queued "
        "(queued + running) |"
    )
    print("|---|---|---|---|---|---|---|")
    lat = out["last_instance_to_delivered_s"]
    print(
        f"| {out['studies_per_hour']} | {out['steady_studies_per_hour']} | "
        f"{out['window_s']} s | {lat['median']:.1f} / {lat['p95']:.1f} s | "
        f"{out['machine_cpu_busy_fraction']:.0%} | {out['cardiogate_cpu_s']} s "
        f"({out['cardiogate_cpu_fraction_of_all_cores']:.0%} of {cores} cores) | "
        f"{out['max_jobs_queued']} ({out['max_jobs_queued_or_running']}) |"
    )
    print(
        "\nstudies/hour counts the whole window, first C-STORE to last delivery; the steady "
        "rate is first to last delivery. Machine CPU includes the senders and Orthanc."
    )
    payload = {
        "machine": m,
        "config": {
            "studies": args.studies,
            "duration_s": args.duration,
            "associations": args.associations,
            "pattern": list(PATTERN),
            "quiet_seconds": args.quiet,
            "ct": f"{args.ct_slices} slices 512x512, 16-bit",
            "xa": f"{args.xa_frames} frames 512x512, 8-bit, one multi-frame instance",
            "serve_settings": settings,
        },
        "summary": out,
        "studies": [
            {
                "index": s.index,
                "case": s.case,
                "sent_s": round(s.sent_end - s.sent_start, 3),
                "from_start_to_sent_s": round(s.sent_end - t0, 3),
                "from_start_to_delivered_s": round(delivered_at[s.index] - t0, 3),
                "timings_s": (details[s.index]["result"] or {}).get("timings_s"),
            }
            for s in sent
        ],
    }
    record = None
    if args.record:
        suffix = "" if args.workers is None else f"-workers{args.workers}"
        record = REPO / "bench" / "records" / f"throughput-cpu-{m['date_utc'][:10]}{suffix}.json"
    write_json(payload, args.json, record)
    return 0


def run(
    server: ServeProcess, storescu: str, studies: list[Study], args: argparse.Namespace
) -> dict[str, Any]:
    """Send with ``args.associations`` senders, wait for every sent study to be delivered;
    CPU and queue depth over the whole window."""
    todo: queue.Queue[Study] = queue.Queue()
    for s in studies:
        todo.put(s)
    errors: list[str] = []
    root = psutil.Process(server.proc.pid)
    cpu0 = tree_cpu_seconds(root)
    busy0, total0 = busy_seconds()
    wall0 = time.time()
    deadline = wall0 + (args.duration if args.duration is not None else 1e9)
    with QueueSampler(server) as sampler:
        threads = [
            threading.Thread(
                target=sender, args=(storescu, server.dicom_port, todo, deadline, errors)
            )
            for _ in range(args.associations)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise RuntimeError("; ".join(errors))
        sent = [s for s in studies if s.sent_end > 0]
        wait_all_delivered(server, len(sent), timeout=3600)
    busy1, total1 = busy_seconds()
    return {
        "sent": sent,
        "busy_s": busy1 - busy0,
        "total_s": total1 - total0,
        "wall_s": time.time() - wall0,
        "cardiogate_cpu_s": tree_cpu_seconds(root) - cpu0,
        "max_queued": sampler.max_queued,
        "max_backlog": sampler.max_backlog,
        "samples": sampler.samples,
    }


if __name__ == "__main__":
    sys.exit(main())
