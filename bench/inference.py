"""Inference benchmark: calcium analysis of a 64- and a 300-slice synthetic CT.

Reports the median over runs of load (DICOM read, sort, HU), model (ONNX Runtime) and
scoring, with peak RSS; then the same network in ONNX Runtime vs PyTorch eager on the same
slices in the same run, as a ratio (timing depends on the architecture, not the weights:
the PyTorch side builds the U-Net of the card's width with fresh weights and exports it).

    .venv/bin/python bench/inference.py [--models-dir models] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from cardiogate.analyses.calcium_ct import analyze_ct, model_inputs
from cardiogate.analyses.ct_volume import load_ct_series
from cardiogate.inference.engine import load_model
from cardiogate.synthetic import make_ct_series, write_series

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models" / "training"))


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

    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def pipeline(model_dir: Path, slices: int, runs: int, workdir: Path) -> dict[str, Any]:
    model = load_model(model_dir)
    paths = write_series(
        make_ct_series(7, n_slices=slices, rows=512, columns=512), workdir / f"ct{slices}"
    )
    timings: dict[str, list[float]] = {"load": [], "model": [], "scoring": [], "total": []}
    result = None
    for _ in range(runs):
        started = time.perf_counter()
        result = analyze_ct(paths, model)
        timings["total"].append(time.perf_counter() - started)
        for key in ("load", "model", "scoring"):
            timings[key].append(result.timings_s[key])
    assert result is not None
    return {
        "slices": slices,
        "provider": model.provider,
        **{f"{k}_s": round(statistics.median(v), 3) for k, v in timings.items()},
        "agatston_total": result.agatston["total"],
    }


def onnx_vs_torch(model_dir: Path, slices: int, runs: int, workdir: Path) -> dict[str, Any]:
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
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batch = int(pre.get("batch_slices", 8))

    def run_onnx() -> None:
        for i in range(0, slices, batch):
            session.run(None, {"image": x[i : i + batch]})

    def run_torch() -> None:
        with torch.inference_mode():
            for i in range(0, slices, batch):
                net(torch.from_numpy(x[i : i + batch]))

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
        "torch_threads": torch.get_num_threads(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    model_dir = args.models_dir / "calcium"
    print(f"machine: {machine()}")
    results: dict[str, Any] = {"pipeline": [], "comparison": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for slices in (64, 300):
            row = pipeline(model_dir, slices, args.runs, work)
            results["pipeline"].append(row)
            print(json.dumps(row))
        for slices in (64,):
            row = onnx_vs_torch(model_dir, slices, args.runs, work)
            results["comparison"].append(row)
            print(json.dumps(row))
    results["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(f"peak RSS {results['peak_rss_mib']} MiB")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
