"""Seeded cardiac CT phantom with per-artery coronary calcium ground truth.

:func:`make_cardiac_phantom` draws a chest (:mod:`.anatomy`), a coronary tree
and calcified plaques (:mod:`.coronary`) and label-0 distractors
(:mod:`.distractors`), renders them with partial-volume blur and noise, rounds
to integer HU as a DICOM file would store them and scores the result with the
phantoms' own arithmetic (:func:`.calcium_truth.calcium_truth`, the published rules; not
the service's scoring, which the phantoms are there to test).

Labels
------
Each plaque is rendered on its own first: its voxel occupancy (pixel x slice
profile, supersampled) is blurred in-plane with the same gaussian as the image.
A voxel is labelled with the plaque's artery (1 LM, 2 LAD, 3 LCX, 4 RCA) where
that blurred plaque-only contribution is at least :data:`LABEL_MIN_HU`; where
two plaques overlap the larger contribution wins.  Everything else (bone,
aortic and valve calcium, noise spikes, blood, contrast) is 0.  Every pixel a
plaque lifts over 130 HU is therefore labelled, so scoring ``hu`` with
``labels`` counts plaque calcium and nothing else.

The distractors are labelled the same way in a volume of their own,
``noncoronary``, with the codes of :data:`.distractors.NONCORONARY_CODES` (1
aortic valve, 2 aortic wall, 3 mitral annulus, 6 noise spike; bone is not
coded), never where ``labels`` is set; ``aortic_valve_agatston`` scores the
voxels coded 1 with the coronary rule.  Both are computed from what was
already drawn and consume no random numbers, so pixels and coronary truth are
what they were before they existed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._common import check_seed
from ._raster import (
    F32,
    F64,
    Box,
    Grid,
    blob_occupancy,
    blur_inplane,
    blur_margin_mm,
    noise_gain,
)
from .anatomy import draw_anatomy
from .calcium_truth import CalciumTruth, cac_drs, calcium_truth, classic_category
from .coronary import (
    ARTERY_IDS,
    PlaqueSpec,
    as_plaque_spec,
    build_coronary_tree,
    plaque_ellipsoid,
    random_plaque_specs,
    vessel_tubes,
)
from .distractors import NONCORONARY_CODES, Distractor, draw_distractors
from .renderer import AnatomyRenderer

HU_MIN, HU_MAX = -1024.0, 3071.0
"""Range the phantom is clipped to (12-bit CT with intercept -1024)."""
LABEL_MIN_HU = 10.0
"""Blurred plaque-only contribution (HU) above which a voxel takes the plaque's label."""
_STREAM = 0xCA1C
_NOISE_FIELDS = 8


@dataclass(frozen=True, eq=False)
class CardiacPhantom:
    """A rendered phantom and its ground truth.

    Attributes
    ----------
    hu : (slices, rows, columns) float32 ndarray
        Integer-valued HU after blur and noise, clipped to [-1024, 3071]: exactly
        what the DICOM series stores after rescale.  Slice 0 is the most cranial.
    labels : (slices, rows, columns) uint8 ndarray
        0 none, 1 LM, 2 LAD, 3 LCX, 4 RCA on each plaque's footprint.
    pixel_spacing_mm, slice_increment_mm, slice_thickness_mm : float
        Geometry.
    z_mm : ndarray
        Slice centre z (mm, patient), descending.
    origin_mm : (float, float)
        x, y of the centre of pixel (0, 0).
    plaques, distractors : list of dict
        What was placed (centres in patient mm).
    truth_scores : CalciumTruth
        ``calcium_truth(hu, labels, ...)``: Agatston score, volume and lesions.
    noncoronary : (slices, rows, columns) uint8 ndarray
        0 none, or the code of the distractor on its footprint
        (:data:`.distractors.NONCORONARY_CODES`: 1 aortic valve, 2 aortic
        wall, 3 mitral annulus, 6 noise spike; bone is left 0); 0 wherever
        ``labels`` is set, and everywhere in a contrast phantom.
    aortic_valve_agatston : float
        Agatston score of the aortic valve calcium (``noncoronary == 1``), by
        the rule of ``truth_scores``; 0 in a contrast phantom.
    """

    hu: F32
    labels: NDArray[np.uint8]
    pixel_spacing_mm: float
    slice_increment_mm: float
    slice_thickness_mm: float
    z_mm: F64
    origin_mm: tuple[float, float]
    plaques: list[dict[str, Any]]
    distractors: list[dict[str, Any]]
    truth_scores: CalciumTruth
    contrast: bool
    noise_sigma_hu: float
    blur_sigma_mm: float
    anatomy: dict[str, Any] = field(default_factory=dict)
    noncoronary: NDArray[np.uint8] = field(default_factory=lambda: np.zeros((0, 0, 0), np.uint8))
    aortic_valve_agatston: float = 0.0

    @property
    def pixel_spacing_rc(self) -> tuple[float, float]:
        """(row, column) spacing, as scoring functions take it."""
        return (self.pixel_spacing_mm, self.pixel_spacing_mm)

    def truth(self) -> dict[str, Any]:
        """JSON-serialisable scores (same keys as ``cardiogate analyze --json``) and placements."""
        s = self.truth_scores
        return {
            "agatston": dict(s.agatston),
            "volume_mm3": dict(s.volume_mm3),
            "lesion_count": len(s.lesions),
            "category": classic_category(s.agatston["total"]),
            "cac_drs": cac_drs(s.agatston),
            "aortic_valve_agatston": self.aortic_valve_agatston,
            "plaques": self.plaques,
            "distractors": self.distractors,
            "label_min_hu": LABEL_MIN_HU,
            "noise_sigma_hu": self.noise_sigma_hu,
            "blur_sigma_mm": self.blur_sigma_mm,
        }


