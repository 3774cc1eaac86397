"""End-to-end turnaround on the CPU: last instance received -> every result acknowledged.

A real Orthanc and a real ``cardiogate serve`` (this checkout, the shipped models in
``models/`` on the ONNX Runtime CPU provider, delivering to that Orthanc) run on loopback.
The bench sends, one study at a time and waiting for each, a 64-slice 512x512 synthetic
calcium CT and a 60-frame 512x512 XA cine (the sizes of bench/inference.py), ``--runs``
times each, interleaved, after ``--warmup`` unmeasured runs of each. Every run is a copy of
the same study under new UIDs, so the service does the whole work each time.

Per run, on one clock (the service's timestamps are UTC wall-clock on the same machine):
the last C-STORE response (seen by the sender), the series complete (the quiet period,
``CARDIOGATE_QUIET_SECONDS``, set explicitly), the job started and reported, and
delivered: the job timeline's ``delivered`` event (the last result object acknowledged by
Orthanc), confirmed by Orthanc's REST API listing every result object in the study.

Reported, median and p95 over the runs: (a) last instance -> delivered, (b) the same less
the quiet period, (c) the model time from the job result's ``timings_s`` and the network
time inside ONNX Runtime (``cardiogate_inference_seconds``), with the ratios to the
published anchors: de Vos et al., under 0.3 s per calcium scan for the network; a hospital
AI orchestrator's 2.8-minute (168 s) average end-to-end.

    .venv/bin/python bench/turnaround.py [--runs 5] [--warmup 1] [--quiet 2]
        [--data DIR] [--json bench/results/turnaround.json] [--record]
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import (
    REPO,
    api,
    base_series,
    c_store,
    copy_study,
    end_to_end_parser,
    epoch,
    machine,
    network_seconds,
    orthanc_has,
    print_machine,
    serve_settings,
    start_cardiogate,
    start_orthanc,
    stop_cardiogate,
    summary,
    write_json,
)
from orthanc import OrthancPeer
from peers import ServeProcess

ANCHOR_NETWORK_S = 0.3  # de Vos et al.: under 0.3 s per calcium scan, the network on a GPU
ANCHOR_END_TO_END_S = 2.8 * 60  # a hospital AI orchestrator: 2.8 min average end-to-end
PHASES = ("to_complete_s", "queued_s", "analysis_s", "delivery_s")


def wait_delivered(server: ServeProcess, SeriesInstanceUID: str, timeout: float) -> int:
    """The series' job id once it is delivered; raises on failed, ignored or timeout."""
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        job = api(server, f"/api/v1/series/{SeriesInstanceUID}").get("job")
        state = job and job["state"]
        if state == "delivered":
            return int(job["id"])
        if state in ("failed", "ignored"):
            raise RuntimeError(f"job {job['id']} {state}: {job['reason']}")
        time.sleep(0.2)
    raise RuntimeError(f"series not delivered in {timeout} s (job state {state})")


def one_run(
    server: ServeProcess,
    orthanc: OrthancPeer,
    case: str,
    paths: list[Path],
    tag: str,
    work: Path,
    quiet_s: float,
) -> dict[str, Any]:
    files, uids = copy_study(paths, work / tag, tag)
    before = sum(network_seconds(server).values())
    sent = time.time()
    last = c_store(server.dicom_port, files)
    job_id = wait_delivered(server, uids["SeriesInstanceUID"], timeout=900)
    job = api(server, f"/api/v1/jobs/{job_id}")
    series = api(server, f"/api/v1/series/{uids['SeriesInstanceUID']}")
    network = sum(network_seconds(server).values()) - before
    at = {e["event"]: epoch(e["at"]) for e in job["timeline"]}
    objects = {o["SOPInstanceUID"] for o in job["objects"]}
    if not objects or any(o["state"] != "sent" for o in job["objects"]):
        raise RuntimeError(f"job {job_id}: result objects not all sent: {job['objects']}")
    if not orthanc_has(orthanc, uids["StudyInstanceUID"], objects):
        raise RuntimeError(f"job {job_id} delivered but Orthanc lacks some of {objects}")
    complete = epoch(series["completed_at"])
    timings = job["result"]["timings_s"]
    shutil.rmtree(work / tag, ignore_errors=True)
    return {
        "case": case,
        "tag": tag,
        "job_id": job_id,
        "instances": len(files),
        "result_objects": len(objects),
        "confirmed_in_orthanc": True,
        "send_s": round(last - sent, 3),
        "to_complete_s": round(complete - last, 3),
        "queued_s": round(at["started"] - complete, 3),
        "analysis_s": round(at["reported"] - at["started"], 3),
        "delivery_s": round(at["delivered"] - at["reported"], 3),
        "last_instance_to_delivered_s": round(at["delivered"] - last, 3),
        "less_quiet_s": round(at["delivered"] - last - quiet_s, 3),
        # started -> reported beyond the analysis' own timings: the SR, SEG and key image,
        # writing them to the outbox, and the job's bookkeeping
        "reports_s": round(at["reported"] - at["started"] - sum(timings.values()), 3),
        "model_s": timings["model"],
        "timings_s": timings,
        "network_s": round(network, 4),
        "provider": job["provider"],
        "model": f"{job['model_name']} {job['model_version']}",
    }


