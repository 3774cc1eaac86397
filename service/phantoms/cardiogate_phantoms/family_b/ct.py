"""Family B cardiac CT phantom: a seeded non-contrast calcium-scoring scan and its truth.

Written apart from family A (it shares only the DICOM helpers of ``_common``), so that a
model trained on family A can be tested on anatomy, plaques, confounders and acquisitions
it has never seen.  Each part of a phantom draws from its own random stream of the seed
(anatomy, tree, plaques, confounders, acquisition, noise), so asking for another slice
thickness or matrix keeps the same patient and plaques.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._common import check_seed
from .ct_anatomy import BODY_SIZES, Anatomy, sample_anatomy
from .ct_coronary import (
    STEP_MM,
    CoronaryTree,
    Plaque,
    sample_burden,
    sample_plaques,
    sample_tree,
)
from .ct_grid import F32, F64, Grid, sample_kernel
from .ct_noncoronary import METAL, NONCORONARY_KINDS, sample_extras
from .ct_render import render_scene
from .ct_truth import THRESHOLD_HU, CalciumTruthB, category, score

U8 = NDArray[np.uint8]
MAX_SLICES = 160
_THICKNESSES = (0.6, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0)
_THICKNESS_P = (0.05, 0.05, 0.1, 0.05, 0.1, 0.1, 0.15, 0.4)
_NOISE_HU = {"small": (8.0, 22.0), "medium": (12.0, 32.0), "large": (20.0, 45.0)}
_KERNEL_NOISE = {"soft": 0.85, "standard": 1.0, "sharp": 1.25}
_PRESENCE = {  # how often each confounder appears when confounders are asked for
    "valve": 0.4,
    "wall": 0.5,
    "mitral": 0.25,
    "costal": 0.5,
    "wires": 0.15,
    "lead": 0.12,
    "clips": 0.1,
    "spikes": 0.4,
}
# PixelRepresentation, BitsStored, RescaleIntercept
ENCODINGS = ((1, 16, 0.0), (0, 12, -1024.0), (0, 16, -1024.0))
_STREAMS = {"anatomy": 1, "tree": 2, "plaques": 3, "extras": 4, "acquisition": 5, "noise": 6}


def _rng(seed: int, stream: str) -> np.random.Generator:
    return np.random.default_rng([seed, 0xB0B, _STREAMS[stream]])


@dataclass(frozen=True)
class CTPhantomB:
    """A rendered family B phantom and its truth (attribute names as family A's).

    Attributes
    ----------
    hu : (slices, rows, columns) float32
        Integer-valued HU in -1024 .. 3071, as the DICOM stores them; slice 0 most cranial.
    labels : uint8
        0 none, 1 LM, 2 LAD, 3 LCX, 4 RCA on each coronary plaque's footprint.
    noncoronary : uint8
        The kind (index into ``NONCORONARY_KINDS``) of each bright non-coronary voxel.
    z_mm : float64
        Slice centres (patient z, mm), descending.
    origin_mm : (float, float)
        Patient x, y of the centre of pixel (0, 0).
    """

    hu: F32
    labels: U8
    noncoronary: U8
    pixel_spacing_mm: float
    slice_increment_mm: float
    slice_thickness_mm: float
    z_mm: F64
    origin_mm: tuple[float, float]
    truth_scores: CalciumTruthB
    aortic_valve_agatston: float
    difficulty: dict[str, Any]
    seed: int
    kernel_name: str  # ConvolutionKernel
    encoding: tuple[int, int, float]  # PixelRepresentation, BitsStored, RescaleIntercept
    plaques: list[dict[str, Any]] = field(default_factory=list)
    noncoronary_objects: list[dict[str, Any]] = field(default_factory=list)
    anatomy: dict[str, Any] = field(default_factory=dict)

    @property
    def pixel_spacing_rc(self) -> tuple[float, float]:
        """(row, column) spacing, as scoring functions take it."""
        return (self.pixel_spacing_mm, self.pixel_spacing_mm)

    def truth(self) -> dict[str, Any]:
        """JSON-serialisable scores, lesions, placements and difficulty."""
        s = self.truth_scores
        return {
            "family": "b",
            "agatston": dict(s.agatston),
            "volume_mm3": dict(s.volume_mm3),
            "lesion_count": len(s.lesions),
            "category": category(s.agatston["total"]),
            "lesions": [lesion.as_dict() for lesion in s.lesions],
            "aortic_valve_agatston": self.aortic_valve_agatston,
            "plaques": self.plaques,
            "noncoronary": self.noncoronary_objects,
            "difficulty": self.difficulty,
            "anatomy": self.anatomy,
            "threshold_hu": THRESHOLD_HU,
        }


def _z_grid(
    tree: CoronaryTree, rng: np.random.Generator, thickness: float, n_slices: int | None
) -> tuple[F64, float]:
    """Slice centres covering the whole tree (or ``n_slices`` around the bifurcation), and
    their increment."""
    points = np.vstack([v.points for v in tree.vessels])
    top = float(points[:, 2].max()) + float(rng.uniform(8, 25))
    bottom = float(points[:, 2].min()) - float(rng.uniform(5, 15))
    if n_slices is None:
        increment = max(thickness, math.ceil((top - bottom) / (MAX_SLICES - 1) * 100) / 100)
        n = min(math.ceil((top - bottom) / increment) + 1, MAX_SLICES)
    else:
        increment, n = thickness, n_slices
        centre = float(tree.vessel("LM-LAD").points[int(tree.lm_length_mm / STEP_MM), 2])
        top = centre + (n - 1) / 2 * increment
    z = np.round(round(top, 2) - np.arange(n) * increment, 4)
    return np.asarray(z, dtype=np.float64), increment


def _origin(
    tree: CoronaryTree,
    centre_xy: F64,
    rng: np.random.Generator,
    size: tuple[int, int],
    spacing: float,
) -> tuple[float, float]:
    """Pixel (0, 0) centre: the field of view is centred near the heart (nearer the body
    centre when wide) and moved to hold the whole tree when it can."""
    rows, columns = size
    fov = max(rows, columns) * spacing
    weight = float(np.clip((fov - 200.0) / 150.0, 0.0, 1.0))
    centre = (1 - weight) * centre_xy + rng.normal(0, 6, 2)
    points = np.vstack([v.points for v in tree.vessels])[:, :2]
    for axis, extent in ((0, columns * spacing), (1, rows * spacing)):
        lo, hi = points[:, axis].min() - 8, points[:, axis].max() + 8
        if hi - lo <= extent:
            centre[axis] = np.clip(centre[axis], hi - extent / 2, lo + extent / 2)
    return (
        round(float(centre[0]) - (columns - 1) / 2 * spacing, 3),
        round(float(centre[1]) - (rows - 1) / 2 * spacing, 3),
    )


def make_ct_phantom_b(
    seed: int,
    *,
    rows: int = 512,
    columns: int = 512,
    n_slices: int | None = None,
    slice_thickness_mm: float | None = None,
    pixel_spacing_mm: float | None = None,
    noise_sigma_hu: float | None = None,
    plaques: bool = True,
    noncoronary: bool = True,
) -> CTPhantomB:
    """A seeded family B cardiac CT phantom.

    Parameters left as None are drawn from the seed: slice thickness 0.6-3 mm (the
    increment equals it unless the tree needs more than 160 slices), pixel spacing from a
    175-400 mm field of view, noise 8-45 HU by body size and kernel.  ``n_slices`` fixes
    the slice count around the left main bifurcation instead of covering the whole tree.
    ``plaques=False`` leaves the arteries without calcium; ``noncoronary=False`` leaves
    out every confounder but the bones.
    """
    check_seed(seed)
    if rows < 16 or columns < 16:
        raise ValueError(f"rows and columns must be at least 16, got {rows} x {columns}")
    if n_slices is not None and not 1 <= n_slices <= 4 * MAX_SLICES:
        raise ValueError(f"n_slices must be 1 .. {4 * MAX_SLICES}, got {n_slices}")
    for name, value in (
        ("slice_thickness_mm", slice_thickness_mm),
        ("pixel_spacing_mm", pixel_spacing_mm),
    ):
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be positive, got {value}")
    if noise_sigma_hu is not None and not noise_sigma_hu >= 0:
        raise ValueError(f"noise_sigma_hu must be >= 0, got {noise_sigma_hu}")

    rng_x = _rng(seed, "extras")
    present = {k: bool(rng_x.random() < p) and noncoronary for k, p in _PRESENCE.items()}
    rng_a = _rng(seed, "anatomy")
    size = str(rng_a.choice(BODY_SIZES, p=[0.3, 0.45, 0.25]))
    anatomy = sample_anatomy(rng_a, size, present["wires"])
    tree = sample_tree(_rng(seed, "tree"), anatomy.heart, anatomy.vessels)
    rng_p = _rng(seed, "plaques")
    burden = sample_burden(rng_p) if plaques else "zero"
    placed: list[Plaque] = sample_plaques(rng_p, tree, burden)

    rng_q = _rng(seed, "acquisition")
    # every draw is made, given or not, so a given value leaves the others as they were
    drawn_thickness = float(rng_q.choice(_THICKNESSES, p=_THICKNESS_P))
    thickness = float(slice_thickness_mm or drawn_thickness)
    fov = float(rng_q.uniform(175.0, 400.0))
    spacing = float(pixel_spacing_mm or round(fov / max(rows, columns), 4))
    kernel = sample_kernel(rng_q)
    low, high = _NOISE_HU[size]
    drawn = float(rng_q.uniform(low, high)) * _KERNEL_NOISE[kernel.name]
    noise = float(noise_sigma_hu if noise_sigma_hu is not None else np.clip(drawn, 8.0, 45.0))
    cupping = float(rng_q.uniform(0, 10) + (12 if size == "large" else 0))
    encoding = ENCODINGS[int(rng_q.choice(len(ENCODINGS), p=[0.5, 0.3, 0.2]))]
    z, increment = _z_grid(tree, rng_q, thickness, n_slices)
    origin = _origin(tree, anatomy.heart.centre[:2], rng_q, (rows, columns), spacing)
    grid = Grid(rows, columns, spacing, thickness, z, origin)

    half = thickness / 2
    z_range = (float(z[-1] - half), float(z[0] + half))
    placed = [
        p
        for p in placed
        if (
            (p.centres[:, 2] + p.radii > z_range[0]) & (p.centres[:, 2] - p.radii < z_range[1])
        ).any()
    ]
    extras = sample_extras(rng_x, anatomy, tree, placed, z_range, present)
    scene = render_scene(
        grid, anatomy, tree, placed, extras, kernel, noise, cupping, _rng(seed, "noise")
    )

    truth = score(scene.hu, scene.labels, spacing, increment)
    valve = score(scene.hu, (scene.noncoronary == 1).astype(np.uint8), spacing, increment, ("AV",))
    counts = np.bincount(scene.noncoronary.ravel(), minlength=len(NONCORONARY_KINDS))
    kinds = [k for k in range(1, len(NONCORONARY_KINDS)) if counts[k]]
    difficulty = {
        "noise_sigma_hu": round(noise, 2),
        "kernel": kernel.name,
        "kernel_sigma_mm": round(kernel.sigma_mm, 3),
        "kernel_sharpen": round(kernel.sharpen, 3),
        "slice_thickness_mm": thickness,
        "slice_increment_mm": increment,
        "pixel_spacing_mm": spacing,
        "body_size": size,
        "n_noncoronary_kinds": len(kinds),
        "noncoronary_kinds": [NONCORONARY_KINDS[k] for k in kinds],
        "has_metal": METAL in kinds,
        "burden": burden,
        "n_plaques": len(placed),
        "cupping_hu": round(cupping, 2),
        "lm_length_mm": round(tree.lm_length_mm, 2),
        "dominance": tree.dominance,
    }
    return CTPhantomB(
        hu=scene.hu,
        labels=scene.labels,
        noncoronary=scene.noncoronary,
        pixel_spacing_mm=spacing,
        slice_increment_mm=increment,
        slice_thickness_mm=thickness,
        z_mm=z,
        origin_mm=origin,
        truth_scores=truth,
        aortic_valve_agatston=valve.agatston["total"],
        difficulty=difficulty,
        seed=seed,
        kernel_name=kernel.dicom_name,
        encoding=encoding,
        plaques=[p.as_dict() for p in placed],
        noncoronary_objects=[e.as_dict() for e in scene.shown] + _bones(anatomy, z),
        anatomy={**anatomy.as_dict(), "coronary_tree": tree.as_dict()},
    )


def _bones(anatomy: Anatomy, z: F64) -> list[dict[str, Any]]:
    """The bones as placed objects (kind 4), centred on the scanned range."""
    t, middle = anatomy.torso, round(float(z.mean()), 1)
    places = {
        "spine": (0.0, t.vertebra_y_mm),
        "sternum": (0.0, t.sternum[0]),
        "ribs": (t.cavity[0] + t.rib_mm / 2, 0.0),
    }
    return [
        {"kind": "bone", "kind_code": 4, "name": name, "centre_mm": [x, round(y, 1), middle]}
        for name, (x, y) in places.items()
    ]
