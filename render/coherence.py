"""Colour coherence for long feedback loops: pull each frame's LAB statistics toward a reference.

A zoom movie feeds every frame into the next, and small biases compound:
images darken, colours burn. Matching each finished frame's per-channel LAB
mean and spread (partly, by `strength`) to a reference stops that drift: the
current style blend's statistics (so a drift movie still changes palette with
its styles) or the shot's first frame's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from skimage.color import lab2rgb, rgb2lab

Stats = tuple[np.ndarray, np.ndarray]  # per-channel LAB mean and standard deviation


def lab_stats(pixels: np.ndarray) -> Stats:
    """(mean, std) of an (H, W, 3) uint8 image's L, a and b channels."""
    lab = rgb2lab(pixels).reshape(-1, 3)
    return lab.mean(axis=0), lab.std(axis=0)


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
    lab = rgb2lab(pixels)
    mean, std = lab.reshape(-1, 3).mean(axis=0), lab.reshape(-1, 3).std(axis=0)
    target_mean = mean + strength * (reference[0] - mean)
    target_std = std + strength * (reference[1] - std)
    lab = (lab - mean) * (target_std / np.maximum(std, 1e-6)) + target_mean
    return (np.clip(lab2rgb(lab), 0, 1) * 255).round().astype(np.uint8)
