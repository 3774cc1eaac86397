"""Train the stenosis model on synthetic angiograms, with and without the curriculum.

    python models/training/train_stenosis.py --out models/stenosis      (make train-stenosis)

Two runs with the same data budget (``--images``) and the same number of steps:

- **curriculum**: level 1 (short straight segments, 64 px), then level 2 (longer curved
  segments with a branch, 128 px), then level 3 (whole-tree frames, 256 px), a fifth of the
  images at level 1, three tenths at level 2, half at level 3; each stage keeps replaying a
  little of the earlier ones;
- **level 3 only**: every image a whole-tree frame.

With ``--family b`` the whole-tree level is frames of family B cines instead
(``cardiogate_phantoms.family_b.xa.make_xa_cine_b``, training seeds of
:mod:`cgtrain.families`, ``--frames-per-cine`` frames each as the service picks and resizes
them, targets from the truth's per-frame positions: :mod:`cgtrain.stenosis_b_data`); the
curriculum arm keeps levels 1 and 2, the level-3 arm is then family B frames only, and
both are tested on family B's held-out cines.

Both are evaluated on the same held-out synthetic cines through the service's own
analysis (``cardiogate.tasks.stenosis.analysis.analyze_xa``); the curriculum model is shipped
(whichever way the comparison goes, the card reports both). Synthetic data only: not for
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
import torch
from cardiogate_phantoms import curriculum_sample
from torch.nn import functional as nnf

from cardiogate.inference.card import file_sha256
from cgtrain.densenet import StenosisNet
from cgtrain.families import describe, seeds
from cgtrain.stenosis_b_data import Frames, build, lesion_targets
from cgtrain.stenosis_eval import evaluate_folder

SIZES = {1: 64, 2: 128, 3: 256}
FRAME_SIZE = 256  # the model sees 512-pixel frames halved; patches at that scale
STRIDE = 4
TRAIN_SEED = 7_000


PERCENT_OUTPUT = (
    "the network's estimate of % diameter stenosis; the service measures %DS QCA-style "
    "from the lumen profile and uses this only where the lumen cannot be measured"
)


def log(message: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {message}", flush=True)


class Pool:
    """Pre-generated samples of one level: images, heatmap, percent targets and masks."""

    def __init__(self, frames: Frames) -> None:
        self.x, self.heat, self.percent = frames.x, frames.heat, frames.percent
        self.mask, self.label = frames.mask, frames.label
        self.n = len(frames.x)

    @classmethod
    def curriculum(cls, level: int, n: int, rng: np.random.Generator) -> Pool:
        """``n`` curriculum samples of ``level`` (family A's image model)."""
        size = SIZES[level]
        cells = size // STRIDE
        x = np.zeros((n, 1, size, size), dtype=np.float16)
        heat = np.zeros((n, 1, cells, cells), dtype=np.float16)
        percent = np.zeros((n, 1, cells, cells), dtype=np.float16)
        mask = np.zeros((n, 1, cells, cells), dtype=np.bool_)
        label = np.zeros(n, dtype=np.float32)
        for i in range(n):
            sample = curriculum_sample(level, rng, size, frame_size=FRAME_SIZE)
            x[i, 0] = sample.image
            label[i] = float(sample.significant)
            heat[i, 0], percent[i, 0], mask[i, 0] = lesion_targets(sample.lesion_points(), cells)
        return cls(Frames(x, heat, percent, mask, label, np.zeros(n, dtype=np.int64)))

    def batch(self, rng: np.random.Generator, size: int) -> dict[str, torch.Tensor]:
        idx = rng.integers(0, self.n, size=size)
        x = self.x[idx].astype(np.float32)
        flips = rng.integers(0, 4, size=size)  # vessels run every way: flip for free data
        out = {"x": x, "heat": self.heat[idx], "percent": self.percent[idx], "mask": self.mask[idx]}
        for key, value in out.items():
            value = value.copy()
            value[flips % 2 == 1] = value[flips % 2 == 1][..., ::-1]
            value[flips >= 2] = value[flips >= 2][..., ::-1, :]
            out[key] = value
        return {
            "x": torch.from_numpy(np.ascontiguousarray(out["x"], dtype=np.float32)),
            "heat": torch.from_numpy(np.ascontiguousarray(out["heat"], dtype=np.float32)),
            "percent": torch.from_numpy(np.ascontiguousarray(out["percent"], dtype=np.float32)),
            "mask": torch.from_numpy(np.ascontiguousarray(out["mask"])),
            "label": torch.from_numpy(self.label[idx]),
        }


def loss_of(model: StenosisNet, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    logits, percent = model(batch["x"])
    heat = batch["heat"]
    weight = 1.0 + 20.0 * heat  # lesion centres are a few cells of thousands
    dense = nnf.binary_cross_entropy_with_logits(logits, heat, weight=weight)
    # the frame's call is its strongest cell (the level-1 question: "is there a stenosis?")
    frame = nnf.binary_cross_entropy_with_logits(logits.amax(dim=(1, 2, 3)), batch["label"])
    mask = batch["mask"]
    reading = (
        (percent - batch["percent"]).abs()[mask].mean() / 100.0
        if bool(mask.any())
        else logits.sum() * 0.0
    )
    return dense + 0.5 * frame + reading


def schedule(arm: str, steps: int) -> list[tuple[int, dict[int, float]]]:
    """(first step, level mix) stages: the curriculum's three, or level 3 throughout."""
    if arm == "level3":
        return [(0, {3: 1.0})]
    return [
        (0, {1: 1.0}),
        (int(0.15 * steps), {2: 0.8, 1: 0.2}),
        (int(0.4 * steps), {3: 0.8, 2: 0.1, 1: 0.1}),
    ]


def budget(arm: str, images: int) -> dict[int, int]:
    if arm == "level3":
        return {3: images}
    return {1: images // 5, 2: 3 * images // 10, 3: images - images // 5 - 3 * images // 10}


def cine_seeds(args: argparse.Namespace, images: int) -> range:
    """The training cines whose frames make ``images`` whole-tree images."""
    return seeds("stenosis", args.family).first("training", -(-images // args.frames_per_cine))


def pool_of(level: int, n: int, rng: np.random.Generator, args: argparse.Namespace) -> Pool:
    """Curriculum samples, or for family B's whole-tree level, frames of its cines."""
    if args.family == "a" or level != 3:
        return Pool.curriculum(level, n, rng)
    frames = build(
        args.family,
        cine_seeds(args, n),
        SIZES[3],
        frames=args.frames_per_cine,
        workers=args.workers,
    )
    return Pool(Frames(*(getattr(frames, name)[:n] for name in Frames.__dataclass_fields__)))


def train(arm: str, args: argparse.Namespace) -> StenosisNet:
    torch.manual_seed(args.seed)
    rng = np.random.default_rng([TRAIN_SEED, args.seed])
    started = time.perf_counter()
    pools = {level: pool_of(level, n, rng, args) for level, n in budget(arm, args.images).items()}
    counts = {level: pool.n for level, pool in pools.items()}
    log(f"[{arm}] generated {counts} images in {time.perf_counter() - started:.0f} s")
    model = StenosisNet(growth=args.growth)
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    lr = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=args.lr, total_steps=args.steps)
    stages = schedule(arm, args.steps)
    model.train()
    for step in range(1, args.steps + 1):
        mix = [m for first, m in stages if first < step][-1]
        level = int(rng.choice(list(mix), p=list(mix.values())))
        loss = loss_of(model, pools[level].batch(rng, args.batch * (256 // SIZES[level]) ** 1))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        lr.step()
        if step % 50 == 0 or step == 1:
            elapsed = time.perf_counter() - started
            log(
                f"[{arm}] step {step}/{args.steps} level {level} loss {loss.item():.4f} "
                f"({elapsed:.0f} s)"
            )
    model.eval()
    return model


def export(model: StenosisNet, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    dims = {0: "batch", 2: "rows", 3: "columns"}
    torch.onnx.export(
        model,
        (torch.zeros(1, 1, 256, 256),),
        str(out / "model.onnx"),
        input_names=["image"],
        output_names=["heatmap", "percent"],
        dynamic_axes={"image": dims, "heatmap": dims, "percent": dims},
        opset_version=17,
        dynamo=False,
    )


def training_data(args: argparse.Namespace, arm: str) -> str:
    """The card's account of the training images."""
    if args.family == "a":
        return (
            f"Synthetic angiograms only (cardiogate_phantoms.curriculum_sample, seed "
            f"[{TRAIN_SEED}, {args.seed}]): {args.images} images "
            + (
                "by the curriculum (1/5 level 1 at 64 px, 3/10 level 2 at 128 px, "
                "1/2 level 3 at 256 px)"
                if arm == "curriculum"
                else "of level 3 (whole-tree frames at 256 px)"
            )
            + ". No patient data. Not for clinical use."
        )
    whole = budget(arm, args.images)[3]
    cines = cine_seeds(args, whole)
    frames = (
        f"{whole} whole-tree images: up to {args.frames_per_cine} service-selected frames of "
        f"each of {len(cines)} family-{args.family} cines (cardiogate_phantoms.family_b.xa."
        f"make_xa_cine_b, seeds {describe(cines)}, odd seeds with lesions, even normal), "
        "resized to 256 px"
    )
    curriculum = (
        f"{args.images - whole} curriculum images (cardiogate_phantoms.curriculum_sample, "
        f"seed [{TRAIN_SEED}, {args.seed}]: 1/5 level 1 at 64 px, 3/10 level 2 at 128 px) and "
        if arm == "curriculum"
        else ""
    )
    return (
        f"Synthetic angiograms only: {curriculum}{frames}. No patient data. Not for clinical use."
    )


def write_card(out: Path, args: argparse.Namespace, arm: str, metrics: dict[str, Any]) -> None:
    card = {
        "name": "cardiogate-stenosis-densenet",
        "version": args.version,
        "task": "stenosis",
        "description": (
            "Compact DenseNet (CathNet's family) reading angiogram frames: a heatmap of "
            "significant (>= 50% diameter) stenoses and the % diameter stenosis at each place, "
            "trained with a three-level curriculum (segments, branched segments, whole trees)."
        ),
        "inputs": [{"name": "image", "shape": ["batch", 1, "rows", "columns"], "dtype": "float32"}],
        "outputs": [
            {"name": "heatmap", "shape": ["batch", 1, "rows/4", "columns/4"], "dtype": "float32"},
            {"name": "percent", "shape": ["batch", 1, "rows/4", "columns/4"], "dtype": "float32"},
        ],
        "preprocessing": {
            "input_size": 256,
            "output_stride": STRIDE,
            "scale": "1/(2^BitsStored-1)",
        },
        "postprocessing": {
            "lesion_threshold": 0.5,
            "percent_output": PERCENT_OUTPUT,
        },
        "labels": ["significant stenosis"],
        "training_data": training_data(args, arm),
        "metrics": metrics,
        "training": {
            "arm": arm,
            "steps": args.steps,
            "batch_at_256px": args.batch,
            "images": args.images,
            "growth": args.growth,
            "lr": args.lr,
            "seed": args.seed,
            "family": args.family,
            "torch": torch.__version__,
            "command": "make train-stenosis"
            + ("" if args.family == "a" else f" (train_stenosis.py --family {args.family})"),
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("models/stenosis"))
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--batch", type=int, default=12, help="images per step at 256 px")
    parser.add_argument("--growth", type=int, default=12)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-cines", type=int, default=80)
    parser.add_argument("--version", default="0.1.0")
    parser.add_argument("--arms", default="curriculum,level3")
    parser.add_argument(
        "--family",
        choices=("a", "b"),
        default="a",
        help="phantom family of the whole-tree images and the test cines (a: the curriculum)",
    )
    parser.add_argument("--frames-per-cine", type=int, default=4, help="family b: frames taken")
    parser.add_argument("--workers", type=int, default=2, help="family b: processes drawing cines")
    args = parser.parse_args(argv)
    results: dict[str, dict[str, Any]] = {}
    work = Path(tempfile.mkdtemp(prefix="stenosis-"))
    test = seeds("stenosis", args.family).first("test", args.test_cines)
    for arm in args.arms.split(","):
        started = time.perf_counter()
        model = train(arm, args)
        folder = work / arm
        export(model, folder)
        write_card(folder, args, arm, {})
        seconds = time.perf_counter() - started
        log(f"[{arm}] trained in {seconds:.0f} s; evaluating on {args.test_cines} held-out cines")
        metrics = evaluate_folder(folder, test, family=args.family)
        results[arm] = {**metrics, "training_seconds": round(seconds)}
        log(f"[{arm}] {json.dumps(results[arm])}")
    shipped = "curriculum" if "curriculum" in results else next(iter(results))
    metrics = {
        **results[shipped],
        "comparison": results,
        "reproduce": evaluate_folder(
            work / shipped, range(test.start, test.start + 6), family=args.family
        ),
        "targets": {"auc": 0.95, "localisation_f1": 0.8, "percent_mae": 10.0},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copy(work / shipped / "model.onnx", args.out / "model.onnx")
    write_card(args.out, args, shipped, metrics)
    log(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
