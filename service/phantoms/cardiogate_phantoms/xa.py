"""Synthetic coronary angiography cine (one multi-frame XA instance) with stenoses.

A seeded view picks the artery and the layout of its tree (:mod:`.xa_tree`);
the frames follow the image model of :mod:`.xa_image`: a static patient
background, a guiding catheter, and the contrast-filled tree, whose iodine
arrives at the ostium with a smooth wash-in, plateaus and washes out, reaching
distal segments a little later.  The heart moves with the heartbeat:
translation, systolic contraction, a slight rotation and a smooth non-rigid
wave.  The truth lists every lesion with its position in every frame.

The anatomy fills the frame at any matrix; the detector pitch is drawn for a
512 x 512 matrix and scaled with it, so millimetres mean the same at any size.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from scipy import ndimage

from ._common import (
    StudyInfo,
    SyntheticSeries,
    base_dataset,
    check_seed,
    ds_list,
    ds_str,
    set_pixel_data,
    study_info,
    synthetic_uid,
)
from ._raster import F64
from .xa_image import (
    CATHETER_MU,
    MU_PER_MM,
    Background,
    Exposure,
    Injection,
    draw_projection,
    project_tubes,
)
from .xa_motion import CardiacMotion
from .xa_tree import (
    REF_SIZE,
    SIGNIFICANT_PERCENT,
    StenosisSpec,
    Vessel,
    as_stenosis_spec,
    overlapped,
    place_lesions,
    random_stenoses,
)
from .xa_views import (
    LCA_VIEWS,
    RCA_VIEWS,
    VIEW_ANGLES,
    artery_of,
    build_tree,
    catheter,
    vessel_artery,
)

XA_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.12.1"
_XA_STREAM = 0x2A
_GEOMETRY, _LESIONS, _NOISE = 0, 1, 2
_LESION_COUNT_P = (0.25, 0.35, 0.25, 0.15)


@dataclass(frozen=True)
class _Scene:
    """Everything a cine shows, ready to be drawn frame by frame."""

    tree: list[Vessel]
    catheter: Vessel
    motion: CardiacMotion
    background: Background
    exposure: Exposure
    injection: Injection
    mu_per_px: float
    fill: float
    scale: float

    def render(
        self, rows: int, columns: int, times: Sequence[float], rng: np.random.Generator
    ) -> tuple[NDArray[np.uint8], list[float]]:
        """The frames at *times* (seconds) and the tree's mean opacification in each.

        The tree's attenuation is drawn once, unmoved, on a canvas padded by the
        largest motion, then scaled by the contrast each pixel has at the frame's
        time (the injection delayed by the path length from the ostium, so the
        far branches fill last) and warped into the frame.  The contrast timing
        runs over the whole cine (frame *k* of *n* at ``(k + 0.5) / n``), the
        heartbeat in seconds.
        """
        size = min(rows, columns)
        pad = math.ceil(self.motion.bound(size)) + 2
        canvas = (rows + 2 * pad, columns + 2 * pad)
        samples = [v.sample() for v in self.tree]
        pts = np.concatenate([p for p, _, _ in samples]) + pad
        radii = np.concatenate([r for _, r, _ in samples])
        arrival = np.concatenate([a for _, _, a in samples])
        delay = self.fill / float(arrival.max())
        chord, first = project_tubes(pts, radii, canvas, arrival)
        cath_pts, cath_r, _ = self.catheter.sample()
        cath = project_tubes(cath_pts + pad, cath_r, canvas)[0].ravel()
        base = cath * np.float32(CATHETER_MU * self.mu_per_px)
        nz = np.flatnonzero(chord)
        vessel_att = chord.ravel()[nz] * np.float32(self.mu_per_px)
        vessel_delay = first.ravel()[nz] * delay

        ys, xs = np.mgrid[0:rows, 0:columns].astype(np.float32)
        us = ((np.arange(columns) - (columns - 1) / 2) / size).astype(np.float32)
        vs = ((np.arange(rows) - (rows - 1) / 2) / size).astype(np.float32)
        bg = self.background.render(us, vs)
        fracs = (np.arange(len(times)) + 0.5) / len(times)
        pixels = np.empty((len(times), rows, columns), dtype=np.uint8)
        for k, t in enumerate(times):
            att = base.copy()
            att[nz] += vessel_att * self.injection(fracs[k] - vessel_delay).astype(np.float32)
            rx, ry = self.motion.to_reference(t, xs, ys)
            moved = ndimage.map_coordinates(
                att.reshape(canvas), [ry + pad, rx + pad], order=1, mode="constant", prefilter=False
            )
            pixels[k] = self.exposure.apply(bg * np.exp(-moved), rng, self.scale)
        along = np.concatenate([v.sample(1.0)[2] for v in self.tree]) * delay
        return pixels, [float(self.injection(f - along).mean()) for f in fracs]


def _required_artery(specs: Sequence[StenosisSpec], artery: str | None) -> str | None:
    """The artery the stenoses (and *artery*) ask for; ``ValueError`` on a conflict."""
    if artery not in (None, "LCA", "RCA"):
        raise ValueError(f"artery must be 'LCA' or 'RCA', got {artery!r}")
    wanted = {vessel_artery(spec.vessel) for spec in specs} | ({artery} if artery else set())
    if len(wanted) > 1:
        raise ValueError("one cine shows one artery; these stenoses need both LCA and RCA")
    return wanted.pop() if wanted else None


def _header(
    ds: Dataset, view: str, frames: int, geometry: Mapping[str, float], rng: np.random.Generator
) -> None:
    """The XA Image and X-Ray Acquisition attributes (PS3.3 C.8.7, C.8.19)."""
    artery = artery_of(view)
    fps = int(geometry["cine_rate"])
    ds.SeriesDescription = f"Coronary {artery}"
    ds.ProtocolName = f"Coronary {artery} {view}"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "SINGLE PLANE"]
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelIntensityRelationship = "LIN"
    ds.NumberOfFrames = frames
    ds.FrameIncrementPointer = Tag("FrameTime")
    ds.FrameTime = ds_str(geometry["frame_time_ms"])
    ds.CineRate = fps
    ds.RecommendedDisplayFrameRate = fps
    ds.PreferredPlaybackSequencing = 0
    ds.ContrastBolusAgent = "Iopamidol 370 mg/mL (synthetic)"
    ds.ContrastBolusRoute = "INTRACORONARY"
    ds.KVP = str(int(rng.integers(70, 96)))
    ds.RadiationSetting = "GR"
    ds.RadiationMode = "PULSED"
    ds.XRayTubeCurrent = int(rng.integers(400, 900))
    pulse = round(float(rng.uniform(4, 8)), 1)
    ds.ExposureTime = round(pulse)
    ds.AveragePulseWidth = ds_str(pulse)
    ds.ImagerPixelSpacing = ds_list([geometry["imager_pixel_spacing_mm"]] * 2)
    sid, sod = geometry["distance_source_to_detector_mm"], geometry["distance_source_to_patient_mm"]
    ds.DistanceSourceToDetector = ds_str(sid)
    ds.DistanceSourceToPatient = ds_str(sod)
    ds.EstimatedRadiographicMagnificationFactor = ds_str(round(sid / sod, 4))
    ds.PositionerMotion = "STATIC"
    ds.PositionerPrimaryAngle = ds_str(geometry["positioner_primary_angle_deg"])
    ds.PositionerSecondaryAngle = ds_str(geometry["positioner_secondary_angle_deg"])
    ds.WindowCenter = "128"
    ds.WindowWidth = "256"


def _xy(points: F64) -> list[list[float]]:
    return [[round(float(x), 2), round(float(y), 2)] for x, y in points]


def _lesion_truth(
    tree: Sequence[Vessel], motion: CardiacMotion, times: Sequence[float], mm: float
) -> list[dict[str, Any]]:
    out = []
    for v in tree:
        for les in v.lesions:
            centre = v.point(les.position)[None, :]
            ref = v.reference_diameter(les.position)
            out.append(
                {
                    "vessel": v.name,
                    "position": les.position,
                    "percent_stenosis": les.percent,
                    "significant": les.percent >= SIGNIFICANT_PERCENT,
                    "length_px": round(les.length_px, 2),
                    "length_mm": round(les.length_px * mm, 2),
                    "reference_diameter_px": round(ref, 3),
                    "reference_diameter_mm": round(ref * mm, 3),
                    "minimal_lumen_diameter_mm": round(ref * mm * (1 - les.percent / 100), 3),
                    "overlapped": overlapped(tree, v, les.position, les.length_px / 2 + 2),
                    "positions_px": [_xy(motion.to_frame(t, centre))[0] for t in times],
                }
            )
    return out


def _vessel_truth(
    tree: Sequence[Vessel], motion: CardiacMotion, t: float, mm: float
) -> list[dict[str, Any]]:
    return [
        {
            "name": v.name,
            "parent": v.parent,
            "length_px": round(v.length, 2),
            "proximal_diameter_mm": round(2 * v.r0 * mm, 3),
            "distal_diameter_mm": round(2 * v.r1 * mm, 3),
            "centerline_px": _xy(motion.to_frame(t, v.sample(2.0, whole=True)[0])),
        }
        for v in tree
    ]


def make_xa_cine(
    seed: int,
    *,
    frames: int = 30,
    rows: int = 512,
    columns: int = 512,
    study_instance_uid: str | None = None,
    stenoses: Sequence[StenosisSpec | Mapping[str, Any]] | None = None,
    artery: str | None = None,
) -> SyntheticSeries:
    """Generate one deterministic multi-frame coronary angiography cine.

    Parameters
    ----------
    seed : int
        Non-negative seed; identical seeds give identical output.  The anatomy,
        motion and noise depend on the seed and the artery only, so ``stenoses=[]``
        with the same *artery* gives the normal twin of a diseased cine.
    frames, rows, columns : int
        Cine geometry.
    study_instance_uid : str, optional
        Override the seed-derived Study Instance UID.
    stenoses : sequence of StenosisSpec or mapping, optional
        Lesions to draw, e.g. ``[{"vessel": "LAD", "position": 0.35, "percent": 75,
        "length_mm": 6}]``; ``[]`` for a normal cine; ``None`` (default) for 0 to 3
        seeded lesions of 20 to 95 %, placed where they stay in the frame.
    artery : {"LCA", "RCA"}, optional
        Force the injected artery; otherwise the seed (and the stenoses' vessels) choose.

    Returns
    -------
    SyntheticSeries
        A single X-Ray Angiographic Image Storage dataset plus ground truth:
        ``lesions`` (vessel, percent_stenosis, length_mm, positions_px per
        frame, reference diameter), ``significant``, ``opacification`` per
        frame, ``vessels`` (centrelines at the peak frame) and the geometry.

    Raises
    ------
    ValueError
        For a bad seed or size, an unknown vessel, or stenoses in both arteries.
    """
    check_seed(seed)
    if min(frames, rows, columns) < 1:
        raise ValueError("frames, rows and columns must be positive")
    specs = None if stenoses is None else [as_stenosis_spec(s) for s in stenoses]
    wanted = _required_artery(specs or [], artery)
    rng = np.random.default_rng([seed, _XA_STREAM, _GEOMETRY])
    info = study_info(seed, study_instance_uid)
    pick = float(rng.random())
    views = [v for v in LCA_VIEWS + RCA_VIEWS if wanted is None or artery_of(v) == wanted]
    view = views[int(pick * len(views))]
    prim, sec = VIEW_ANGLES[view]
    size = min(rows, columns)
    scale = size / REF_SIZE
    pitch, sid, sod = draw_projection(rng)
    spacing = float(ds_str(pitch / scale))
    mm_per_px = spacing * sod / sid
    fps = 15 if rng.random() < 0.7 else 30
    geometry = {
        "positioner_primary_angle_deg": round(prim + float(rng.uniform(-3, 3)), 1),
        "positioner_secondary_angle_deg": round(sec + float(rng.uniform(-3, 3)), 1),
        "frame_time_ms": 66.7 if fps == 15 else 33.3,
        "cine_rate": fps,
        "imager_pixel_spacing_mm": spacing,
        "distance_source_to_detector_mm": sid,
        "distance_source_to_patient_mm": sod,
    }
    offset = ((columns - size) / 2, (rows - size) / 2)
    tree = build_tree(rng, view, scale=scale, offset=offset, mm_per_px=mm_per_px)
    scene = _Scene(
        tree=tree,
        catheter=catheter(rng, tree[0], 2.0 / mm_per_px, 700 * scale),
        motion=CardiacMotion.random(rng, np.concatenate([v.points for v in tree]).mean(0), scale),
        background=Background.random(rng),
        exposure=Exposure.random(rng),
        injection=Injection.random(rng),
        mu_per_px=float(rng.uniform(*MU_PER_MM)) * mm_per_px,
        fill=float(rng.uniform(0.08, 0.15)),
        scale=scale,
    )
    if specs is None:
        lesion_rng = np.random.default_rng([seed, _XA_STREAM, _LESIONS])
        n = int(lesion_rng.choice(len(_LESION_COUNT_P), p=_LESION_COUNT_P))
        margin = scene.motion.bound(size) + 0.08 * size
        box = (margin, margin, columns - 1 - margin, rows - 1 - margin)
        percents = lesion_rng.uniform(20, 95, size=n)
        specs = random_stenoses(lesion_rng, tree, percents, mm_per_px=mm_per_px, box=box)
    scene = replace(scene, tree=place_lesions(tree, specs, mm_per_px))
    times = [k * float(geometry["frame_time_ms"]) / 1000 for k in range(frames)]
    noise_rng = np.random.default_rng([seed, _XA_STREAM, _NOISE])
    pixels, opacification = scene.render(rows, columns, times, noise_rng)
    peak = int(np.argmax(opacification))

    ds = _dataset(seed, info, view, frames, geometry, rng)
    ds.Rows, ds.Columns = rows, columns
    set_pixel_data(ds, pixels)
    lesions = _lesion_truth(scene.tree, scene.motion, times, mm_per_px)
    truth: dict[str, Any] = {
        "seed": seed,
        "modality": "XA",
        "sop_class_uid": XA_IMAGE_STORAGE,
        "study_instance_uid": info.study_instance_uid,
        "series_instance_uid": ds.SeriesInstanceUID,
        "sop_instance_uid": ds.SOPInstanceUID,
        "number_of_instances": 1,
        "number_of_frames": frames,
        "rows": rows,
        "columns": columns,
        "artery": artery_of(view),
        "view": view,
        **geometry,
        "pixel_spacing_isocentre_mm": round(mm_per_px, 6),
        "heart_rate_bpm": round(scene.motion.heart_rate_bpm, 2),
        "coordinates": "pixels: x = column, y = row, (0, 0) = centre of the top-left pixel",
        "significant": any(les["significant"] for les in lesions),
        "lesions": lesions,
        "opacification": [round(o, 4) for o in opacification],
        "peak_frame": peak,
        "vessels": _vessel_truth(scene.tree, scene.motion, times[peak], mm_per_px),
    }
    return SyntheticSeries(datasets=[ds], truth=truth)


def _dataset(
    seed: int,
    info: StudyInfo,
    view: str,
    frames: int,
    geometry: Mapping[str, float],
    rng: np.random.Generator,
) -> Dataset:
    series_dt = info.study_datetime + dt.timedelta(minutes=int(rng.integers(30, 90)))
    series_uid = synthetic_uid(seed, "xa", "series")
    ds = base_dataset(
        info,
        sop_class_uid=XA_IMAGE_STORAGE,
        sop_instance_uid=synthetic_uid(seed, "xa", series_uid, "0"),
        modality="XA",
        series_instance_uid=series_uid,
        series_number=1,
        series_datetime=series_dt,
    )
    _header(ds, view, frames, geometry, rng)
    return ds