def _solve_amplitude(bb: F32, g: F32, peak: float) -> float:
    """Amplitude ``a`` with ``max(bb + a * g) == peak`` over the plaque's core (g >= 20% max)."""
    core = g >= 0.2 * g.max()
    b, gc = bb[core].astype(np.float64), g[core].astype(np.float64)
    i = int(np.argmax(gc))
    amp = (peak - b[i]) / gc[i]
    for _ in range(30):
        v = b + amp * gc
        j = int(np.argmax(v))
        if v[j] <= peak + 0.01:
            break
        amp = (peak - b[j]) / gc[j]
    return max(float(amp), 0.0)


def _overlap(a: Box, b: Box) -> tuple[Box, Box] | None:
    """Local index boxes of the intersection of *a* and *b* (or None)."""
    lo = [max(x.start, y.start) for x, y in zip(a, b, strict=True)]
    hi = [min(x.stop, y.stop) for x, y in zip(a, b, strict=True)]
    if any(h <= low for low, h in zip(lo, hi, strict=True)):
        return None
    la = tuple(slice(low - x.start, h - x.start) for low, h, x in zip(lo, hi, a, strict=True))
    lb = tuple(slice(low - y.start, h - y.start) for low, h, y in zip(lo, hi, b, strict=True))
    return (la[0], la[1], la[2]), (lb[0], lb[1], lb[2])


def _label(labels: NDArray[np.uint8], contribs: list[tuple[Box, F32, int]]) -> None:
    """Write each plaque's footprint; the larger contribution wins on overlaps."""
    for p, (box, c, aid) in enumerate(contribs):
        mine = c >= LABEL_MIN_HU
        for q, (box2, c2, _) in enumerate(contribs):
            ov = None if q == p else _overlap(box, box2)
            if ov is not None:
                mine[ov[0]] &= c[ov[0]] >= c2[ov[1]]
        labels[box][mine] = aid


def _noncoronary(
    distractors: Sequence[Distractor],
    grid: Grid,
    sig_px: float,
    pad: float,
    labels: NDArray[np.uint8],
) -> NDArray[np.uint8]:
    """Each distractor's code where its blurred contribution is at least
    :data:`LABEL_MIN_HU` (the larger one wins on overlaps), 0 where ``labels``
    is set; the occupancy is measured again with the blur margin the image had."""
    contribs: list[tuple[Box, F32, int]] = []
    for d in distractors:
        occ = blob_occupancy(d.blob, grid, pad)
        if occ is not None:
            contribs.append((occ[0], np.float32(d.delta_hu) * blur_inplane(occ[1], sig_px), d.code))
    coded = np.zeros(labels.shape, dtype=np.uint8)
    _label(coded, contribs)
    coded[labels > 0] = 0
    return coded


def _parallel(n: int, fn: Callable[[int], None], workers: int) -> None:
    if workers <= 1 or n < 8:
        for i in range(n):
            fn(i)
        return
    with ThreadPoolExecutor(max_workers=workers) as ex:
        list(ex.map(fn, range(n)))


