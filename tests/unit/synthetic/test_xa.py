"""Tests for the synthetic angiography cine: stenoses, their truth and the image model."""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pydicom
import pytest
from cardiogate_phantoms import StenosisSpec, make_xa_cine, write_series
from pydicom.filewriter import dcmwrite
from scipy import ndimage

from peers import dciodvfy

LAD_75 = {"vessel": "LAD", "position": 0.4, "percent": 75, "length_mm": 6}


@pytest.fixture(scope="module")
def lad_75() -> tuple[np.ndarray, dict[str, Any]]:
    """A full-size cine with one 75 % LAD stenosis, read back from its written bytes."""
    s = make_xa_cine(11, frames=12, stenoses=[LAD_75])
    buf = BytesIO()
    dcmwrite(buf, s.datasets[0], enforce_file_format=True)
    buf.seek(0)
    return pydicom.dcmread(buf).pixel_array.astype(np.float64), json.loads(json.dumps(s.truth))


def _attenuation(frames: np.ndarray, k: int) -> np.ndarray:
    """Iodine attenuation in frame *k*: -log of it over frame 0 (no contrast yet), smoothed."""
    return -np.log(ndimage.uniform_filter(frames[k], 3) / ndimage.uniform_filter(frames[0], 3))


def _centreline(truth: dict[str, Any], name: str) -> np.ndarray:
    return np.array(next(v for v in truth["vessels"] if v["name"] == name)["centerline_px"])


def _sample(image: np.ndarray, xy: np.ndarray) -> np.ndarray:
    out: np.ndarray = ndimage.map_coordinates(image, [xy[:, 1], xy[:, 0]], order=1)
    return out


def test_same_seed_same_cine_and_truth() -> None:
    a, b = (make_xa_cine(4, frames=3, rows=96, columns=96) for _ in range(2))
    assert a.datasets[0].PixelData == b.datasets[0].PixelData
    assert json.dumps(a.truth, sort_keys=True) == json.dumps(b.truth, sort_keys=True)


class AtPeak(NamedTuple):
    """The LAD lesion at peak opacification: attenuation map, LAD centreline (points 2 px
    apart), index of the centreline point nearest the lesion, the lesion truth, its position."""

    att: np.ndarray
    lad: np.ndarray
    i: int
    lesion: dict[str, Any]
    at: np.ndarray


def _at_peak(cine: tuple[np.ndarray, dict[str, Any]]) -> AtPeak:
    frames, truth = cine
    k = truth["peak_frame"]
    (lesion,) = truth["lesions"]
    lad = _centreline(truth, "LAD")
    at = np.asarray(lesion["positions_px"][k])
    i = int(np.argmin(np.linalg.norm(lad - at, axis=1)))
    return AtPeak(_attenuation(frames, k), lad, i, lesion, at)


def test_lesion_truth_marks_the_minimal_lumen(lad_75: tuple[np.ndarray, dict[str, Any]]) -> None:
    att, lad, i, lesion, at = _at_peak(lad_75)
    assert np.linalg.norm(lad[i] - at) < 1.0  # the lesion sits on the LAD's centreline
    span = round(lesion["length_px"] / 2) + 10  # points 2 px apart: a lesion length + 20 px
    window = slice(i - span, i + span + 1)
    profile = _sample(att, lad[window])
    darkest_gap = lad[window][int(np.argmin(profile))]
    assert np.linalg.norm(darkest_gap - at) <= 3.0


def test_75_percent_stenosis_is_thin_and_pale(lad_75: tuple[np.ndarray, dict[str, Any]]) -> None:
    att, lad, i, lesion, _ = _at_peak(lad_75)
    step = round(1.5 * lesion["length_px"] / 2)  # points 2 px apart: 1.5 lesion lengths away
    refs = [i - step, i + step]

    def width(j: int, level: float) -> float:
        tangent = lad[j + 1] - lad[j - 1]
        normal = np.array([-tangent[1], tangent[0]]) / np.linalg.norm(tangent)
        reach = 2 * lesion["reference_diameter_px"]
        offsets = np.arange(-reach, reach + 0.125, 0.25)
        across = _sample(att, lad[j] + offsets[:, None] * normal)
        return float((across > level).sum() * 0.25)

    ref_peak = float(np.mean(_sample(att, lad[refs])))
    assert float(_sample(att, lad[[i]])[0]) < 0.4 * ref_peak
    ref_width = np.mean([width(j, 0.3 * ref_peak) for j in refs])
    assert ref_width == pytest.approx(lesion["reference_diameter_px"], rel=0.35)
    assert width(i, 0.3 * ref_peak) < 0.5 * ref_width


