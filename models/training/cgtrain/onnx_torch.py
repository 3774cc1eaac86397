"""An ONNX model as a trainable PyTorch module, and back to ONNX.

The calcium network is a plain convolutional graph: Conv, Relu, MaxPool, ConvTranspose and
Concat (its batch norms were folded into the convolutions when it was exported). This
interprets those operators generically, node by node in the graph's order, with every
initializer a trainable ``nn.Parameter``; any other operator is refused by name. An
in-house converter, not ``onnx2torch``: that one brings torchvision and a CUDA torch in.

:func:`load_onnx` checks the converted net against onnxruntime on a probe input before it
is used (within :data:`TOLERANCE`); :func:`export_onnx` writes it back with the original
input and output names and dynamic axes.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import torch
from onnx import numpy_helper
from torch import nn
from torch.nn import functional

SUPPORTED = ("Conv", "Relu", "MaxPool", "ConvTranspose", "Concat")
TOLERANCE = 1e-4  # largest absolute difference from onnxruntime on the probe


class OnnxTorchError(ValueError):
    """The graph uses something this converter does not interpret, or the converted
    net does not reproduce onnxruntime."""


def _attributes(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _padding(node: onnx.NodeProto, pads: list[int]) -> tuple[int, int]:
    """ONNX pads (top, left, bottom, right) as torch's symmetric (rows, columns)."""
    if len(pads) != 4 or pads[0] != pads[2] or pads[1] != pads[3]:
        raise OnnxTorchError(f"node {node.name!r} ({node.op_type}): asymmetric pads {pads}")
    return pads[0], pads[1]


def _dims(value: onnx.ValueInfoProto) -> dict[int, str]:
    """The named (dynamic) axes of a graph input or output."""
    shape = value.type.tensor_type.shape.dim
    return {i: d.dim_param for i, d in enumerate(shape) if d.dim_param}


class OnnxNet(nn.Module):
    """A 2D convolutional ONNX graph (:data:`SUPPORTED` operators) run by PyTorch."""

    def __init__(self, model: onnx.ModelProto) -> None:
        super().__init__()
        graph = model.graph
        unknown = sorted({n.op_type for n in graph.node} - set(SUPPORTED))
        if unknown:
            raise OnnxTorchError(
                f"graph {graph.name!r} uses operator(s) {', '.join(unknown)}; this converter "
                f"interprets only {', '.join(SUPPORTED)}"
            )
        self.weights = nn.ParameterList()
        self._index: dict[str, int] = {}
        for tensor in graph.initializer:
            self._index[tensor.name] = len(self.weights)
            array = numpy_helper.to_array(tensor).astype(np.float32)
            self.weights.append(nn.Parameter(torch.from_numpy(array.copy())))
        self.nodes = [
            (n.op_type, list(n.input), list(n.output), _attributes(n), n) for n in graph.node
        ]
        for op, _, _, attrs, node in self.nodes:
            if op in ("Conv", "ConvTranspose", "MaxPool"):
                if any(d != 1 for d in attrs.get("dilations", [1, 1])):
                    raise OnnxTorchError(f"node {node.name!r} ({op}): dilations other than 1")
                _padding(node, list(attrs.get("pads", [0, 0, 0, 0])))
            if op == "ConvTranspose" and ("output_shape" in attrs or "auto_pad" in attrs):
                raise OnnxTorchError(f"node {node.name!r} (ConvTranspose): output_shape/auto_pad")
            if op == "Conv" and attrs.get("auto_pad", "NOTSET") != "NOTSET":
                raise OnnxTorchError(f"node {node.name!r} (Conv): auto_pad")
        initialised = set(self._index)
        self.input_names = [i.name for i in graph.input if i.name not in initialised]
        self.output_names = [o.name for o in graph.output]
        self.dynamic_axes = {
            v.name: _dims(v) for v in [*graph.input, *graph.output] if v.name not in initialised
        }
        self.opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))

    def _value(self, name: str, values: dict[str, torch.Tensor]) -> torch.Tensor | None:
        if name == "":
            return None
        if name in values:
            return values[name]
        return self.weights[self._index[name]]

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        values: dict[str, torch.Tensor] = dict(zip(self.input_names, inputs, strict=True))
        for op, names, outputs, attrs, node in self.nodes:
            args = [self._value(n, values) for n in names]
            values[outputs[0]] = self._run(op, args, attrs, node)
        return values[self.output_names[0]]

    @staticmethod
    def _run(
        op: str, args: list[torch.Tensor | None], attrs: dict[str, Any], node: onnx.NodeProto
    ) -> torch.Tensor:
        x = args[0]
        assert x is not None
        if op == "Relu":
            return functional.relu(x)
        if op == "Concat":
            return torch.cat([a for a in args if a is not None], dim=int(attrs["axis"]))
        strides = list(attrs.get("strides", [1, 1]))
        padding = _padding(node, list(attrs.get("pads", [0, 0, 0, 0])))
        if op == "MaxPool":
            return functional.max_pool2d(
                x,
                list(attrs["kernel_shape"]),
                strides,
                padding,
                ceil_mode=bool(attrs.get("ceil_mode", 0)),
            )
        bias = args[2] if len(args) > 2 else None
        group = int(attrs.get("group", 1))
        if op == "Conv":
            return functional.conv2d(x, args[1], bias, strides, padding, groups=group)
        return functional.conv_transpose2d(  # ConvTranspose
            x,
            args[1],
            bias,
            strides,
            padding,
            output_padding=list(attrs.get("output_padding", [0, 0])),
            groups=group,
        )


def probe_difference(
    net: OnnxNet, path: Path, shape: tuple[int, ...] = (1, 3, 64, 64), seed: int = 0
) -> float:
    """The largest absolute difference between ``net`` and onnxruntime running ``path``
    on a seeded random input of ``shape``."""
    x = np.random.default_rng(seed).normal(0.0, 1.0, shape).astype(np.float32)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    [expected] = session.run(net.output_names[:1], {net.input_names[0]: x})
    with torch.no_grad():
        actual = net.eval()(torch.from_numpy(x)).numpy()
    if actual.shape != expected.shape:
        raise OnnxTorchError(
            f"{path}: the converted net gives shape {actual.shape}, onnxruntime {expected.shape}"
        )
    return float(np.abs(actual - expected).max())


def load_onnx(path: Path, probe: tuple[int, ...] = (1, 3, 64, 64)) -> OnnxNet:
    """``path`` as a trainable :class:`OnnxNet`, checked against onnxruntime on a probe
    input of shape ``probe``; refused unless it agrees within :data:`TOLERANCE`."""
    net = OnnxNet(onnx.load(str(path)))
    difference = probe_difference(net, path, probe)
    if not difference <= TOLERANCE:
        raise OnnxTorchError(
            f"{path}: the converted net differs from onnxruntime by {difference:.3g} on a "
            f"probe of shape {probe} (tolerance {TOLERANCE:g}); refusing to train it"
        )
    return net


def export_onnx(net: OnnxNet, path: Path, probe: tuple[int, ...] = (1, 3, 64, 64)) -> None:
    """Write ``net`` to ``path`` with its original input and output names, dynamic axes
    and opset."""
    net.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # the TorchScript exporter, as train_calcium.py uses
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            net,
            (torch.zeros(probe),),
            str(path),
            input_names=net.input_names,
            output_names=net.output_names,
            dynamic_axes={k: v for k, v in net.dynamic_axes.items() if v},
            opset_version=net.opset,
            dynamo=False,
        )
