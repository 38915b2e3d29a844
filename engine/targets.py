"""Style targets: feature statistics of the style images, computed once per (style, scale)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .losses import GramLoss, WassersteinLoss, gram, mean_cov

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
    ) -> dict[str, tuple[Tensor, ...]]:
        """Statistics of style `index` at `long_side`. `variant` keys anything else that changes
        the features (the precision, say), so one bank can serve several networks."""
        kind = StyleLoss(kind)
        key = (index, long_side, tuple(layers), kind, variant)
        if key not in self._cache:
            image = resize_long_side(self.images[index], long_side)
            with torch.no_grad():
                feats = features(image, layers)
            if kind is StyleLoss.GRAM:
                self._cache[key] = {n: (gram(f.float()),) for n, f in feats.items()}
            else:
                self._cache[key] = {n: mean_cov(f.float()) for n, f in feats.items()}
        return self._cache[key]


@dataclass
class StyleTargets:
    """A weighted blend of a bank's styles. Blending happens on the statistics."""

    bank: StyleBank
    weights: Sequence[float] = field(default_factory=lambda: (1.0,))

    def __post_init__(self) -> None:
        if len(self.weights) != len(self.bank.images):
            raise ValueError(f"{len(self.weights)} style weights for {len(self.bank.images)} styles")
        if any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
            raise ValueError(f"style weights must be >= 0 with a positive sum, not {list(self.weights)}")

    def losses(
        self, features: Features, long_side: int, layers: Sequence[str], kind: StyleLoss, variant: str = ""
    ) -> dict[str, nn.Module]:
        """One loss module per layer, against the blended statistics at this scale."""
        kind = StyleLoss(kind)
        total = sum(self.weights)
        blended: dict[str, list[Tensor]] = {}
        for i, w in enumerate(self.weights):
            if w == 0:
                continue
            for layer, stats in self.bank.stats(features, i, long_side, layers, kind, variant).items():
                parts = blended.setdefault(layer, [torch.zeros_like(s) for s in stats])
                for acc, s in zip(parts, stats, strict=True):
                    acc.add_(s, alpha=w / total)
        if kind is StyleLoss.GRAM:
            return {n: GramLoss(g) for n, (g,) in blended.items()}
        return {n: WassersteinLoss(m, c) for n, (m, c) in blended.items()}
