"""C-arm projection geometry for family B angiograms: views, perspective, pixel spacing.

Patient coordinates are DICOM LPS millimetres (x to the patient's left, y posterior, z
superior) with the isocentre at the origin.  The angles follow PS3.3 C.8.7.5: Positioner
Primary Angle runs RAO (-) to LAO (+), a rotation about the patient's long axis; Positioner
Secondary Angle runs CAU (-) to CRA (+), a tilt towards the head.  At 0/0 (AP) the source is
posterior, the detector anterior, image columns run to the patient's left and rows to the
feet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from .xa_render import Tube

F64 = NDArray[np.float64]

# Nominal cath-lab views (primary, secondary) in degrees; the names are what truth["view"]
# says, the angles in the header are these plus a seeded perturbation.
LCA_VIEWS: dict[str, tuple[float, float]] = {
    "RAO 30 CAU 25": (-30.0, -25.0),
    "RAO 30 CRA 30": (-30.0, 30.0),
    "RAO 10 CAU 35": (-10.0, -35.0),
    "AP CRA 35": (0.0, 35.0),
    "AP CAU 30": (0.0, -30.0),
    "LAO 45 CRA 25": (45.0, 25.0),
    "LAO 50 CAU 30": (50.0, -30.0),
    "LAO 90": (90.0, 0.0),
}
RCA_VIEWS: dict[str, tuple[float, float]] = {
    "LAO 30": (30.0, 0.0),
    "LAO 30 CRA 20": (30.0, 20.0),
    "LAO 45": (45.0, 0.0),
    "RAO 30": (-30.0, 0.0),
    "AP CRA 25": (0.0, 25.0),
}
ANGLE_JITTER_DEG = 5.0


def views_of(artery: str) -> dict[str, tuple[float, float]]:
    """The nominal views used for *artery* (``"LCA"`` or ``"RCA"``)."""
    return LCA_VIEWS if artery == "LCA" else RCA_VIEWS


@dataclass(frozen=True)
class CArm:
    """One C-arm position and detector: where each patient point lands in the image.

    Attributes
    ----------
    primary_deg, secondary_deg : float
        Positioner Primary / Secondary Angle (PS3.3 C.8.7.5).
    sid_mm, sod_mm : float
        Distance Source to Detector (0018,1110) and Source to Patient (isocentre)
        (0018,1111).
    pitch_mm : float
        Imager Pixel Spacing (0018,1164), square pixels.
    rows, columns : int
        Image matrix.
    """

    primary_deg: float
    secondary_deg: float
    sid_mm: float
    sod_mm: float
    pitch_mm: float
    rows: int
    columns: int

    @property
    def mm_per_px(self) -> float:
        """Pixel size at the isocentre: Imager Pixel Spacing x SOD / SID."""
        return self.pitch_mm * self.sod_mm / self.sid_mm

    def basis(self) -> tuple[F64, F64, F64]:
        """Unit vectors (column direction, row direction, isocentre-to-detector) in LPS."""
        return self._basis

    @cached_property
    def _basis(self) -> tuple[F64, F64, F64]:
        a = math.radians(self.primary_deg)
        b = math.radians(self.secondary_deg)
        # LAO rotates about the long axis, detector towards the patient's left ...
        d = np.array([math.sin(a), -math.cos(a), 0.0])
        u = np.array([math.cos(a), math.sin(a), 0.0])
        v = np.array([0.0, 0.0, -1.0])
        # ... then CRA tilts the detector towards the head, about the column axis.
        d, v = (
            d * math.cos(b) - np.cross(u, d) * math.sin(b),
            v * math.cos(b) - np.cross(u, v) * math.sin(b),
        )
        return u, v, d

    @property
    def source(self) -> F64:
        """The focal spot in LPS mm."""
        return -self.basis()[2] * self.sod_mm

    def project(self, points: F64) -> tuple[F64, F64]:
        """Pixel coordinates (x = column, y = row; N x 2) and source distance along the
        central ray (N,) of LPS points (N x 3)."""
        u, v, d = self.basis()
        rel = points - self.source
        depth = rel @ d
        scale = self.sid_mm / (depth * self.pitch_mm)
        x = (rel @ u) * scale + (self.columns - 1) / 2
        y = (rel @ v) * scale + (self.rows - 1) / 2
        return np.stack([x, y], axis=-1), depth

    def px_per_mm_at(self, depth: F64) -> F64:
        """Pixels per mm of an object at source distance *depth* (perspective magnification)."""
        return self.sid_mm / (depth * self.pitch_mm)

    def rays(self, points: F64) -> F64:
        """Unit ray directions from the source through *points* (N x 3)."""
        rel = points - self.source
        out: F64 = rel / np.linalg.norm(rel, axis=-1, keepdims=True)
        return out

    def image_shift_px(self, displacement_mm: F64) -> F64:
        """Image shift (x, y) in pixels of a rigid displacement at the isocentre."""
        u, v, _ = self.basis()
        return np.array([displacement_mm @ u, displacement_mm @ v]) / self.mm_per_px


def draw_carm(
    rng: np.random.Generator, nominal: tuple[float, float], rows: int, columns: int
) -> CArm:
    """A perturbed C-arm position for a nominal view and a detector for the matrix.

    The detector field (170-250 mm) is divided into the matrix, so a 1024 matrix has half
    the pitch of a 512 one; the pitch is rounded to 4 decimals as a header would carry it.
    """
    primary = nominal[0] + float(rng.uniform(-ANGLE_JITTER_DEG, ANGLE_JITTER_DEG))
    secondary = nominal[1] + float(rng.uniform(-ANGLE_JITTER_DEG, ANGLE_JITTER_DEG))
    sod = float(rng.uniform(720.0, 810.0))
    sid = round(sod + float(rng.uniform(230.0, 420.0)), 1)
    field = float(rng.choice([170.0, 200.0, 220.0, 250.0]))
    pitch = round(field / max(rows, columns), 4)
    return CArm(round(primary, 1), round(secondary, 1), sid, round(sod, 1), pitch, rows, columns)


def project_tube(
    carm: CArm, points: F64, radius_mm: F64, mu_per_mm: F64, min_sin: float = 0.25
) -> Tube:
    """The projection of a 3D tube (centre points N x 3, radius and attenuation per mm at
    each): radius in pixels at its depth, and attenuation per pixel of projected chord,
    lengthened by ``1 / sin`` of the angle between tube and ray (capped at ``1 / min_sin``
    where the tube runs nearly along the ray)."""
    xy, depth = carm.project(points)
    ppm = carm.px_per_mm_at(depth)
    tangent = np.gradient(points, axis=0)
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-9)
    sin = np.linalg.norm(np.cross(tangent, carm.rays(points)), axis=1)
    return Tube(xy, radius_mm * ppm, mu_per_mm / (ppm * np.maximum(sin, min_sin)))
