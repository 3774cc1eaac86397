"""Inference benchmark: calcium analysis of a 64- and a 300-slice synthetic CT, and stenosis
analysis of a 60-frame 512x512 synthetic cine (when models/stenosis exists).

Reports the median over runs of load (DICOM read, sort, HU), model (ONNX Runtime) and
scoring, with peak RSS; then the same network in ONNX Runtime vs PyTorch eager on the same
slices in the same run, as a ratio (timing depends on the architecture, not the weights:
the PyTorch side builds the U-Net of the card's width with fresh weights and exports it).

    .venv/bin/python bench/inference.py [--models-dir models] [--runs 3]

The CPU budget (a 64-slice calcium scan in 2 s, a 60-frame cine in 3 s, end to
end on 2 cores) is checked on the CPU rows: ``budget_s`` and ``within_budget`` say it.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from cardiogate_phantoms import make_ct_series, write_series
from prometheus_client import REGISTRY

from cardiogate.analyses.ct_volume import load_ct_series
from cardiogate.inference.engine import LoadedModel, load_model
from cardiogate.inference.providers import CPU, DEFAULT_PREFERENCE
from cardiogate.tasks.calcium.analysis import analyze_ct, model_inputs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models" / "training"))

# seconds for the whole analysis on the CPU provider: (task, case size) -> budget
CPU_BUDGET_S = {("calcium", 64): 2.0, ("stenosis", 60): 3.0}


def budget(task: str, size: int, provider: str, total_s: float) -> dict[str, Any]:
    """The CPU budget for this case and whether the median total met it (CPU rows only)."""
    limit = CPU_BUDGET_S.get((task, size))
    if limit is None or provider != CPU:
        return {}
    return {"budget_s": limit, "within_budget": total_s <= limit}


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    import os
    import shutil
    import subprocess

    gpu = ""
    if shutil.which("nvidia-smi"):
        query = ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"]
        found = subprocess.run(query, capture_output=True, text=True, check=False)
        gpu = f", GPU {found.stdout.strip()}" if found.returncode == 0 else ""
    return f"{cpu}, {os.cpu_count()} cores{gpu}, Python {platform.python_version()}"


def when() -> str:
    """The date and the load average at start, printed and recorded with the figures."""
    import datetime as dt
    import os

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}, load average {load}"


def network_seconds(model: LoadedModel) -> float:
    """Seconds spent inside ONNX Runtime so far, from the service's own histogram."""
    labels = {"model": model.card.name, "provider": model.provider}
    return REGISTRY.get_sample_value("cardiogate_inference_seconds_sum", labels) or 0.0


def pipeline(
    model: LoadedModel, slices: int, runs: int, workdir: Path, cpu: LoadedModel | None
) -> dict[str, Any]:
    paths = write_series(
        make_ct_series(7, n_slices=slices, rows=512, columns=512), workdir / f"ct{slices}"
    )
    timings: dict[str, list[float]] = {
        "load": [],
        "model": [],
        "network": [],
        "scoring": [],
        "total": [],
    }
    result = None
    for _ in range(runs):
        before = network_seconds(model)
        started = time.perf_counter()
        result = analyze_ct(paths, model)
        timings["total"].append(time.perf_counter() - started)
        timings["network"].append(network_seconds(model) - before)
        for key in ("load", "model", "scoring"):
            timings[key].append(result.timings_s[key])
    assert result is not None
    row = {
        "slices": slices,
        "provider": model.provider,
        **{f"{k}_s": round(statistics.median(v), 3) for k, v in timings.items()},
        "agatston_total": result.agatston["total"],
    }
    row |= budget("calcium", slices, model.provider, row["total_s"])
    if cpu is not None:  # the same analysis on the CPU provider must agree
        on_cpu = analyze_ct(paths, cpu)
        row["agatston_total_on_cpu"] = on_cpu.agatston["total"]
        row["lesions_agree_with_cpu"] = [(x.slice_index, x.artery) for x in result.lesions] == [
            (x.slice_index, x.artery) for x in on_cpu.lesions
        ]
    return row


