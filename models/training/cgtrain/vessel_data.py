"""Training data for the stenosis model's vessel head: phantom cine frames, the frozen
network's features and per-cell vessel labels.

Each sample is the peak-opacified frame of a seeded synthetic cine
(``cardiogate_phantoms.make_xa_cine``), prepared exactly as the analysis prepares it
(``cardiogate.tasks.stenosis.analysis.model_input``: scaled to 0-1, resampled to the card's input
size). The labels come from the cine's truth (each vessel's centreline at the peak frame,
its proximal and distal calibre): a map cell whose centre lies on a vessel's lumen (within
half a cell) gets that vessel's class and the fraction of that vessel's arc length from its
origin at the nearest centreline point; a cell near a lumen but not on it, or on two
vessels at once (a crossing in projection), is left out of the loss; every other cell is
background.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from cardiogate_phantoms import make_xa_cine
from cardiogate_phantoms.xa_tree import Vessel

from cardiogate.tasks.stenosis.analysis import model_input

VESSEL_CLASSES = (
    "background",
    "LM",
    "LAD",
    "LCX",
    "RCA",
    "D1",
    "D2",
    "D3",
    "S1",
    "S2",
    "OM1",
    "OM2",
    "OM3",
    "CB",
    "AM1",
    "AM2",
    "PDA",
)
"""The vessel output's classes, in order (the card's ``postprocessing.vessel_classes``)."""
IGNORE = -1
"""Label of a cell left out of the loss."""
INPUT_SIZE = 256
STRIDE = 4
FRAMES = 8  # frames per training cine: the peak of 8 varies the heartbeat's phase


@dataclass(frozen=True)
class Labels:
    """Per-cell targets of one frame: class index (or ``IGNORE``) and arc fraction."""

    vessel: np.ndarray[Any, np.dtype[np.int8]]  # (rows, columns)
    position: np.ndarray[Any, np.dtype[np.float32]]  # (rows, columns), 0-1 on vessel cells


def rasterise(
    vessels: list[dict[str, Any]],
    mm_per_px: float,
    frame_shape: tuple[int, int],
    cells: tuple[int, int],
) -> Labels:
    """Labels on a map of *cells* over a frame of *frame_shape* pixels, from the cine truth's
    ``vessels`` (centreline_px at the peak frame, proximal/distal diameter in mm)."""
    rows, cols = frame_shape
    step_r, step_c = rows / cells[0], cols / cells[1]
    half_cell = 0.5 * min(step_r, step_c)
    cy = (np.arange(cells[0]) + 0.5) * step_r - 0.5
    cx = (np.arange(cells[1]) + 0.5) * step_c - 0.5
    centres = np.stack(np.meshgrid(cx, cy), axis=-1).reshape(-1, 2)  # (n, 2) as (x, y)
    n = centres.shape[0]
    depth = np.full((len(vessels), n), np.inf)  # distance from the lumen, px (< 0: inside)
    frac = np.zeros((len(vessels), n))
    for i, truth in enumerate(vessels):
        points = np.asarray(truth["centerline_px"], dtype=np.float64)
        r0 = truth["proximal_diameter_mm"] / 2 / mm_per_px
        r1 = truth["distal_diameter_mm"] / 2 / mm_per_px
        vessel = Vessel(truth["name"], truth["parent"], points, r0, r1)
        radius = np.maximum(vessel.reference_radius(vessel.arc), 1.0)
        d = np.linalg.norm(centres[:, None, :] - points[None, :, :], axis=2)  # (n, points)
        nearest = np.argmin(d - radius[None, :], axis=1)
        depth[i] = d[np.arange(n), nearest] - radius[nearest]
        frac[i] = vessel.arc[nearest] / max(vessel.length, 1e-6)
    order = np.argsort(depth, axis=0)
    best, second = order[0], order[1] if len(vessels) > 1 else order[0]
    d_best = depth[best, np.arange(n)]
    d_second = depth[second, np.arange(n)]
    label = np.zeros(n, dtype=np.int8)
    on = d_best <= half_cell
    label[on] = [VESSEL_CLASSES.index(vessels[b]["name"]) for b in best[on]]
    label[(d_best > half_cell) & (d_best <= 2.5 * half_cell)] = IGNORE  # lumen edge
    crossing = on & (d_second <= half_cell) & (d_second - d_best < 0.5 * half_cell)
    label[crossing] = IGNORE
    position = np.where(on, frac[best, np.arange(n)], 0.0).astype(np.float32)
    return Labels(label.reshape(cells), position.reshape(cells))


def cine_sample(seed: int) -> tuple[np.ndarray[Any, Any], Labels]:
    """The model input (1, size, size) of a seeded cine's peak frame and its labels."""
    cine = make_xa_cine(seed, frames=FRAMES)
    truth = cine.truth
    frame = cine.datasets[0].pixel_array[truth["peak_frame"]]
    x = model_input(frame[None], int(cine.datasets[0].BitsStored), INPUT_SIZE)[0]
    cells = (INPUT_SIZE // STRIDE, INPUT_SIZE // STRIDE)
    labels = rasterise(truth["vessels"], truth["pixel_spacing_isocentre_mm"], frame.shape, cells)
    return x, labels


@dataclass(frozen=True)
class Taps:
    """Where the vessel head plugs into the shipped graph: the 1/4 top-down features before
    the heatmap/percent head (``top``) and after its conv + ReLU (``features``)."""

    top: str
    features: str


def find_taps(model: onnx.ModelProto) -> Taps:
    """The tensors that feed the ``heatmap`` output's 1x1 conv, found by the graph's shape."""
    producer = {out: node for node in model.graph.node for out in node.output}
    heat = producer["heatmap"]
    relu = producer[heat.input[0]]
    conv = producer[relu.input[0]]
    if heat.op_type != "Conv" or relu.op_type != "Relu" or conv.op_type != "Conv":
        raise ValueError("heatmap is not read by Conv(Relu(Conv(top))): cannot tap the graph")
    return Taps(top=conv.input[0], features=heat.input[0])


class Backbone:
    """The shipped, frozen network run in onnxruntime, giving the head's input features."""

    def __init__(self, path: Path) -> None:
        model = onnx.load(str(path))
        self.taps = find_taps(model)
        for name in (self.taps.top, self.taps.features):
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, 1, None))
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        self.session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )

    def __call__(self, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """(batch, 96, rows/4, columns/4) float32: ``top`` and ``features`` stacked."""
        top, features = self.session.run([self.taps.top, self.taps.features], {"image": x})
        return np.concatenate([top, features], axis=1)


@dataclass(frozen=True)
class Pool:
    """Features (float16) and labels of many frames."""

    features: np.ndarray[Any, Any]  # (n, 96, cells, cells) float16
    vessel: np.ndarray[Any, Any]  # (n, cells, cells) int8
    position: np.ndarray[Any, Any]  # (n, cells, cells) float32

    def class_weights(self) -> np.ndarray[Any, Any]:
        """Inverse square-root frequency, median class at 1: small branches count."""
        counts = np.bincount(self.vessel[self.vessel >= 0].ravel(), minlength=len(VESSEL_CLASSES))
        freq = np.maximum(counts, 1) / max(int(counts.sum()), 1)
        weights = np.sqrt(np.median(freq) / freq)
        out: np.ndarray[Any, Any] = np.clip(weights, 0.05, 5.0).astype(np.float32)
        return out


def build_pool(backbone: Backbone, seeds: range, *, workers: int = 2, batch: int = 16) -> Pool:
    """Generate the cines of *seeds* (in *workers* processes) and run the backbone on them."""
    cells = INPUT_SIZE // STRIDE
    n = len(seeds)
    features = np.zeros((n, 96, cells, cells), dtype=np.float16)
    vessel = np.zeros((n, cells, cells), dtype=np.int8)
    position = np.zeros((n, cells, cells), dtype=np.float32)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        samples = pool.map(cine_sample, seeds, chunksize=8)
        images: list[np.ndarray[Any, Any]] = []
        for i, (x, labels) in enumerate(samples):
            vessel[i], position[i] = labels.vessel, labels.position
            images.append(x)
            if len(images) == batch or i == n - 1:
                start = i + 1 - len(images)
                features[start : i + 1] = backbone(np.stack(images))
                images = []
    return Pool(features, vessel, position)
