"""Fine-tuning a converted calcium network on reviewed volumes mixed with synthetic replay.

Each batch draws ``synthetic_fraction`` of its crops from the family-A replay volumes and
the rest from the reviewed ones; within each, a slice with coronary calcium is drawn as
often as one without (as ``train_calcium.py`` does). A crop is centred on coronary calcium
where the slice has some, else with probability ``hard_fraction`` on a look-alike (what the
reviewers called not coronary, or family A's distractors), else anywhere. The loss is the
cross-entropy over the candidate pixels only (those the analysis reads).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from cgtrain.review_data import Volume


@dataclass(frozen=True)
class Recipe:
    steps: int = 150
    lr: float = 1e-4
    batch: int = 8
    crop: int = 128
    synthetic_fraction: float = 0.5
    hard_fraction: float = 0.7
    context_slices: int = 1
    seed: int = 0
    class_weight: tuple[float, ...] | None = None  # per output class; None: all 1


class _Pool:
    """Slices of several volumes, drawn with coronary and other slices equally often."""

    def __init__(self, volumes: Sequence[Volume]) -> None:
        self.volumes = list(volumes)
        self.items = [(v, int(z)) for v, volume in enumerate(volumes) for z in volume.slices]
        coronary = np.array([bool(volumes[v].y[z].any()) for v, z in self.items], dtype=bool)
        self.coronary_slices = int(coronary.sum())
        p = np.where(coronary, 0.5 / max(coronary.sum(), 1), 0.5 / max((~coronary).sum(), 1))
        self.p = p / p.sum() if len(p) else p

    def __len__(self) -> int:
        return len(self.items)

    def draw(self, rng: np.random.Generator) -> tuple[Volume, int]:
        v, z = self.items[int(rng.choice(len(self.items), p=self.p))]
        return self.volumes[v], z


def crop(
    volume: Volume, z: int, size: int, rng: np.random.Generator, recipe: Recipe
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(x, y, weight) of one crop of slice ``z``: x with the slice's context channels,
    padded (edge values; no counted pixels) where the slice is smaller than ``size``."""
    rows, cols = volume.y.shape[1:]
    y = volume.y[z]
    centre = None
    classes = np.unique(y[y > 0])
    hard = volume.hard.get(z, np.zeros((0, 2), dtype=np.int64))
    if len(classes):
        pixels = np.argwhere(y == rng.choice(classes))
        centre = pixels[rng.integers(len(pixels))]
    elif len(hard) and rng.random() < recipe.hard_fraction:
        centre = hard[rng.integers(len(hard))]
    if centre is None:
        r0 = int(rng.integers(0, max(rows - size, 0) + 1))
        c0 = int(rng.integers(0, max(cols - size, 0) + 1))
    else:
        centre = centre + rng.integers(-size // 3, size // 3 + 1, 2)
        r0 = int(np.clip(centre[0] - size // 2, 0, max(rows - size, 0)))
        c0 = int(np.clip(centre[1] - size // 2, 0, max(cols - size, 0)))
    k = recipe.context_slices
    neighbours = np.clip(np.arange(z - k, z + k + 1), 0, len(volume.x) - 1)
    window = (slice(r0, r0 + size), slice(c0, c0 + size))
    x = volume.x[neighbours][:, window[0], window[1]].astype(np.float32)
    yy, ww = volume.y[z][window], volume.weight[z][window]
    short = (size - x.shape[1], size - x.shape[2])
    if short[0] or short[1]:
        x = np.pad(x, ((0, 0), (0, short[0]), (0, short[1])), mode="edge")
        yy = np.pad(yy, ((0, short[0]), (0, short[1])))
        ww = np.pad(ww, ((0, short[0]), (0, short[1])))
    return x, yy, ww


def finetune(
    net: nn.Module,
    reviewed: Sequence[Volume],
    synthetic: Sequence[Volume],
    recipe: Recipe,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Train ``net`` in place; returns what the card records (losses, slices, seconds)."""
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    pools = {"reviewed": _Pool(reviewed), "synthetic": _Pool(synthetic)}
    if not len(pools["reviewed"]):
        raise ValueError("no reviewed slice with a candidate pixel to train on")
    fraction = recipe.synthetic_fraction if len(pools["synthetic"]) else 0.0
    optimiser = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=1e-4)
    weight = None if recipe.class_weight is None else torch.tensor(recipe.class_weight)
    started = time.perf_counter()
    losses: list[float] = []
    net.train()
    for step in range(1, recipe.steps + 1):
        xs, ys, ws = [], [], []
        for _ in range(recipe.batch):
            pool = pools["synthetic" if rng.random() < fraction else "reviewed"]
            volume, z = pool.draw(rng)
            x, y, w = crop(volume, z, recipe.crop, rng, recipe)
            xs.append(x)
            ys.append(y)
            ws.append(w)
        logits = net(torch.from_numpy(np.stack(xs)))
        w_t = torch.from_numpy(np.stack(ws).astype(np.float32))
        target = torch.from_numpy(np.stack(ys).astype(np.int64))
        loss_map = nn.functional.cross_entropy(logits, target, weight=weight, reduction="none")
        loss = (loss_map * w_t).sum() / w_t.sum().clamp(min=1.0)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.item()))
        if step % 25 == 0 or step == 1:
            log(f"step {step}/{recipe.steps} loss {np.mean(losses[-25:]):.4f}")
    return {
        "steps": recipe.steps,
        "lr": recipe.lr,
        "batch": recipe.batch,
        "crop": recipe.crop,
        "synthetic_fraction": fraction,
        "hard_fraction": recipe.hard_fraction,
        "class_weight": None if recipe.class_weight is None else list(recipe.class_weight),
        "seed": recipe.seed,
        "loss_first_25": round(float(np.mean(losses[:25])), 4),
        "loss_last_25": round(float(np.mean(losses[-25:])), 4),
        "train_seconds": round(time.perf_counter() - started, 1),
        "reviewed_slices": len(pools["reviewed"]),
        "reviewed_coronary_slices": pools["reviewed"].coronary_slices,
        "synthetic_slices": len(pools["synthetic"]),
    }