def onnx_vs_torch(
    model_dir: Path, provider: str, slices: int, runs: int, workdir: Path
) -> dict[str, Any]:
    """The same network in ONNX Runtime (on ``provider``) and in PyTorch eager (on the GPU
    when ONNX Runtime is on one), numpy in and out on both sides."""
    import torch

    from cgtrain.unet import UNet

    card = json.loads((model_dir / "card.json").read_text())
    width = int(card.get("training", {}).get("width", 8))
    pre = card["preprocessing"]
    volume = load_ct_series(
        write_series(make_ct_series(8, n_slices=slices, rows=512, columns=512), workdir / "cmp")
    )
    spacing = float(pre.get("pixel_spacing_mm", volume.pixel_spacing_mm[0]))
    size = int(round(512 * volume.pixel_spacing_mm[0] / spacing / 16) * 16)
    x = model_inputs(volume.hu[:, :size, :size], np.arange(slices), pre)
    net = UNet(width=width).eval()
    path = workdir / "same.onnx"
    dims = {0: "batch", 2: "rows", 3: "columns"}
    torch.onnx.export(
        net,
        (torch.zeros(1, 3, 64, 64),),
        str(path),
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": dims, "logits": dims},
        opset_version=17,
        dynamo=False,
    )
    session = ort.InferenceSession(str(path), providers=list(dict.fromkeys([provider, CPU])))
    device = "cuda" if provider != CPU and torch.cuda.is_available() else "cpu"
    net = net.to(device)
    batch = int(pre.get("batch_slices", 8))

    def run_onnx() -> None:
        for i in range(0, slices, batch):
            session.run(None, {"image": x[i : i + batch]})

    def run_torch() -> None:
        with torch.inference_mode():
            for i in range(0, slices, batch):
                net(torch.from_numpy(x[i : i + batch]).to(device)).cpu().numpy()

    run_onnx()  # first runs pick kernels (cuDNN) and allocate: not what is timed
    run_torch()

    times: dict[str, list[float]] = {"onnxruntime": [], "torch_eager": []}
    for _ in range(runs):
        for name, fn in (("onnxruntime", run_onnx), ("torch_eager", run_torch)):
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    ort_s, torch_s = (statistics.median(times[k]) for k in ("onnxruntime", "torch_eager"))
    return {
        "slices": slices,
        "input": list(x.shape[1:]),
        "onnxruntime_s": round(ort_s, 3),
        "torch_eager_s": round(torch_s, 3),
        "torch_over_onnxruntime": round(torch_s / ort_s, 2),
        "onnxruntime_provider": session.get_providers()[0],
        "torch_device": device,
        "torch_threads": torch.get_num_threads(),
    }