def summarize(rows: list[dict[str, Any]], case: str) -> dict[str, Any]:
    mine = [r for r in rows if r["case"] == case]
    keys = (
        "last_instance_to_delivered_s",
        "less_quiet_s",
        "model_s",
        "network_s",
        "reports_s",
        *PHASES,
    )
    out: dict[str, Any] = {"case": case, "runs": len(mine), "model": mine[0]["model"]}
    out.update({k: summary([float(r[k]) for r in mine]) for k in keys})
    e2e = out["last_instance_to_delivered_s"]["median"]
    out["vs_anchor_end_to_end_168s"] = round(e2e / ANCHOR_END_TO_END_S, 4)
    if case == "calcium":
        out["vs_anchor_network_0_3s"] = round(out["network_s"]["median"] / ANCHOR_NETWORK_S, 2)
    return out


def print_report(summaries: list[dict[str, Any]], quiet_s: float, settings: dict[str, str]) -> None:
    print(
        f"\n## Turnaround, one study at a time, CPU provider; quiet period {quiet_s:g} s, "
        f"assembler poll {settings.get('CARDIOGATE_ASSEMBLER_POLL_SECONDS', '1.0 (default)')} s, "
        f"delivery poll {settings.get('CARDIOGATE_DELIVERY_POLL_SECONDS', '1.0 (default)')} s\n"
    )
    print(
        "| case | runs | last instance -> delivered, median / p95 | less quiet period "
        "| model (timings_s) | network (ONNX Runtime) | vs 168 s (2.8 min) |"
    )
    print("|---|---|---|---|---|---|---|")
    for s in summaries:
        a, b, m, n = (
            s[k] for k in ("last_instance_to_delivered_s", "less_quiet_s", "model_s", "network_s")
        )
        print(
            f"| {s['case']} | {s['runs']} | {a['median']:.2f} / {a['p95']:.2f} s "
            f"| {b['median']:.2f} / {b['p95']:.2f} s | {m['median']:.2f} / {m['p95']:.2f} s "
            f"| {n['median']:.3f} / {n['p95']:.3f} s | {s['vs_anchor_end_to_end_168s']:.3f} |"
        )
    print(
        "\nWhere the time goes (medians): last instance -> series complete (quiet period + "
        "assembler poll) | complete -> job started | started -> reported (analysis, SR/SEG/"
        "key image) | reported -> delivered (outbox + C-STORE to Orthanc)\n"
    )
    for s in summaries:
        parts = " | ".join(f"{p.removesuffix('_s')} {s[p]['median']:.2f} s" for p in PHASES)
        print(
            f"- {s['case']}: {parts} (of the analysis, {s['reports_s']['median']:.2f} s "
            "outside timings_s: SR/SEG/key image and bookkeeping)"
        )
    for s in summaries:
        if "vs_anchor_network_0_3s" in s:
            print(
                f"\n- calcium network on the CPU, median {s['network_s']['median']:.3f} s: "
                f"{s['vs_anchor_network_0_3s']:.2f} x the 0.3 s of de Vos et al. (a GPU figure)"
            )


def main(argv: list[str] | None = None) -> int:
    parser = end_to_end_parser(__doc__.split("\n\n")[0], "turnaround")
    parser.add_argument("--runs", type=int, default=5, help="measured runs per study (5)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured runs first (1)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be >= 1 and --warmup >= 0")

    m = machine()
    print_machine(m)
    settings = serve_settings(args.quiet)
    rows: list[dict[str, Any]] = []
    warm: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cardiogate-turnaround-") as tmp_name:
        tmp = Path(tmp_name)
        ct, xa = base_series(args.data or tmp / "series", args.ct_slices, args.xa_frames)
        orthanc = start_orthanc(tmp / "orthanc")
        try:
            server, env = start_cardiogate(tmp, orthanc, settings)
            try:
                plan = [("warmup", i) for i in range(args.warmup)]
                plan += [("run", i) for i in range(1, args.runs + 1)]
                for kind, i in plan:
                    for case, paths in (("calcium", ct), ("stenosis", xa)):
                        row = one_run(
                            server, orthanc, case, paths, f"{kind}{i}-{case}", tmp, args.quiet
                        )
                        (warm if kind == "warmup" else rows).append(row)
                        print(
                            f"  {kind} {i} {case:8s} last instance -> delivered "
                            f"{row['last_instance_to_delivered_s']:6.2f} s  model "
                            f"{row['model_s']:5.2f} s  network {row['network_s']:6.3f} s  "
                            f"({row['result_objects']} objects in Orthanc)",
                            flush=True,
                        )
            finally:
                rc = stop_cardiogate(server)
                if rc != 0:
                    print(f"WARNING: cardiogate exited {rc}:\n{server.log()[-3000:]}")
        finally:
            orthanc.stop()

    summaries = [summarize(rows, case) for case in ("calcium", "stenosis")]
    print_machine(m)
    print_report(summaries, args.quiet, settings)
    payload = {
        "machine": m,
        "config": {
            "runs": args.runs,
            "warmup": args.warmup,
            "quiet_seconds": args.quiet,
            "ct": f"{args.ct_slices} slices 512x512, 16-bit",
            "xa": f"{args.xa_frames} frames 512x512, 8-bit, one multi-frame instance",
            "serve_settings": settings,
            "listener_processes": env.get("CARDIOGATE_LISTENER_PROCESSES", "default"),
            "anchors": {
                "network_per_calcium_scan_s": ANCHOR_NETWORK_S,
                "end_to_end_average_s": ANCHOR_END_TO_END_S,
            },
        },
        "summary": summaries,
        "runs": rows,
        "warmup_runs": warm,
    }
    record = None
    if args.record:
        record = REPO / "bench" / "records" / f"turnaround-cpu-{m['date_utc'][:10]}.json"
    write_json(payload, args.json, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
