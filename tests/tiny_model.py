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
