"""The in-house ONNX -> PyTorch converter (models/training/cgtrain/onnx_torch.py): the
shipped calcium model converts, reproduces onnxruntime, trains, and exports back with its
names and dynamic axes; a graph with another operator is refused by name."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "models" / "training"))
import onnxruntime  # noqa: E402

from cgtrain.onnx_torch import (  # noqa: E402
    OnnxTorchError,
    export_onnx,
    load_onnx,
    probe_difference,
)

SHIPPED = ROOT / "models" / "calcium" / "model.onnx"


def _dims(path: Path) -> dict[str, list[int | str]]:
    graph = onnx.load(str(path)).graph
    return {
        v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*graph.input, *graph.output]
    }


def test_the_shipped_model_converts_and_reproduces_onnxruntime() -> None:
    net = load_onnx(SHIPPED)
    assert probe_difference(net, SHIPPED, (2, 3, 48, 80)) <= 1e-4
    assert sum(p.numel() for p in net.parameters()) > 100_000


def test_export_keeps_names_dynamic_axes_and_outputs(tmp_path: Path) -> None:
    net = load_onnx(SHIPPED)
    export_onnx(net, tmp_path / "model.onnx")
    assert _dims(tmp_path / "model.onnx") == _dims(SHIPPED)
    x = np.random.default_rng(0).normal(size=(3, 3, 96, 32)).astype(np.float32)
    run = [
        onnxruntime.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(
            ["logits"], {"image": x}
        )[0]
        for p in (SHIPPED, tmp_path / "model.onnx")
    ]
    np.testing.assert_allclose(run[1], run[0], atol=1e-4)


def test_a_training_step_reaches_every_parameter(tmp_path: Path) -> None:
    net = load_onnx(SHIPPED)
    x = torch.randn(2, 3, 32, 32)
    before = net(x).detach()
    loss = torch.nn.functional.cross_entropy(net(x), torch.zeros(2, 32, 32, dtype=torch.long))
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    torch.optim.SGD(net.parameters(), lr=0.1).step()
    assert not torch.allclose(net(x), before)
    export_onnx(net, tmp_path / "trained.onnx")  # the trained weights are what is exported
    assert probe_difference(net, tmp_path / "trained.onnx") <= 1e-4
    assert probe_difference(net, SHIPPED) > 1e-4


def test_an_operator_it_does_not_interpret_is_refused_by_name(tmp_path: Path) -> None:
    helper = onnx.helper
    graph = helper.make_graph(
        [helper.make_node("Relu", ["image"], ["r"]), helper.make_node("Sigmoid", ["r"], ["out"])],
        "g",
        [helper.make_tensor_value_info("image", onnx.TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, ["batch", 3, 8, 8])],
    )
    path = tmp_path / "sigmoid.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(OnnxTorchError, match="Sigmoid"):
        load_onnx(path)
