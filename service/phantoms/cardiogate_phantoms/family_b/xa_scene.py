"""One family B angiographic run: the patient, the C-arm and the injection, drawn per frame.

:func:`build_scene` draws everything that depends on the seed and the injected artery only
(so a normal twin shares it); lesions are added afterwards.  :meth:`Scene.render` makes the
stored frames, :meth:`Scene.vessel_points` gives the moving centrelines the truth is read
from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from .xa_background import Chest, draw_chest, heart_shadow, transmission
from .xa_devices import Device, catheter, guide_wire, pacemaker_lead, stent, sternal_wires
from .xa_heart import F64, Heart, Motion, Pose
from .xa_imaging import Exposure, Injection
from .xa_lesions import Lesion, narrowing
from .xa_projection import CArm, draw_carm, project_tube, views_of
from .xa_render import F32, Tube, rasterise
from .xa_tree3d import Vessel, build_tree

_MAIN = {"LCA": ("LM", "LAD", "LCX"), "RCA": ("RCA",)}


@dataclass(frozen=True)
class Scene:
    """Everything a run shows; ``lesions`` is empty for the normal twin."""

    artery: str
    view: str
    carm: CArm
    heart: Heart
    motion: Motion
    tree: list[Vessel]
    devices: list[Device]
    chest: Chest
    transmitted: F32 | None
    shutter: str
    injection: Injection
    exposure: Exposure
    iodine_mu: float  # per mm at full concentration
    heart_mu: float  # per mm, heart over lung
    lesions: list[Lesion] = field(default_factory=list)

    def vessel(self, name: str) -> Vessel:
        """The vessel called *name*; ``ValueError`` when this tree has none."""
        for v in self.tree:
            if v.name == name:
                return v
        names = ", ".join(v.name for v in self.tree)
        raise ValueError(f"vessel {name} is not in this {self.artery} tree (it has {names})")

    def vessel_points(self, vessel: Vessel, pose: Pose) -> F64:
        """Centreline of *vessel* (N x 3 LPS) at *pose*."""
        return self.heart.to_patient(vessel.shc, pose)

    def opacification(self, t: float) -> float:
        """Mean iodine concentration (0-1) over the tree's centrelines at time *t*."""
        conc = [self.injection.at(t, v.origin_mm + v.arc_mm) for v in self.tree]
        return float(np.concatenate(conc).mean())

    def _vessel_tubes(self, t: float, pose: Pose) -> list[Tube]:
        tubes = []
        for v in self.tree:
            pts = self.vessel_points(v, pose)
            radius, offset, angle = narrowing(v, self.lesions)
            diseased = offset > 1e-4
            if np.any(diseased):
                n1, n2 = self.heart.local_frame(v.shc, pose, pts)
                shift = offset * np.cos(angle)
                pts = pts + shift[:, None] * n1 + (offset * np.sin(angle))[:, None] * n2
            mu = self.iodine_mu * self.injection.at(t, v.origin_mm + v.arc_mm)
            tube = project_tube(self.carm, pts, radius, mu, min_sin=0.4)
            step = int(np.clip(round(float(np.median(tube.r)) / 2.0), 1, 4))
            tubes.append(tube.decimated(step, keep=radius < v.radius_mm * 0.995))
        return tubes

    def _device_tubes(self, t: float, pose: Pose, iodine: bool) -> list[Tube]:
        breathing = self.motion.breathing(t)
        c0 = float(self.injection.concentration(t)) if iodine else 0.0
        out: list[Tube] = []
        for device in self.devices:
            out.extend(device.tubes(self.carm, self.heart, pose, breathing, self.iodine_mu * c0))
        return out

    def _anatomy(self, t: float, pose: Pose) -> F32:
        shift = self.carm.image_shift_px(self.motion.breathing(t))
        chest = self.chest.frame(shift, self.carm.rows, self.carm.columns)
        return chest + heart_shadow(self.carm, self.heart, pose, self.heart_mu)

    def display_range(self) -> tuple[float, float]:
        """Counts mapped to the low and high display values: from the first frame without
        iodine, so that a normal twin is displayed alike."""
        pose = self.motion.pose(0.0)
        shape = (self.carm.rows, self.carm.columns)
        att = self._anatomy(0.0, pose) + rasterise(shape, self._device_tubes(0.0, pose, False))
        signal = self.exposure.signal(att, self.transmitted)
        open_ = signal if self.transmitted is None else signal[self.transmitted > 0.5]
        dark, bright = np.percentile(open_, [0.5, 99.8])
        return float(dark) * 0.55, float(bright)

    def render(self, times: Sequence[float], noise: np.random.Generator) -> NDArray[np.generic]:
        """Stored frames (frames x rows x columns) at *times* (s)."""
        rows, cols = self.carm.rows, self.carm.columns
        gain, offset = self.exposure.display_curve(*self.display_range())
        out = np.empty((len(times), rows, cols), dtype=self.exposure.dtype)
        for k, t in enumerate(times):
            pose = self.motion.pose(t)
            tubes = self._vessel_tubes(t, pose) + self._device_tubes(t, pose, True)
            att = self._anatomy(t, pose) + rasterise((rows, cols), tubes)
            z = noise.standard_normal((rows, cols), dtype=np.float32)
            e = noise.standard_normal((rows, cols), dtype=np.float32)
            counts = self.exposure.detect(self.exposure.signal(att, self.transmitted), z, e)
            out[k] = self.exposure.to_stored(counts, gain, offset)
        return out


