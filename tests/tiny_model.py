"""A real (tiny) ONNX model folder with a card, built with the onnx package."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import onnx
from onnx import TensorProto, helper

from cardiogate.inference.card import file_sha256


def write_model(folder: Path, *, task: str = "calcium", **card_changes: Any) -> Path:
    """A model computing relu(image) * 2 on a (batch, 1, 8, 8) float32 input."""
    folder.mkdir(parents=True, exist_ok=True)
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, 8, 8])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1, 8, 8])
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["image"], ["r"]),
            helper.make_node("Mul", ["r", "two"], ["logits"]),
        ],
        "tiny",
        [image],
        [logits],
        initializer=[two],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, folder / "model.onnx")
    card = {
        "name": f"tiny-{task}",
        "version": "0.0.1",
        "task": task,
        "inputs": [{"name": "image", "shape": ["batch", 1, 8, 8], "dtype": "float32"}],
        "outputs": [{"name": "logits", "shape": ["batch", 1, 8, 8], "dtype": "float32"}],
        "labels": ["background"],
        "training_data": "none: a test fixture",
        "sha256": file_sha256(folder / "model.onnx"),
        "intended_use": "tests",
        **card_changes,
    }
    (folder / "card.json").write_text(json.dumps(card))
    return folder


def write_threshold_model(folder: Path, *, artery: int = 2, above_hu: float = 150.0) -> Path:
    """A real calcium-contract model with a fixed rule: every pixel of the centre slice above
    ``above_hu`` is labelled ``artery`` (1 LM .. 4 RCA), everything else background.

    It lets tests check the pipeline's plumbing against an independent computation; the
    trained model's accuracy is checked elsewhere."""
    folder.mkdir(parents=True, exist_ok=True)
    shape = ["batch", 3, "rows", "columns"]
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)
    logits = helper.make_tensor_value_info(
        "logits", TensorProto.FLOAT, ["batch", 5, "rows", "columns"]
    )
    consts = [
        helper.make_tensor("starts", TensorProto.INT64, [1], [1]),
        helper.make_tensor("ends", TensorProto.INT64, [1], [2]),
        helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("cut", TensorProto.FLOAT, [], [above_hu / 1000.0]),
        helper.make_tensor("minus", TensorProto.FLOAT, [], [-1.0]),
    ]
    channels = ["background" if c == 0 else "centre" if c == artery else "never" for c in range(5)]
    nodes = [
        helper.make_node("Slice", ["image", "starts", "ends", "axes"], ["centre"]),
        helper.make_node("Mul", ["centre", "zero"], ["zeros"]),
        helper.make_node("Add", ["zeros", "cut"], ["background"]),
        helper.make_node("Add", ["zeros", "minus"], ["never"]),
        helper.make_node("Concat", channels, ["logits"], axis=1),
    ]
    graph = helper.make_graph(nodes, "threshold", [image], [logits], initializer=consts)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, folder / "model.onnx")
    card = {
        "name": "threshold-rule",
        "version": "0.0.1",
        "task": "calcium",
        "inputs": [{"name": "image", "shape": shape, "dtype": "float32"}],
        "outputs": [
            {"name": "logits", "shape": ["batch", 5, "rows", "columns"], "dtype": "float32"}
        ],
        "preprocessing": {
            "context_slices": 1,
            "clip_hu": [-1024, 3071],
            "offset_hu": 0,
            "scale_hu": 1000,
        },
        "labels": ["background", "LM", "LAD", "LCX", "RCA"],
        "training_data": "none: a fixed threshold rule for tests",
        "sha256": file_sha256(folder / "model.onnx"),
        "intended_use": "tests of the calcium pipeline",
    }
    (folder / "card.json").write_text(json.dumps(card))
    return folder


def threshold_rule_scores(sources: Any, *, artery: int = 2, above_hu: float = 150.0) -> Any:
    """What :func:`write_threshold_model`'s rule should score on ``sources`` (files or
    datasets), computed without the model or the pipeline."""
    import numpy as np

    from cardiogate.analyses.ct_volume import load_ct_series
    from cardiogate.tasks.calcium.scoring import agatston_scores

    volume = load_ct_series(sources)
    return agatston_scores(
        volume.hu,
        np.where(volume.hu > above_hu, artery, 0),
        volume.pixel_spacing_mm,
        volume.slice_increment_mm,
    )


def write_dark_spot_model(
    folder: Path, *, cut: float = 0.5, gain: float = 40.0, percent: float = 75.0
) -> Path:
    """A real stenosis-contract model with a fixed rule: the heatmap logit of each 4x4 cell
    is ``gain * (cut - mean intensity)`` (a dark spot reads as a lesion) and the % stenosis
    is ``percent`` everywhere. It tests the analysis's plumbing (frames, peaks, positions,
    merging, review band), not detection."""
    folder.mkdir(parents=True, exist_ok=True)
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, "r", "c"])
    out_shape = ["batch", 1, "r4", "c4"]
    heatmap = helper.make_tensor_value_info("heatmap", TensorProto.FLOAT, out_shape)
    reading = helper.make_tensor_value_info("percent", TensorProto.FLOAT, out_shape)
    consts = [
        helper.make_tensor("cut", TensorProto.FLOAT, [], [cut]),
        helper.make_tensor("gain", TensorProto.FLOAT, [], [gain]),
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("value", TensorProto.FLOAT, [], [percent]),
    ]
    nodes = [
        helper.make_node("AveragePool", ["image"], ["mean"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Sub", ["cut", "mean"], ["darkness"]),
        helper.make_node("Mul", ["darkness", "gain"], ["heatmap"]),
        helper.make_node("Mul", ["mean", "zero"], ["zeros"]),
        helper.make_node("Add", ["zeros", "value"], ["percent"]),
    ]
    graph = helper.make_graph(nodes, "dark-spot", [image], [heatmap, reading], initializer=consts)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, folder / "model.onnx")
    card = {
        "name": "dark-spot-rule",
        "version": "0.0.1",
        "task": "stenosis",
        "inputs": [{"name": "image", "shape": ["batch", 1, "rows", "columns"], "dtype": "float32"}],
        "outputs": [
            {"name": "heatmap", "shape": out_shape, "dtype": "float32"},
            {"name": "percent", "shape": out_shape, "dtype": "float32"},
        ],
        "preprocessing": {"input_size": 256, "output_stride": 4},
        "postprocessing": {"lesion_threshold": 0.5},
        "training_data": "none: a fixed dark-spot rule for tests",
        "sha256": file_sha256(folder / "model.onnx"),
        "intended_use": "tests of the stenosis pipeline",
    }
    (folder / "card.json").write_text(json.dumps(card))
    return folder
