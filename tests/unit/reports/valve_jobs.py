"""A calcium job whose model labels aortic valve calcium: a real 6-class ONNX model (one 1x1
convolution over the centre slice) and a CT series drawn by hand, so that what the model
calls coronary and what it calls aortic valve are known exactly.

The CT is 40 HU everywhere but for an LAD plaque of 300 HU and aortic valve calcium of 900
and 700 HU. The model's logits of a pixel of ``v = HU / 1000`` are ``3`` background,
``20 v`` LAD, ``40 v - 12`` AV and ``-20`` the other arteries: from 150 HU the pixel is LAD,
from 600 HU AV. The 5-class twin has no AV channel, so it calls the valve LAD.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from cardiogate_phantoms import make_ct_series
from onnx import TensorProto, helper
from pydicom.dataset import Dataset

from cardiogate.inference.card import file_sha256

ROWS = COLUMNS = 64
SLICES = 6
PIXEL_MM = 1.0
INCREMENT_MM = 3.0
MASS_FACTOR = 0.8
# (dataset index, rows, columns, HU): what the CT holds above 40 HU
LAD_PLAQUES = [(2, slice(10, 14), slice(10, 13), 300.0), (3, slice(10, 14), slice(10, 13), 300.0)]
VALVE = [
    (1, slice(40, 45), slice(40, 45), 900.0),
    (2, slice(40, 45), slice(40, 45), 900.0),
    (3, slice(40, 45), slice(40, 45), 900.0),
    (4, slice(30, 32), slice(50, 53), 700.0),  # a second valve region, elsewhere
]
# logit = weight * v + bias, by class name
_RULE = {
    "background": (0.0, 3.0),
    "LM": (0.0, -20.0),
    "LAD": (20.0, 0.0),
    "LCX": (0.0, -20.0),
    "RCA": (0.0, -20.0),
    "AV": (40.0, -12.0),
}
SIX = ["background", "LM", "LAD", "LCX", "RCA", "AV"]
FIVE = SIX[:5]


def rule_scores() -> tuple[float, float, float, float]:
    """What the rule scores, by hand: LAD Agatston and volume, AV Agatston and volume
    (weights from the peak: 300 HU is 3, 700 and 900 HU are 4; increment 3 mm)."""
    area = PIXEL_MM * PIXEL_MM

    def size(rows: slice, columns: slice) -> float:
        return (rows.stop - rows.start) * (columns.stop - columns.start) * area

    lad = sum(size(r, c) for _, r, c, _ in LAD_PLAQUES)
    valve = sum(size(r, c) for _, r, c, _ in VALVE)
    return lad * 3, lad * INCREMENT_MM, valve * 4, valve * INCREMENT_MM


def valve_mass_mg() -> float:
    """The AV mass by hand: volume x HU x factor, summed over the valve regions."""
    return (
        sum(
            (r.stop - r.start) * (c.stop - c.start) * PIXEL_MM**2 * INCREMENT_MM / 1000 * hu
            for _, r, c, hu in VALVE
        )
        * MASS_FACTOR
    )


def valve_ct(*, valve: bool = True) -> list[Dataset]:
    """The hand-drawn CT as datasets (headers of a phantom series, its pixels replaced);
    without ``valve``, the LAD plaques alone."""
    series = make_ct_series(
        3,
        n_slices=SLICES,
        rows=ROWS,
        columns=COLUMNS,
        pixel_spacing_mm=PIXEL_MM,
        plaques=[],
        aortic_calcium=False,
        valve_calcium=False,
        keep_phantom=False,
    )
    hu = np.full((SLICES, ROWS, COLUMNS), 40.0)
    for z, rows, columns, value in [*LAD_PLAQUES, *(VALVE if valve else [])]:
        hu[z, rows, columns] = value
    datasets = list(series.datasets)
    for ds, pixels in zip(datasets, hu, strict=True):
        stored = pixels - float(ds.RescaleIntercept)
        ds.PixelData = stored.astype(np.int16 if ds.PixelRepresentation else np.uint16).tobytes()
        ds.CalciumScoringMassFactorPatient = MASS_FACTOR
    return datasets


def write_valve_model(folder: Path, labels: list[str] = SIX, *, coronary: bool = True) -> Path:
    """The rule as a 1x1 convolution over the centre of the three input slices, its output
    channels in the order of ``labels`` (which its card names); without ``coronary`` it
    never calls a pixel LAD (the plaque is then background)."""
    folder.mkdir(parents=True, exist_ok=True)
    weights = np.zeros((len(labels), 3, 1, 1), dtype=np.float32)
    bias = np.zeros(len(labels), dtype=np.float32)
    rule = _RULE if coronary else {**_RULE, "LAD": _RULE["LM"]}
    for channel, name in enumerate(labels):
        weights[channel, 1, 0, 0], bias[channel] = rule[name]
    shape: list[Any] = ["batch", 3, "rows", "columns"]
    out: list[Any] = ["batch", len(labels), "rows", "columns"]
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w", "b"], ["logits"], kernel_shape=[1, 1])],
        "valve-rule",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, out)],
        initializer=[
            helper.make_tensor("w", TensorProto.FLOAT, weights.shape, weights.ravel().tolist()),
            helper.make_tensor("b", TensorProto.FLOAT, bias.shape, bias.tolist()),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, folder / "model.onnx")
    card = {
        "name": "valve-rule",
        "version": "0.0.1",
        "task": "calcium",
        "inputs": [{"name": "image", "shape": shape, "dtype": "float32"}],
        "outputs": [{"name": "logits", "shape": out, "dtype": "float32"}],
        "preprocessing": {
            "context_slices": 1,
            "clip_hu": [-1024, 3071],
            "offset_hu": 0,
            "scale_hu": 1000,
        },
        "labels": labels,
        "training_data": "none: a fixed rule for tests",
        "sha256": file_sha256(folder / "model.onnx"),
        "intended_use": "tests of aortic valve calcium",
    }
    (folder / "card.json").write_text(json.dumps(card))
    return folder


def drawn_labels(datasets: list[Dataset], order: list[str]) -> np.ndarray[Any, Any]:
    """The hand-drawn regions as a label volume (2 LAD, 5 AV: the codes scoring uses), its
    slices in the order of the SOP Instance UIDs ``order`` (a loaded volume's)."""
    labels = np.zeros((SLICES, ROWS, COLUMNS), dtype=np.uint8)
    for regions, code in ((LAD_PLAQUES, 2), (VALVE, 5)):
        for index, rows, columns, _ in regions:
            labels[order.index(str(datasets[index].SOPInstanceUID)), rows, columns] = code
    return labels
