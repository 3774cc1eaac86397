"""The shipped stenosis model (models/stenosis), trained on synthetic angiograms only.

Its card's figures come from models/training/cgtrain/stenosis_eval.py on held-out cines;
the first few are re-run here and must give exactly the numbers the card records. A cine
with a 75% stenosis sent over C-STORE must come back with that lesion located within 3 mm
and graded 70-99%; a normal cine must come back without a significant lesion."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cardiogate.synthetic import make_xa_cine
from delivery_peers import wait_for_job
from peers import REPO, send, start_serve, stop_serve

MODEL = REPO / "models" / "stenosis"
sys.path.insert(0, str(REPO / "models" / "training"))


def _card() -> dict[str, Any]:
    return dict(json.loads((MODEL / "card.json").read_text()))


def test_card_figures_are_reproduced_on_a_smaller_held_out_set() -> None:
    from cgtrain.stenosis_eval import evaluate_folder

    recorded = _card()["metrics"]["reproduce"]
    first, last = (int(s) for s in recorded["test_seeds"].split("-"))
    assert evaluate_folder(MODEL, range(first, last + 1)) == recorded


def _reported_job(tmp_path: Path, datasets: list[Any]) -> dict[str, Any]:
    server = start_serve(tmp_path / "data", env={"CARDIOGATE_QUIET_SECONDS": "1"})
    try:
        assert send(server.dicom_port, datasets) == [0] * len(datasets)
        uid = datasets[0].SeriesInstanceUID
        job = wait_for_job(server, uid, ("reported", "failed", "ignored"), timeout=120)
        assert job["state"] == "reported", server.log()
        assert job["task"] == "stenosis"
        return job
    finally:
        assert stop_serve(server) == 0


STENOSIS = {"vessel": "LAD", "position": 0.35, "percent": 75.0, "length_mm": 6.0}


def test_a_75_percent_stenosis_over_c_store_is_found_and_graded(tmp_path: Path) -> None:
    series = make_xa_cine(21, stenoses=[STENOSIS], artery="LCA")
    [truth] = series.truth["lesions"]
    assert not truth["overlapped"]
    result = _reported_job(tmp_path, series.datasets)["result"]
    assert result["significant"] is True
    mm = result["geometry"]["mm_per_px"]
    assert mm == pytest.approx(series.truth["pixel_spacing_isocentre_mm"], rel=0.01)
    distances = [
        float(np.hypot(lesion["x_px"] - x, lesion["y_px"] - y)) * mm
        for lesion in result["lesions"]
        for x, y in [truth["positions_px"][lesion["frame"] - 1]]
    ]
    assert distances, result
    best = int(np.argmin(distances))
    assert distances[best] <= 3.0, (distances, result["lesions"])
    lesion = result["lesions"][best]
    assert 70.0 <= lesion["percent_stenosis"] < 100.0, lesion
    assert lesion["cad_rads"] == "4A"
    assert result["model"]["name"] == _card()["name"]
    assert "not for clinical use" in result["notice"]


def test_a_normal_cine_has_no_significant_lesion(tmp_path: Path) -> None:
    series = make_xa_cine(21, stenoses=[], artery="LCA")
    result = _reported_job(tmp_path, series.datasets)["result"]
    assert result["significant"] is False
    assert not any(lesion["percent_stenosis"] >= 50 for lesion in result["lesions"])
