"""Fine-tuning from reviews (models/training/finetune_from_reviews.py): targets follow the
fused labels, and the candidate folder it writes loads in the service with its lineage."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "models" / "training"))
from cardiogate_phantoms.family_b import make_ct_phantom_b  # noqa: E402
from scipy import ndimage  # noqa: E402

import finetune_from_reviews as ft  # noqa: E402
from cardiogate.analyses.ct_volume import load_ct_series  # noqa: E402
from cardiogate.inference.card import read_card  # noqa: E402
from cardiogate.inference.engine import load_model  # noqa: E402
from cardiogate.tasks.calcium.analysis import analyze_ct  # noqa: E402
from cgtrain.finetune import Recipe, finetune  # noqa: E402
from cgtrain.onnx_torch import load_onnx  # noqa: E402
from cgtrain.review_data import (  # noqa: E402
    ReviewDataError,
    native_targets,
    read_manifest,
    reviewed_volume,
)
from loop_experiment import simulate_dataset  # noqa: E402

PARENT = ROOT / "models" / "calcium"
# A family-B training seed on which the shipped model (0.3.0) reports false lesions (reviewed
# as "none") and misses true ones (added): 5 and 4. Another model may not; the first
# assertions of the targets test then say so.
SEED = 300_008
SMALL: dict[str, Any] = {"n_slices": 16, "rows": 192, "columns": 192, "pixel_spacing_mm": 1.2}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dataset")
    simulate_dataset(out, PARENT, [SEED], reviewers=3, error_rate=0.0, **SMALL)
    return out


def _truth_classes(hu: np.ndarray[Any, Any], labels: np.ndarray[Any, Any]) -> Any:
    """Each candidate component labelled with its majority truth class (a tie: none)."""
    out = np.zeros(hu.shape, np.uint8)
    for z in range(len(hu)):
        pieces, n = ndimage.label(hu[z] >= 130, structure=np.ones((3, 3)))
        for k in range(1, n + 1):
            votes = np.bincount(labels[z][pieces == k], minlength=5)
            out[z][pieces == k] = np.argmax(votes)
    return out


@pytest.mark.slow
def test_faultless_reviews_give_the_truth_as_targets(dataset: Path) -> None:
    [case] = read_manifest(dataset)
    assert any(label["value"] == "none" for label in case.labels)
    assert any(label["key"].startswith("added/") for label in case.labels)
    volume = load_ct_series(sorted(case.series_dir.glob("*.dcm")))
    phantom = make_ct_phantom_b(SEED, **SMALL)
    classes = list(read_card(PARENT).labels)
    targets, counted = native_targets(case, volume, classes, 130.0)
    order = np.argsort(phantom.z_mm)  # the series is read caudal to cranial
    np.testing.assert_array_equal(volume.hu, phantom.hu[order])
    np.testing.assert_array_equal(targets, _truth_classes(volume.hu, phantom.labels[order]))
    assert counted.sum() == (phantom.hu >= 130).sum()  # nothing unresolved
    grid = reviewed_volume(case, classes, dict(read_card(PARENT).preprocessing))
    assert grid.x.shape == (16, 230, 230)  # 192 pixels of 1.2 mm at the card's 1 mm
    assert set(np.unique(grid.y[grid.weight > 0])) == set(np.unique(targets[counted]))


@pytest.mark.slow
def test_the_candidate_loads_in_the_service_with_its_lineage(dataset: Path, tmp_path: Path) -> None:
    reviewed, synthetic, uids = ft.build_training_set(dataset, PARENT, synthetic_scans=1)
    net = load_onnx(PARENT / "model.onnx")
    recipe = Recipe(steps=2, batch=2, crop=64)
    fitted = finetune(net, reviewed, synthetic, recipe)
    training = {"reviewed_cases": uids, "data_mix": {**fitted, "families": {}}}
    out = tmp_path / "candidate"
    ft.write_candidate(PARENT, out, net, training, {"b": {"scans": 0}})
    card, parent = read_card(out), read_card(PARENT)
    assert card.version == f"{parent.version}-ft.1"
    assert card.training["parent"] == {
        "name": parent.name,
        "version": parent.version,
        "sha256": parent.sha256,
    }
    assert card.training["reviewed_cases"] == uids
    assert len(uids) == 1
    assert card.ood == parent.ood
    assert card.postprocessing == parent.postprocessing
    assert card.sha256 != parent.sha256
    series = sorted((dataset / "series" / uids[0]).glob("*.dcm"))
    result = analyze_ct(series, load_model(out))
    assert result.model.version == card.version
    assert json.loads((out / "card.json").read_text())["metrics"]["heldout"] == {"b": {"scans": 0}}


def test_a_stenosis_model_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ReviewDataError, match="calcium only"):
        ft.build_training_set(tmp_path, ROOT / "models" / "stenosis", synthetic_scans=0)


def test_versions_and_heldout_sizes() -> None:
    assert ft.child_version("0.2.0") == "0.2.0-ft.1"
    assert ft.child_version("0.2.0-ft.1") == "0.2.0-ft.2"
    assert ft.parse_heldout("a:10,b:4") == {"a": 10, "b": 4}
    with pytest.raises(Exception, match="family:count"):
        ft.parse_heldout("c:3")
