"""Family B angiography cines: independence from family A, determinism, the normal twin,
lesion truth against the pixels, the DICOM header as the service and dciodvfy read it."""

from __future__ import annotations

import ast
import json
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from cardiogate_phantoms import SyntheticSeries, write_series
from cardiogate_phantoms.family_b.xa import make_xa_cine_b
from pydicom.filewriter import dcmwrite

from cardiogate.analyses.xa_cine import load_xa_cine
from peers import REPO, dciodvfy

FAMILY_B = REPO / "service" / "phantoms" / "cardiogate_phantoms" / "family_b"
VESSELS = {"LM", "LAD", "LCX", "RCA", "D1", "D2", "D3", "S1", "S2", "OM1", "OM2", "OM3"}
VESSELS |= {"CB", "AM1", "AM2", "PDA"}


def lad(percent: float) -> list[dict[str, Any]]:
    return [{"vessel": "LAD", "position": 0.35, "percent": percent, "length_mm": 10}]


@cache
def cine(seed: int, percent: float | None, frames: int = 24, rows: int = 512) -> SyntheticSeries:
    """An LCA cine with one LAD lesion of *percent* (None: its normal twin)."""
    stenoses = [] if percent is None else lad(percent)
    return make_xa_cine_b(seed, frames=frames, rows=rows, stenoses=stenoses, artery="LCA")


def frames_of(series: SyntheticSeries) -> np.ndarray:
    """The frames as written to and read back from Part 10 bytes."""
    buf = BytesIO()
    dcmwrite(buf, series.datasets[0], enforce_file_format=True)
    buf.seek(0)
    return pydicom.dcmread(buf).pixel_array.astype(np.float64)


def disc_and_ring(
    image: np.ndarray, xy: list[float], inner: float, ring: tuple[float, float]
) -> tuple[np.ndarray, float]:
    """Pixels within *inner* of *xy* and the median of the ring around them."""
    yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    r = np.hypot(xx - xy[0], yy - xy[1])
    return image[r <= inner], float(np.median(image[(r > ring[0]) & (r < ring[1])]))


def test_family_b_xa_imports_nothing_of_family_a() -> None:
    allowed = {"cardiogate_phantoms._common"}
    modules = sorted(FAMILY_B.glob("xa*.py"))
    assert len(modules) >= 5
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                continue  # family_b itself
            if isinstance(node, ast.ImportFrom) and node.level == 2:
                names = [f"cardiogate_phantoms.{node.module or ''}".rstrip(".")]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.split(".")[0] != "cardiogate_phantoms":
                    continue
                ok = name in allowed or name.startswith("cardiogate_phantoms.family_b")
                assert ok, f"{path.name} imports {name}"


def test_same_arguments_same_cine_and_truth() -> None:
    a, b = (make_xa_cine_b(7, frames=3, rows=96) for _ in range(2))
    assert a.datasets[0].PixelData == b.datasets[0].PixelData
    assert json.dumps(a.truth, sort_keys=True) == json.dumps(b.truth, sort_keys=True)
    other = make_xa_cine_b(8, frames=3, rows=96)
    assert other.datasets[0].PixelData != a.datasets[0].PixelData


def test_truth_is_json_and_names_known_vessels() -> None:
    s = make_xa_cine_b(3, frames=4, rows=128)
    t = json.loads(json.dumps(s.truth))
    assert (t["modality"], t["family"], t["number_of_frames"]) == ("XA", "b", 4)
    assert t["artery"] in ("LCA", "RCA")
    assert t["view"].split()[0] in ("LAO", "RAO", "AP")
    names = {v["name"] for v in t["vessels"]}
    assert names <= VESSELS
    assert ({"LM", "LAD", "LCX"} <= names) if t["artery"] == "LCA" else ("RCA" in names)
    for les in t["lesions"]:
        assert les["vessel"] in names
        assert 0 < les["position"] < 1
        assert len(les["positions_px"]) == len(les["visible"]) == 4
        assert 0 <= les["foreshortening"] <= 1
        assert les["minimal_lumen_diameter_mm"] == pytest.approx(
            les["reference_diameter_mm"] * (1 - les["percent_stenosis"] / 100), abs=2e-3
        )
    assert t["significant"] == any(les["percent_stenosis"] >= 50 for les in t["lesions"])
    assert set(t["difficulty"]) >= {
        "noise_level",
        "scatter_fraction",
        "bits_stored",
        "size",
        "overlapping_structures",
        "motion_amplitude_mm",
        "contrast",
        "frame_rate",
    }


def test_normal_twin_shares_anatomy_motion_and_noise() -> None:
    sick, twin = cine(5, 70.0), cine(5, None)
    assert twin.truth["lesions"] == []
    assert not twin.truth["significant"]
    assert sick.truth["vessels"] == twin.truth["vessels"]
    assert sick.truth["opacification"] == twin.truth["opacification"]
    a, b = frames_of(sick), frames_of(twin)
    changed = np.abs(a - b) > 2  # scatter of the lesion may move a far pixel by a level
    yy, xx = np.mgrid[0 : a.shape[1], 0 : a.shape[2]]
    for k, (x, y) in enumerate(sick.truth["lesions"][0]["positions_px"]):
        far = np.hypot(xx - x, yy - y) > 40
        assert not changed[k][far].any(), f"frame {k} changed away from the lesion"
    peak = sick.truth["peak_frame"]
    assert changed[peak].sum() > 10  # and the lesion itself is drawn


