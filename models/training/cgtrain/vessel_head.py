"""The stenosis model's vessel head, and how it is spliced into the shipped ONNX graph.

The head reads the frozen network's 1/4-resolution features (``top``, the top-down path's
sum, and ``features``, after the heatmap/percent head's conv + ReLU) and outputs:

- ``vessel``: logits over :data:`cgtrain.vessel_data.VESSEL_CLASSES` at each cell;
- ``position``: the fraction of that vessel's arc length from its origin (sigmoid, 0-1).

Which vessel a lumen is depends on the tree's layout (where the ostium is, which way a
branch leaves), so the head is a small U-Net down to 1/32 of the input with dilated convs
at the bottom: its receptive field covers the whole frame.

The splice copies the head's exported nodes into the shipped graph, reading the shipped
graph's own tensors, so ``heatmap`` and ``percent`` are computed by the very same nodes and
weights as before.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import torch
from torch import nn
from torch.nn import functional as nnf

from cgtrain.vessel_data import VESSEL_CLASSES, Taps

IN_CHANNELS = 96


def _conv(cin: int, cout: int, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class VesselHead(nn.Module):
    def __init__(self, width: int = 48, classes: int = len(VESSEL_CLASSES)) -> None:
        super().__init__()
        wide = 2 * width
        self.enter = nn.Sequential(
            nn.Conv2d(IN_CHANNELS, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.enc4 = _conv(width, width)
        self.enc8 = _conv(width, wide)
        self.enc16 = _conv(wide, wide)
        self.enc32 = _conv(wide, wide)
        self.context = nn.Sequential(_conv(wide, wide, 2), _conv(wide, wide, 4))
        self.dec16 = _conv(wide, wide)
        self.dec8 = _conv(wide, wide)
        self.skip4 = nn.Conv2d(width, wide, 1)
        self.dec4 = nn.Sequential(_conv(wide, width), _conv(width, width, 2))
        self.vessel = nn.Conv2d(width, classes, 1)
        self.position = nn.Conv2d(width, 1, 1)

    def forward(self, top: torch.Tensor, features: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x4 = self.enc4(self.enter(torch.cat([top, features], dim=1)))
        x8 = self.enc8(nnf.avg_pool2d(x4, 2))
        x16 = self.enc16(nnf.avg_pool2d(x8, 2))
        x32 = self.context(self.enc32(nnf.avg_pool2d(x16, 2)))
        y = self.dec16(_up(x32, x16) + x16)
        y = self.dec8(_up(y, x8) + x8)
        y = self.dec4(_up(y, x4) + self.skip4(x4))
        return self.vessel(y), torch.sigmoid(self.position(y))


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return nnf.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


def export_head(head: VesselHead, path: Path) -> None:
    """The head alone as ONNX (inputs ``top`` and ``features``), dynamic batch and size."""
    head.eval()
    dims = {0: "batch", 2: "rows", 3: "columns"}
    zeros = torch.zeros(1, IN_CHANNELS // 2, 64, 64)
    torch.onnx.export(
        head,
        (zeros, zeros),
        str(path),
        input_names=["top", "features"],
        output_names=["vessel", "position"],
        dynamic_axes={"top": dims, "features": dims, "vessel": dims, "position": dims},
        opset_version=17,
        dynamo=False,
    )


def splice(base: onnx.ModelProto, head: onnx.ModelProto, taps: Taps) -> onnx.ModelProto:
    """*base* with *head*'s nodes added, fed by *base*'s tap tensors; outputs heatmap,
    percent, vessel, position (the head's other names prefixed ``vessel_head/``)."""
    feeds = {"top": taps.top, "features": taps.features}
    outputs = {o.name for o in head.graph.output}

    def rename(name: str) -> str:
        if not name or name in outputs:
            return name
        return feeds.get(name, f"vessel_head/{name}")

    merged = onnx.ModelProto()
    merged.CopyFrom(base)
    graph = merged.graph
    for init in head.graph.initializer:
        copy = graph.initializer.add()
        copy.CopyFrom(init)
        copy.name = rename(init.name)
    for node in head.graph.node:
        copy = graph.node.add()
        copy.CopyFrom(node)
        copy.name = f"vessel_head/{node.name}"
        copy.ClearField("input")
        copy.ClearField("output")
        copy.input.extend(rename(name) for name in node.input)
        copy.output.extend(rename(name) for name in node.output)
        for attribute in copy.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                raise ValueError(f"head node {node.name} has a subgraph: cannot splice")
    for value in head.graph.output:
        graph.output.append(value)
    merged.producer_name = "cardiogate train_stenosis_vessels"
    onnx.checker.check_model(merged, full_check=True)
    return merged
