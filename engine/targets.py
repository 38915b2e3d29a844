"""Style targets: feature statistics of the style images, computed once per (style, scale)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .losses import GramLoss, WassersteinLoss

Features = Callable[[Tensor, Sequence[str]], dict[str, Tensor]]


class StyleLoss(StrEnum):
    GRAM = "gram"  # normalised Gram matrices (Gatys et al.)
    W2 = "w2"  # mean + covariance, Wasserstein-2 between Gaussians


def resize_long_side(x: Tensor, long_side: int) -> Tensor:
    """Resize a (N, C, H, W) image so max(H, W) == long_side, keeping its aspect."""
    h, w = x.shape[-2:]
    scale = long_side / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return resize(x, size)


def resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)


class StyleBank:
    """Style images and a cache of their statistics per (style, long side, layers, kind).

    Keep one bank alive across calls (a worker does) and the statistics of a
    style at a scale are computed only once, however many frames use it.
    """

    def __init__(self, images: Sequence[Tensor]) -> None:
        if not images:
            raise ValueError("at least one style image is needed")
        self.images = list(images)  # each (1, 3, H, W) in [0, 1]
        self._cache: dict[tuple, dict[str, tuple[Tensor, ...]]] = {}

    def stats(
        self,
        features: Features,
        index: int,
        long_side: int,
        layers: Sequence[str],
        kind: StyleLoss,
        variant: str = "",
        box: Box | None = None,
    ) -> dict[str, tuple[Tensor, ...]]:
        """Statistics of style `index` at `long_side`, or of its part `box` (localized style).
        `variant` keys anything else that changes the features (the precision, say), so one bank
        can serve several networks."""
        kind = StyleLoss(kind)
        if box is not None:  # a moving patch's own region: used once, not cached
            return _stats(_moments(features, *_crop(self.images[index], box, long_side), layers), kind)
        key = (index, long_side, tuple(layers), kind, variant)
        if key not in self._cache:
            sums = _moments(features, self.images[index], long_side, layers)
            self._cache[key] = _stats(sums, kind)
        return self._cache[key]


Box = tuple[float, float, float, float]  # (top, left, bottom, right) as fractions of the image


def _crop(image: Tensor, box: Box, long_side: int) -> tuple[Tensor, int]:
    """The part of `image` inside `box`, and its long side when the whole image is seen at `long_side`."""
    h, w = image.shape[-2:]
    top, left, bottom, right = box
    y0, x0 = min(h - 1, int(top * h)), min(w - 1, int(left * w))
    y1, x1 = max(y0 + 1, round(bottom * h)), max(x0 + 1, round(right * w))
    scale = long_side / max(h, w)
    return image[..., y0:y1, x0:x1], max(1, round(max(y1 - y0, x1 - x0) * scale))


def _stats(sums: dict[str, tuple[Tensor, Tensor, int]], kind: StyleLoss) -> dict[str, tuple[Tensor, ...]]:
    stats = {}
    for name, (s1, s2, n) in sums.items():
        if kind is StyleLoss.GRAM:
            stats[name] = (s2 / (s1.numel() * n),)  # = gram(F) over the whole image
        else:
            mean = s1 / n
            stats[name] = (mean, s2 / n - torch.outer(mean, mean))
    return stats


STATS_TILE = 512  # style images larger than this are measured tile by tile
_STRIDE = 16  # VGG-19's coarsest stride up to relu5_1: tile cores start on multiples of it


@torch.no_grad()
def _moments(
    features: Features,
    image: Tensor,
    long_side: int,
    layers: Sequence[str],
    device: torch.device | None = None,
) -> dict[str, tuple[Tensor, Tensor, int]]:
    """Σf, Σf·fᵀ and the count of feature vectors per layer, for `image` at `long_side`.

    A large image (an 8K frame's style, say) is resized in uint8 and measured
    in tiles whose cores partition it; each tile carries a margin so the
    features counted are those of the whole image, bar edge effects beyond the
    margin. Memory then depends on STATS_TILE, not on the size.
    """
    device = device or image.device  # the network's: a uint8 picture may come from the CPU
    h, w = image.shape[-2:]
    scale = long_side / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    if max(size) <= 2 * STATS_TILE:
        image = image.to(device)
        image = image.float() / 255 if image.dtype == torch.uint8 else image
        feats = features(resize(image, size), layers)
        return {n: _sums(f.float()) for n, f in feats.items()}
    # uint8 resampling runs on the CPU only (CUDA has no uint8 kernel); the tiles go back one by one.
    pixels = image.cpu() if image.dtype == torch.uint8 else (image * 255).round().byte().cpu()
    big = F.interpolate(pixels, size=size, mode="bicubic", antialias=True) if size != (h, w) else pixels
    margin = 4 * _STRIDE
    core = max(_STRIDE, STATS_TILE - 2 * margin)
    out: dict[str, list] = {}
    for y in range(0, size[0], core):
        for x in range(0, size[1], core):
            y0, x0 = max(0, y - margin), max(0, x - margin)
            crop = big[..., y0 : min(size[0], y + core + margin), x0 : min(size[1], x + core + margin)]
            feats = features(crop.to(device).float() / 255, layers)
            for name, f in feats.items():
                stride = crop.shape[-1] / f.shape[-1]
                fy0, fx0 = round((y - y0) / stride), round((x - x0) / stride)
                fy1 = round((min(size[0], y + core) - y0) / stride)
                fx1 = round((min(size[1], x + core) - x0) / stride)
                s1, s2, n = _sums(f[..., fy0:fy1, fx0:fx1].float())
                if name in out:
                    out[name][0] += s1
                    out[name][1] += s2
                    out[name][2] += n
                else:
                    out[name] = [s1, s2, n]
    return {name: tuple(v) for name, v in out.items()}


def _sums(f: Tensor) -> tuple[Tensor, Tensor, int]:
    c = f.shape[1]
    f = f.reshape(c, -1)  # (C, H·W)
    return f.sum(dim=1), f @ f.T, f.shape[1]


@dataclass
class StyleTargets:
    """A weighted blend of a bank's styles. Blending happens on the statistics."""

    bank: StyleBank
    weights: Sequence[float] = field(default_factory=lambda: (1.0,))
    box: Box | None = None  # localized style: the statistics of this part of each style image only

    def __post_init__(self) -> None:
        if len(self.weights) != len(self.bank.images):
            raise ValueError(f"{len(self.weights)} style weights for {len(self.bank.images)} styles")
        if any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
            raise ValueError(f"style weights must be >= 0 with a positive sum, not {list(self.weights)}")

    def losses(
        self,
        features: Features,
        long_side: int,
        layers: Sequence[str],
        kind: StyleLoss,
        variant: str = "",
    ) -> dict[str, nn.Module]:
        """One loss module per layer, against the blended statistics at this scale."""
        kind = StyleLoss(kind)
        total = sum(self.weights)
        blended: dict[str, list[Tensor]] = {}
        for i, w in enumerate(self.weights):
            if w == 0:
                continue
            for layer, stats in self.bank.stats(
                features, i, long_side, layers, kind, variant, self.box
            ).items():
                parts = blended.setdefault(layer, [torch.zeros_like(s) for s in stats])
                for acc, s in zip(parts, stats, strict=True):
                    acc.add_(s, alpha=w / total)
        if kind is StyleLoss.GRAM:
            return {n: GramLoss(g) for n, (g,) in blended.items()}
        return {n: WassersteinLoss(m, c) for n, (m, c) in blended.items()}
