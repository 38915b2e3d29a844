"""Colour coherence for long feedback loops: pull each frame's LAB statistics toward a reference.

A zoom movie feeds every frame into the next, and small biases compound:
images darken, colours burn. Matching each frame's per-channel LAB mean and
spread (partly, by `strength`) to a reference stops that drift: the current
style blend's statistics (so a drift movie still changes palette with its
styles) or the shot's first frame's.

The map for frame t is fixed from the statistics of frame t − LAG, which is
finished before frame t starts even when tiled frames are pipelined; the map
is pointwise, so each worker applies it to its own tile's result, and frames
do not depend on timing. With a gain below 1 the delayed loop is stable (the slowest
mode of w_t = w_{t-1} - 0.25 w_{t-3} decays by 0.77 a frame).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from torch import Tensor

from engine.color import lab_to_rgb, rgb_to_lab

from .images import from_uint8, to_uint8

Stats = tuple[np.ndarray, np.ndarray]  # per-channel LAB mean and standard deviation


def lab_stats(pixels: np.ndarray) -> Stats:
    """(mean, std) of an (H, W, 3) uint8 image's L, a and b channels, over every other pixel of every
    other row of a large image: a quarter of the work, the same figures to a few hundredths."""
    if pixels.shape[0] * pixels.shape[1] > 256 * 256:
        pixels = pixels[::2, ::2]
    lab = rgb_to_lab(from_uint8(pixels))[0].flatten(1).double()
    return lab.mean(1).numpy(), lab.std(1, correction=0).numpy()


def blend_stats(stats: Sequence[Stats], weights: Sequence[float]) -> Stats:
    """The statistics of a style blend: the weighted means of its styles' means and spreads."""
    w = np.asarray(weights, dtype=np.float64) / sum(weights)
    return sum(wi * s[0] for wi, s in zip(w, stats, strict=True)), sum(
        wi * s[1] for wi, s in zip(w, stats, strict=True)
    )


def match(pixels: np.ndarray, reference: Stats, strength: float) -> np.ndarray:
    """`pixels` (uint8) with its LAB mean and spread moved `strength` of the way to `reference`'s."""
    if strength <= 0:
        return pixels
    return ColourMap.between(lab_stats(pixels), reference, strength)(pixels)


@dataclass(frozen=True)
class ColourMap:
    """A pointwise LAB map, lab -> (lab - mean) * gain + target, for uint8 pixels. Small and
    picklable: it travels with a job, so each worker maps its own tile."""

    mean: tuple[float, float, float]
    gain: tuple[float, float, float]
    target: tuple[float, float, float]

    @classmethod
    def between(cls, source: Stats, reference: Stats, strength: float) -> ColourMap:
        """The map that moves statistics `source` `strength` of the way to `reference`."""
        mean, std = source
        target_mean = mean + strength * (reference[0] - mean)
        target_std = std + strength * (reference[1] - std)
        gain = target_std / np.maximum(std, 1e-6)
        return cls(*(tuple(float(v) for v in x) for x in (mean, gain, target_mean)))

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        return to_uint8(self.on(from_uint8(pixels)))

    def on(self, image: Tensor) -> Tensor:
        """The map applied to a (1, 3, H, W) image in [0, 1] on its own device (a worker's GPU)."""

        def column(v: tuple[float, float, float]) -> Tensor:
            return image.new_tensor(v)[:, None, None]

        lab = (rgb_to_lab(image) - column(self.mean)) * column(self.gain) + column(self.target)
        return lab_to_rgb(lab)


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
