"""A frame as rounds of jobs: whole when it fits the tile size, else coarse to fine with tiled fine scales.

The scales up to the tile size run as one ordinary multi-scale job; every
larger scale is a round of overlapping tiles over the upsampled result of the
round before, blended with feathered weights. Memory per job then depends on
the tile size, never on the frame size. Nothing here knows about Ray: the
still command runs the jobs in process, the scheduler farms them out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from engine.stylize import Settings, noise_like, scales, schedule
from engine.targets import resize

from .images import from_uint8
from .job import Job, job_seed
from .tiles import Blender, Tile, grid, grid_offset

DEFAULT_TILE = 512
DEFAULT_OVERLAP = 64


@dataclass(frozen=True)
class Round:
    size: tuple[int, int]  # (H, W) of the canvas in this round
    iterations: int
    tiled: bool


@dataclass
class FrameWork:
    """The jobs of one frame, round by round."""

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
        total = 0
        for k, r in enumerate(self.rounds):
            if r.tiled:
                offset = grid_offset(self.seed, self.frame * 64 + k, self.tile, self.overlap)
                total += r.iterations * len(grid(*r.size, self.tile, self.overlap, offset))
            else:
                n = len(scales(r.size, self.settings.min_size, self.settings.scale_step))
                total += sum(schedule(r.iterations, n))
        return total

    def jobs(self, index: int, canvas: Tensor | None) -> tuple[list[Job], Tensor | None, Tensor | None]:
        """Round `index`'s jobs and the canvases they crop from (start, content), given the canvas the
        previous round left (None for the first round)."""
        r = self.rounds[index]
        start = canvas if canvas is not None else self.init
        if start is None and r.tiled:  # noise for the whole canvas, so tiles agree where they overlap
            generator = torch.Generator().manual_seed(job_seed(self.seed, self.frame, index))
            start = noise_like(r.size, generator, "cpu")
        start = resize(start, r.size) if start is not None else None
        content = self.content
        if content is not None and not self.settings.content_at_native_size:
            content = resize(content, r.size)
        if not r.tiled:
            settings = replace(self.settings, iterations=r.iterations)
            job = Job(self.frame, index, 0, Tile(0, 0, *r.size), self.style_weights, settings,
                      job_seed(self.seed, self.frame, index, 0))  # fmt: skip
            return [job], start, content
        return self.tile_jobs(index), start, content

    def tile_jobs(self, index: int) -> list[Job]:
        """The jobs of tiled round `index`, without their canvases."""
        r = self.rounds[index]
        settings = replace(self.settings, iterations=r.iterations)
        offset = grid_offset(self.seed, self.frame * 64 + index, self.tile, self.overlap)
        return [
            Job(
                self.frame,
                index,
                i,
                t,
                self.style_weights,
                replace(settings, min_size=max(t.size)),
                job_seed(self.seed, self.frame, index, i),
                canvas=max(r.size),
            )  # fmt: skip
            for i, t in enumerate(grid(*r.size, self.tile, self.overlap, offset))
        ]

    def blend(
        self, index: int, results: Iterable[tuple[Tile, np.ndarray]], window: Tile | None = None
    ) -> Tensor:
        """The canvas after round `index` (or a window of it), from its (tile, uint8 result) pairs
        in tile order."""
        h, w = self.rounds[index].size
        blender = Blender(h, w, self.overlap, window)
        for tile, pixels in results:
            blender.add(tile, from_uint8(pixels))
        return blender.result()


Runner = Callable[[Job, Tensor | None, Tensor | None], tuple[np.ndarray, dict]]


def run_frame_serially(work: FrameWork, run: Runner) -> tuple[Tensor, list[dict]]:
    """Every round of a frame, one job after another, in this process (the still command)."""
    canvas, records = None, []
    for index in range(len(work.rounds)):
        jobs, start, content = work.jobs(index, canvas)
        results = []
        for job in jobs:
            pixels, record = run(job, start, content)
            results.append((job.region, pixels))
            records.append(record)
        canvas = work.blend(index, results)
    return canvas, records
