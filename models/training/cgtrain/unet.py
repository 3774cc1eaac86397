"""A small 2.5D U-Net: a slice with its neighbours in, per-pixel artery logits out."""

from __future__ import annotations

import torch
from torch import nn


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """Four resolutions (x1 .. x1/8) and a bottleneck at x1/16 for anatomical context."""

    def __init__(self, in_channels: int = 3, classes: int = 5, width: int = 16) -> None:
        super().__init__()
        w = [width, width * 2, width * 4, width * 6, width * 8]
        self.down = nn.ModuleList([_block(in_channels, w[0])])
        self.down.extend(_block(w[i], w[i + 1]) for i in range(4))
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(nn.ConvTranspose2d(w[i + 1], w[i], 2, stride=2) for i in range(4))
        self.merge = nn.ModuleList(_block(2 * w[i], w[i]) for i in range(4))
        self.head = nn.Conv2d(w[0], classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for i in reversed(range(4)):
            x = self.up[i](x)
            skip = skips[i]
            if x.shape[-2:] != skip.shape[-2:]:  # odd sizes: pad to the skip's size
                x = nn.functional.pad(
                    x, (0, skip.shape[-1] - x.shape[-1], 0, skip.shape[-2] - x.shape[-2])
                )
            x = self.merge[i](torch.cat([skip, x], dim=1))
        return self.head(x)