def test_lesion_is_on_a_dark_vessel_at_the_peak_frame() -> None:
    for seed in (5, 11):
        s = cine(seed, 50.0)
        les, peak = s.truth["lesions"][0], s.truth["peak_frame"]
        image = frames_of(s)[peak]
        px = 1 / s.truth["pixel_spacing_isocentre_mm"]
        disc, ring = disc_and_ring(image, les["positions_px"][peak], 2, (4 * px, 7 * px))
        assert disc.mean() < ring - 0.02 * image.max(), f"seed {seed}: no vessel at the lesion"


def test_narrowing_grows_with_percent() -> None:
    """At the peak frame the vessel at the lesion loses darkness (area and depth) as the
    requested diameter stenosis grows: 0 (twin) > 30 % > 80 %."""
    ref = cine(5, 50.0)
    peak, at = (
        ref.truth["peak_frame"],
        ref.truth["lesions"][0]["positions_px"][ref.truth["peak_frame"]],
    )
    px = 1 / ref.truth["pixel_spacing_isocentre_mm"]
    area, depth = [], []
    for percent in (None, 30.0, 80.0):
        image = frames_of(cine(5, percent))[peak]
        disc, ring = disc_and_ring(image, at, 2.5 * px, (4.5 * px, 7 * px))
        area.append(float(np.clip(ring - disc, 0, None).sum()))
        depth.append(ring - float(disc.min()))
    assert area[0] > area[1] > area[2] * 1.2
    assert depth[0] >= depth[1] > depth[2]


def test_lesion_positions_follow_the_motion() -> None:
    les = cine(5, 50.0).truth["lesions"][0]
    xy = np.array(les["positions_px"])
    assert np.ptp(xy, axis=0).max() > 2.0
    steps = np.linalg.norm(np.diff(xy, axis=0), axis=1)
    assert steps.max() < 40  # smooth, not jumping


def test_service_loads_the_cine_with_its_frames_and_scale() -> None:
    s = make_xa_cine_b(9, frames=6, rows=256)
    loaded = load_xa_cine(s.datasets)
    assert loaded.n_frames == 6
    assert loaded.bits_stored == s.truth["difficulty"]["bits_stored"]
    assert loaded.mm_per_px == pytest.approx(s.truth["pixel_spacing_isocentre_mm"], rel=1e-3)
    assert loaded.frame_times_ms is not None
    assert loaded.frame_times_ms[1] > 0
    assert loaded.geometry_flags == []


def test_header_says_who_made_it_and_how() -> None:
    ds = make_xa_cine_b(2, frames=2, rows=64).datasets[0]
    assert ds.Manufacturer == "cardiogate-synthetic-b"
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.12.1"
    assert ds.PhotometricInterpretation == "MONOCHROME2"
    assert ds.BitsAllocated == (8 if ds.BitsStored == 8 else 16)
    assert ds.FrameIncrementPointer in (0x00181063, 0x00181065)
    for keyword in ("PositionerPrimaryAngle", "DistanceSourceToDetector", "KVP", "CineRate"):
        assert keyword in ds


@pytest.mark.parametrize("seed", [1, 4, 5])
def test_written_file_passes_dciodvfy(seed: int, tmp_path: Path) -> None:
    (path,) = write_series(make_xa_cine_b(seed, frames=3, rows=128), tmp_path)
    lines = dciodvfy(path)
    assert not [line for line in lines if "Error" in line], lines


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"stenoses": [{"vessel": "XYZ", "percent": 50}]}, "vessel"),
        ({"stenoses": [{"vessel": "LAD", "percent": 50, "width": 2}]}, "keys"),
        ({"stenoses": [{"vessel": "LAD", "percent": 120}]}, "percent"),
        ({"stenoses": [{"vessel": "LAD", "percent": 50}], "artery": "RCA"}, "both arteries"),
        ({"artery": "LMCA"}, "artery"),
        ({"frames": 0}, "positive"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        make_xa_cine_b(1, rows=32, **kwargs)


@pytest.mark.slow
def test_seeded_runs_vary_and_half_hold_a_significant_lesion() -> None:
    truths = [make_xa_cine_b(seed, frames=2).truth for seed in range(40)]
    significant = sum(t["significant"] for t in truths)
    assert 12 <= significant <= 28
    assert {t["rows"] for t in truths} == {512, 1024}
    assert {t["difficulty"]["bits_stored"] for t in truths} == {8, 10, 12}
    assert {t["artery"] for t in truths} == {"LCA", "RCA"}
    assert len({t["view"] for t in truths}) >= 8
    counts = [len(t["lesions"]) for t in truths]
    assert (min(counts), max(counts)) == (0, 3)
    percents = [les["percent_stenosis"] for t in truths for les in t["lesions"]]
    assert min(percents) >= 20
    assert max(percents) <= 95
    frames = [make_xa_cine_b(seed, rows=32).truth for seed in range(12)]
    assert len({t["number_of_frames"] for t in frames}) > 5
    assert all(15 <= t["number_of_frames"] <= 60 for t in frames)
    assert {t["frame_rate"] for t in frames} <= {7.5, 15.0, 30.0}