def stenosis(
    model_dir: Path, preference: list[str], frames: int, runs: int
) -> list[dict[str, Any]]:
    """A 60-frame 512x512 cine: decode / frame selection / model / post-processing, then the
    same network in ONNX Runtime and in PyTorch eager on the selected frames."""
    import torch
    from cardiogate_phantoms import make_xa_cine

    from cardiogate.analyses.xa_cine import load_xa_cine, select_frames
    from cardiogate.tasks.stenosis.analysis import analyze_xa, model_input
    from cgtrain.densenet import StenosisNet

    model = load_model(model_dir, preference)
    series = make_xa_cine(11, frames=frames, rows=512, columns=512)
    keys = ("decode", "frame_selection", "model", "post_processing")
    timings: dict[str, list[float]] = {k: [] for k in (*keys, "total")}
    result = None
    for _ in range(runs):
        started = time.perf_counter()
        result = analyze_xa(series.datasets, model)
        timings["total"].append(time.perf_counter() - started)
        for key in keys:
            timings[key].append(result.timings_s[key])
    assert result is not None
    pipeline_row = {
        "case": f"stenosis, {frames}-frame 512x512 cine",
        "provider": model.provider,
        **{f"{k}_s": round(statistics.median(v), 3) for k, v in timings.items()},
        "frames_used": len(result.frames_used),
        "significant": result.significant,
    }
    pipeline_row |= budget("stenosis", frames, model.provider, pipeline_row["total_s"])
    cine = load_xa_cine(series.datasets)
    size = int(model.card.preprocessing.get("input_size", 256))
    x = model_input(cine.frames[select_frames(cine)], cine.bits_stored, size)
    growth = int(model.card.training.get("growth", 12))
    net = StenosisNet(growth=growth).eval()
    path = Path(tempfile.mkdtemp()) / "same.onnx"
    dims = {0: "batch", 2: "rows", 3: "columns"}
    torch.onnx.export(
        net,
        (torch.zeros(1, 1, size, size),),
        str(path),
        input_names=["image"],
        output_names=["heatmap", "percent"],
        dynamic_axes={"image": dims, "heatmap": dims, "percent": dims},
        opset_version=17,
        dynamo=False,
    )
    session = ort.InferenceSession(str(path), providers=list(dict.fromkeys([model.provider, CPU])))
    device = "cuda" if model.provider != CPU and torch.cuda.is_available() else "cpu"
    net = net.to(device)

    def run_onnx() -> None:
        session.run(None, {"image": x})

    def run_torch() -> None:
        with torch.inference_mode():
            for out in net(torch.from_numpy(x).to(device)):
                out.cpu().numpy()

    run_onnx()
    run_torch()
    times: dict[str, list[float]] = {"onnxruntime": [], "torch_eager": []}
    for _ in range(max(runs, 5)):
        for name, fn in (("onnxruntime", run_onnx), ("torch_eager", run_torch)):
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    ort_s, torch_s = (statistics.median(times[k]) for k in ("onnxruntime", "torch_eager"))
    comparison_row = {
        "case": f"stenosis network on {len(x)} frames of {size}x{size}",
        "onnxruntime_s": round(ort_s, 4),
        "torch_eager_s": round(torch_s, 4),
        "torch_over_onnxruntime": round(torch_s / ort_s, 2),
        "onnxruntime_provider": session.get_providers()[0],
        "torch_device": device,
    }
    return [pipeline_row, comparison_row]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--slices", default="64,300", help="scan sizes to time, comma-separated")
    parser.add_argument(
        "--providers",
        default=",".join(DEFAULT_PREFERENCE),
        help="ONNX Runtime providers in order of preference (as CARDIOGATE_PROVIDERS)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    model_dir = args.models_dir / "calcium"
    started = when()
    print(f"machine: {machine()}")
    print(f"date (UTC) and load at start: {started}")
    print(f"onnxruntime {ort.__version__}; available providers {ort.get_available_providers()}")
    model = load_model(model_dir, args.providers.split(","))
    cpu = load_model(model_dir, [CPU]) if model.provider != CPU else None
    results: dict[str, Any] = {
        "machine": machine(),
        "started": started,
        "pipeline": [],
        "comparison": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sizes = [int(n) for n in args.slices.split(",")]
        for slices in sizes:
            row = pipeline(model, slices, args.runs, work, cpu)
            results["pipeline"].append(row)
            print(json.dumps(row))
        for slices in sizes[:1]:
            row = onnx_vs_torch(model_dir, model.provider, slices, args.runs, work)
            results["comparison"].append(row)
            print(json.dumps(row))
    if (args.models_dir / "stenosis" / "card.json").exists():
        rows = stenosis(args.models_dir / "stenosis", args.providers.split(","), 60, args.runs)
        results["stenosis"] = rows
        for row in rows:
            print(json.dumps(row))
    results["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(f"peak RSS {results['peak_rss_mib']} MiB")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
