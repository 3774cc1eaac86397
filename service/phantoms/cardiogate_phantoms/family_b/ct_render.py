"""Family B CT: compose the scene and reconstruct it.

Background anatomy (``ct_body``), then the coronary arteries in fat sleeves, the plaques and
the other bright objects as slab-integrated balls (``ct_grid.ball_occupancy``); metal adds
streaks; beam hardening a mild cupping; quantum noise is added before the reconstruction
kernel, so the kernel shapes its texture as it shapes the edges; noise spikes come last.
Labels mark where a plaque still adds 20 HU after the kernel (each voxel taking the artery
of its nearest ball), the non-coronary map likewise for the other objects and the bone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .ct_anatomy import Anatomy, ellipse_radius
from .ct_body import BLOOD, FAT, render_background
from .ct_coronary import CoronaryTree, Plaque
from .ct_grid import F32, Box, Grid, Kernel, ball_occupancy, blend, footprint
from .ct_noncoronary import BONE, METAL, OTHER, Extra

U8 = NDArray[np.uint8]
F64 = NDArray[np.float64]
_FOOTPRINT_HU = 20.0
_SLEEVE_MM = 2.5
_CHUNK = 16  # centreline points per rendered piece


@dataclass(frozen=True)
class Scene:
    hu: F32
    labels: U8
    noncoronary: U8
    shown: list[Extra]  # the non-coronary objects that made it into the volume


def _arteries(hu: F32, grid: Grid, tree: CoronaryTree) -> None:
    for sleeve in (True, False):
        for vessel in tree.vessels:
            step = 2 if sleeve else 1
            for start in range(0, len(vessel.points), _CHUNK):
                sl = slice(start, min(start + _CHUNK + 1, len(vessel.points)), step)
                radii = vessel.radius[sl] + (_SLEEVE_MM if sleeve else 0.0)
                found = ball_occupancy(grid, vessel.points[sl], radii)
                if found is not None:
                    blend(hu, found[0], found[1], FAT if sleeve else BLOOD)


def _footprint(
    grid: Grid, box: Box, occupancy: F32, before: F32, value: float, kernel: Kernel
) -> tuple[Box, NDArray[np.bool_]]:
    """Where an object of ``value`` HU filling ``occupancy`` over ``before`` still shows."""
    contribution = (occupancy * (np.float32(value) - before)).astype(np.float32)
    return footprint(grid, box, contribution, kernel, _FOOTPRINT_HU)


def _plaques(hu: F32, labels: U8, grid: Grid, plaques: list[Plaque], kernel: Kernel) -> None:
    for plaque in plaques:
        found = ball_occupancy(grid, plaque.centres, plaque.radii)
        if found is None:
            continue
        box, occupancy = found
        before = hu[box].copy()
        blend(hu, box, occupancy, plaque.density_hu)
        grown, mask = _footprint(grid, box, occupancy, before, plaque.density_hu, kernel)
        z, r, c = np.nonzero(mask)
        z, r, c = z + grown[0].start, r + grown[1].start, c + grown[2].start
        points = grid.voxel_mm(z, r, c)
        d = np.linalg.norm(points[:, None, :] - plaque.centres[None, :, :], axis=2) - plaque.radii
        labels[z, r, c] = plaque.labels[np.argmin(d, axis=1)]


def _extras(
    hu: F32, kinds: U8, grid: Grid, extras: list[Extra], kernel: Kernel, shown: list[Extra]
) -> list[tuple[Box, F32, float]]:
    """Render the objects (not the spikes), adding those in view to ``shown``; return the
    metal pieces for their streaks."""
    metal = []
    for extra in extras:
        if extra.kind == OTHER:
            continue
        found = ball_occupancy(grid, extra.centres, extra.radii)
        if found is None or not (found[1] > 0.05).any():
            continue
        shown.append(extra)
        box, occupancy = found
        before = hu[box].copy()
        blend(hu, box, occupancy, extra.density_hu)
        grown, mask = _footprint(grid, box, occupancy, before, extra.density_hu, kernel)
        kinds[grown][mask] = extra.kind
        if extra.kind == METAL:
            metal.append((box, occupancy, extra.streaks_hu))
    return metal


def _streaks(
    hu: F32, grid: Grid, metal: list[tuple[Box, F32, float]], rng: np.random.Generator
) -> None:
    """Bright and dark lines through each slice's metal, fading with distance."""
    sp = grid.spacing_mm
    reach = int(70.0 / sp)
    for box, occupancy, strength in metal:
        zs, rs, cs = box
        for k in range(occupancy.shape[0]):
            amount = float(occupancy[k].sum()) * sp * sp  # mm2 of metal on the slice
            if amount < 0.05:
                continue
            weight = occupancy[k] / occupancy[k].sum()
            r0 = rs.start + float((weight.sum(axis=1) * np.arange(weight.shape[0])).sum())
            c0 = cs.start + float((weight.sum(axis=0) * np.arange(weight.shape[1])).sum())
            top, left = max(int(r0) - reach, 0), max(int(c0) - reach, 0)
            bottom, right = min(int(r0) + reach, grid.rows), min(int(c0) + reach, grid.columns)
            dy = (np.arange(top, bottom) - r0)[:, None] * sp
            dx = (np.arange(left, right) - c0)[None, :] * sp
            dist = np.sqrt(dx**2 + dy**2) + 1.0
            field = np.zeros(dist.shape)
            for j, angle in enumerate(rng.uniform(0, math.pi, 6)):
                across = np.abs(dx * math.sin(angle) - dy * math.cos(angle))
                field += (1 if j % 2 else -1) * np.exp(-((across / 0.8) ** 2))
            scale = strength * min(amount / 3.0, 1.5)
            hu[zs.start + k, top:bottom, left:right] += (
                scale * field * np.exp(-dist / 35.0)
            ).astype(np.float32)


