"""Family B coronary angiography cine: one multi-frame X-Ray Angiographic Image instance.

Written independently of family A (it shares only the DICOM helpers of ``_common``): a 3D
coronary tree on a beating, breathing ellipsoidal heart (:mod:`.xa_heart`,
:mod:`.xa_tree3d`), projected through a perturbed C-arm view (:mod:`.xa_projection`), drawn
as Beer-Lambert chords through the lumen with stenoses (:mod:`.xa_lesions`,
:mod:`.xa_render`) over a chest with ribs, spine, diaphragm and devices
(:mod:`.xa_background`, :mod:`.xa_devices`), and imaged with scatter, blur, quantum and
electronic noise at 8, 10 or 12 bits (:mod:`.xa_imaging`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from .._common import SyntheticSeries, check_seed, set_pixel_data, study_info
from .xa_header import Timing, xa_dataset
from .xa_lesions import Lesion, lesion_from_spec, random_lesions
from .xa_scene import Scene, build_scene
from .xa_tree3d import artery_of_vessel
from .xa_truth import difficulty, lesion_truth, vessel_truth

_STREAM = 0xB0A  # family B, XA
_PICK, _ANATOMY, _LESIONS, _NOISE = 0, 1, 2, 3
_ARTERY_CODE = {"LCA": 1, "RCA": 2}
_FPS = (7.5, 15.0, 30.0)
_EDGE_MARGIN = 0.06  # seeded lesions stay this fraction of the image inside its edges


def make_xa_cine_b(
    seed: int,
    *,
    frames: int | None = None,
    rows: int | None = None,
    columns: int | None = None,
    study_instance_uid: str | None = None,
    stenoses: Sequence[Mapping[str, Any]] | None = None,
    artery: str | None = None,
) -> SyntheticSeries:
    """Generate one deterministic family B coronary angiography cine.

    Parameters
    ----------
    seed : int
        Non-negative seed; identical arguments give identical output.  Anatomy, motion,
        devices, exposure and noise depend only on the seed, the artery and the matrix, so
        ``stenoses=[]`` gives the normal twin of a diseased cine (same *artery*).
    frames : int, optional
        Number of frames; seeded 15-60 when None.
    rows, columns : int, optional
        Matrix; seeded 512 or 1024 (square) when both are None, one given is used for both.
    study_instance_uid : str, optional
        Override the seed-derived Study Instance UID.
    stenoses : sequence of mapping, optional
        ``[{"vessel": "LAD", "position": 0.4, "percent": 75, "length_mm": 8}]`` (position:
        fraction of the vessel's arc length from its origin, default 0.4; length default 8
        mm); ``[]`` for a normal cine; None for 0-3 seeded lesions of 20-95 %.
    artery : {"LCA", "RCA"}, optional
        The injected artery; otherwise the stenoses' vessels or the seed choose.

    Returns
    -------
    SyntheticSeries
        One X-Ray Angiographic Image Storage dataset and its truth (see the keys in
        :func:`_truth`; lesion fields as in family A plus ``visible`` and
        ``foreshortening`` per :mod:`.xa_truth`).

    Raises
    ------
    ValueError
        For a bad seed or size, an unknown or absent vessel, a malformed stenosis, or
        stenoses in both arteries.
    """
    check_seed(seed)
    pick = np.random.default_rng([seed, _STREAM, _PICK])
    seeded_artery = "LCA" if pick.random() < 0.65 else "RCA"
    seeded_size = 1024 if pick.random() < 0.25 else 512
    seeded_frames = int(pick.integers(15, 61))
    fps = float(pick.choice(_FPS, p=[0.15, 0.6, 0.25]))
    rows, columns = rows or columns or seeded_size, columns or rows or seeded_size
    frames = seeded_frames if frames is None else frames
    if min(frames, rows, columns) < 1:
        raise ValueError(f"frames, rows and columns must be positive: {frames}, {rows}, {columns}")
    chosen = _artery(stenoses or [], artery) or seeded_artery
    code = _ARTERY_CODE[chosen]
    anatomy = np.random.default_rng([seed, _STREAM, _ANATOMY, code])
    timing = Timing.random(anatomy, fps, frames)
    times = timing.times_s
    scene = build_scene(anatomy, chosen, rows, columns, times[-1] + 1.0 / fps)
    lesion_rng = np.random.default_rng([seed, _STREAM, _LESIONS, code])
    scene = replace(scene, lesions=_lesions(scene, stenoses, lesion_rng, times))
    pixels = scene.render(times, np.random.default_rng([seed, _STREAM, _NOISE]))
    info = study_info(seed, study_instance_uid)
    ds = xa_dataset(
        seed,
        info,
        carm=scene.carm,
        exposure=scene.exposure,
        timing=timing,
        artery=chosen,
        rng=anatomy,
    )
    set_pixel_data(ds, pixels)
    truth = _truth(seed, scene, times, fps)
    truth.update(
        study_instance_uid=info.study_instance_uid,
        series_instance_uid=str(ds.SeriesInstanceUID),
        sop_instance_uid=str(ds.SOPInstanceUID),
        sop_class_uid=str(ds.SOPClassUID),
    )
    return SyntheticSeries(datasets=[ds], truth=truth)


def _artery(stenoses: Sequence[Mapping[str, Any]], artery: str | None) -> str | None:
    if artery not in (None, "LCA", "RCA"):
        raise ValueError(f"artery must be 'LCA' or 'RCA', got {artery!r}")
    wanted = {artery_of_vessel(str(s.get("vessel"))) for s in stenoses}
    if artery is not None:
        wanted.add(artery)
    if len(wanted) > 1:
        raise ValueError(f"stenoses and artery ask for both arteries: {sorted(wanted)}")
    return wanted.pop() if wanted else None


def _lesions(
    scene: Scene,
    stenoses: Sequence[Mapping[str, Any]] | None,
    rng: np.random.Generator,
    times: Sequence[float],
) -> list[Lesion]:
    if stenoses is not None:
        lesions = [lesion_from_spec(spec, rng) for spec in stenoses]
        for les in lesions:
            scene.vessel(les.vessel)  # ValueError when this tree lacks it
        return lesions
    carm = scene.carm
    margin = _EDGE_MARGIN * min(carm.rows, carm.columns)
    poses = [scene.motion.pose(t) for t in times]

    def inside(name: str, position: float) -> bool:
        centre = scene.vessel(name).shc_at(position)[None, :]
        xy = np.concatenate([carm.project(scene.heart.to_patient(centre, p))[0] for p in poses])
        return bool(
            np.all((xy[:, 0] >= margin) & (xy[:, 0] <= carm.columns - 1 - margin))
            and np.all((xy[:, 1] >= margin) & (xy[:, 1] <= carm.rows - 1 - margin))
        )

    return random_lesions(rng, scene.tree, inside)


def _truth(seed: int, scene: Scene, times: Sequence[float], fps: float) -> dict[str, Any]:
    opacification = [scene.opacification(t) for t in times]
    peak = int(np.argmax(opacification))
    lesions, motion_mm = lesion_truth(scene, times, peak)
    carm = scene.carm
    return {
        "seed": seed,
        "modality": "XA",
        "family": "b",
        "number_of_instances": 1,
        "number_of_frames": len(times),
        "rows": carm.rows,
        "columns": carm.columns,
        "artery": scene.artery,
        "view": scene.view,
        "positioner_primary_angle_deg": carm.primary_deg,
        "positioner_secondary_angle_deg": carm.secondary_deg,
        "distance_source_to_detector_mm": carm.sid_mm,
        "distance_source_to_patient_mm": carm.sod_mm,
        "imager_pixel_spacing_mm": carm.pitch_mm,
        "pixel_spacing_isocentre_mm": round(carm.mm_per_px, 6),
        "frame_rate": fps,
        "frame_times_s": [round(t, 5) for t in times],
        "heart_rate_bpm": round(scene.motion.heart_rate_bpm, 2),
        "coordinates": "pixels: x = column, y = row, (0, 0) = centre of the top-left pixel",
        "significant": any(les["significant"] for les in lesions),
        "lesions": lesions,
        "opacification": [round(o, 4) for o in opacification],
        "peak_frame": peak,
        "vessels": vessel_truth(scene, times[peak]),
        "difficulty": difficulty(scene, motion_mm, fps),
    }
