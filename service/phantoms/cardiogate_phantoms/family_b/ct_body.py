"""Family B CT: the non-contrast background (HU at slice centres) and where the bone is.

Painted from the outside in, each layer blending its soft-edged occupancy: air, the body
(subcutaneous fat, chest wall muscle, the paraspinal mass), the lungs, mediastinal fat,
the diaphragm with liver and spleen below it, the ribs and costal cartilage (integrated
over the slab), spine with discs, sternum, the great vessels in their fat, and the heart
with its pericardial fat, pericardium, epicardial fat (thicker in the grooves), myocardium
and blood.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from .ct_anatomy import Anatomy, ellipse_radius
from .ct_grid import F32, Grid

F64 = NDArray[np.float64]
Mask = NDArray[np.bool_]

AIR, FAT, MUSCLE, LUNG, BLOOD, MYOCARDIUM = -1000.0, -100.0, 45.0, -850.0, 40.0, 48.0
LIVER, SPLEEN, CARTILAGE, MARROW, CORTEX = 58.0, 45.0, 95.0, 260.0, 850.0


def _soft(distance: F32 | F64, spacing: float) -> F32:
    """Occupancy from a signed distance in mm (negative inside), a pixel-wide edge."""
    edge = np.clip(0.5 - np.asarray(distance, np.float32) / np.float32(spacing), 0.0, 1.0)
    return np.asarray(edge, np.float32)


def _paint(target: F32, occupancy: F32, value: float | F32) -> None:
    target += occupancy * (np.asarray(value, np.float32) - target)


def _slab_fraction(phase: F32, height: float, period: float, thickness: float) -> F32:
    """The fraction of a slab of ``thickness`` centred at ``phase`` (mm into a cycle of
    ``period``) inside the band ``0 .. height`` of each cycle."""
    lo, hi = phase - thickness / 2, phase + thickness / 2
    total = np.zeros_like(phase)
    for shift in (-period, 0.0, period):
        total += np.clip(np.minimum(hi, shift + height) - np.maximum(lo, shift), 0.0, None)
    return np.asarray(total / np.float32(thickness), np.float32)


def render_background(grid: Grid, anatomy: Anatomy) -> tuple[F32, Mask]:
    """HU of the anatomy at the slice centres (ribs and discs slab-integrated) and the
    voxels that are mostly bone."""
    t, sp = anatomy.torso, grid.spacing_mm
    x = grid.x_mm.astype(np.float32)[None, :]
    y = grid.y_mm.astype(np.float32)[:, None]
    r = np.sqrt(x**2 + y**2) + np.float32(1e-3)
    cos, sin = x / r, y / r
    plane = np.full((grid.rows, grid.columns), AIR, np.float32)
    _paint(plane, _soft(r - ellipse_radius(t.skin, cos, sin), sp), FAT)
    back = np.sqrt((x / 55.0) ** 2 + ((y - t.cavity[1] - 12.0) / 38.0) ** 2)
    _paint(plane, _soft((back - 1.0) * 38.0 - t.fat_mm, sp), FAT)
    _paint(plane, _soft(r - ellipse_radius(t.muscle, cos, sin), sp), MUSCLE)
    _paint(plane, _soft((back - 1.0) * 38.0, sp), MUSCLE)
    cavity_r = ellipse_radius(t.cavity, cos, sin)
    cavity = _soft(r - cavity_r, sp)
    texture = 25.0 * np.sin(x / 7.3 + 1.1) * np.sin(y / 5.9 + 0.4) + 15.0 * np.sin((x + y) / 3.1)
    _paint(plane, cavity, LUNG + texture.astype(np.float32))
    strip = _soft(np.abs(x - 2.0) - t.mediastinum_mm, sp) * cavity
    strip *= _soft(y - float(anatomy.heart.centre[1]), sp)  # the anterior mediastinum
    _paint(plane, strip, FAT)

    hu = np.repeat(plane[None], len(grid.z_mm), axis=0)
    bone = np.zeros(hu.shape, dtype=bool)
    z = grid.z_mm.astype(np.float32)
    _diaphragm(hu, grid, anatomy, x, y, cavity)
    _ribs(hu, bone, grid, anatomy, r, cavity_r, sin, x, z)
    _spine(hu, bone, grid, anatomy, x, y, z)
    _sternum(hu, bone, grid, anatomy, x, y, z)
    _vessels(hu, grid, anatomy, aorta=False)
    _heart(hu, grid, anatomy)
    _vessels(hu, grid, anatomy, aorta=True)
    return hu, bone


def _diaphragm(hu: F32, grid: Grid, anatomy: Anatomy, x: F32, y: F32, cavity: F32) -> None:
    (xr, yr, zr, rr), (xl, yl, zl, rl) = anatomy.torso.domes
    right = zr - ((x - xr) ** 2 + (y - yr) ** 2) / (2 * rr)
    left = zl - ((x - xl) ** 2 + (y - yl) ** 2) / (2 * rl)
    height = np.maximum(right, left)
    organ = np.where(right >= left, np.float32(LIVER), np.float32(SPLEEN))
    for k in np.flatnonzero(grid.z_mm - grid.thickness_mm < height.max()):
        below = np.clip((height - grid.z_mm[k]) / grid.thickness_mm + 0.5, 0.0, 1.0)
        _paint(hu[k], (below * cavity).astype(np.float32), organ)


def _ribs(
    hu: F32,
    bone: Mask,
    grid: Grid,
    anatomy: Anatomy,
    r: F32,
    cavity_r: F32,
    sin: F32,
    x: F32,
    z: F32,
) -> None:
    t, sp = anatomy.torso, grid.spacing_mm
    depth = r - cavity_r - 0.5  # mm outside the pleura
    band = (depth > -sp) & (depth < t.rib_mm + sp) & (np.abs(x) > t.sternum[1] + 2.0)
    rows, cols = np.nonzero(band)
    d = depth[rows, cols]
    g = (1.0 - sin[rows, cols]) / 2.0  # anteriority
    radial = _soft(-d, sp) * _soft(d - t.rib_mm, sp) * (g > 0.03)
    edge = np.minimum(d, t.rib_mm - d)
    cartilage = g >= t.cartilage_from
    value = np.where(cartilage, CARTILAGE, MARROW + (CORTEX - MARROW) * (edge < 1.5)).astype(
        np.float32
    )
    phase = t.rib_phase(z[:, None], g[None, :]).astype(np.float32)
    frac = _slab_fraction(phase, t.rib_height_mm, t.rib_pitch_mm, grid.thickness_mm) * radial
    view = hu[:, rows, cols]
    view += frac * (value - view)
    hu[:, rows, cols] = view
    bone[:, rows, cols] = (frac >= 0.5) & ~cartilage


def _plane_box(
    grid: Grid, lo: tuple[float, float], hi: tuple[float, float]
) -> tuple[slice, slice] | None:
    box = grid.box(np.array([lo[0], lo[1], -1e9]), np.array([hi[0], hi[1], 1e9]))
    return None if box is None else (box[1], box[2])


def _spine(hu: F32, bone: Mask, grid: Grid, anatomy: Anatomy, x: F32, y: F32, z: F32) -> None:
    t, sp = anatomy.torso, grid.spacing_mm
    yv, vr = t.vertebra_y_mm, t.vertebra_r_mm
    yc = yv + vr + 6.0
    found = _plane_box(grid, (-vr - 2.0, yv - vr - 2.0), (vr + 2.0, yc + 30.0))
    if found is None:
        return
    rs, cs = found
    x, y = x[:, cs], y[rs, :]
    body = _soft(np.sqrt(x**2 + (y - yv) ** 2) - vr, sp)
    inner = _soft(np.sqrt(x**2 + (y - yv) ** 2) - vr + 1.5, sp)
    canal_d = np.sqrt(x**2 + (y - yc) ** 2)
    arch = _soft(canal_d - 10.5, sp) * (1 - _soft(canal_d - 6.0, sp))
    process = np.sqrt((x / 4.0) ** 2 + ((y - yc - 18.0) / 10.0) ** 2)
    arch = np.maximum(arch, _soft((process - 1.0) * 4.0, sp))
    canal = _soft(canal_d - 6.0, sp)
    disc = _slab_fraction(
        np.mod(z - t.disc_z0_mm, t.disc_pitch_mm),
        t.disc_height_mm,
        t.disc_pitch_mm,
        grid.thickness_mm,
    )[:, None, None]
    vertebra = MARROW + (CORTEX - MARROW) * (body - inner)
    view = hu[:, rs, cs]
    _paint(view, (1 - disc) * arch, CORTEX)
    _paint(view, np.broadcast_to(canal, view.shape), 15.0)
    _paint(view, np.broadcast_to(body, view.shape), disc * 80.0 + (1 - disc) * vertebra)
    bone[:, rs, cs] |= ((1 - disc) * np.maximum(body, arch)) >= 0.5


def _sternum(hu: F32, bone: Mask, grid: Grid, anatomy: Anatomy, x: F32, y: F32, z: F32) -> None:
    t, sp = anatomy.torso, grid.spacing_mm
    ys, hw, hd = t.sternum
    found = _plane_box(grid, (-hw - 2.0, ys - hd - 2.0), (hw + 2.0, ys + hd + 2.0))
    if found is None:
        return
    rs, cs = found
    x, y = x[:, cs], y[rs, :]
    shape = np.sqrt((x / hw) ** 2 + ((y - ys) / hd) ** 2)
    occupancy = _soft((shape - 1.0) * hd, sp)
    cortex = occupancy - _soft((shape - 1.0) * hd + 1.5, sp)
    if t.sternotomy:
        occupancy = occupancy * (1 - _soft(np.abs(x) - 0.8, sp))
    value = MARROW + (CORTEX - MARROW) * cortex
    present = np.clip((z - t.sternum_bottom_mm) / grid.thickness_mm + 0.5, 0, 1)[:, None, None]
    occ = present * occupancy
    _paint(hu[:, rs, cs], occ, value)
    bone[:, rs, cs] |= occ >= 0.5


def _capsule(hu: F32, grid: Grid, p0: F64, p1: F64, radius: float, value: float) -> None:
    """Paint a cylinder with round ends between ``p0`` and ``p1`` (evaluated at slice centres)."""
    lo, hi = np.minimum(p0, p1) - radius - 1, np.maximum(p0, p1) + radius + 1
    box = grid.box(lo, hi)
    if box is None:
        return
    zs, rs, cs = box
    axis = p1 - p0
    length = float(np.linalg.norm(axis))
    axis = axis / length
    dx = (grid.x_mm[cs] - p0[0])[None, None, :]
    dy = (grid.y_mm[rs] - p0[1])[None, :, None]
    dz = (grid.z_mm[zs] - p0[2])[:, None, None]
    along = np.clip(dx * axis[0] + dy * axis[1] + dz * axis[2], 0.0, length)
    dist = np.sqrt(
        (dx - along * axis[0]) ** 2 + (dy - along * axis[1]) ** 2 + (dz - along * axis[2]) ** 2
    )
    _paint(hu[box], _soft(dist - radius, grid.spacing_mm), value)


def _vessels(hu: F32, grid: Grid, anatomy: Anatomy, *, aorta: bool) -> None:
    """The aortic root and ascending aorta (``aorta``, painted over the heart's base, in
    their own fat) or the other great vessels and the oesophagus (before the heart)."""
    v = anatomy.vessels
    if aorta:
        low = v.root + (v.sinus_r_mm - 3.0) * v.root_axis  # the round end reaches 3 mm below
        tubes = [
            ((low, v.aorta_top), v.aorta_r_mm, 3.0),
            ((low, low + 12.0 * v.root_axis), v.sinus_r_mm, 3.0),
        ]
    else:
        bottom, top = v.descending
        gullet = (
            bottom + np.array([-v.descending_r_mm - 9.0, -6.0, 0.0]),
            top + np.array([-v.descending_r_mm - 12.0, -8.0, 0.0]),
        )
        tubes = [
            (v.descending, v.descending_r_mm, 5.0),
            (v.pulmonary, v.pulmonary_r_mm, 5.0),
            (v.svc, v.svc_r_mm, 5.0),
            (gullet, 6.5, 4.0),
        ]
    for (p0, p1), radius, rim in tubes:
        inward = rim * (p1 - p0) / np.linalg.norm(p1 - p0)  # the fat ends with the vessel
        _capsule(hu, grid, p0 + inward, p1 - inward, radius + rim, FAT)
    for (p0, p1), radius, _ in tubes:
        _capsule(hu, grid, p0, p1, radius, BLOOD)


def _upsample(coarse: F32, rows: int, columns: int) -> F32:
    """Linear interpolation of a field sampled every second pixel back to every pixel."""
    out = np.empty((coarse.shape[0], rows, coarse.shape[2]), np.float32)
    out[:, 0::2] = coarse[:, : (rows + 1) // 2]
    out[:, 1::2] = 0.5 * (coarse[:, : rows // 2] + coarse[:, 1 : rows // 2 + 1])
    full = np.empty((coarse.shape[0], rows, columns), np.float32)
    full[:, :, 0::2] = out[:, :, : (columns + 1) // 2]
    full[:, :, 1::2] = 0.5 * (out[:, :, : columns // 2] + out[:, :, 1 : columns // 2 + 1])
    return full


def _heart_fields(anatomy: Anatomy, x: F64, y: F64, z: F64) -> tuple[F32, F32, F32, F32]:
    """On the grid ``z`` x ``y`` x ``x`` (mm): the approximate distance to the heart
    surface ``(q2 - 1) / |grad q2|``, the epicardial fat (thicker in the grooves), the
    paracardiac fat pad and whether a point is below the atrioventricular groove."""
    h = anatomy.heart
    dx = (x - h.centre[0]).astype(np.float32)[None, None, :]
    dy = (y - h.centre[1]).astype(np.float32)[None, :, None]
    dz = (z - h.centre[2]).astype(np.float32)[:, None, None]
    e1, e2, e3 = (e.astype(np.float32) for e in (h.e1, h.e2, h.e3))
    u = dx * e1[0] + dy * e1[1] + dz * e1[2]
    v = dx * e2[0] + dy * e2[1] + dz * e2[2]
    w = dx * e3[0] + dy * e3[1] + dz * e3[2]
    rho = np.sqrt(v * v + w * w) + np.float32(1e-3)
    cp, sn = v / rho, w / rho
    t = u / np.float32(h.a)
    big_r = h.equatorial_radius(t, cp, sn)
    q2 = t * t + (rho / big_r) ** 2
    grad = 2 * np.sqrt((u / np.float32(h.a**2)) ** 2 + (rho / big_r**2) ** 2)
    dist = (q2 - 1) / (grad + np.float32(1e-6))
    groove_t = h.t_av + h.av_tilt * cp
    ventricle = (t > groove_t).astype(np.float32)
    groove = np.exp(-(((t - groove_t) / np.float32(0.07)) ** 2))
    for phi in (h.phi_iv, h.phi_piv):
        towards = cp * np.float32(math.cos(phi)) + sn * np.float32(math.sin(phi))
        groove = np.maximum(groove, np.exp((towards - 1) / np.float32(0.02)) * ventricle)
    fat = h.fat_mm + h.groove_fat_mm * groove
    pad = h.pad_mm * np.clip(t + 0.2, 0, 1) * np.clip(0.6 + 0.6 * cp, 0, 1)
    return dist, fat, pad, ventricle


def _heart(hu: F32, grid: Grid, anatomy: Anatomy) -> None:
    """Pad fat, pericardium, epicardial fat, myocardium and ventricular blood, by the
    distance to the surface; the smooth fields come from every second pixel."""
    h, sp = anatomy.heart, grid.spacing_mm
    outer = h.fat_mm + h.groove_fat_mm + h.pad_mm + 1.2 + 2 * sp
    t_grid, phi_grid = np.meshgrid(np.linspace(-1, 1, 41), np.linspace(-np.pi, np.pi, 48))
    shell = h.surface(t_grid.ravel(), phi_grid.ravel(), outer)
    box = grid.box(shell.min(axis=0) - 2.0, shell.max(axis=0) + 2.0)
    if box is None:
        return
    zs, rs, cs = box
    n_r, n_c = rs.stop - rs.start, cs.stop - cs.start
    x = grid.x_mm[cs.start] + 2 * sp * np.arange(n_c // 2 + 1)
    y = grid.y_mm[rs.start] + 2 * sp * np.arange(n_r // 2 + 1)
    fields = _heart_fields(anatomy, x, y, grid.z_mm[zs])
    dist, fat, pad, ventricle = (_upsample(f, n_r, n_c) for f in fields)
    near = dist < outer
    view = hu[box]
    d, fat, pad, ventricle = dist[near], fat[near], pad[near], ventricle[near]
    values = view[near]
    layers = ((fat + 1.2 + pad, FAT), (fat + 1.2, 20.0), (fat, FAT - 5), (0.0, MYOCARDIUM))
    for offset, value in layers:
        _paint(values, _soft(d - offset, sp), value)
    _paint(values, _soft(d + 9.0, sp) * ventricle, BLOOD)
    view[near] = values
