"""Rasterise axial slices of an :class:`.anatomy.Anatomy` (sharp edges, no noise).

Drawing order: body wall and cavity, lungs, liver, great vessels with their fat
sheath, heart (pericardial fat, myocardium, blood pools), aortic wall and lumen
again (so the root shows inside the heart), coronary tubes, ribs and cartilage,
spine and sternum.  Calcium and noise are added by :mod:`.phantom`.
"""

from __future__ import annotations

import numpy as np

from ._raster import F32, Ellipsoid, Grid, Tube, TubeSet
from .anatomy import (
    ABDOMEN_HU,
    AIR_HU,
    CSF_HU,
    DISC_HU,
    FAT_HU,
    LIVER_HU,
    LUNG_HU,
    MEDIASTINUM_HU,
    MUSCLE_HU,
    Anatomy,
)


def _ellipse(xs: F32, ys: F32, cx: float, cy: float, a: float, b: float) -> F32:
    out: F32 = (((xs - cx) / a) ** 2)[None, :] + (((ys - cy) / b) ** 2)[:, None]
    return out


class AnatomyRenderer:
    """Rasterises axial slices of an :class:`~.anatomy.Anatomy`.

    Parameters
    ----------
    an : Anatomy
        The chest.
    grid : Grid
        Pixel grid.
    vessels : TubeSet
        Coronary tubes drawn over the heart (from :mod:`.coronary`).
    """

    def __init__(self, an: Anatomy, grid: Grid, vessels: TubeSet) -> None:
        self.an, self.grid, self.vessels = an, grid, vessels
        xs, ys = grid.xs, grid.ys
        (ba, bb), cav = an.body_semi, an.cavity_semi
        base = np.full((ys.size, xs.size), AIR_HU, dtype=np.float32)
        np.copyto(base, np.float32(FAT_HU), where=_ellipse(xs, ys, 0, 0, ba, bb) <= 1)
        inner = (ba - an.fat_mm, bb - an.fat_mm)
        np.copyto(base, np.float32(MUSCLE_HU), where=_ellipse(xs, ys, 0, 0, *inner) <= 1)
        in_cav = _ellipse(xs, ys, 0, 0, *cav) <= 1
        self.base_chest = base.copy()
        np.copyto(self.base_chest, np.float32(MEDIASTINUM_HU), where=in_cav)
        self.base_soft = base
        np.copyto(self.base_soft, np.float32(ABDOMEN_HU), where=in_cav)
        (lx0, ly0), (lx1, ly1) = an.lung_centres
        lungs = np.minimum(
            _ellipse(xs, ys, lx0, ly0, *an.lung_semi), _ellipse(xs, ys, lx1, ly1, *an.lung_semi)
        )
        lungs[_ellipse(xs, ys, 0, 0, cav[0] - 2, cav[1] - 2) > 1] = np.inf
        self.lungs = lungs
        self.great = TubeSet(an.great_vessels)
        # redraw only the leading run of the aorta that can lie inside the heart
        above = an.aorta.points[:, 2] > an.aortic_root[2] + an.heart.semi.max()
        n = int(np.argmax(above)) + 1 if above.any() else len(above)
        ao = an.aorta
        self.aorta = TubeSet([Tube(ao.points[:n], ao.radii[:n], ao.layers)])
        self.bones = TubeSet(an.bones)
        sp = an.spine
        self.vb = _ellipse(xs, ys, 0, sp["y"], 1.15 * sp["radius"], sp["radius"])
        self.vb_inner = _ellipse(xs, ys, 0, sp["y"], 1.15 * sp["radius"] - 2, sp["radius"] - 2)
        yc = sp["y_canal"]
        self.arch = _ellipse(xs, ys, 0, yc, 11, 10) <= 1
        self.arch |= (
            _ellipse(xs, ys, 0, yc + 8 + sp["spinous_len"] / 2, 3.5, sp["spinous_len"] / 2) <= 1
        )
        tx = 1.15 * sp["radius"] * 0.8 + 8
        self.arch |= _ellipse(xs, ys, -tx, yc - 2, 9, 4) <= 1
        self.arch |= _ellipse(xs, ys, tx, yc - 2, 9, 4) <= 1
        self.canal = _ellipse(xs, ys, 0, yc, 7, 7) <= 1
        st = an.sternum
        self.st = _ellipse(xs, ys, 0, st["y"], st["semi_x"], st["semi_y"])

    def render(self, z: float) -> F32:
        """One sharp slice at *z* (rows, columns) in HU."""
        an, grid = self.an, self.grid
        chest = an.diaphragm_z <= z <= an.lung_z[0] + an.lung_z[1]
        img = (self.base_chest if chest else self.base_soft).copy()
        sc = 1.0 - ((z - an.lung_z[0]) / an.lung_z[1]) ** 2
        if sc > 0:
            np.copyto(img, np.float32(LUNG_HU), where=self.lungs <= sc)
        self._ellipsoid(img, an.liver, z, LIVER_HU)
        self.great.render(img, grid, z)
        self._heart(img, z)
        self.aorta.render(img, grid, z)
        self.bones.render(img, grid, z)
        self.vessels.render(img, grid, z)
        self._spine(img, z)
        st = an.sternum
        if st["z_lo"] <= z <= st["z_hi"]:
            np.copyto(img, np.float32(st["cortex_hu"]), where=self.st <= 1)
            np.copyto(img, np.float32(st["marrow_hu"]), where=self.st <= 0.4)
        return img

    def _ellipsoid(
        self, img: F32, e: Ellipsoid, z: float, hu: float, within: Ellipsoid | None = None
    ) -> None:
        win = e.window(self.grid, z)
        if win is None:
            return
        r0, r1, c0, c1 = win
        xs, ys = self.grid.xs[c0:c1], self.grid.ys[r0:r1]
        mask = e.quad(xs, ys, z) <= 1
        if within is not None:
            mask &= within.quad(xs, ys, z) <= 1
        np.copyto(img[r0:r1, c0:c1], np.float32(hu), where=mask)

    def _heart(self, img: F32, z: float) -> None:
        h = self.an.heart
        self._ellipsoid(img, h.ellipsoid(h.fat_mm), z, FAT_HU + 10)
        myo = h.ellipsoid()
        self._ellipsoid(img, myo, z, self.an.myocardium_hu)
        for e, hu in self.an.chambers:
            self._ellipsoid(img, e, z, hu, within=h.ellipsoid(-3.0))

    def _spine(self, img: F32, z: float) -> None:
        sp = self.an.spine
        disc = ((z - sp["phase"]) % sp["period"]) < 0.2 * sp["period"]
        if disc:
            np.copyto(img, np.float32(DISC_HU), where=self.vb <= 1)
        else:
            np.copyto(img, np.float32(sp["cortex_hu"]), where=self.vb <= 1)
            np.copyto(img, np.float32(sp["cancellous_hu"]), where=self.vb_inner <= 1)
        np.copyto(img, np.float32(sp["cortex_hu"] * 0.8), where=self.arch)
        np.copyto(img, np.float32(CSF_HU), where=self.canal)