def make_cardiac_phantom(
    seed: int,
    *,
    n_slices: int = 64,
    rows: int = 512,
    columns: int = 512,
    pixel_spacing_mm: float | None = None,
    slice_increment_mm: float = 3.0,
    slice_thickness_mm: float | None = None,
    first_slice_z_mm: float | None = None,
    contrast: bool = False,
    plaques: Sequence[PlaqueSpec | Mapping[str, Any]] | None = None,
    aortic_calcium: bool | int | None = None,
    valve_calcium: bool | None = None,
    noise_spikes: bool | int | None = None,
    noise_sigma_hu: float | None = None,
    blur_sigma_mm: float | None = None,
    workers: int | None = None,
) -> CardiacPhantom:
    """Render a seeded non-contrast (or CTA) cardiac CT phantom with calcium truth.

    Parameters
    ----------
    seed : int
        Non-negative seed; anatomy, plaques, distractors and noise follow from it.
    n_slices, rows, columns : int
        Volume shape.
    pixel_spacing_mm : float, optional
        In-plane spacing, respected as given; seeded in 0.35-0.70 mm when omitted.
        The field of view is centred on the heart up to 200 mm and on the body
        axis from 320 mm (chests are about 280-380 mm wide, so e.g. 128 x 2.8 mm
        shows the whole chest of most seeds; 128 x 1.5 mm shows the heart).
    slice_increment_mm : float
        Distance between slice centres.
    slice_thickness_mm : float, optional
        Slice profile width; the increment when omitted.
    first_slice_z_mm : float, optional
        z of slice 0 (most cranial); seeded when omitted.  The heart is centred
        in the covered range.
    contrast : bool
        Opacify blood (300-450 HU); labels are then empty and the truth zero.
    plaques : sequence of PlaqueSpec or mapping, optional
        Plaques to place; seeded (none in ~20% of seeds, else 1-8) when omitted;
        ``[]`` for none.
    aortic_calcium, valve_calcium, noise_spikes : bool or int, optional
        Label-0 distractors; seeded when omitted (see :func:`.draw_distractors`).
    noise_sigma_hu : float, optional
        Image noise standard deviation; seeded in 10-25 HU when omitted.
    blur_sigma_mm : float, optional
        In-plane partial-volume gaussian sigma; seeded in 0.5-0.8 mm when omitted.
    workers : int, optional
        Threads for the per-slice work (results do not depend on it).

    Returns
    -------
    CardiacPhantom
    """
    check_seed(seed)
    if min(n_slices, rows, columns) < 1 or slice_increment_mm <= 0:
        raise ValueError("sizes and slice increment must be positive")
    for v in (pixel_spacing_mm, slice_thickness_mm, blur_sigma_mm):
        if v is not None and v <= 0:
            raise ValueError("pixel spacing, slice thickness and blur must be positive")
    if noise_sigma_hu is not None and noise_sigma_hu < 0:
        raise ValueError("noise_sigma_hu must not be negative")
    seqs = np.random.SeedSequence([seed, _STREAM]).spawn(6)
    rg_geo, rg_anat, rg_tree, rg_plaq, rg_dist, rg_noise = (np.random.default_rng(q) for q in seqs)
    draws = rg_geo.uniform([0.35, -120.0, 10.0, 0.5], [0.70, -20.0, 25.0, 0.8])
    ps = round(float(draws[0]) * 1024) / 1024 if pixel_spacing_mm is None else pixel_spacing_mm
    ps = float(ps)
    z_top = round(float(draws[1]), 1) if first_slice_z_mm is None else float(first_slice_z_mm)
    sigma = float(draws[2]) if noise_sigma_hu is None else float(noise_sigma_hu)
    blur_mm = float(draws[3]) if blur_sigma_mm is None else float(blur_sigma_mm)
    inc = float(slice_increment_mm)
    thick = inc if slice_thickness_mm is None else float(slice_thickness_mm)
    zs = z_top - inc * np.arange(n_slices, dtype=np.float64)

    an = draw_anatomy(rg_anat, float(zs.mean()), float(zs.min()), contrast)
    tree = build_coronary_tree(an, rg_tree)
    w = float(np.clip((ps * max(rows, columns) - 200.0) / 120.0, 0.0, 1.0))
    cx, cy = (round(float(v) * 0.9 * (1 - w), 1) for v in an.heart.centre[:2])
    x0, y0 = cx - (columns - 1) / 2 * ps, cy - (rows - 1) / 2 * ps
    grid = Grid(
        xs=(x0 + ps * np.arange(columns)).astype(np.float32),
        ys=(y0 + ps * np.arange(rows)).astype(np.float32),
        zs=zs,
        spacing=ps,
        thickness=thick,
    )
    renderer = AnatomyRenderer(an, grid, vessel_tubes(tree, an.blood_hu if contrast else None))
    vol = np.empty((n_slices, rows, columns), dtype=np.float32)
    nw = workers if workers is not None else min(8, os.cpu_count() or 1)

    def render(i: int) -> None:
        vol[i] = renderer.render(float(zs[i]))

    _parallel(n_slices, render, nw)

    distractors = draw_distractors(
        an,
        tree,
        rg_dist,
        (float(zs.min()), float(zs.max())),
        aortic_calcium=aortic_calcium,
        valve_calcium=valve_calcium,
        noise_spikes=noise_spikes,
    )
    for d in distractors:
        occ = blob_occupancy(d.blob, grid, 0.0)
        if occ is not None:
            vol[occ[0]] += np.float32(d.delta_hu) * occ[1]

    sig_px = blur_mm / ps
    pad = blur_margin_mm(blur_mm, ps)
    specs = (
        random_plaque_specs(rg_plaq) if plaques is None else [as_plaque_spec(p) for p in plaques]
    )
    contribs: list[tuple[Box, F32, int]] = []
    placed: list[dict[str, Any]] = []
    for spec in specs:
        ell = plaque_ellipsoid(spec, tree, rg_plaq)
        occ = blob_occupancy(ell, grid, pad)
        g = blur_inplane(occ[1], sig_px) if occ is not None else None
        record: dict[str, Any] = {
            "artery": spec.artery,
            "label": ARTERY_IDS[spec.artery],
            "position": spec.position,
            "radius_mm": spec.radius_mm,
            "length_mm": float(ell.semi[0]),
            "peak_hu": spec.peak_hu,
            "center_mm": [round(float(v), 3) for v in ell.centre],
            "in_view": False,
        }
        placed.append(record)
        if occ is None or g is None or float(g.max()) <= 1e-6:
            continue
        box, frac = occ
        if contrast:
            amp = (spec.peak_hu - 40.0) / float(g.max())
        else:
            amp = _solve_amplitude(blur_inplane(vol[box], sig_px), g, spec.peak_hu)
        vol[box] += np.float32(amp) * frac
        contrib = (np.float32(amp) * g).astype(np.float32)
        contribs.append((box, contrib, ARTERY_IDS[spec.artery]))
        k = np.flatnonzero((contrib >= LABEL_MIN_HU).any(axis=(1, 2))) + box[0].start
        record.update(in_view=bool(k.size), amplitude_hu=round(amp, 2), slices=k.tolist())

    labels = np.zeros(vol.shape, dtype=np.uint8)
    noncoronary = np.zeros(vol.shape, dtype=np.uint8)
    if not contrast:
        _label(labels, contribs)
        noncoronary = _noncoronary(distractors, grid, sig_px, pad, labels)

    gain = noise_gain(sig_px)
    margin = 32
    # noise: two windows, randomly offset and flipped, into a bank of white fields
    nb = _NOISE_FIELDS
    bank = rg_noise.standard_normal((nb, rows + margin, columns + margin), dtype=np.float32)
    bank *= np.float32(sigma / gain / np.sqrt(2.0))
    picks = rg_noise.integers(0, nb, size=(n_slices, 2))
    picks[:, 1] = (picks[:, 0] + 1 + picks[:, 1] % (nb - 1)) % nb
    offs = rg_noise.integers(0, margin + 1, size=(n_slices, 4))
    flips = rg_noise.choice(np.array([-1, 1]), size=(n_slices, 4))

    def window(k: int, r0: int, c0: int, fr: int, fc: int) -> F32:
        out: F32 = bank[k, r0 : r0 + rows, c0 : c0 + columns][::fr, ::fc]
        return out

    def finish(i: int) -> None:
        (k0, k1), (a, b, c, d), f = picks[i], offs[i], flips[i]
        img = vol[i] + window(k0, a, b, f[0], f[1])
        img += window(k1, c, d, f[2], f[3])
        out = blur_inplane(img, sig_px)
        np.rint(out, out=out)
        np.clip(out, HU_MIN, HU_MAX, out=out)
        vol[i] = out

    _parallel(n_slices, finish, nw)
    return CardiacPhantom(
        hu=vol,
        labels=labels,
        pixel_spacing_mm=ps,
        slice_increment_mm=inc,
        slice_thickness_mm=thick,
        z_mm=zs,
        origin_mm=(float(x0), float(y0)),
        plaques=placed,
        distractors=[d.as_dict() for d in distractors],
        truth_scores=calcium_truth(vol, labels, ps, inc),
        contrast=contrast,
        noise_sigma_hu=sigma,
        blur_sigma_mm=blur_mm,
        anatomy=an.summary,
        noncoronary=noncoronary,
        aortic_valve_agatston=calcium_truth(
            vol, (noncoronary == NONCORONARY_CODES["aortic_valve"]).astype(np.uint8), ps, inc
        ).agatston["total"],
    )
