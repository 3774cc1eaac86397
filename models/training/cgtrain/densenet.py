"""A compact DenseNet for stenosis detection on angiogram frames (CathNet's family).

Fully convolutional, so the same weights read a 64-pixel level-1 patch, a 128-pixel
level-2 segment and a 256-pixel whole frame (the curriculum). Two outputs at 1/4 of the
input resolution:

- ``heatmap``: logits of "a significant (>= 50%) stenosis is centred here"; the frame's
  probability is the sigmoid of its maximum;
- ``percent``: the % diameter stenosis the network reads at each place (0-100), meaningful
  where the heatmap peaks.

Dense blocks at 1/4, 1/8 and 1/16, joined back to 1/4 by a small top-down path.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as nnf


class DenseLayer(nn.Module):
    def __init__(self, channels: int, growth: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels)
        self.conv = nn.Conv2d(channels, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.conv(nnf.relu(self.norm(x)))], dim=1)


def dense_block(channels: int, growth: int, layers: int) -> tuple[nn.Sequential, int]:
    block = nn.Sequential(*(DenseLayer(channels + i * growth, growth) for i in range(layers)))
    return block, channels + layers * growth


class Transition(nn.Module):
    def __init__(self, channels: int, out: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels)
        self.conv = nn.Conv2d(channels, out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nnf.avg_pool2d(self.conv(nnf.relu(self.norm(x))), 2)


class StenosisNet(nn.Module):
    def __init__(self, growth: int = 12, layers: tuple[int, int, int] = (4, 6, 8)) -> None:
        super().__init__()
        stem = 2 * growth
        self.stem = nn.Sequential(
            nn.Conv2d(1, stem, 5, stride=2, padding=2, bias=False),
            nn.BatchNorm2d(stem),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.block1, c1 = dense_block(stem, growth, layers[0])
        self.down1 = Transition(c1, c1 // 2)
        self.block2, c2 = dense_block(c1 // 2, growth, layers[1])
        self.down2 = Transition(c2, c2 // 2)
        self.block3, c3 = dense_block(c2 // 2, growth, layers[2])
        width = 4 * growth
        self.lateral1 = nn.Conv2d(c1, width, 1)
        self.lateral2 = nn.Conv2d(c2, width, 1)
        self.lateral3 = nn.Conv2d(c3, width, 1)
        self.head = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
        )
        self.heatmap = nn.Conv2d(width, 1, 1)
        self.percent = nn.Conv2d(width, 1, 1)
        nn.init.constant_(self.heatmap.bias, -4.0)  # lesions are rare: start near "none"

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f1 = self.block1(self.stem(x))  # 1/4
        f2 = self.block2(self.down1(f1))  # 1/8
        f3 = self.block3(self.down2(f2))  # 1/16
        top = self.lateral3(f3)
        top = nnf.interpolate(top, size=f2.shape[-2:], mode="nearest") + self.lateral2(f2)
        top = nnf.interpolate(top, size=f1.shape[-2:], mode="nearest") + self.lateral1(f1)
        features = self.head(top)
        return self.heatmap(features), 100.0 * torch.sigmoid(self.percent(features))
