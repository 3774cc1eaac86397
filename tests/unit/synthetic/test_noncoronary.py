"""The family-A phantom's non-coronary calcium map (``CardiacPhantom.noncoronary``) and the
aortic valve's own Agatston score, the truth a model that labels aortic valve calcium is
trained and checked against."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from cardiogate_phantoms import CardiacPhantom, make_cardiac_phantom
from cardiogate_phantoms.distractors import NONCORONARY_CODES

from cardiogate.tasks.calcium.scoring import agatston_scores

SMALL: dict[str, Any] = {
    "n_slices": 40,
    "rows": 128,
    "columns": 128,
    "pixel_spacing_mm": 1.25,
    "slice_increment_mm": 2.5,
}
VALVE_SEEDS = (21, 25)  # with valve_calcium=True these draw aortic valve calcium


def _phantom(seed: int, **kw: Any) -> CardiacPhantom:
    return make_cardiac_phantom(seed, **{**SMALL, "valve_calcium": True, **kw})


def _centres_mm(p: CardiacPhantom, code: int) -> np.ndarray[Any, Any]:
    z, r, c = np.nonzero(p.noncoronary == code)
    spacing = p.pixel_spacing_mm
    return np.c_[p.origin_mm[0] + c * spacing, p.origin_mm[1] + r * spacing, p.z_mm[z]]


@pytest.mark.parametrize("seed", VALVE_SEEDS)
def test_each_coded_voxel_belongs_to_a_distractor_of_its_kind(seed: int) -> None:
    p = _phantom(seed)
    assert p.noncoronary.shape == p.hu.shape
    assert p.noncoronary.dtype == np.uint8
    kinds = {d["kind"] for d in p.distractors}
    present = set(np.unique(p.noncoronary).tolist()) - {0}
    assert present == {NONCORONARY_CODES[kind] for kind in kinds}
    assert not (p.noncoronary.astype(bool) & p.labels.astype(bool)).any()
    for kind in kinds:  # every voxel of a kind lies near one of its blobs
        blobs = [d for d in p.distractors if d["kind"] == kind]
        points = _centres_mm(p, NONCORONARY_CODES[kind])
        reach = [
            max(d["semi_axes_mm"]) + 3 * p.blur_sigma_mm + SMALL["slice_increment_mm"]
            for d in blobs
        ]
        near = [
            np.linalg.norm(points - d["center_mm"], axis=1) <= r
            for d, r in zip(blobs, reach, strict=True)
        ]
        assert np.logical_or.reduce(near).all(), kind


@pytest.mark.parametrize("seed", VALVE_SEEDS)
def test_the_valve_score_is_the_agatston_score_of_its_coded_voxels(seed: int) -> None:
    p = _phantom(seed)
    valve = p.noncoronary == NONCORONARY_CODES["aortic_valve"]
    assert (valve & (p.hu >= 130)).any()  # a 6-class model's label-5 training target
    scored = agatston_scores(  # the service's arithmetic, apart from the phantom's own
        p.hu, np.where(valve, 2, 0).astype(np.uint8), p.pixel_spacing_rc, p.slice_increment_mm
    )
    assert p.aortic_valve_agatston > 0
    assert p.aortic_valve_agatston == pytest.approx(scored.agatston["total"], abs=1e-6)
    assert p.truth()["aortic_valve_agatston"] == p.aortic_valve_agatston


def test_without_valve_calcium_the_valve_scores_zero() -> None:
    p = _phantom(22)  # its valve calcium is the mitral annulus's
    assert NONCORONARY_CODES["aortic_valve"] not in p.noncoronary
    assert NONCORONARY_CODES["mitral_annulus"] in p.noncoronary
    assert p.aortic_valve_agatston == 0.0


def test_a_contrast_phantom_codes_nothing() -> None:
    p = make_cardiac_phantom(
        7, n_slices=20, rows=128, columns=128, pixel_spacing_mm=1.25, contrast=True
    )
    assert p.distractors
    assert not p.noncoronary.any()
    assert p.aortic_valve_agatston == 0.0