def build_scene(
    rng: np.random.Generator, artery: str, rows: int, columns: int, duration_s: float
) -> Scene:
    """The seeded patient, view, devices, injection and exposure of one run."""
    views = views_of(artery)
    view = sorted(views)[int(rng.integers(len(views)))]
    carm = draw_carm(rng, views[view], rows, columns)
    heart = Heart.random(rng)
    tree = build_tree(rng, artery, heart)
    # centre the table on the tree, give or take a few centimetres of panning
    centroid = heart.to_patient(np.concatenate([v.shc for v in tree])).mean(axis=0)
    u, v, d = carm.basis()
    fov_mm = carm.mm_per_px * min(rows, columns)
    pan = rng.uniform(-0.1, 0.1, size=2) * fov_mm
    heart = heart.moved(-centroid + pan[0] * u + pan[1] * v + float(rng.uniform(-15, 15)) * d)
    motion = Motion.random(rng)
    devices = [catheter(rng, heart, tree[0].shc[0])]
    names = {vessel.name: vessel for vessel in tree}
    if rng.random() < 0.3:
        route = ["RCA"] if artery == "RCA" else ["LM", str(rng.choice(["LAD", "LCX"]))]
        devices.append(guide_wire([names[n] for n in route]))
    if rng.random() < 0.2:
        devices.append(stent(rng, names[str(rng.choice(_MAIN[artery][-2:]))]))
    if rng.random() < 0.15:
        devices.append(sternal_wires(rng, heart))
    if rng.random() < 0.12:
        devices.append(pacemaker_lead(rng, heart))
    size = max(rows, columns)
    pad = int(np.ceil(np.linalg.norm(motion.breath_mm) * 1.6 / carm.mm_per_px)) + 3
    transmitted, shutter = transmission(rng, rows, columns)
    return Scene(
        artery=artery,
        view=view,
        carm=carm,
        heart=heart,
        motion=motion,
        tree=tree,
        devices=devices,
        chest=draw_chest(rng, carm, pad),
        transmitted=transmitted,
        shutter=shutter,
        injection=Injection.random(rng, duration_s),
        exposure=Exposure.random(rng, size),
        iodine_mu=float(rng.uniform(0.15, 0.45)),
        heart_mu=float(rng.uniform(0.001, 0.004)),
    )
