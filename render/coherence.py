"""Colour coherence for long feedback loops: pull each frame's LAB statistics toward a reference.

A zoom movie feeds every frame into the next, and small biases compound:
images darken, colours burn. Matching each frame's LAB mean and covariance
(partly, by `strength`) to a reference stops that drift: the current style
blend's statistics (so a drift movie still changes palette with its styles)
or the shot's first frame's. The covariance, not each channel's spread alone:
with the spreads held, how lightness and colour vary together still wandered,
and saturation with it (a 300-frame zoom's last 50 frames against its first
50, three cameras: up to 6.3 % with the spreads, within 2.7 % with the covariance).

The map for frame t is fixed from the statistics of frame t − LAG, which is
always finished before frame t starts; the map is pointwise, so each worker
applies it to its own tiles' results, and frames do not depend on timing.
With a gain below 1 the delayed loop is stable (the slowest mode of
w_t = w_{t-1} - 0.25 w_{t-3} decays by 0.77 a frame).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from engine.color import lab_to_rgb, rgb_to_lab

from .images import from_uint8, to_uint8

Stats = tuple[np.ndarray, np.ndarray]  # LAB mean (3,) and covariance (3, 3)


def lab_stats(pixels: np.ndarray) -> Stats:
    """(mean, covariance) of an (H, W, 3) uint8 image's L, a and b channels, over every other pixel
    of every other row of a large image: a quarter of the work, the same figures to a few hundredths."""
    if pixels.shape[0] * pixels.shape[1] > 256 * 256:
        pixels = pixels[::2, ::2]
    lab = rgb_to_lab(from_uint8(pixels))[0].flatten(1).double().numpy()
    return lab.mean(1), np.cov(lab, bias=True)


def blend_stats(stats: Sequence[Stats], weights: Sequence[float]) -> Stats:
    """The statistics of a style blend: the weighted means of its styles' means and covariances."""
    w = np.asarray(weights, dtype=np.float64) / sum(weights)
    return sum(wi * s[0] for wi, s in zip(w, stats, strict=True)), sum(
        wi * s[1] for wi, s in zip(w, stats, strict=True)
    )


def match(pixels: np.ndarray, reference: Stats, strength: float) -> np.ndarray:
    """`pixels` (uint8) with its LAB mean and covariance moved `strength` of the way to `reference`'s."""
    if strength <= 0:
        return pixels
    return ColourMap.between(lab_stats(pixels), reference, strength)(pixels)


def _sqrtm(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Square root and inverse square root of a symmetric positive semi-definite 3x3 matrix."""
    values, vectors = np.linalg.eigh(c)
    values = np.maximum(values, 1e-6)
    return (vectors * values**0.5) @ vectors.T, (vectors * values**-0.5) @ vectors.T


@dataclass(frozen=True)
class ColourMap:
    """A pointwise LAB map, lab -> matrix @ (lab - mean) + target, for uint8 pixels. Small and
    picklable: it travels with a job, so each worker maps its own tile."""

    mean: tuple[float, float, float]
    matrix: tuple[tuple[float, float, float], ...]
    target: tuple[float, float, float]

    @classmethod
    def between(cls, source: Stats, reference: Stats, strength: float) -> ColourMap:
        """The map that moves statistics `source` `strength` of the way to `reference`: the mean
        along the line, the covariance to the blend of both, by the linear map that moves colours
        the least (the optimal transport between Gaussians)."""
        mean, cov = source
        target_mean = mean + strength * (reference[0] - mean)
        target_cov = cov + strength * (reference[1] - cov)
        root, inverse_root = _sqrtm(cov)
        matrix = inverse_root @ _sqrtm(root @ target_cov @ root)[0] @ inverse_root
        return cls(tuple(float(v) for v in mean), tuple(tuple(float(v) for v in row) for row in matrix),
                   tuple(float(v) for v in target_mean))  # fmt: skip

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        return to_uint8(self.on(from_uint8(pixels)))

    def on(self, image: Tensor) -> Tensor:
        """The map applied to a (1, 3, H, W) image in [0, 1] on its own device (a worker's GPU)."""
        lab = rgb_to_lab(image) - image.new_tensor(self.mean)[:, None, None]
        lab = torch.einsum("ij,njhw->nihw", image.new_tensor(self.matrix), lab)
        return lab_to_rgb(lab + image.new_tensor(self.target)[:, None, None])


LAG = 3  # frames: at most IN_FLIGHT frames of a shot are in flight, so frame t - 3 is finished


class Coherence:
    """Colour coherence along one shot: each frame's pointwise colour map."""

    def __init__(
        self,
        strength: float,
        reference: str,  # "style" or "first"
        style_stats: list[Stats],
        read: Callable[[int], np.ndarray],  # a finished frame of the shot, by its index in the shot
    ) -> None:
        self.strength, self.reference, self.style_stats, self.read = strength, reference, style_stats, read
        self._stats: dict[int, Stats] = {}

    def stats(self, local: int) -> Stats:
        if local not in self._stats:  # not seen in this run: resumed, so it is on disk
            self._stats[local] = lab_stats(self.read(local))
        return self._stats[local]

    def seen(self, local: int, pixels: np.ndarray) -> None:
        """A frame is finished (as written)."""
        self._stats[local] = lab_stats(pixels)
        self._stats.pop(local - 2 * LAG, None)

    def map_for(
        self, local: int, style_weights: Sequence[float], latest: int | None = None
    ) -> ColourMap | None:
        """Frame `local`'s colour map, from frame local - LAG (or `latest`, if earlier: the last frame
        sure to be finished), or None (the first LAG frames, or off)."""
        source = local - LAG if latest is None else min(local - LAG, latest)
        if self.strength <= 0 or source < 0:
            return None
        if self.reference == "first":
            reference = self.stats(0)
        else:
            reference = blend_stats(self.style_stats, style_weights)
        return ColourMap.between(self.stats(source), reference, self.strength)