def _noise_map(grid: Grid, anatomy: Anatomy) -> F32:
    """Relative noise: highest at the centre of the body, lower at its edge and in air."""
    x = grid.x_mm[None, :]
    y = grid.y_mm[:, None]
    r = np.sqrt(x**2 + y**2) + 1e-3
    skin = ellipse_radius(anatomy.torso.skin, x / r, y / r)
    inside = np.clip(1.0 - (r / skin) ** 2, 0.0, 1.0)
    return np.asarray(0.7 + 0.3 * inside, np.float32)


def _spikes(hu: F32, kinds: U8, grid: Grid, extras: list[Extra], shown: list[Extra]) -> None:
    """Impulses on the reconstructed image: a bright square of 1-3 pixels each."""
    for extra in extras:
        if extra.kind != OTHER:
            continue
        x, y, z = extra.centres[0]
        k = int(np.argmin(np.abs(grid.z_mm - z)))
        r = round((y - grid.origin_mm[1]) / grid.spacing_mm)
        c = round((x - grid.origin_mm[0]) / grid.spacing_mm)
        size = int(extra.radii[0])
        if not (0 <= r < grid.rows - size and 0 <= c < grid.columns - size):
            continue
        spot = hu[k, r : r + size, c : c + size]
        spot[:] = np.maximum(spot, 0.0) + np.float32(extra.density_hu)
        kinds[k, r : r + size, c : c + size] = OTHER
        shown.append(extra)


def render_scene(
    grid: Grid,
    anatomy: Anatomy,
    tree: CoronaryTree,
    plaques: list[Plaque],
    extras: list[Extra],
    kernel: Kernel,
    noise_sigma_hu: float,
    cupping_hu: float,
    rng: np.random.Generator,
) -> Scene:
    """The reconstructed HU volume (integers in -1024 .. 3071) and its truth maps."""
    hu, bone = render_background(grid, anatomy)
    labels = np.zeros(hu.shape, np.uint8)
    kinds = np.zeros(hu.shape, np.uint8)
    kinds[bone] = BONE
    _arteries(hu, grid, tree)
    _plaques(hu, labels, grid, plaques, kernel)
    shown: list[Extra] = []
    metal = _extras(hu, kinds, grid, extras, kernel, shown)
    _streaks(hu, grid, metal, rng)
    relative = _noise_map(grid, anatomy)
    hu -= np.float32(cupping_hu) * (relative - np.float32(0.7)) / np.float32(0.3)
    per_slice = rng.uniform(0.9, 1.1, len(grid.z_mm)).astype(np.float32)
    sigma = relative * np.float32(noise_sigma_hu / kernel.noise_gain(grid.spacing_mm))
    noise = rng.standard_normal(hu.shape[1:], dtype=np.float32)
    for k, factor in enumerate(per_slice):
        rng.standard_normal(out=noise, dtype=np.float32)
        noise *= sigma
        noise *= factor
        hu[k] += noise
    hu = kernel.apply(hu, grid.spacing_mm)
    _spikes(hu, kinds, grid, extras, shown)
    np.rint(hu, out=hu)
    np.clip(hu, -1024, 3071, out=hu)
    kinds[labels > 0] = 0
    return Scene(hu, labels, kinds, shown)
