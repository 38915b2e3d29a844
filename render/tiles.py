"""Tiling a large frame: overlapping tiles on a grid shifted every frame, blended back with feathered weights.

The grid's offset is drawn from the frame's seed, so seams never sit in the
same place twice and cannot build up through the feedback loop; the weights
ramp linearly across each overlap, so no seam shows.
"""

from __future__ import annotations

import bisect
import functools
import random
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .images import from_uint8, to_uint8

MIN_SPAN = 32  # VGG-19 pools four times before relu5_1


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


def _starts(length: int, tile: int, overlap: int, offset: int) -> list[tuple[int, int]]:
    """Spans [a, b) covering [0, length) with tiles of `tile` overlapping by `overlap`, shifted by -offset."""
    if length <= tile:
        return [(0, length)]
    stride = tile - overlap
    spans, a = [], -offset
    while a + overlap < length:
        lo, hi = max(0, a), min(length, a + tile)
        if hi - lo > overlap:  # slivers narrower than the overlap lie inside the neighbour's overlap
            # The network needs some room: widen a thin edge tile inwards, over its neighbour.
            if hi - lo < MIN_SPAN:
                lo, hi = (0, min(length, MIN_SPAN)) if lo == 0 else (max(0, length - MIN_SPAN), length)
            spans.append((lo, hi))
        a += stride
    return spans


def grid(height: int, width: int, tile: int, overlap: int, offset: tuple[int, int] = (0, 0)) -> list[Tile]:
    """Tiles of at most tile×tile covering the frame, in row-major order."""
    if not 0 <= overlap < tile // 2:
        raise ValueError(f"tile overlap must be in [0, {tile // 2}), not {overlap}")
    return [
        Tile(y0, x0, y1, x1)
        for y0, y1 in _starts(height, tile, overlap, offset[0])
        for x0, x1 in _starts(width, tile, overlap, offset[1])
    ]


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


class Mosaic:
    """A frame's tiles blended as they come back, each cell once: the cells are the rectangles between
    tile edges, each covered by a fixed set of tiles, and a cell is final as soon as those are back.

    A pipelined frame's window is then a copy of finished cells, not a blend of its own, and the
    finished frame costs nothing more. Cells blend their tiles in index order, so the pixels equal
    to_uint8 of a Blender's over the whole frame bit for bit.
    """

    def __init__(self, tiles: dict[int, Tile], height: int, width: int, overlap: int) -> None:
        self.tiles, self.height, self.width, self.overlap = tiles, height, width, overlap
        self.ys = sorted({t.y0 for t in tiles.values()} | {t.y1 for t in tiles.values()})
        self.xs = sorted({t.x0 for t in tiles.values()} | {t.x1 for t in tiles.values()})
        self.pixels = np.empty((height, width, 3), np.uint8)
        self.done = np.zeros((len(self.ys) - 1, len(self.xs) - 1), bool)
        self.missing: dict[tuple[int, int], list[int]] = {}  # cell -> covering tiles, in index order
        self.cells: dict[int, list[tuple[int, int]]] = {i: [] for i in tiles}  # tile -> its cells
        for i, t in sorted(tiles.items()):
            for r in range(self.ys.index(t.y0), self.ys.index(t.y1)):
                for c in range(self.xs.index(t.x0), self.xs.index(t.x1)):
                    self.missing.setdefault((r, c), []).append(i)
                    self.cells[i].append((r, c))
        self.covering = {cell: list(ids) for cell, ids in self.missing.items()}
        self.results: dict[int, np.ndarray] = {}

    def add(self, index: int, pixels: np.ndarray) -> None:
        """Take tile `index`'s (h, w, 3) uint8 result; blend every cell it completes."""
        self.results[index] = pixels
        for cell in self.cells[index]:
            self.missing[cell].remove(index)
            if not self.missing[cell]:
                self._blend(cell)

    def _blend(self, cell: tuple[int, int]) -> None:
        r, c = cell
        window = Tile(self.ys[r], self.xs[c], self.ys[r + 1], self.xs[c + 1])
        blender = Blender(self.height, self.width, self.overlap, window)
        for i in self.covering[cell]:
            blender.add(self.tiles[i], self.results[i])
        self.pixels[window.y0 : window.y1, window.x0 : window.x1] = to_uint8(blender.result())
        self.done[cell] = True

    def ready(self, window: Tile) -> bool:
        """Whether every pixel of `window` is final."""
        return bool(self.done[self._cells(window)].all())

    def window(self, window: Tile) -> np.ndarray:
        return self.pixels[window.y0 : window.y1, window.x0 : window.x1]

    def _cells(self, window: Tile) -> tuple[slice, slice]:
        rows = slice(bisect.bisect_right(self.ys, window.y0) - 1, bisect.bisect_left(self.ys, window.y1))
        cols = slice(bisect.bisect_right(self.xs, window.x0) - 1, bisect.bisect_left(self.xs, window.x1))
        return rows, cols


def overlaps(a: Tile, b: Tile) -> bool:
    return a.y0 < b.y1 and b.y0 < a.y1 and a.x0 < b.x1 and b.x0 < a.x1
