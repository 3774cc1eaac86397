"""The shipped calcium model (models/calcium), trained on synthetic phantoms only.

Its card's figures come from models/training/cgtrain/calcium_eval.py on held-out
phantoms; a smaller set is re-run here and must give the numbers the card records (counts
exactly, measured figures within the tolerances below).
A synthetic scan sent over C-STORE must come back within 10% (or 5 points) of the truth."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from cardiogate_phantoms import make_ct_series

from card_figures import expected_figures
from delivery_peers import wait_for_job
from peers import REPO, send, start_serve, stop_serve

MODEL = REPO / "models" / "calcium"
sys.path.insert(0, str(REPO / "models" / "training"))


# Absolute tolerances of the reproduced figures, well inside what one lesion or one scan
# changes on the 8 scans and 17 lesions of the smaller set (a ratio moves by >= 1/17, the
# false positives by 1/8): 0.005 on 0-1 figures covers a rounding step or two of float32
# noise; 0.25 Agatston points of mean error is a few pixels of one lesion.
REPRODUCE_TOLERANCES = {
    "icc_total_agatston": 0.005,
    "kappa_classic_linear": 0.005,
    "lesion_sensitivity": 0.005,
    "false_positives_per_scan": 0.005,
    "artery_accuracy": 0.005,
    "mean_abs_error_total_agatston": 0.25,
}


def _card() -> dict[str, Any]:
    return dict(json.loads((MODEL / "card.json").read_text()))


def test_card_figures_are_reproduced_on_a_smaller_held_out_set() -> None:
    from cgtrain.calcium_eval import evaluate_folder

    recorded = _card()["metrics"]["reproduce"]
    first, last = (int(s) for s in recorded["test_seeds"].split("-"))
    found = evaluate_folder(MODEL, range(first, last + 1))
    assert found == expected_figures(recorded, REPRODUCE_TOLERANCES)


KNOWN_MISS = pytest.mark.xfail(
    strict=True,
    reason="known limitation of model 0.3.0 (docs/models.md): a large LM plaque at the aortic "
    "root (seed 3, 355 of its 401 points) is not counted as coronary, giving 46; strict, so a "
    "model that fixes it must drop this mark",
)


@pytest.mark.parametrize("seed", [2, pytest.param(3, marks=KNOWN_MISS)])
def test_scan_over_c_store_is_scored_close_to_the_truth(tmp_path: Path, seed: int) -> None:
    series = make_ct_series(seed, n_slices=48)
    truth = series.truth["agatston"]["total"]
    server = start_serve(tmp_path / "data", env={"CARDIOGATE_QUIET_SECONDS": "1"})
    try:
        assert send(server.dicom_port, series.datasets) == [0] * len(series.datasets)
        uid = series.datasets[0].SeriesInstanceUID
        job = wait_for_job(server, uid, ("reported", "failed", "ignored"), timeout=120)
        assert job["state"] == "reported", server.log()
        measured = job["result"]["agatston"]["total"]
        assert abs(measured - truth) <= max(0.10 * truth, 5.0), (measured, truth)
        assert job["result"]["model"]["name"] == _card()["name"]
    finally:
        assert stop_serve(server) == 0
