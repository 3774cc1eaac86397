"""The learning loop on phantoms: does fine-tuning on simulated reviews of family-B scans
help on held-out family B without hurting family A?

    OMP_NUM_THREADS=2 PYTHONPATH=models/training:service .venv/bin/python \\
        models/training/loop_experiment.py --work /tmp/loop --cases 20 --reviewers 3 \\
        --error-rate 0.15 --heldout a:10,b:20 [-- finetune_from_reviews options]

1. :func:`simulate_dataset`: family-B scans from the training range (never a held-out
   seed) analysed by the serving model through the service's ``analyze_ct``; each result
   reviewed by ``--reviewers`` simulated reviewers
   (:func:`cardiogate_phantoms.reviewers.simulate_review`, truth from the phantom only) at
   ``--error-rate``; their labels fused by the service's fusion; written as a dataset
   folder in the layout of ``cardiogate review export --dataset`` (manifest.jsonl +
   series/<uid>/).
2. ``finetune_from_reviews.py`` on that folder.
3. Held-out metrics of parent and candidate on the same seeds, and the accuracy of single
   reviewers and of the fused labels against the truth.

The experiment needs no store or running service (the end-to-end test,
tests/integration/test_learning_loop.py, goes through both); a dataset folder the service
exports trains the same way.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from cardiogate_phantoms.family_b import make_ct_series_b
from cardiogate_phantoms.reviewers import fused_corrections, review_accuracy, simulate_review
from pydicom import dcmwrite

import finetune_from_reviews
from cardiogate.inference.engine import load_model
from cardiogate.learning.fusion import fuse
from cardiogate.learning.labels import NONE
from cardiogate.tasks.calcium import CalciumTask
from cardiogate.tasks.calcium.analysis import analyze_ct
from cgtrain.families import seeds

CALCIUM = CalciumTask()


def fuse_reviews(
    result: dict[str, Any], reviews: Sequence[tuple[str, dict[str, Any]]]
) -> dict[str, Any]:
    """The service's own fusion (:func:`cardiogate.learning.fusion.fuse`: majority vote,
    STAPLE where the vote ties) of calcium correction bodies, as the export writes it."""
    labels = [
        (who, CALCIUM.review_labels(result, CALCIUM.correction_model.model_validate(body)))
        for who, body in reviews
    ]
    model = CALCIUM.review_labels(result, None)
    return fuse(labels, CALCIUM.added_match_distance, model).as_dict()


def simulate_dataset(
    out: Path,
    model_folder: Path,
    case_seeds: Sequence[int],
    *,
    reviewers: int = 3,
    error_rate: float = 0.15,
    rng_seed: int = 0,
    **options: Any,
) -> dict[str, Any]:
    """Write a review-export dataset folder of family-B ``case_seeds`` (see the module
    docstring; ``options`` go to ``make_ct_series_b``, e.g. ``n_slices``); returns the
    reviewers' and the fusion's accuracy against the truth."""
    model = load_model(model_folder, ["CPUExecutionProvider"])
    rng = np.random.default_rng(rng_seed)
    tally: Counter[str] = Counter()
    lines = []
    for seed in case_seeds:
        series = make_ct_series_b(seed, **options)
        phantom = series.phantom
        uid = str(series.datasets[0].SeriesInstanceUID)
        folder = out / "series" / uid
        folder.mkdir(parents=True, exist_ok=True)
        for ds in series.datasets:
            dcmwrite(folder / f"{ds.SOPInstanceUID}.dcm", ds, enforce_file_format=True)
        result = analyze_ct(series.datasets, model).model_dump(mode="json")
        reviews = []
        for r in range(reviewers):
            body = simulate_review(phantom, result, error_rate, rng)
            right, items = review_accuracy(phantom, result, body)
            tally["reviewer_right"] += right
            tally["reviewer_items"] += items
            reviews.append((f"sim-{r + 1}", body))
        fused = fuse_reviews(result, reviews)
        right, items = review_accuracy(phantom, result, fused_corrections(fused["labels"]))
        tally["fused_right"] += right
        tally["fused_items"] += items
        tally["unresolved"] += len(fused["unresolved"])
        tally["model_lesions"] += len(result["lesions"])
        tally["model_false"] += sum(
            1 for c in simulate_review(phantom, result, 0.0, rng)["lesions"] if c["artery"] == NONE
        )
        lines.append(
            {
                "job_id": len(lines) + 1,
                "StudyInstanceUID": str(series.datasets[0].StudyInstanceUID),
                "SeriesInstanceUID": uid,
                "task": "calcium",
                "model_name": result["model"]["name"],
                "model_version": result["model"]["version"],
                "result": result,
                "reviews": [
                    {"reviewer": who, "role": "reviewer", "verdict": "disagree", "corrections": b}
                    for who, b in reviews
                ],
                "fused": fused,
                "series_dir": f"series/{uid}",
            }
        )
    (out / "manifest.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return {
        "cases": len(lines),
        "seeds": f"{case_seeds[0]}-{case_seeds[-1]}",
        "reviewers": reviewers,
        "error_rate": error_rate,
        "single_reviewer_accuracy": _share(tally["reviewer_right"], tally["reviewer_items"]),
        "fused_accuracy": _share(tally["fused_right"], tally["fused_items"]),
        "items_per_case": round(tally["fused_items"] / len(lines), 1),
        "unresolved_lesions": tally["unresolved"],
        "model_lesions": tally["model_lesions"],
        "model_lesions_not_coronary": tally["model_false"],
    }


def _share(right: int, items: int) -> float | None:
    """``right / items`` to 4 places; None when there was nothing to judge (no lesion found
    and none missed in any case)."""
    return round(right / items, 4) if items else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, required=True, help="dataset + candidate here")
    parser.add_argument("--model", type=Path, default=Path("models/calcium"))
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0, help="offset in B's training range")
    parser.add_argument("--reviewers", type=int, default=3)
    parser.add_argument("--error-rate", type=float, default=0.15)
    parser.add_argument(
        "--slices", type=int, help="slices per reviewed scan (default: B's own coverage)"
    )
    parser.add_argument("--heldout", default="a:10,b:10")
    parser.add_argument("finetune_args", nargs="*", help="after --: finetune_from_reviews options")
    args = parser.parse_args(argv)
    training = seeds("calcium", "b").training
    case_seeds = list(training[args.first_seed : args.first_seed + args.cases])
    dataset, out = args.work / "dataset", args.work / "candidate"
    report: dict[str, Any] = {}
    t0 = time.perf_counter()
    reviews = args.work / "reviews.json"
    if (dataset / "manifest.jsonl").is_file() and reviews.is_file():  # reuse the folder
        report["reviews"] = json.loads(reviews.read_text())
    else:
        report["reviews"] = simulate_dataset(
            dataset,
            args.model,
            case_seeds,
            reviewers=args.reviewers,
            error_rate=args.error_rate,
            n_slices=args.slices,
        )
        report["reviews"]["seconds"] = round(time.perf_counter() - t0, 1)
        reviews.write_text(json.dumps(report["reviews"]) + "\n")
    print(json.dumps(report["reviews"]), flush=True)
    t1 = time.perf_counter()
    finetune_from_reviews.main(
        [
            "--model",
            str(args.model),
            "--dataset",
            str(dataset),
            "--out",
            str(out),
            "--heldout",
            args.heldout,
            *args.finetune_args,
        ]
    )
    report["finetune_seconds"] = round(time.perf_counter() - t1, 1)
    card = json.loads((out / "card.json").read_text())
    report["candidate"] = card["metrics"]["heldout"]
    report["training"] = {
        k: card["training"][k]
        for k in ("data_mix", "seconds", "train_seconds", "steps", "lr", "class_weight")
    }
    report["parent"] = card["metrics"]["heldout_parent"]
    report["validation"] = card["metrics"]["validation"]
    (args.work / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
