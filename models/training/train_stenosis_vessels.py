"""Teach the shipped stenosis model to name the vessel: train a vessel head on its frozen
features and splice it into its ONNX graph.

    python models/training/train_stenosis_vessels.py --model models/stenosis
    (make train-stenosis-vessels)

The shipped network (``heatmap``, ``percent``) is not retrained: it runs frozen in
onnxruntime to give the head its 1/4-resolution features, and the exported head is added
to the same graph next to it, so ``heatmap`` and ``percent`` stay bit for bit what they were
(checked here on held-out frames). The head (:mod:`cgtrain.vessel_head`) is trained on the
peak frames of seeded synthetic cines with labels from the phantom's truth
(:mod:`cgtrain.vessel_data`), then evaluated on held-out cines through the service's own
analysis (:mod:`cgtrain.vessel_eval`). The card keeps its detection figures and gains the
new outputs, classes and ``metrics.vessel_identification``. Synthetic data only: not for
clinical use.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch.nn import functional as nnf

from cardiogate.inference.card import file_sha256
from cardiogate.inference.engine import load_model
from cgtrain.vessel_data import INPUT_SIZE, VESSEL_CLASSES, Backbone, Pool, build_pool, cine_sample
from cgtrain.vessel_eval import evaluate_vessels, frame_accuracy
from cgtrain.vessel_head import VesselHead, export_head, splice

TRAIN_SEED = 600_000
VALIDATION_CINES = 100
TEST_SEEDS_FROM = 910_000
HEAD_OUTPUTS = ("vessel", "position")


def log(message: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {message}", flush=True)


def base_graph(path: Path) -> onnx.ModelProto:
    """The shipped graph without a vessel head (so that a re-run starts from the same net)."""
    model = onnx.load(str(path))
    graph = model.graph
    kept_nodes = [n for n in graph.node if not n.name.startswith("vessel_head/")]
    kept_inits = [i for i in graph.initializer if not i.name.startswith("vessel_head/")]
    kept_outputs = [o for o in graph.output if o.name not in HEAD_OUTPUTS]
    for field, kept in (("node", kept_nodes), ("initializer", kept_inits)):
        graph.ClearField(field)
        getattr(graph, field).extend(kept)
    graph.ClearField("output")
    graph.output.extend(kept_outputs)
    return model


def batch_of(pool: Pool, idx: np.ndarray[Any, Any]) -> dict[str, torch.Tensor]:
    features = torch.from_numpy(pool.features[idx].astype(np.float32))
    return {
        "top": features[:, :48],
        "features": features[:, 48:],
        "vessel": torch.from_numpy(pool.vessel[idx].astype(np.int64)),
        "position": torch.from_numpy(pool.position[idx]),
    }


def loss_of(
    head: VesselHead, batch: dict[str, torch.Tensor], weights: torch.Tensor
) -> torch.Tensor:
    logits, position = head(batch["top"], batch["features"])
    target = batch["vessel"]
    ce = nnf.cross_entropy(logits, target, weight=weights, ignore_index=-1)
    on = target > 0
    along = (
        (position[:, 0] - batch["position"]).abs()[on].mean()
        if bool(on.any())
        else position.sum() * 0.0
    )
    return ce + 4.0 * along


def train(pool: Pool, args: argparse.Namespace) -> VesselHead:
    torch.manual_seed(args.seed)
    rng = np.random.default_rng([TRAIN_SEED, args.seed])
    head = VesselHead()
    weights = torch.from_numpy(pool.class_weights())
    log(f"class weights {dict(zip(VESSEL_CLASSES, np.round(weights.numpy(), 2), strict=True))}")
    optimiser = torch.optim.AdamW(head.parameters(), lr=args.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=args.lr, total_steps=args.steps
    )
    started = time.perf_counter()
    head.train()
    for step in range(1, args.steps + 1):
        loss = loss_of(head, batch_of(pool, rng.integers(0, len(pool.vessel), args.batch)), weights)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % 50 == 0 or step == 1:
            elapsed = time.perf_counter() - started
            log(f"step {step}/{args.steps} loss {loss.item():.4f} ({elapsed:.0f} s)")
    head.eval()
    return head


def validate(head: VesselHead, pool: Pool) -> dict[str, float]:
    with torch.no_grad():
        logits = [
            head(b["top"], b["features"])[0].numpy()
            for b in (
                batch_of(pool, np.arange(i, min(i + 16, len(pool.vessel))))
                for i in range(0, len(pool.vessel), 16)
            )
        ]
    return {k: round(v, 4) for k, v in frame_accuracy(np.concatenate(logits), pool.vessel).items()}


def check_unchanged(old: onnx.ModelProto, new: onnx.ModelProto, seeds: range) -> float:
    """Largest difference of heatmap/percent between the old and the new graph on frames."""
    sessions = [
        ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        for m in (old, new)
    ]
    x = np.stack([cine_sample(seed)[0] for seed in seeds])
    worst = 0.0
    before = sessions[0].run(["heatmap", "percent"], {"image": x})
    after = sessions[1].run(["heatmap", "percent"], {"image": x})
    for a, b in zip(before, after, strict=True):
        worst = max(worst, float(np.abs(a - b).max()))
    return worst


def update_card(
    folder: Path, args: argparse.Namespace, metrics: dict[str, Any], seconds: float
) -> None:
    path = folder / "card.json"
    card = json.loads(path.read_text())
    card["version"] = args.version
    card["description"] = (
        "Compact DenseNet (CathNet's family) reading angiogram frames: a heatmap of significant "
        "(>= 50% diameter) stenoses and the % diameter stenosis at each place, trained with a "
        "three-level curriculum (segments, branched segments, whole trees); plus a vessel head "
        "on its frozen features naming the vessel at each place (17 classes, background first) "
        "and the fraction of that vessel's arc length from its origin. Synthetic data only, not "
        "for clinical use."
    )
    dims = ["batch", 1, "rows/4", "columns/4"]
    card["outputs"] = [
        {"name": "heatmap", "shape": dims, "dtype": "float32"},
        {"name": "percent", "shape": dims, "dtype": "float32"},
        {
            "name": "vessel",
            "shape": ["batch", len(VESSEL_CLASSES), "rows/4", "columns/4"],
            "dtype": "float32",
        },
        {"name": "position", "shape": dims, "dtype": "float32"},
    ]
    card["postprocessing"]["vessel_classes"] = list(VESSEL_CLASSES)
    card["postprocessing"]["position"] = "fraction of the vessel's arc length from its origin"
    card["training_data"] = (
        card["training_data"].split(" Vessel head:")[0].split(" No patient data.")[0]
        + f" Vessel head: peak frames of {args.train_cines} synthetic cines "
        f"(cardiogate_phantoms.make_xa_cine, seeds {TRAIN_SEED}-"
        f"{TRAIN_SEED + args.train_cines - 1}, "
        f"{INPUT_SIZE} px), labels from the phantom's vessel centrelines. No patient data. "
        "Not for clinical use."
    )
    card["metrics"]["vessel_identification"] = metrics
    card["training"]["vessel_head"] = {
        "frozen": "backbone and heatmap/percent head (run in onnxruntime, graph unchanged)",
        "input": "1/4 features: top-down sum and heatmap/percent head ReLU (96 channels)",
        "architecture": "U-Net to 1/32 with dilated 3x3 convs (cgtrain.vessel_head.VesselHead)",
        "loss": (
            "class-weighted cross-entropy (inverse sqrt frequency) "
            "+ 4 x L1 of position on vessel cells"
        ),
        "train_cines": args.train_cines,
        "steps": args.steps,
        "batch": args.batch,
        "lr": args.lr,
        "seed": args.seed,
        "seconds": round(seconds),
        "machine": "2-core VM, CPU torch",
        "torch": torch.__version__,
        "command": "make train-stenosis-vessels",
    }
    card["sha256"] = file_sha256(folder / "model.onnx")
    path.write_text(json.dumps(card, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=Path("models/stenosis"))
    parser.add_argument("--train-cines", type=int, default=2400)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--test-cines", type=int, default=240)
    parser.add_argument("--version", default="0.2.0")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    started = time.perf_counter()
    base = base_graph(args.model / "model.onnx")
    work = Path(tempfile.mkdtemp(prefix="stenosis-vessels-"))
    onnx.save(base, str(work / "base.onnx"))
    backbone = Backbone(work / "base.onnx")
    train_seeds = range(TRAIN_SEED, TRAIN_SEED + args.train_cines)
    pool = build_pool(backbone, train_seeds, workers=args.workers)
    val_from = TRAIN_SEED + args.train_cines
    val = build_pool(backbone, range(val_from, val_from + VALIDATION_CINES), workers=args.workers)
    elapsed = time.perf_counter() - started
    log(f"features of {args.train_cines} + {VALIDATION_CINES} cines in {elapsed:.0f} s")
    head = train(pool, args)
    log(f"validation (cells of {VALIDATION_CINES} held-out frames): {validate(head, val)}")
    export_head(head, work / "head.onnx")
    merged = splice(base, onnx.load(str(work / "head.onnx")), backbone.taps)
    diff = check_unchanged(base, merged, range(TEST_SEEDS_FROM, TEST_SEEDS_FROM + 8))
    if diff != 0.0:
        raise SystemExit(f"heatmap/percent changed by up to {diff} after the splice")
    seconds = time.perf_counter() - started
    folder = work / "shipped"
    shutil.copytree(args.model, folder)
    onnx.save(merged, str(folder / "model.onnx"))
    update_card(folder, args, {}, seconds)
    seeds = range(TEST_SEEDS_FROM, TEST_SEEDS_FROM + args.test_cines)
    metrics = evaluate_vessels(load_model(folder, ["CPUExecutionProvider"]), seeds)
    log(f"vessel identification: {json.dumps(metrics)}")
    shutil.copy(folder / "model.onnx", args.model / "model.onnx")
    update_card(args.model, args, metrics, seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
