"""Train the coronary calcium model on synthetic phantoms and ship it as ONNX with a card.

    python models/training/train_calcium.py --out models/calcium      (make train-calcium)
    python models/training/train_calcium.py --family b --out models/calcium-b

``--family`` picks the phantoms (a: ``make_cardiac_phantom``, b: ``make_ct_phantom_b``) for
training, threshold validation and the card's test figures, each on its fixed seed range
(:mod:`cgtrain.families`).

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
from cgtrain.families import describe, seeds
from cgtrain.unet import UNet

LABELS = ["background", "LM", "LAD", "LCX", "RCA"]
# Slices of a validation or test scan: A as its card has always said; B the whole tree at
# the family's own thickness (40 slices of 0.6 mm would hold little of it).
EVAL_SLICES: dict[str, int | None] = {"a": 40, "b": None}
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


def families(args: argparse.Namespace) -> list[str]:
    """The families trained on: ``a``, ``b``, or ``ab`` (half the scans from each)."""
    return list(args.family)


def training_seeds(args: argparse.Namespace) -> list[tuple[str, range]]:
    """Each training family with its first seeds, ``--train-scans`` split evenly."""
    chosen = families(args)
    share = [args.train_scans // len(chosen)] * len(chosen)
    share[0] += args.train_scans - sum(share)
    return [
        (family, seeds("calcium", family).first("training", n))
        for family, n in zip(chosen, share, strict=True)
    ]


def labels(args: argparse.Namespace) -> list[str]:
    return [*LABELS, "AV"] if args.aortic_valve else LABELS


def train(args: argparse.Namespace) -> UNet:
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    parts = [
        build(training, args.size, args.slices, family, args.aortic_valve)
        for family, training in training_seeds(args)
    ]
    data = Samples(
        np.concatenate([part.x for part in parts]),
        np.concatenate([part.y for part in parts]),
        np.concatenate([part.weight for part in parts]),
        [h for part in parts for h in part.hard],
    )
    seconds = time.perf_counter() - started
    log(f"{len(data.x)} training slices from {args.train_scans} phantoms in {seconds:.0f} s")
    model = UNet(width=args.width, classes=len(labels(args)))
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=args.lr, total_steps=args.steps
    )
    class_weight = torch.tensor([1.0] + [args.artery_weight] * (len(labels(args)) - 1))
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


def training_data(args: argparse.Namespace) -> str:
    """The card's account of the training phantoms."""
    grid = f"{args.slices} slices of {args.size}x{args.size} at {SPACING_MM} mm"
    parts = []
    for family, training in training_seeds(args):
        if family == "a":
            parts.append(
                f"family A (cardiogate_phantoms.make_cardiac_phantom, seeds {describe(training)}: "
                f"{len(training)} scans, {grid}, 3 mm increment; random anatomy, plaques, "
                "aortic/valve calcium, bone, blur and noise)"
            )
        else:
            parts.append(
                f"family B (cardiogate_phantoms.family_b.make_ct_phantom_b, seeds "
                f"{describe(training)}: {len(training)} scans, {grid}; varied body size, "
                "kernels, slice thickness, noise, valve, aortic wall, mitral annulus, bone, metal)"
            )
    valve = " Aortic valve calcium is its own class (AV)." if args.aortic_valve else ""
    return (
        f"Synthetic non-contrast cardiac CT phantoms only: {' and '.join(parts)}.{valve} "
        "No patient data. Not for clinical use."
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
            {
                "name": "logits",
                "shape": ["batch", len(labels(args)), "rows", "columns"],
                "dtype": "float32",
            }
        ],
        "preprocessing": {**PREPROCESSING, "size_multiple": SIZE_MULTIPLE},
        "postprocessing": postprocessing or {},
        "labels": labels(args),
        "training_data": training_data(args),
        "metrics": {
            **metrics,
            "test_set": (
                "held-out family-A phantoms never used in training, 512x512, seeded "
                "pixel spacing 0.35-0.70 mm, 40 slices at 3 mm"
                if families(args)[0] == "a"
                else "held-out family-B phantoms never used in training, 512x512, the whole "
                "coronary tree at the family's own spacing, thickness, kernel and noise"
            ),
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
            "family": args.family,
            "seconds": round(seconds),
            "torch": torch.__version__,
            "command": "make train-calcium"
            if args.family == "ab"
            else f"train_calcium.py --family {args.family}",
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


def choose_threshold(
    folder: Path, val_scans: int, families: list[str]
) -> tuple[dict[str, object], dict[str, object]]:
    """The ``min_coronary_probability`` with the fewest lesion errors (misses plus false
    positives) on validation phantoms of each trained family (neither training nor test
    scans; ``val_scans`` split evenly)."""
    model = load_model(folder)
    per_family = max(1, val_scans // len(families))
    results: dict[str, dict[float | None, dict[str, object]]] = {}
    for family in families:
        validation = seeds("calcium", family).first("validation", per_family)
        log(f"choosing the coronary probability threshold on {per_family} family-{family} scans")
        results[family] = sweep(
            model, validation, THRESHOLDS, family=family, n_slices=EVAL_SLICES[family]
        )

    def errors(m: dict[str, object]) -> float:
        true, sensitivity = float(m["true_lesions"]), float(m["lesion_sensitivity"] or 0.0)
        return true * (1 - sensitivity) + float(m["false_positives_per_scan"]) * per_family

    for family, by_threshold in results.items():
        for t, m in by_threshold.items():
            log(f"  family {family}, threshold {t}: {json.dumps(m)}")
    best = min(THRESHOLDS, key=lambda t: sum(errors(r[t]) for r in results.values()))
    log(f"chosen: {best}")
    post: dict[str, object] = {} if best is None else {"min_coronary_probability": best}
    summary: dict[str, object] = {
        "seeds": {
            family: describe(seeds("calcium", family).first("validation", per_family))
            for family in families
        },
        "rule": "fewest misses + false positives",
        "min_coronary_probability": best,
        "by_threshold": {
            family: {str(t): r[t] for t in THRESHOLDS} for family, r in results.items()
        },
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
    parser.add_argument(
        "--family",
        choices=("a", "b", "ab"),
        default="a",
        help="phantom family to train on (ab: half the scans from each); tested on each",
    )
    parser.add_argument(
        "--aortic-valve",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a sixth class for aortic valve calcium, scored apart from the coronaries",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    started = time.perf_counter()
    model = train(args)
    export(model, args.out)
    seconds = time.perf_counter() - started
    write_card(args.out, args, {}, seconds)  # a valid card so the service can load it
    post, validation = choose_threshold(args.out, args.val_scans, families(args))
    write_card(args.out, args, {}, seconds, post)
    # The card's own figures are on the first family's test set; evaluate_cross_family.py
    # measures every family (make train-evaluate).
    first = families(args)[0]
    log(f"exported; evaluating on {args.test_scans} held-out family-{first} phantoms")
    test = seeds("calcium", first)
    where = {"family": first, "n_slices": EVAL_SLICES[first]}
    metrics = evaluate_folder(args.out, test.first("test", args.test_scans), **where)
    # The first few held-out scans again: a test re-runs exactly these and must match.
    metrics["reproduce"] = evaluate_folder(args.out, test.first("test", 8), **where)
    metrics["validation"] = validation
    write_card(args.out, args, metrics, seconds, post)
    log(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
