"""Tiling a large frame: overlapping tiles on a grid shifted every frame, blended back with feathered weights.

The grid's offset is drawn from the frame's seed, so seams never sit in the
same place twice and cannot build up through the feedback loop; the weights
ramp linearly across each overlap, so no seam shows.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import torch
from torch import Tensor

from .images import from_uint8

MIN_SPAN = 32  # VGG-19 pools four times before relu5_1
# Tiles start, and cores meet, on multiples of VGG-19's coarsest stride: a tile's features then sit
# on the whole frame's feature grid, and its core's features are the frame's, bar the margin's edge.
ALIGN = 16


@dataclass(frozen=True)
class Tile:
    y0: int
    x0: int
    y1: int
    x1: int

    @property
    def size(self) -> tuple[int, int]:
        return self.y1 - self.y0, self.x1 - self.x0

    def crop(self, x: Tensor) -> Tensor:
        """The tile's region of a (N, C, H, W) tensor."""
        return x[..., self.y0 : self.y1, self.x0 : self.x1]


def cover(
    length: int, span: int, overlap: int, offset: int, align: int = 1, inside: bool = False
) -> list[tuple[int, int]]:
    """Spans [a, b) of at most `span` covering [0, length), overlapping by at least `overlap`, the first
    shifted by -offset, every start on a multiple of `align`. At the end, a span is cut at the edge
    (widened over its neighbour if it would be thinner than the network needs), or with `inside` moved
    in whole, so no region is a sliver (patches: each is resampled to one working size)."""
    if length <= span:
        return [(0, length)]
    stride = (span - overlap) // align * align
    spans: list[tuple[int, int]] = []
    a = -offset - (-offset) % align
    while not spans or spans[-1][1] < length:
        lo = min(max(a, 0), length - span) if inside else max(a, 0)
        hi = min(length, lo + span)
        if hi - lo < MIN_SPAN:  # the network needs some room: widen a thin edge tile over its neighbour
            lo = max(0, length - MIN_SPAN)
            lo -= lo % align
        if hi > (spans[-1][1] if spans else 0):
            spans.append((lo, hi))
        a += stride
    return spans


def grid(height: int, width: int, tile: int, overlap: int, offset: tuple[int, int] = (0, 0)) -> list[Tile]:
    """Tiles of at most tile×tile covering the frame, in row-major order."""
    if not 0 <= overlap < tile // 2:
        raise ValueError(f"tile overlap must be in [0, {tile // 2}), not {overlap}")
    return [
        Tile(y0, x0, y1, x1)
        for y0, y1 in cover(height, tile, overlap, offset[0], ALIGN)
        for x0, x1 in cover(width, tile, overlap, offset[1], ALIGN)
    ]


def cores(tiles: list[Tile]) -> list[Tile]:
    """Each tile's core, in the tile's own coordinates: the cores partition the frame, meeting in the
    middle of each overlap, so every core has a margin of half the overlap where it borders another."""
    ys = sorted({(t.y0, t.y1) for t in tiles})
    xs = sorted({(t.x0, t.x1) for t in tiles})

    def cuts(spans: list[tuple[int, int]]) -> dict[tuple[int, int], tuple[int, int]]:
        middles = [max(a, (a + b) // 2 // ALIGN * ALIGN) for (_, b), (a, _) in pairwise(spans)]
        bounds = [spans[0][0], *middles, spans[-1][1]]
        return {span: (bounds[i], bounds[i + 1]) for i, span in enumerate(spans)}

    rows, cols = cuts(ys), cuts(xs)
    out = []
    for t in tiles:
        (cy0, cy1), (cx0, cx1) = rows[(t.y0, t.y1)], cols[(t.x0, t.x1)]
        out.append(Tile(cy0 - t.y0, cx0 - t.x0, cy1 - t.y0, cx1 - t.x0))
    return out


def grid_offset(seed: int, frame: int, tile: int, overlap: int) -> tuple[int, int]:
    """The frame's grid shift, from its seed: anywhere within one stride."""
    rng = random.Random(seed * 7919 + frame)
    stride = tile - overlap
    return rng.randrange(stride), rng.randrange(stride)


def feather(tile: Tile, height: int, width: int, overlap: int) -> Tensor:
    """(1, 1, h, w) weights: 1 inside, ramping down across the overlap on sides that border another tile.
    Tiles up to a megapixel share their weights between calls (a frame's tiles have few distinct
    shapes, and the driver blends each tile into several windows): read them, never write to them.
    Larger regions (coarse patches) are few, so they are not kept."""
    inner = (tile.y0 > 0, tile.y1 < height, tile.x0 > 0, tile.x1 < width)
    weights = _feather if tile.size[0] * tile.size[1] <= 1 << 20 else _feather.__wrapped__
    return weights(*tile.size, *inner, overlap)


@functools.lru_cache(maxsize=32)  # at most 128 MB
def _feather(h: int, w: int, top: bool, bottom: bool, left: bool, right: bool, overlap: int) -> Tensor:
    def ramp(n: int, lo_inner: bool, hi_inner: bool) -> Tensor:
        r = torch.ones(n)
        if overlap:
            edge = (torch.arange(overlap, dtype=torch.float32) + 0.5) / overlap
            k = min(overlap, n)
            if lo_inner:
                r[:k] = torch.minimum(r[:k], edge[:k])
            if hi_inner:
                r[n - k :] = torch.minimum(r[n - k :], edge[:k].flip(0))
        return r

    return (ramp(h, top, bottom)[:, None] * ramp(w, left, right)[None, :])[None, None]


class Blender:
    """Accumulates tiles into a window of a frame (default: all of it): Σ weight·tile / Σ weight.

    Add tiles in index order: each pixel then sees the same float operations
    in the same order whether the whole frame or only a window of it is
    blended, so a window's pixels equal the whole frame's bit for bit.
    """

    def __init__(self, height: int, width: int, overlap: int, window: Tile | None = None) -> None:
        self.height, self.width, self.overlap = height, width, overlap
        self.window = window or Tile(0, 0, height, width)
        h, w = self.window.size
        self.sum = torch.zeros(1, 3, h, w)
        self.weight = torch.zeros(1, 1, h, w)

    def add(self, tile: Tile, image: Tensor | np.ndarray) -> None:
        """Add a tile's result, (1, 3, h, w) float or (h, w, 3) uint8: the part of it inside the window."""
        win = self.window
        part = Tile(max(tile.y0, win.y0), max(tile.x0, win.x0), min(tile.y1, win.y1), min(tile.x1, win.x1))
        if part.y0 >= part.y1 or part.x0 >= part.x1:
            return
        in_tile = Tile(part.y0 - tile.y0, part.x0 - tile.x0, part.y1 - tile.y0, part.x1 - tile.x0)
        in_window = Tile(part.y0 - win.y0, part.x0 - win.x0, part.y1 - win.y0, part.x1 - win.x0)
        w = in_tile.crop(feather(tile, self.height, self.width, self.overlap))
        if isinstance(image, np.ndarray):  # convert only the part inside the window
            inside = from_uint8(image[in_tile.y0 : in_tile.y1, in_tile.x0 : in_tile.x1])
        else:
            inside = in_tile.crop(image)
        in_window.crop(self.sum).add_(inside * w)
        in_window.crop(self.weight).add_(w)

    def result(self) -> Tensor:
        if (self.weight <= 0).any():
            raise RuntimeError("tiles do not cover the frame")
        return self.sum.div_(self.weight)  # in place: a blender gives its result once
