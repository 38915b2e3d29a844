"""A frame as rounds of jobs: whole when it fits the tile size, else coarse to fine with tiled fine scales.

The scales up to the tile size run as one ordinary multi-scale job; every
larger scale is a round of overlapping tiles over the upsampled result of the
round before, optimised together as one picture (`render.joint`) and shared
among the workers. Memory per process then depends on the tile size and its
share, never on the frame size. A FrameWork is a `render.work.Work`: the still
command runs its rounds in process, the scheduler farms them out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
from torch import Tensor

from engine.stylize import Settings, scales, schedule
from engine.targets import resize

from .canvas import Canvases
from .job import Job, job_seed, seeded_noise
from .joint import TileRound
from .tiles import Blender, Tile, grid, grid_offset
from .work import Batch

DEFAULT_TILE = 512
DEFAULT_OVERLAP = 64


@dataclass(frozen=True)
class Round:
    size: tuple[int, int]  # (H, W) of the canvas in this round
    iterations: int
    tiled: bool


@dataclass
class FrameWork:
    """The jobs of one frame, round by round (a `render.work.Work`)."""

    results_are_pixels = True  # each job returns its region's finished pixels

    frame: int
    size: tuple[int, int]  # (H, W) of the finished frame
    settings: Settings
    init: Tensor | None  # (1, 3, H, W) start, or None for noise
    content: Tensor | None  # (1, 3, h, w) content target (any size), or None
    style_weights: tuple[float, ...]
    seed: int  # the scene's seed
    tile: int = DEFAULT_TILE
    overlap: int = DEFAULT_OVERLAP

    def __post_init__(self) -> None:
        plan = scales(self.size, self.settings.min_size, self.settings.scale_step)
        steps = schedule(self.settings.iterations, len(plan))
        fits = [k for k, s in enumerate(plan) if max(s) <= self.tile]
        if len(fits) == len(plan):
            self.rounds = [Round(self.size, self.settings.iterations, tiled=False)]
        else:
            first = [Round(plan[fits[-1]], steps[fits[-1]], tiled=False)] if fits else []
            self.rounds = first + [Round(plan[k], steps[k], tiled=True) for k in range(len(fits), len(plan))]

    def steps(self) -> int:
        """Loss evaluations over all rounds and tiles: the length of a progress bar."""
        return sum(self.round_steps(k) for k in range(len(self.rounds)))

    def round_steps(self, index: int) -> int:
        r = self.rounds[index]
        if r.tiled:  # one job: each evaluation covers the whole canvas
            return r.iterations
        return sum(
            schedule(r.iterations, len(scales(r.size, self.settings.min_size, self.settings.scale_step)))
        )

    def jobs(self, index: int, canvas: Tensor | None) -> Batch:
        """Round `index`'s jobs and the canvases they crop from, given the canvas the previous round left
        (None for the first round)."""
        r = self.rounds[index]
        start = canvas if canvas is not None else self.init
        if start is None and r.tiled:  # noise for the whole canvas, so tiles agree where they overlap
            start = seeded_noise(r.size, job_seed(self.seed, self.frame, index))
        start = resize(start, r.size) if start is not None else None
        content = self.content
        if content is not None and not self.settings.content_at_native_size:
            content = resize(content, r.size)
        if not r.tiled:
            settings = replace(self.settings, iterations=r.iterations)
            job = Job(self.frame, index, 0, Tile(0, 0, *r.size), self.style_weights, settings,
                      job_seed(self.seed, self.frame, index, 0))  # fmt: skip
            return Batch([job], Canvases.of(start, content))
        return Batch([self.tile_round(index)], Canvases.of(start, content))

    def tile_round(self, index: int) -> TileRound:
        """Tiled round `index` as one job, without its canvases."""
        r = self.rounds[index]
        settings = replace(self.settings, iterations=r.iterations, min_size=max(r.size))
        offset = grid_offset(self.seed, self.frame * 64 + index, self.tile, self.overlap)
        tiles = tuple(grid(*r.size, self.tile, self.overlap, offset))
        return TileRound(self.frame, index, tiles, r.size, self.style_weights, settings,
                         job_seed(self.seed, self.frame, index))  # fmt: skip

    def blend(self, index: int, results: Iterable[tuple[Tile, np.ndarray]]) -> Tensor:
        """The canvas after round `index`, from its (tile, uint8 result) pairs in tile order."""
        blender = Blender(*self.rounds[index].size, self.overlap)
        for tile, pixels in results:
            blender.add(tile, pixels)
        return blender.result()
