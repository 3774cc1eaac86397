"""Ground truth of a family B cine, read from the scene's geometry (never from its pixels).

Coordinates are pixels, ``x`` = column and ``y`` = row, ``(0, 0)`` the centre of the top-left
pixel.  A lesion is *visible* in a frame when its centre is inside the image, the iodine has
reached it (at least 30 % of full concentration) and no other opacified vessel at least
1.5 mm wide, nor the catheter, covers its centre in projection while lying at least 5 mm
away in 3D (branches at a bifurcation lesion do not hide it).  *foreshortening* is
``1 - sin`` of the angle between the vessel and the ray through the lesion at the peak frame:
0 in the image plane, 1 along the ray.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .xa_heart import F64
from .xa_lesions import Lesion
from .xa_scene import Scene

_OPACIFIED = 0.3
_APART_MM = 5.0
_HIDING_DIAMETER_MM = 1.5


@dataclass(frozen=True)
class _Frame:
    """Every centreline point of one frame: LPS, pixels, radius (px), iodine, owner."""

    xyz: F64
    xy: F64
    r_px: F64
    r_mm: F64
    iodine: F64
    owner: list[str]  # per point: vessel name or "catheter"


def _frame(scene: Scene, t: float) -> _Frame:
    pose = scene.motion.pose(t)
    xyz, r_mm, iodine, owner = [], [], [], []
    for v in scene.tree:
        xyz.append(scene.vessel_points(v, pose))
        r_mm.append(v.radius_mm)
        iodine.append(scene.injection.at(t, v.origin_mm + v.arc_mm))
        owner += [v.name] * len(v.radius_mm)
    cath = scene.devices[0]
    pts = cath.points(scene.heart, pose, scene.motion.breathing(t))
    xyz.append(pts)
    r_mm.append(np.full(len(pts), cath.radius_mm))
    iodine.append(np.ones(len(pts)))
    owner += ["catheter"] * len(pts)
    all_xyz = np.concatenate(xyz)
    xy, depth = scene.carm.project(all_xyz)
    rmm = np.concatenate(r_mm)
    return _Frame(
        all_xyz, xy, rmm * scene.carm.px_per_mm_at(depth), rmm, np.concatenate(iodine), owner
    )


def lesion_truth(
    scene: Scene, times: Sequence[float], peak: int
) -> tuple[list[dict[str, Any]], float]:
    """Per-lesion truth and the largest projected motion of the tree (mm at the isocentre)."""
    carm = scene.carm
    frames = [_frame(scene, t) for t in times]
    tree_n = sum(len(v.radius_mm) for v in scene.tree)
    moved = max(
        float(np.max(np.linalg.norm(f.xy[:tree_n] - frames[0].xy[:tree_n], axis=1))) for f in frames
    )
    out = []
    for les in scene.lesions:
        v = scene.vessel(les.vessel)
        centre = v.shc_at(les.position)[None, :]
        ref_mm = 2 * v.radius_at(les.position)
        positions, visible = [], []
        for t, fr in zip(times, frames, strict=True):
            pose = scene.motion.pose(t)
            xyz = scene.heart.to_patient(centre, pose)
            xy, depth = carm.project(xyz)
            x, y = (float(c) for c in xy[0])
            positions.append([round(x, 2), round(y, 2)])
            inside = 0 <= x <= carm.columns - 1 and 0 <= y <= carm.rows - 1
            filled = float(
                scene.injection.at(t, np.array([v.origin_mm + les.position * v.length_mm]))[0]
            )
            half_px = 0.5 * ref_mm * float(carm.px_per_mm_at(depth)[0])
            visible.append(
                inside
                and filled >= _OPACIFIED
                and not _crossed(fr, les, xyz[0], xy[0], half_px, ref_mm)
            )
        pose = scene.motion.pose(times[peak])
        pts = scene.vessel_points(v, pose)
        i = int(np.clip(np.searchsorted(v.arc_mm, les.position * v.length_mm), 1, len(pts) - 2))
        tangent = pts[i + 1] - pts[i - 1]
        tangent /= np.linalg.norm(tangent)
        ray = carm.rays(pts[i : i + 1])[0]
        sin = float(np.linalg.norm(np.cross(tangent, ray)))
        out.append(
            {
                "vessel": les.vessel,
                "position": round(les.position, 4),
                "percent_stenosis": round(les.percent, 2),
                "significant": les.significant,
                "length_mm": round(les.length_mm, 2),
                "reference_diameter_mm": round(ref_mm, 3),
                "minimal_lumen_diameter_mm": round(ref_mm * (1 - les.percent / 100), 3),
                "eccentricity": round(les.eccentricity, 3),
                "positions_px": positions,
                "visible": visible,
                "foreshortening": round(1.0 - sin, 4),
            }
        )
    return out, moved * carm.mm_per_px


def _crossed(fr: _Frame, les: Lesion, xyz: F64, xy: F64, half_px: float, ref_mm: float) -> bool:
    """Whether another opacified vessel or the catheter covers the lesion centre."""
    others = np.array([o != les.vessel for o in fr.owner])
    covers = np.linalg.norm(fr.xy - xy, axis=1) < fr.r_px + 0.5 * half_px
    apart = np.linalg.norm(fr.xyz - xyz, axis=1) > fr.r_mm + 0.5 * ref_mm + _APART_MM
    wide = 2 * fr.r_mm >= _HIDING_DIAMETER_MM
    return bool(np.any(others & covers & apart & wide & (fr.iodine >= _OPACIFIED)))


def vessel_truth(scene: Scene, t: float) -> list[dict[str, Any]]:
    """Every vessel with its centreline (about 1.2 mm apart) at time *t*."""
    pose = scene.motion.pose(t)
    out = []
    for v in scene.tree:
        pts = scene.vessel_points(v, pose)
        take = np.unique(np.r_[np.arange(0, len(pts), 3), len(pts) - 1])
        xy, _ = scene.carm.project(pts[take])
        out.append(
            {
                "name": v.name,
                "parent": v.parent,
                "length_mm": round(v.length_mm, 2),
                "proximal_diameter_mm": round(2 * float(v.radius_mm[0]), 3),
                "distal_diameter_mm": round(2 * float(v.radius_mm[-1]), 3),
                "centerline_px": np.round(xy, 2).tolist(),
            }
        )
    return out


def difficulty(scene: Scene, motion_mm: float, fps: float) -> dict[str, Any]:
    """How hard the run is to read: noise, scatter, depth, size, clutter, motion, contrast."""
    exp = scene.exposure
    chest = scene.chest.frame(np.zeros(2), scene.carm.rows, scene.carm.columns)
    att = float(np.median(chest))
    counts = exp.photons * float(np.exp(-att)) / (1 - exp.scatter_fraction)
    structures = list(scene.chest.structures) + [d.kind for d in scene.devices]
    return {
        "noise_level": round(1.0 / float(np.sqrt(max(counts, 1.0))), 4),
        "photons_per_pixel": round(exp.photons, 1),
        "scatter_fraction": round(exp.scatter_fraction, 3),
        "bits_stored": exp.bits_stored,
        "size": max(scene.carm.rows, scene.carm.columns),
        "overlapping_structures": structures,
        "motion_amplitude_mm": round(motion_mm, 2),
        "contrast": round(1.0 - float(np.exp(-3.0 * scene.iodine_mu)), 4),
        "iodine_mu_per_mm": round(scene.iodine_mu, 4),
        "frame_rate": fps,
        "display": "log" if exp.log_display else "gamma",
        "field_edge": scene.shutter,
    }
