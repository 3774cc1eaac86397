"""Evaluation of the vessel head on held-out synthetic cines.

- Through the service's analysis (``analyze_xa``): each significant true lesion that the
  model finds (matched one-to-one within ``match_mm``, as in :mod:`cgtrain.stenosis_eval`)
  is scored on the vessel the analysis names (read at the detected peak), its main vessel
  (LM, LAD, LCX or RCA) and its position along the vessel against the truth.
- Per frame (:func:`frame_accuracy`): cell-wise vessel accuracy on a pool of labelled
  frames, the quick check used while training.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from cardiogate_phantoms import make_xa_cine

from cardiogate.inference.engine import LoadedModel
from cardiogate.tasks.stenosis.analysis import analyze_xa
from cardiogate.tasks.stenosis.segments import TERRITORY
from cgtrain.stenosis_eval import match

POSITION_TOLERANCE = 0.15


def evaluate_vessels(model: LoadedModel, seeds: range, *, match_mm: float = 3.0) -> dict[str, Any]:
    """Vessel identification of the found significant lesions of the odd seeds' cines (the
    even seeds of the stenosis evaluation are normal cines, with nothing to name)."""
    found = vessel_ok = artery_ok = 0
    errors: list[float] = []
    confusions: dict[str, int] = {}
    diseased = [seed for seed in seeds if seed % 2]
    for seed in diseased:
        cine = make_xa_cine(seed)
        truth = [t for t in cine.truth["lesions"] if t["percent_stenosis"] >= 50]
        if not truth:
            continue
        result = analyze_xa(cine.datasets, model)
        mm = result.geometry["mm_per_px"] or float(cine.truth["pixel_spacing_isocentre_mm"])
        reported = [lesion.model_dump() for lesion in result.lesions]
        for got, true in match(reported, truth, mm, match_mm):
            found += 1
            named = got["vessel"]
            if named == true["vessel"]:
                vessel_ok += 1
                if got["position_along_vessel"] is not None:
                    errors.append(abs(got["position_along_vessel"] - true["position"]))
            else:
                key = f"{true['vessel']}->{named}"
                confusions[key] = confusions.get(key, 0) + 1
            if named is not None and TERRITORY[named] == TERRITORY[true["vessel"]]:
                artery_ok += 1
    err = np.asarray(errors)
    return {
        "test_cines": len(diseased),
        "test_seeds": f"odd seeds of {seeds.start}-{seeds.stop - 1}",
        "significant_lesions_found": found,
        "vessel_accuracy": round(vessel_ok / found, 4) if found else None,
        "main_vessel_accuracy": round(artery_ok / found, 4) if found else None,
        "position_mae": round(float(err.mean()), 4) if err.size else None,
        "position_within_0_15": round(float((err <= POSITION_TOLERANCE).mean()), 4)
        if err.size
        else None,
        "position_scored_on": "lesions whose vessel was named correctly",
        "confusions": dict(sorted(confusions.items())),
        "match_mm": match_mm,
    }


def frame_accuracy(logits: np.ndarray[Any, Any], labels: np.ndarray[Any, Any]) -> dict[str, float]:
    """Cell-wise accuracy over labelled vessel cells, and over background cells."""
    predicted = logits.argmax(axis=1)
    vessel = labels > 0
    background = labels == 0
    return {
        "vessel_cells": float((predicted[vessel] == labels[vessel]).mean()),
        "background_cells": float((predicted[background] == 0).mean()),
    }
