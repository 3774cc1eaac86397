"""Synthetic cardiac CT series (CT Image Storage, one file per slice).

The phantom is deliberately cheap: an elliptical body with a fat rim, two
lungs, an ellipsoidal heart with a blood pool, a descending aorta, sternum,
spine and a handful of small calcified plaques, plus gaussian noise.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.uid import UID

from ._common import (
    SyntheticSeries,
    base_dataset,
    check_seed,
    ds_list,
    ds_str,
    set_pixel_data,
    study_info,
    synthetic_uid,
)

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
_CT_STREAM = 0xC7
_KERNELS_CALCIUM = ("Qr36d", "B35f", "FC12", "STANDARD")
_KERNELS_CTA = ("Bv40d", "B26f", "FC43", "DETAIL")

Grid = NDArray[np.float32]


def _r2(x: Grid, y: Grid, cx: float, cy: float, a: float, b: float) -> Grid:
    """Normalised squared elliptical radius on the pixel grid."""
    return ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2


def _scale2(z: float, cz: float, rz: float) -> float:
    """Squared in-plane scale of an ellipsoid cross-section at *z*."""
    return max(0.0, 1.0 - ((z - cz) / rz) ** 2)


def _anatomy(rng: np.random.Generator, z_mid: float, contrast: bool) -> dict[str, Any]:
    """Draw seed-dependent phantom geometry (mm, patient LPS coordinates)."""
    s = float(rng.uniform(0.85, 1.15))
    hx = float(30 * s + rng.uniform(-8, 8))
    hy = float(-30 * s + rng.uniform(-8, 8))
    hz = float(z_mid + rng.uniform(-10, 10))
    ax, ay, az = float(60 * s), float(50 * s), float(55 * s)
    blood = float(rng.uniform(300, 450)) if contrast else 40.0
    heart: dict[str, Any] = {
        "center_mm": [hx, hy, hz],
        "semi_axes_mm": [ax, ay, az],
        "myocardium_hu": 120.0 if contrast else 50.0,
        "blood_hu": blood,
    }
    plaques: list[dict[str, Any]] = []
    for _ in range(int(rng.integers(2, 7))):
        theta = float(rng.uniform(-np.pi, np.pi))
        dz = float(rng.uniform(-0.5, 0.5)) * az
        frac = 0.95 * np.sqrt(1 - (dz / az) ** 2)
        plaques.append(
            {
                "center_mm": [
                    float(hx + frac * ax * np.cos(theta)),
                    float(hy + frac * ay * np.sin(theta)),
                    float(hz + dz),
                ],
                "radius_mm": float(rng.uniform(0.8, 3.0)),
                "hu": float(rng.uniform(130, 800)),
            }
        )
    return {
        "scale": s,
        "body_semi_axes_mm": [float(165 * s), float(115 * s)],
        "lung_semi_axes_mm": [float(55 * s), float(78 * s), float(180 * s)],
        "lung_centers_mm": [[float(-75 * s), float(-5 * s)], [float(75 * s), float(-5 * s)]],
        "lung_z_center_mm": float(hz + 50 * s),
        "heart": heart,
        "aorta": {
            "center_mm": [float(22 * s), float(55 * s)],
            "radius_mm": float(12 * s),
            "hu": blood,
        },
        "spine": {"center_mm": [0.0, float(88 * s)], "radius_mm": float(18 * s), "hu": 700.0},
        "sternum": {"center_mm": [0.0, float(-105 * s)], "semi_axes_mm": [12.0, 6.0], "hu": 400.0},
        "calcifications": plaques,
    }


def _static_slice(x: Grid, y: Grid, an: dict[str, Any]) -> Grid:
    """Render the z-invariant part of the phantom (body, bone, aorta)."""
    img = np.full(x.shape, -1000.0, dtype=np.float32)
    ba, bb = an["body_semi_axes_mm"]
    img[_r2(x, y, 0, 0, ba, bb) <= 1] = -100.0
    img[_r2(x, y, 0, 0, ba - 12, bb - 12) <= 1] = 40.0
    sp, ao, st = an["spine"], an["aorta"], an["sternum"]
    (sx, sy), sr = sp["center_mm"], sp["radius_mm"]
    r_sp = _r2(x, y, sx, sy, sr, sr)
    img[r_sp <= 1] = sp["hu"]
    img[r_sp <= 0.6] = 250.0
    (tx, ty), (ta, tb) = st["center_mm"], st["semi_axes_mm"]
    img[_r2(x, y, tx, ty, ta, tb) <= 1] = st["hu"]
    (ox, oy), orad = ao["center_mm"], ao["radius_mm"]
    img[_r2(x, y, ox, oy, orad, orad) <= 1] = ao["hu"]
    return img


def _render(
    x: Grid,
    y: Grid,
    zs: NDArray[np.float64],
    thick: float,
    an: dict[str, Any],
    rng: np.random.Generator,
    sigma: float,
    out: NDArray[Any],
    intercept: float,
    hi: int,
) -> list[list[int]]:
    """Render every slice as stored values (HU - intercept) into *out*.

    Noise is the sum of two randomly offset windows into a small bank of
    gaussian fields, which is much cheaper than fresh normals per slice.
    Returns the 1-based instance numbers on which each plaque was drawn.
    """
    lo = int(np.iinfo(out.dtype).min)
    rows, cols = x.shape
    base = _static_slice(x, y, an)
    la, lb, lz = an["lung_semi_axes_mm"]
    (lx0, ly0), (lx1, ly1) = an["lung_centers_mm"]
    lungs = np.minimum(_r2(x, y, lx0, ly0, la, lb), _r2(x, y, lx1, ly1, la, lb))
    bx, by = an["body_semi_axes_mm"]
    lungs[_r2(x, y, 0, 0, bx - 12, by - 12) > 1] = np.inf
    h = an["heart"]
    (hx, hy, hz), (ha, hb, hc) = h["center_mm"], h["semi_axes_mm"]
    heart = _r2(x, y, hx, hy, ha, hb)
    xs, ys = x[0], y[:, 0]
    n_bank, margin = 8, 64
    bank = rng.standard_normal((n_bank, rows + margin, cols + margin), dtype=np.float32)
    bank *= np.float32(sigma / np.sqrt(2.0))
    hits: list[list[int]] = [[] for _ in an["calcifications"]]
    for i, z in enumerate(zs):
        img = base.copy()
        np.copyto(img, np.float32(-850.0), where=lungs <= _scale2(z, an["lung_z_center_mm"], lz))
        sh = _scale2(z, hz, hc)
        if sh > 0:
            np.copyto(img, np.float32(h["myocardium_hu"]), where=heart <= sh)
            np.copyto(img, np.float32(h["blood_hu"]), where=heart <= 0.55 * sh)
        for k, p in enumerate(an["calcifications"]):
            px, py, pz = p["center_mm"]
            rad = p["radius_mm"]
            gap = max(0.0, abs(z - pz) - thick / 2)
            if gap >= rad:
                continue
            rr = float(np.sqrt(rad**2 - gap**2))
            c0, c1 = np.searchsorted(xs, [px - rr, px + rr])
            r0, r1 = np.searchsorted(ys, [py - rr, py + rr])
            sub = _r2(x[r0:r1, c0:c1], y[r0:r1, c0:c1], px, py, rr, rr) <= 1
            if sub.any():
                img[r0:r1, c0:c1][sub] = p["hu"]
                hits[k].append(i + 1)
        k0 = int(rng.integers(0, n_bank))
        k1 = (k0 + 1 + int(rng.integers(0, n_bank - 1))) % n_bank
        oy0, ox0, oy1, ox1 = (int(o) for o in rng.integers(0, margin + 1, size=4))
        img += bank[k0, oy0 : oy0 + rows, ox0 : ox0 + cols]
        img += bank[k1, oy1 : oy1 + rows, ox1 : ox1 + cols]
        img -= np.float32(intercept)
        np.rint(img, out=img)
        np.clip(img, lo, hi, out=img)
        out[i] = img
    return hits


def make_ct_series(
    seed: int,
    *,
    n_slices: int = 64,
    rows: int = 512,
    columns: int = 512,
    slice_thickness_mm: float = 3.0,
    pixel_spacing_mm: float | None = None,
    contrast: bool = False,
    study_instance_uid: str | None = None,
) -> SyntheticSeries:
    """Generate a deterministic synthetic axial cardiac CT series.

    Parameters
    ----------
    seed : int
        Non-negative seed; identical seeds give identical output.
    n_slices, rows, columns : int
        Series geometry.
    slice_thickness_mm : float
        Slice thickness; also used as the slice increment.
    pixel_spacing_mm : float, optional
        In-plane spacing; seed-varied in 0.3-0.8 mm when omitted.
    contrast : bool
        Produce a contrast-enhanced CTA instead of a calcium-score series.
    study_instance_uid : str, optional
        Override the seed-derived Study Instance UID.

    Returns
    -------
    SyntheticSeries
        One CT Image Storage dataset per slice, plus ground truth.
    """
    check_seed(seed)
    if (
        min(n_slices, rows, columns) < 1
        or slice_thickness_mm <= 0
        or (pixel_spacing_mm is not None and pixel_spacing_mm <= 0)
    ):
        raise ValueError("sizes, slice thickness and pixel spacing must be positive")
    rng = np.random.default_rng([seed, _CT_STREAM])
    info = study_info(seed, study_instance_uid)
    ps = round(float(rng.uniform(0.3, 0.8)) * 512) / 512  # always drawn: keeps stream stable
    ps = ps if pixel_spacing_mm is None else float(pixel_spacing_mm)
    inc = float(slice_thickness_mm)
    signed, wide = (bool(v < 0.5) for v in rng.random(2))
    bits_stored = 16 if signed or wide else 12
    intercept = -1024.0
    sigma = float(rng.uniform(12, 18))
    z_top = round(float(rng.uniform(-120, -20)), 1)
    zs = z_top - inc * np.arange(n_slices, dtype=np.float64)
    an = _anatomy(rng, float(zs.mean()), contrast)
    hx, hy = an["heart"]["center_mm"][:2]
    fov_c = (round(hx * 0.6, 1), round(hy * 0.6, 1))
    x0 = fov_c[0] - (columns - 1) / 2 * ps
    y0 = fov_c[1] - (rows - 1) / 2 * ps
    x = (x0 + ps * np.arange(columns, dtype=np.float32))[None, :].repeat(rows, 0)
    y = (y0 + ps * np.arange(rows, dtype=np.float32))[:, None].repeat(columns, 1)
    kernel = str(rng.choice(_KERNELS_CTA if contrast else _KERNELS_CALCIUM))
    ma = int(rng.integers(80, 400))
    series_dt = info.study_datetime + dt.timedelta(minutes=int(rng.integers(3, 20)))
    series_uid = synthetic_uid(seed, "ct", "series", str(contrast))
    frame_uid = synthetic_uid(seed, "ct", "frame-of-reference")

    volume = np.empty((n_slices, rows, columns), dtype=np.int16 if signed else np.uint16)
    hits = _render(
        x, y, zs, inc, an, rng, sigma, volume, intercept, 2 ** (bits_stored - int(signed)) - 1
    )
    desc = f"{'CTA Coronary' if contrast else 'Calcium Score'} {slice_thickness_mm:.1f}mm"
    tpl = base_dataset(
        info,
        sop_class_uid=CT_IMAGE_STORAGE,
        sop_instance_uid="1.2",
        modality="CT",
        series_instance_uid=series_uid,
        series_number=3 if contrast else 2,
        series_datetime=series_dt,
    )
    tpl.SeriesDescription = desc
    tpl.ProtocolName = "Coronary CTA" if contrast else "Cardiac Calcium Score"
    tpl.PatientPosition = "FFS"
    tpl.FrameOfReferenceUID = frame_uid
    tpl.PositionReferenceIndicator = ""
    tpl.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    tpl.AcquisitionNumber = 1
    tpl.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    tpl.PixelSpacing = ds_list([ps, ps])
    tpl.SliceThickness = ds_str(slice_thickness_mm)
    tpl.SamplesPerPixel = 1
    tpl.PhotometricInterpretation = "MONOCHROME2"
    tpl.Rows, tpl.Columns = rows, columns
    tpl.BitsAllocated, tpl.BitsStored, tpl.HighBit = 16, bits_stored, bits_stored - 1
    tpl.PixelRepresentation = 1 if signed else 0
    tpl.RescaleIntercept = ds_str(intercept)
    tpl.RescaleSlope = "1"
    tpl.RescaleType = "HU"
    tpl.WindowCenter = "300" if contrast else "40"
    tpl.WindowWidth = "800" if contrast else "400"
    tpl.WindowCenterWidthExplanation = "CTA" if contrast else "MEDIASTINUM"
    tpl.KVP = "120"
    tpl.XRayTubeCurrent = ma
    tpl.ExposureTime = 280
    tpl.ConvolutionKernel = kernel
    tpl.ReconstructionDiameter = ds_str(ps * columns)
    tpl.GantryDetectorTilt = "0"
    tpl.RotationDirection = "CW"
    if contrast:
        tpl.ContrastBolusAgent = "Iohexol 350 mg/mL (synthetic)"
        tpl.ContrastBolusRoute = "IV"
        tpl.ContrastBolusVolume = "70"
    datasets = []
    for i, z in enumerate(zs):
        ds = copy.deepcopy(tpl)
        uid = synthetic_uid(seed, "ct", series_uid, str(i))
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = UID(uid)
        ds.InstanceNumber = i + 1
        ds.ImagePositionPatient = ds_list([x0, y0, float(z)])
        ds.SliceLocation = ds_str(float(z))
        set_pixel_data(ds, volume[i])
        datasets.append(ds)

    for p, h in zip(an["calcifications"], hits, strict=True):
        p["instance_numbers"] = h
    truth: dict[str, Any] = {
        "seed": seed,
        "modality": "CT",
        "sop_class_uid": CT_IMAGE_STORAGE,
        "study_instance_uid": info.study_instance_uid,
        "series_instance_uid": series_uid,
        "frame_of_reference_uid": frame_uid,
        "number_of_instances": n_slices,
        "rows": rows,
        "columns": columns,
        "pixel_spacing_mm": ps,
        "slice_thickness_mm": float(slice_thickness_mm),
        "slice_increment_mm": inc,
        "first_slice_z_mm": z_top,
        "z_step_mm": -inc,
        "contrast": contrast,
        "pixel_representation": 1 if signed else 0,
        "bits_stored": bits_stored,
        "rescale_intercept": intercept,
        "rescale_slope": 1.0,
        "noise_sigma_hu": sigma,
        "phantom_units": "mm, patient LPS coordinates; HU",
        "phantom": an,
    }
    return SyntheticSeries(datasets=datasets, truth=truth)
