"""Synthetic coronary angiography cine (one multi-frame XA instance).

The image model is ``I = background * exp(-attenuation) + noise``: a smooth
background with a vignette and a soft cardiac shadow, a catheter, and a
small tree of tapering vessels whose iodine attenuation ramps up over the
first frames while everything moves with a sinusoidal heartbeat.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.tag import Tag

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

XA_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.12.1"
_XA_STREAM = 0x2A
# (artery, view label, primary angle [+LAO/-RAO], secondary angle [+CRA/-CAU])
_VIEWS: tuple[tuple[str, str, float, float], ...] = (
    ("LCA", "RAO 30 CAU 25", -30.0, -25.0),
    ("LCA", "LAO 45 CRA 20", 45.0, 20.0),
    ("LCA", "AP CRA 30", 0.0, 30.0),
    ("LCA", "LAO 50 CAU 25", 50.0, -25.0),
    ("RCA", "LAO 30", 30.0, 0.0),
    ("RCA", "RAO 30", -30.0, 0.0),
    ("RCA", "LAO 30 CRA 20", 30.0, 20.0),
)

Grid = NDArray[np.float32]


def _centerline(v: dict[str, float], u: Grid) -> Grid:
    """Perpendicular centreline offset of vessel *v* at arc positions *u*."""
    curv, amp = np.float32(v["curv"]), np.float32(v["amp"])
    freq, phase = np.float32(v["freq"]), np.float32(v["phase"])
    out: Grid = curv * u**2 + amp * (np.sin(freq * u + phase) - np.sin(phase))
    return out


def _point(v: dict[str, float], u: float) -> tuple[float, float, float]:
    """Canvas position (x, y) and direction angle of vessel *v* at *u*."""
    off = float(_centerline(v, np.array([u], dtype=np.float32))[0])
    ca, sa = math.cos(v["angle"]), math.sin(v["angle"])
    slope = 2 * v["curv"] * u + v["amp"] * v["freq"] * math.cos(v["freq"] * u + v["phase"])
    return v["x"] + u * ca - off * sa, v["y"] + u * sa + off * ca, v["angle"] + math.atan(slope)


def _vessel_path(xx: Grid, yy: Grid, v: dict[str, float]) -> Grid:
    """Projected path length (pixels) through a tapering cylindrical vessel."""
    dx, dy = xx - np.float32(v["x"]), yy - np.float32(v["y"])
    ca, sa = np.float32(math.cos(v["angle"])), np.float32(math.sin(v["angle"]))
    u = dx * ca + dy * sa
    d = (dy * ca - dx * sa) - _centerline(v, u)
    t = np.clip(u / np.float32(v["length"]), 0, 1)
    w = np.float32(v["w0"]) + np.float32(v["w1"] - v["w0"]) * t
    path: Grid = np.float32(2) * np.sqrt(np.clip(w * w - d * d, 0, None))
    path[(u < 0) | (u > v["length"])] = 0
    return path


def _vessel_tree(rng: np.random.Generator, size: float, pad: int) -> list[dict[str, float]]:
    """Draw a main vessel plus a few branches (canvas pixel units)."""
    s = size / 512
    main = {
        "x": pad + size * float(rng.uniform(0.25, 0.45)),
        "y": pad + size * float(rng.uniform(0.15, 0.3)),
        "angle": float(rng.uniform(0.6, 1.4)),
        "length": size * float(rng.uniform(0.6, 0.8)),
        "curv": float(rng.uniform(-1.0, 1.0)) / size,
        "amp": s * float(rng.uniform(4, 15)),
        "freq": float(rng.uniform(2, 6)) / size * math.pi,
        "phase": float(rng.uniform(0, 2 * math.pi)),
        "w0": s * float(rng.uniform(5, 8)),
        "w1": s * float(rng.uniform(1.2, 2.0)),
    }
    tree = [main]
    for _ in range(int(rng.integers(3, 6))):
        parent = tree[int(rng.integers(0, len(tree)))]
        frac = float(rng.uniform(0.15, 0.6))
        px, py, ang = _point(parent, frac * parent["length"])
        w_here = parent["w0"] + (parent["w1"] - parent["w0"]) * frac
        sign = 1.0 if rng.random() < 0.5 else -1.0
        tree.append(
            {
                "x": px,
                "y": py,
                "angle": ang + sign * float(rng.uniform(0.5, 1.2)),
                "length": parent["length"] * float(rng.uniform(0.3, 0.6)),
                "curv": float(rng.uniform(-1.5, 1.5)) / size,
                "amp": s * float(rng.uniform(2, 8)),
                "freq": float(rng.uniform(3, 8)) / size * math.pi,
                "phase": float(rng.uniform(0, 2 * math.pi)),
                "w0": w_here * 0.75,
                "w1": s * float(rng.uniform(0.8, 1.3)),
            }
        )
    return tree


def make_xa_cine(
    seed: int,
    *,
    frames: int = 30,
    rows: int = 512,
    columns: int = 512,
    study_instance_uid: str | None = None,
) -> SyntheticSeries:
    """Generate one deterministic multi-frame coronary angiography cine.

    Parameters
    ----------
    seed : int
        Non-negative seed; identical seeds give identical output.
    frames, rows, columns : int
        Cine geometry.
    study_instance_uid : str, optional
        Override the seed-derived Study Instance UID.

    Returns
    -------
    SyntheticSeries
        A single X-Ray Angiographic Image Storage dataset plus ground truth.
    """
    check_seed(seed)
    if min(frames, rows, columns) < 1:
        raise ValueError("frames, rows and columns must be positive")
    rng = np.random.default_rng([seed, _XA_STREAM])
    info = study_info(seed, study_instance_uid)
    artery, view, prim, sec = _VIEWS[int(rng.integers(0, len(_VIEWS)))]
    prim = round(prim + float(rng.uniform(-3, 3)), 1)
    sec = round(sec + float(rng.uniform(-3, 3)), 1)
    fps = 15 if rng.random() < 0.7 else 30
    frame_time = 66.7 if fps == 15 else 33.3
    spacing = round(float(rng.uniform(0.2, 0.3)), 3)
    sid = round(float(rng.uniform(1000, 1200)), 1)
    sod = round(float(rng.uniform(700, 800)), 1)
    kvp = int(rng.integers(70, 96))
    ma = int(rng.integers(400, 900))
    pulse = round(float(rng.uniform(4, 8)), 1)
    heart_rate = float(rng.uniform(55, 85))

    size = float(min(rows, columns))
    amp = (size / 512) * rng.uniform(3, 8, size=2)
    pad = math.ceil(float(amp.max())) + 1
    yy, xx = np.mgrid[0 : rows + 2 * pad, 0 : columns + 2 * pad].astype(np.float32)
    tree = _vessel_tree(rng, size, pad)
    vessels = np.zeros_like(xx)
    for v in tree:
        np.maximum(vessels, _vessel_path(xx, yy, v), out=vessels)
    cath = dict(
        tree[0],
        angle=tree[0]["angle"] + math.pi + float(rng.uniform(-0.5, 0.2)),
        length=2 * size,
        curv=0.3 / size,
        amp=0.0,
        w0=tree[0]["w0"] * 0.45,
        w1=tree[0]["w0"] * 0.45,
    )
    catheter = _vessel_path(xx, yy, cath)
    mu_v = float(rng.uniform(0.9, 1.4)) / (2 * tree[0]["w0"])
    mu_c = 0.5 / (2 * cath["w0"])

    gy, gx = np.mgrid[0:rows, 0:columns].astype(np.float32)
    gx, gy = gx / max(columns - 1, 1) - 0.5, gy / max(rows - 1, 1) - 0.5
    bg = (
        float(rng.uniform(150, 190))
        + float(rng.uniform(-25, 25)) * gx
        + float(rng.uniform(-25, 25)) * gy
    )
    hcx, hcy = rng.uniform(-0.1, 0.2, size=2)
    bg -= float(rng.uniform(15, 35)) * np.exp(-((gx - hcx) ** 2 + (gy - hcy) ** 2) / 0.08)
    bg *= 1 - 0.6 * (gx**2 + gy**2)
    bg = bg.astype(np.float32)

    t = np.arange(frames, dtype=np.float64)
    onset, ramp = float(rng.uniform(0, 3)), float(rng.uniform(6, 12))
    r = np.clip((t - onset) / ramp, 0, 1)
    curve = r * r * (3 - 2 * r)
    curve *= 1 - 0.6 * np.clip((t - 40) / 20, 0, 1)
    phase = 2 * math.pi * t * frame_time * heart_rate / 60000 + float(rng.uniform(0, 6.3))
    shift_x = np.rint(amp[0] * np.sin(phase)).astype(int)
    shift_y = np.rint(amp[1] * np.sin(phase + 0.6)).astype(int)
    sigma = float(rng.uniform(2.5, 5.0))

    stack = np.empty((frames, rows, columns), dtype=np.float32)
    for k in range(frames):
        y0, x0 = pad + shift_y[k], pad + shift_x[k]
        att = vessels[y0 : y0 + rows, x0 : x0 + columns] * np.float32(mu_v * curve[k])
        att += catheter[y0 : y0 + rows, x0 : x0 + columns] * np.float32(mu_c)
        np.exp(-att, out=att)
        np.multiply(att, bg, out=stack[k])
    stack += rng.standard_normal(stack.shape, dtype=np.float32) * np.float32(sigma)
    np.rint(stack, out=stack)
    pixels = np.clip(stack, 0, 255).astype(np.uint8)

    series_dt = info.study_datetime + dt.timedelta(minutes=int(rng.integers(30, 90)))
    series_uid = synthetic_uid(seed, "xa", "series")
    sop_uid = synthetic_uid(seed, "xa", series_uid, "0")
    ds = base_dataset(
        info,
        sop_class_uid=XA_IMAGE_STORAGE,
        sop_instance_uid=sop_uid,
        modality="XA",
        series_instance_uid=series_uid,
        series_number=1,
        series_datetime=series_dt,
    )
    ds.SeriesDescription = f"Coronary {artery}"
    ds.ProtocolName = f"Coronary {artery} {view}"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "SINGLE PLANE"]
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelIntensityRelationship = "LIN"
    ds.NumberOfFrames = frames
    ds.FrameIncrementPointer = Tag("FrameTime")
    ds.FrameTime = ds_str(frame_time)
    ds.CineRate = fps
    ds.RecommendedDisplayFrameRate = fps
    ds.PreferredPlaybackSequencing = 0
    ds.ContrastBolusAgent = "Iopamidol 370 mg/mL (synthetic)"
    ds.ContrastBolusRoute = "INTRACORONARY"
    ds.KVP = str(kvp)
    ds.RadiationSetting = "GR"
    ds.RadiationMode = "PULSED"
    ds.XRayTubeCurrent = ma
    ds.ExposureTime = round(pulse)
    ds.AveragePulseWidth = ds_str(pulse)
    ds.ImagerPixelSpacing = ds_list([spacing, spacing])
    ds.DistanceSourceToDetector = ds_str(sid)
    ds.DistanceSourceToPatient = ds_str(sod)
    ds.EstimatedRadiographicMagnificationFactor = ds_str(round(sid / sod, 4))
    ds.PositionerMotion = "STATIC"
    ds.PositionerPrimaryAngle = ds_str(prim)
    ds.PositionerSecondaryAngle = ds_str(sec)
    ds.WindowCenter = "128"
    ds.WindowWidth = "256"
    set_pixel_data(ds, pixels)

    def _unpad(v: dict[str, float]) -> dict[str, float]:
        return dict(v, x=v["x"] - pad, y=v["y"] - pad)

    truth: dict[str, Any] = {
        "seed": seed,
        "modality": "XA",
        "sop_class_uid": XA_IMAGE_STORAGE,
        "study_instance_uid": info.study_instance_uid,
        "series_instance_uid": series_uid,
        "sop_instance_uid": sop_uid,
        "number_of_instances": 1,
        "number_of_frames": frames,
        "rows": rows,
        "columns": columns,
        "artery": artery,
        "view": view,
        "positioner_primary_angle_deg": prim,
        "positioner_secondary_angle_deg": sec,
        "frame_time_ms": frame_time,
        "cine_rate": fps,
        "imager_pixel_spacing_mm": spacing,
        "distance_source_to_detector_mm": sid,
        "distance_source_to_patient_mm": sod,
        "heart_rate_bpm": heart_rate,
        "contrast_curve": [float(c) for c in curve],
        "motion_shift_px": [[int(a), int(b)] for a, b in zip(shift_x, shift_y, strict=True)],
        "noise_sigma": sigma,
        "vessel_units": "pixels (x=column, y=row, unshifted frame); angles in radians",
        "vessels": [_unpad(v) for v in tree],
        "catheter": _unpad(cath),
    }
    return SyntheticSeries(datasets=[ds], truth=truth)
