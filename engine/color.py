"""Colour-space helpers for (1, 3, H, W) RGB tensors in [0, 1]."""

from __future__ import annotations

import torch
from torch import Tensor

# NTSC YIQ: Y is luminance, I and Q carry the colour.
_RGB_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]]
)
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def _apply(m: Tensor, x: Tensor) -> Tensor:
    return torch.einsum("ij,njhw->nihw", m.to(x), x)


def rgb_to_yiq(x: Tensor) -> Tensor:
    return _apply(_RGB_TO_YIQ, x)


def yiq_to_rgb(x: Tensor) -> Tensor:
    return _apply(_YIQ_TO_RGB, x)


def luminance(x: Tensor) -> Tensor:
    """(N, 3, H, W) RGB -> (N, 1, H, W) luminance."""
    return rgb_to_yiq(x)[:, :1]


def preserve_colors(stylized: Tensor, content: Tensor) -> Tensor:
    """Luminance of `stylized`, colour (I, Q) of `content`: Gatys et al.'s luminance-only transfer."""
    if content.shape[-2:] != stylized.shape[-2:]:
        content = torch.nn.functional.interpolate(
            content, size=stylized.shape[-2:], mode="bicubic", antialias=True, align_corners=False
        )
    yiq = rgb_to_yiq(content)
    yiq[:, :1] = luminance(stylized)
    return yiq_to_rgb(yiq).clamp(0, 1)
