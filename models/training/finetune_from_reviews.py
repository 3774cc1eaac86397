"""Fine-tune the serving calcium model on reviewed cases, and write a candidate model folder.

    PYTHONPATH=models/training:service .venv/bin/python models/training/finetune_from_reviews.py \\
        --model models/calcium --dataset DIR --out models/candidates/calcium \\
        --steps 150 --synthetic-fraction 0.6 --heldout a:10,b:10          (make finetune)

``DIR`` is a ``cardiogate review export OUT --dataset DIR`` folder: the settled cases with
their fused labels and series files. The current ``model.onnx`` is converted to a trainable
network (:mod:`cgtrain.onnx_torch`, checked against onnxruntime first), trained on targets
built from the fused labels (:mod:`cgtrain.review_data`) mixed with synthetic family-A
replay, exported, and evaluated with the service's own analysis on the fixed held-out
seeds of both phantom families (:mod:`cgtrain.families`). The candidate's card copies the
parent's (preprocessing, postprocessing, labels, out-of-distribution profile) and records
its lineage under ``training``: the parent (name, version, sha256), the reviewed cases by
SeriesInstanceUID and the data mix. Nothing here runs in the serving process; the
candidate goes into shadow mode and is promoted by ``cardiogate models promote``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import torch

from cardiogate.inference.card import CARD_FILE, MODEL_FILE, CardError, file_sha256, read_card
from cardiogate.inference.engine import load_model
from cgtrain import calcium_cases
from cgtrain.families import describe, seeds
from cgtrain.finetune import Recipe, finetune
from cgtrain.onnx_torch import OnnxNet, OnnxTorchError, export_onnx, load_onnx
from cgtrain.review_data import (
    ReviewDataError,
    Volume,
    read_manifest,
    reviewed_volume,
    synthetic_volume,
)
from train_calcium import choose_threshold

ARTERIES = ("LM", "LAD", "LCX", "RCA")
HELDOUT_SLICES: dict[str, int | None] = {"a": 40, "b": None}  # as evaluate_cross_family.py
REPLAY_SIZE, REPLAY_SLICES = 336, 40  # family-A replay scans, as train_calcium.py draws them


def log(message: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {message}", flush=True)


def child_version(parent: str) -> str:
    """``0.2.0`` -> ``0.2.0-ft.1``; ``0.2.0-ft.1`` -> ``0.2.0-ft.2``."""
    found = re.fullmatch(r"(.*)-ft\.(\d+)", parent)
    return f"{found.group(1)}-ft.{int(found.group(2)) + 1}" if found else f"{parent}-ft.1"


def parse_heldout(text: str) -> dict[str, int]:
    """``"a:10,b:10"`` -> ``{"a": 10, "b": 10}``."""
    sizes = {}
    for part in filter(None, text.split(",")):
        family, _, n = part.partition(":")
        if family not in ("a", "b") or not n.isdigit():
            raise argparse.ArgumentTypeError(f"--heldout wants family:count pairs, not {part!r}")
        sizes[family] = int(n)
    return sizes


def replay_seeds(n: int) -> range:
    """The family-A replay scans: the first ``n`` of A's training seeds (the serving
    model's own training data)."""
    return seeds("calcium", "a").first("training", n)


def build_training_set(
    dataset: Path, model: Path, *, synthetic_scans: int
) -> tuple[list[Volume], list[Volume], list[str]]:
    """(reviewed volumes, replay volumes, reviewed SeriesInstanceUIDs) for the model in
    folder ``model``.

    Raises
    ------
    ReviewDataError
        For a model of another task than calcium, or a dataset without calcium cases.
    """
    card = read_card(model)
    if card.task != "calcium":
        raise ReviewDataError(
            f"{model}: model {card.name} {card.version} is a {card.task!r} model; "
            "fine-tuning from reviews covers calcium only (stenosis corrections label "
            "lesions on a cine, which needs a detection target builder not written yet)"
        )
    classes = list(card.labels)
    pre = dict(card.preprocessing)
    cases = read_manifest(dataset, card.task)
    reviewed = [reviewed_volume(case, classes, pre) for case in cases]
    synthetic = [
        synthetic_volume(s, REPLAY_SIZE, REPLAY_SLICES, pre) for s in replay_seeds(synthetic_scans)
    ]
    return reviewed, synthetic, [case.series_instance_uid for case in cases]


def heldout_metrics(folder: Path, sizes: dict[str, int]) -> dict[str, Any]:
    """The cross-family metrics of the model in ``folder`` on the first held-out test
    seeds of each family, run through the service's analysis."""
    model = load_model(folder, ["CPUExecutionProvider"])
    out: dict[str, Any] = {}
    for family, n in sizes.items():
        test = seeds("calcium", family).first("test", n)
        cases = calcium_cases.evaluate_cases(model, family, test, n_slices=HELDOUT_SLICES[family])
        values = {name: metric(cases) for name, metric in calcium_cases.METRICS.items()}
        out[family] = {
            "test_seeds": describe(test),
            "scans": len(cases),
            **{k: None if v is None else round(float(v), 4) for k, v in values.items()},
        }
    return out


