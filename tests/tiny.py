"""A seeded tiny conv stack that answers to VGG-19's layer names: fast stand-in for engine tests."""

from __future__ import annotations

from collections.abc import Collection

import torch
from torch import Tensor, nn
from torch.nn import functional as F

# (layer name, pool before it): five stages like VGG's, 6 channels each.
_STAGES = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")


class TinyFeatures(nn.Module):
    def __init__(self, seed: int = 0, width: int = 6) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.convs = nn.ModuleList()
        c_in = 3
        for _ in _STAGES:
            conv = nn.Conv2d(c_in, width, 3, padding=1)
            conv.weight.data = torch.randn(conv.weight.shape, generator=g) * (2 / (9 * c_in)) ** 0.5
            conv.bias.data.zero_()
            self.convs.append(conv)
            c_in = width
        self.requires_grad_(False)
        self.calls = 0

    def forward(self, x: Tensor, layers: Collection[str]) -> dict[str, Tensor]:
        self.calls += 1
        out = {}
        deepest = max(_STAGES.index(n) for n in layers)
        for i, (name, conv) in enumerate(zip(_STAGES, self.convs, strict=True)):
            if i > deepest:
                break
            if i in (1, 2, 3, 5):  # pool before relu2_1, relu3_1, relu4_1 and relu5_1
                x = F.avg_pool2d(x, 2)
            x = F.relu(conv(x))
            if name in layers:
                out[name] = x
        return out
