"""Train the coronary calcium model on synthetic phantoms and ship it as ONNX with a card.

    python models/training/train_calcium.py --out models/calcium      (make train-calcium)

Reproducible from the seeds; prints progress. Trains on phantoms only: not for clinical use.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from cardiogate.inference.card import file_sha256
from cardiogate.inference.engine import load_model
from cgtrain.calcium_data import PREPROCESSING, SPACING_MM, Samples, build
from cgtrain.calcium_eval import evaluate_folder, sweep
from cgtrain.unet import UNet

TRAIN_SEEDS_FROM = 1000
TEST_SEEDS_FROM = 900_000
VALIDATION_SEEDS_FROM = 800_000
LABELS = ["background", "LM", "LAD", "LCX", "RCA"]
SIZE_MULTIPLE = 16


def log(message: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {message}", flush=True)


def crop_origin(
    data: Samples, i: int, crop: int, size: int, rng: np.random.Generator, hard_fraction: float
) -> tuple[int, int]:
    """Where to crop sample ``i``: around coronary calcium where the slice has some (an
    artery drawn first, so that the short LM is seen as often as the others); else, with
    probability ``hard_fraction``, around a look-alike (aortic or valve calcium, a noise
    spike); else anywhere."""
    centre = None
    arteries = np.unique(data.y[i])
    arteries = arteries[arteries > 0]
    if len(arteries):
        pixels = np.argwhere(data.y[i] == rng.choice(arteries))
        centre = pixels[rng.integers(len(pixels))]
    elif len(data.hard[i]) and rng.random() < hard_fraction:
        centre = data.hard[i][rng.integers(len(data.hard[i]))]
    if centre is None:
        r0, c0 = rng.integers(0, size - crop + 1, size=2)
        return int(r0), int(c0)
    centre = centre + rng.integers(-crop // 3, crop // 3 + 1, 2)
    r0, c0 = np.clip(centre - crop // 2, 0, size - crop)
    return int(r0), int(c0)


def train(args: argparse.Namespace) -> UNet:
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    data = build(
        range(TRAIN_SEEDS_FROM, TRAIN_SEEDS_FROM + args.train_scans), args.size, args.slices
    )
    seconds = time.perf_counter() - started
    log(f"{len(data.x)} training slices from {args.train_scans} phantoms in {seconds:.0f} s")
    model = UNet(width=args.width)
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=args.lr, total_steps=args.steps
    )
    class_weight = torch.tensor([1.0] + [args.artery_weight] * 4)
    # Slices with coronary calcium are rare: draw them as often as the rest.
    has_calcium = data.y.reshape(len(data.y), -1).max(axis=1) > 0
    p = np.where(has_calcium, 0.5 / max(has_calcium.sum(), 1), 0.5 / max((~has_calcium).sum(), 1))
    p /= p.sum()
    size, crop = data.x.shape[-1], args.crop
    model.train()
    for step in range(1, args.steps + 1):
        idx = rng.choice(len(data.x), size=args.batch, p=p)
        xs, ys, ws = [], [], []
        for i in idx:
            r0, c0 = crop_origin(data, i, crop, size, rng, args.hard_fraction)
            xs.append(data.x[i, :, r0 : r0 + crop, c0 : c0 + crop])
            ys.append(data.y[i, r0 : r0 + crop, c0 : c0 + crop])
            ws.append(data.weight[i, r0 : r0 + crop, c0 : c0 + crop])
        x = torch.from_numpy(np.stack(xs).astype(np.float32))
        y = torch.from_numpy(np.stack(ys).astype(np.int64))
        w = torch.from_numpy(np.stack(ws).astype(np.float32))
        logits = model(x)
        loss_map = torch.nn.functional.cross_entropy(
            logits, y, weight=class_weight, reduction="none"
        )
        loss = (loss_map * w).sum() / w.sum().clamp(min=1.0)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % 50 == 0 or step == 1:
            elapsed = time.perf_counter() - started
            log(f"step {step}/{args.steps} loss {loss.item():.4f} ({elapsed:.0f} s)")
    return model


def export(model: UNet, out: Path) -> None:
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, 3, 64, 64)
    dims = {0: "batch", 2: "rows", 3: "columns"}
    torch.onnx.export(
        model,
        (dummy,),
        str(out / "model.onnx"),
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": dims, "logits": dims},
        opset_version=17,
        dynamo=False,
    )


def write_card(
    out: Path,
    args: argparse.Namespace,
    metrics: dict[str, object],
    seconds: float,
    postprocessing: dict[str, object] | None = None,
) -> None:
    card = {
        "name": "cardiogate-calcium-unet",
        "version": args.version,
        "task": "calcium",
        "description": (
            "2.5D U-Net labelling calcium pixels by coronary artery (LM, LAD, LCX, RCA) or as "
            "not coronary (bone, aortic and valve calcium, noise); the service scores the "
            "labelled pixels with the Agatston arithmetic (after Wolterink, Lessmann, de Vos)."
        ),
        "inputs": [{"name": "image", "shape": ["batch", 3, "rows", "columns"], "dtype": "float32"}],
        "outputs": [
            {"name": "logits", "shape": ["batch", 5, "rows", "columns"], "dtype": "float32"}
        ],
        "preprocessing": {**PREPROCESSING, "size_multiple": SIZE_MULTIPLE},
        "postprocessing": postprocessing or {},
        "labels": LABELS,
        "training_data": (
            f"Synthetic non-contrast cardiac CT phantoms only (cardiogate_phantoms, seeds "
            f"{TRAIN_SEEDS_FROM}-{TRAIN_SEEDS_FROM + args.train_scans - 1}: "
            f"{args.train_scans} scans, "
            f"{args.slices} slices of {args.size}x{args.size} at {SPACING_MM} mm, 3 mm increment) "
            "with random anatomy, plaques, aortic/valve calcium, bone, blur and noise. "
            "No patient data. Not for clinical use."
        ),
        "metrics": {
            **metrics,
            "test_set": "held-out synthetic phantoms never used in training, 512x512, seeded "
            "pixel spacing 0.35-0.70 mm, 40 slices at 3 mm",
            "targets": {
                "icc_total_agatston": 0.95,
                "kappa_classic_linear": 0.90,
                "lesion_sensitivity": 0.90,
                "false_positives_per_scan": 0.2,
            },
        },
        "training": {
            "steps": args.steps,
            "batch": args.batch,
            "crop": args.crop,
            "width": args.width,
            "lr": args.lr,
            "artery_weight": args.artery_weight,
            "hard_fraction": args.hard_fraction,
            "seed": args.seed,
            "seconds": round(seconds),
            "torch": torch.__version__,
            "command": "make train-calcium",
        },
        "sha256": file_sha256(out / "model.onnx"),
        "intended_use": (
            "Research and demonstration of the cardiogate pipeline on synthetic data; "
            "a template for bringing your own weights."
        ),
        "clinical_use": "not for clinical use",
        "license": "Apache-2.0",
        "authors": "cardiogate",
    }
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")


THRESHOLDS: list[float | None] = [None, 0.5, 0.6, 0.7, 0.8, 0.9]


def choose_threshold(folder: Path, val_scans: int) -> tuple[dict[str, object], dict[str, object]]:
    """The ``min_coronary_probability`` with the fewest lesion errors (misses plus false
    positives) on validation phantoms, which are neither training nor test scans."""
    seeds = range(VALIDATION_SEEDS_FROM, VALIDATION_SEEDS_FROM + val_scans)
    log(f"choosing the coronary probability threshold on {val_scans} validation phantoms")
    results = sweep(load_model(folder), seeds, THRESHOLDS)

    def errors(m: dict[str, object]) -> float:
        true, sensitivity = float(m["true_lesions"]), float(m["lesion_sensitivity"] or 0.0)
        return true * (1 - sensitivity) + float(m["false_positives_per_scan"]) * val_scans

    for t, m in results.items():
        log(f"  threshold {t}: {json.dumps(m)}")
    best = min(THRESHOLDS, key=lambda t: errors(results[t]))
    log(f"chosen: {best}")
    post: dict[str, object] = {} if best is None else {"min_coronary_probability": best}
    summary: dict[str, object] = {
        "seeds": f"{seeds.start}-{seeds.stop - 1}",
        "rule": "fewest misses + false positives",
        "min_coronary_probability": best,
        "by_threshold": {str(t): results[t] for t in THRESHOLDS},
    }
    return post, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("models/calcium"))
    parser.add_argument("--train-scans", type=int, default=150)
    parser.add_argument("--val-scans", type=int, default=30)
    parser.add_argument("--test-scans", type=int, default=50)
    parser.add_argument("--size", type=int, default=336)
    parser.add_argument("--slices", type=int, default=40)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--artery-weight", type=float, default=1.0)
    parser.add_argument("--hard-fraction", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--version", default="0.1.0")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    started = time.perf_counter()
    model = train(args)
    export(model, args.out)
    seconds = time.perf_counter() - started
    write_card(args.out, args, {}, seconds)  # a valid card so the service can load it
    post, validation = choose_threshold(args.out, args.val_scans)
    write_card(args.out, args, {}, seconds, post)
    log(f"exported; evaluating on {args.test_scans} held-out phantoms")
    metrics = evaluate_folder(args.out, range(TEST_SEEDS_FROM, TEST_SEEDS_FROM + args.test_scans))
    # The first few held-out scans again: a test re-runs exactly these and must match.
    metrics["reproduce"] = evaluate_folder(args.out, range(TEST_SEEDS_FROM, TEST_SEEDS_FROM + 8))
    metrics["validation"] = validation
    write_card(args.out, args, metrics, seconds, post)
    log(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