def write_candidate(
    parent: Path,
    out: Path,
    net: OnnxNet,
    training: dict[str, Any],
    heldout: dict[str, Any] | None,
    *,
    validation: dict[str, Any] | None = None,
    parent_heldout: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Export ``net`` to ``out`` and write its card (see the module docstring); with
    ``validation`` (from :func:`train_calcium.choose_threshold`) its coronary probability
    threshold replaces the parent's, and ``parent_heldout`` puts the parent's held-out
    figures on the same seeds beside the candidate's."""
    card = json.loads((parent / CARD_FILE).read_text())
    parent_card = read_card(parent)
    export_onnx(net, out / MODEL_FILE)
    lineage = {
        "name": parent_card.name,
        "version": parent_card.version,
        "sha256": parent_card.sha256,
    }
    mix = training["data_mix"]
    card.update(
        version=child_version(parent_card.version),
        training_data=(
            f"Fine-tuned from {parent_card.name} {parent_card.version} on "
            f"{len(training['reviewed_cases'])} reviewed cases (fused reviewer labels; "
            f"{mix['reviewed_slices']} slices) mixed with {mix['synthetic_slices']} slices of "
            f"synthetic family-A replay. Parent: {parent_card.training_data}"
        ),
        metrics={
            "heldout": heldout or {},
            "heldout_parent": parent_heldout or {},
            "validation": validation or {},
            "test_set": "first seeds of each family's calcium test range "
            "(cgtrain.families), run through the service's analysis; family A 40 slices, "
            "family B its own coverage",
            "targets": card.get("metrics", {}).get("targets", {}),
        },
        training={"parent": lineage, **training},
        postprocessing=(
            card.get("postprocessing", {})
            if validation is None
            else {
                **card.get("postprocessing", {}),
                "min_coronary_probability": validation["min_coronary_probability"],
            }
        ),
        sha256=file_sha256(out / MODEL_FILE),
    )
    (out / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    read_card(out)  # refuse to leave a folder the service would not load
    return card


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    net = load_onnx(args.model / MODEL_FILE)
    reviewed, synthetic, uids = build_training_set(
        args.dataset, args.model, synthetic_scans=args.synthetic_scans
    )
    log(
        f"{len(reviewed)} reviewed series, {len(synthetic)} replay scans in "
        f"{time.perf_counter() - started:.0f} s"
    )
    labels = read_card(args.model).labels
    recipe = Recipe(
        class_weight=tuple(args.artery_weight if x in ARTERIES else 1.0 for x in labels),
        steps=args.steps,
        lr=args.lr,
        batch=args.batch,
        crop=args.crop,
        synthetic_fraction=args.synthetic_fraction,
        seed=args.seed,
    )
    fitted = finetune(net, reviewed, synthetic, recipe, log)
    training = {
        "reviewed_cases": uids,
        "data_mix": {
            "reviewed_slices": fitted.pop("reviewed_slices"),
            "reviewed_coronary_slices": fitted.pop("reviewed_coronary_slices"),
            "synthetic_slices": fitted.pop("synthetic_slices"),
            "synthetic_fraction": fitted["synthetic_fraction"],
            "families": {"reviewed": "the review export's cases", "synthetic": "a"},
            "synthetic_seeds": describe(replay_seeds(args.synthetic_scans)),
        },
        **fitted,
        "dataset": str(args.dataset),
        "torch": torch.__version__,
        "command": args.command,
    }
    write_candidate(args.model, args.out, net, training, None)
    validation = None
    if args.validation:
        _, validation = choose_threshold(args.out, args.validation, ["a", "b"])
        write_candidate(args.model, args.out, net, training, None, validation=validation)
    heldout = heldout_metrics(args.out, args.heldout) if args.heldout else None
    parent = heldout_metrics(args.model, args.heldout) if args.heldout else None
    training["seconds"] = round(time.perf_counter() - started, 1)
    return write_candidate(
        args.model,
        args.out,
        net,
        training,
        heldout,
        validation=validation,
        parent_heldout=parent,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=Path("models/calcium"))
    parser.add_argument("--dataset", type=Path, required=True, help="review export --dataset DIR")
    parser.add_argument("--out", type=Path, default=Path("models/candidates/calcium"))
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument(
        "--synthetic-fraction", type=float, default=0.6, help="share of each batch from replay"
    )
    parser.add_argument("--synthetic-scans", type=int, default=6, help="family-A replay scans")
    parser.add_argument(
        "--heldout", type=parse_heldout, default={"a": 10, "b": 10}, help="e.g. a:10,b:10"
    )
    parser.add_argument(
        "--artery-weight", type=float, default=2.0, help="loss weight of the artery classes"
    )
    parser.add_argument(
        "--validation",
        type=int,
        default=0,
        help="re-choose the coronary probability threshold on this many validation scans "
        "of both families (0: keep the parent's)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.command = " ".join(["finetune_from_reviews.py", *(sys.argv[1:] if argv is None else argv)])
    if args.out.resolve() == args.model.resolve():
        parser.error("--out must not be the serving model's folder")
    try:
        card = run(args)
    except (CardError, OnnxTorchError, ReviewDataError) as e:
        print(f"finetune_from_reviews: {e}", file=sys.stderr)
        return 2
    log(
        f"wrote {args.out} ({card['name']} {card['version']}); held out: "
        f"{json.dumps(card['metrics']['heldout'])}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
