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


# CIE L*a*b* under D65, as scikit-image computes it (sRGB primaries, the CIE's linear segment).
_RGB_TO_XYZ = torch.tensor(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
_XYZ_TO_RGB = torch.linalg.inv(_RGB_TO_XYZ)
_WHITE = (0.95047, 1.0, 1.08883)
_EPSILON = 0.008856  # (6/29)^3, where the cube root gives way to a line


def rgb_to_lab(x: Tensor) -> Tensor:
    """(N, 3, H, W) sRGB in [0, 1] -> L* in [0, 100], a* and b* in about [-128, 127]."""
    linear = torch.where(x > 0.04045, ((x + 0.055) / 1.055) ** 2.4, x / 12.92)
    xyz = _apply(_RGB_TO_XYZ, linear) / x.new_tensor(_WHITE)[:, None, None]
    f = torch.where(xyz > _EPSILON, xyz.clamp_min(_EPSILON) ** (1 / 3), 7.787 * xyz + 16 / 116)
    fx, fy, fz = f.unbind(1)
    return torch.stack((116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)), 1)


def lab_to_rgb(lab: Tensor) -> Tensor:
    """The inverse of rgb_to_lab, clipped to [0, 1]."""
    lightness, a, b = lab.unbind(1)
    fy = (lightness + 16) / 116
    f = torch.stack((a / 500 + fy, fy, (fy - b / 200).clamp_min(0)), 1)
    xyz = torch.where(f**3 > _EPSILON, f**3, (f - 16 / 116) / 7.787) * lab.new_tensor(_WHITE)[:, None, None]
    linear = _apply(_XYZ_TO_RGB, xyz)
    rgb = torch.where(
        linear > 0.0031308, 1.055 * linear.clamp_min(0.0031308) ** (1 / 2.4) - 0.055, 12.92 * linear
    )
    return rgb.clamp(0, 1)