def test_explicit_stenosis_truth(lad_75: tuple[np.ndarray, dict[str, Any]]) -> None:
    frames, truth = lad_75
    (lesion,) = truth["lesions"]
    assert truth["significant"] is True
    assert truth["artery"] == "LCA"
    assert (lesion["vessel"], lesion["percent_stenosis"], lesion["length_mm"]) == ("LAD", 75, 6.0)
    assert lesion["significant"] is True
    mm = truth["pixel_spacing_isocentre_mm"]
    assert lesion["reference_diameter_mm"] == pytest.approx(
        lesion["reference_diameter_px"] * mm, abs=1e-3
    )
    assert lesion["minimal_lumen_diameter_mm"] == pytest.approx(
        0.25 * lesion["reference_diameter_mm"], abs=1e-3
    )
    xy = np.array(lesion["positions_px"])
    assert xy.shape == (len(frames), 2)
    assert ((xy >= 0) & (xy < 512)).all()
    assert np.ptp(xy, axis=0).max() > 2  # the heartbeat moves it


def test_normal_cine_is_the_twin_without_the_lesion(
    lad_75: tuple[np.ndarray, dict[str, Any]],
) -> None:
    frames, truth = lad_75
    normal = make_xa_cine(11, frames=12, stenoses=[], artery="LCA")
    assert normal.truth["lesions"] == []
    assert normal.truth["significant"] is False
    other = normal.datasets[0].pixel_array.astype(np.float64)
    changed = np.argwhere(np.abs(other - frames).max(axis=0) > 0)
    (lesion,) = truth["lesions"]
    reach = lesion["length_px"] / 2 + lesion["reference_diameter_px"] + 4
    around = np.array(lesion["positions_px"])
    dist = np.linalg.norm(changed[:, None, ::-1] - around[None], axis=2).min(axis=1)
    assert len(changed) > 0
    assert dist.max() <= reach


def test_wash_in_is_paler_than_peak_and_washes_out() -> None:
    s = make_xa_cine(8, frames=30, rows=256, columns=256, stenoses=[])
    truth = s.truth
    opac = np.array(truth["opacification"])
    peak = truth["peak_frame"]
    assert opac[0] == 0.0
    assert opac[peak] > 0.95
    assert opac[-1] < 0.8 * opac[peak]
    early = int(np.argmax((opac > 0.05) & (np.arange(len(opac)) < peak)))
    assert 0 < opac[early] < 0.6
    frames = s.datasets[0].pixel_array.astype(np.float64)
    root = truth["vessels"][0]
    centre = np.array(root["centerline_px"])
    darkness = [float(_sample(_attenuation(frames, k), centre).mean()) for k in (early, peak)]
    assert darkness[0] < 0.7 * darkness[1]


def test_seeded_lesions_mix_severities_and_stay_in_frame() -> None:
    counts, percents = [], []
    for seed in range(12):
        truth = make_xa_cine(seed, frames=3, rows=128, columns=128).truth
        severities = [lesion["percent_stenosis"] for lesion in truth["lesions"]]
        assert truth["significant"] == any(p >= 50 for p in severities)
        counts.append(len(severities))
        percents += severities
        for lesion in truth["lesions"]:
            xy = np.array(lesion["positions_px"])
            assert ((xy >= 0) & (xy < 128)).all()
    assert set(counts) <= {0, 1, 2, 3}
    assert 0 in counts
    assert max(counts) >= 2
    assert all(20 <= p <= 95 for p in percents)
    assert any(p >= 50 for p in percents)
    assert any(p < 50 for p in percents)


def test_rca_stenosis_picks_an_rca_view() -> None:
    truth = make_xa_cine(0, frames=2, rows=64, columns=64, stenoses=[StenosisSpec("RCA")]).truth
    assert truth["artery"] == "RCA"
    assert truth["view"] in {"LAO 30", "RAO 30", "LAO 30 CRA 20"}
    assert [le["vessel"] for le in truth["lesions"]] == ["RCA"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stenoses": [{"vessel": "XYZ"}]}, "unknown vessel"),
        ({"stenoses": [{"vessel": "LAD"}, {"vessel": "RCA"}]}, "both LCA and RCA"),
        ({"stenoses": [{"vessel": "LAD"}], "artery": "RCA"}, "both LCA and RCA"),
        ({"artery": "LMCA"}, "artery"),
    ],
)
def test_bad_stenosis_requests_raise(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_xa_cine(0, frames=1, rows=32, columns=32, **kwargs)


@pytest.mark.parametrize(
    "fields",
    [
        {"vessel": "LAD", "percent": 0},
        {"vessel": "LAD", "percent": 100},
        {"vessel": "LAD", "position": 1.5},
        {"vessel": "LAD", "length_mm": 0},
        {"vessel": ""},
    ],
)
def test_stenosis_spec_refuses_nonsense(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="stenosis"):
        StenosisSpec(**fields)


def test_xa_with_lesions_passes_dciodvfy(tmp_path: Path) -> None:
    s = make_xa_cine(5, frames=4, rows=128, columns=128, stenoses=[LAD_75])
    (path,) = write_series(s, tmp_path)
    lines = dciodvfy(path)
    assert not [line for line in lines if "Error" in line], lines
