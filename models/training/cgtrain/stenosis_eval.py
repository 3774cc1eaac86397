"""Evaluation of a stenosis model folder on held-out synthetic cines, through the service's
own analysis (``analyze_xa``: frame selection, model, peaks, merging across frames).

The held-out cines alternate: odd seeds carry the generator's own mix of 0-3 lesions of
20-95% (most hold a significant one), even seeds are normal.

- AUC and sensitivity/specificity: the run's probability against "the cine holds a lesion of
  at least 50%";
- localisation F1 (ARCADE-style one-to-one matching): a reported lesion is a true positive
  when it lies within ``match_mm`` of a significant lesion's true position on the frame it
  was reported on;
- % diameter stenosis mean absolute error over the matched lesions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cardiogate.inference.engine import LoadedModel, load_model
from cardiogate.tasks.stenosis.analysis import analyze_xa
from cgtrain.families import is_normal, xa_cine


def auc(labels: list[bool], scores: list[float]) -> float | None:
    """Area under the ROC curve (Mann-Whitney, ties counted half)."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return float(wins / (len(pos) * len(neg)))


def match(
    reported: list[dict[str, Any]], truth: list[dict[str, Any]], mm_per_px: float, match_mm: float
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Greedy one-to-one matching, surest reported lesion first."""
    pairs = []
    free = list(truth)
    for lesion in sorted(reported, key=lambda x: -x["probability"]):
        best, best_d = None, match_mm / mm_per_px
        for t in free:
            x, y = t["positions_px"][lesion["frame"] - 1]
            d = float(np.hypot(lesion["x_px"] - x, lesion["y_px"] - y))
            if d <= best_d:
                best, best_d = t, d
        if best is not None:
            free.remove(best)
            pairs.append((lesion, best))
    return pairs


def evaluate(
    model: LoadedModel,
    seeds: range,
    *,
    match_mm: float = 3.0,
    threshold: float | None = None,
    family: str = "a",
) -> dict[str, Any]:
    """The card's metrics on the cines of ``seeds`` of phantom ``family``."""
    labels: list[bool] = []
    scores: list[float] = []
    tp = fp = fn = 0
    errors: list[float] = []
    for seed in seeds:
        # odd seeds: the generator's own mix of lesions; even: normal cines
        cine = xa_cine(family, seed, normal=is_normal(seed))
        truth = [t for t in cine.truth["lesions"] if t["percent_stenosis"] >= 50]
        result = analyze_xa(cine.datasets, model)
        labels.append(bool(truth))
        scores.append(result.probability)
        mm = result.geometry["mm_per_px"] or float(cine.truth["pixel_spacing_isocentre_mm"])
        reported = [lesion.model_dump() for lesion in result.lesions]
        pairs = match(reported, truth, mm, match_mm)
        tp += len(pairs)
        fp += len(reported) - len(pairs)
        fn += len(truth) - len(pairs)
        errors += [abs(r["percent_stenosis"] - t["percent_stenosis"]) for r, t in pairs]
    cut = (
        float(model.card.postprocessing.get("lesion_threshold", 0.5))
        if threshold is None
        else threshold
    )
    positives = [s for s, y in zip(scores, labels, strict=True) if y]
    negatives = [s for s, y in zip(scores, labels, strict=True) if not y]
    area = auc(labels, scores)
    return {
        "test_cines": len(seeds),
        "test_seeds": f"{seeds.start}-{seeds.stop - 1}",
        "significant_cines": len(positives),
        "auc": None if area is None else round(area, 4),
        "operating_threshold": cut,
        "sensitivity": round(sum(s >= cut for s in positives) / len(positives), 4)
        if positives
        else None,
        "specificity": round(sum(s < cut for s in negatives) / len(negatives), 4)
        if negatives
        else None,
        "localisation_f1": round(2 * tp / (2 * tp + fp + fn), 4) if tp + fp + fn else None,
        "lesions": {"true_positive": tp, "false_positive": fp, "false_negative": fn},
        "match_mm": match_mm,
        "percent_mae": round(float(np.mean(errors)), 2) if errors else None,
    }


def evaluate_folder(folder: Path, seeds: range, **kwargs: Any) -> dict[str, Any]:
    return evaluate(load_model(folder, ["CPUExecutionProvider"]), seeds, **kwargs)
