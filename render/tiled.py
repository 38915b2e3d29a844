"""A frame as rounds of jobs: whole when it fits the tile size, else coarse to fine with tiled fine scales.

The scales up to the tile size run as one ordinary multi-scale job; every
larger scale is a round of overlapping tiles over the upsampled result of the
round before, optimised together as one picture (`render.joint`) and shared
among the workers. Memory per process then depends on the tile size and its
share, never on the frame size. Nothing here knows about Ray: the still command
runs the rounds in process, the scheduler farms them out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from engine.stylize import Settings, noise_like, scales, schedule
from engine.targets import resize

from .images import from_uint8, to_uint8
from .job import Job, job_seed
from .joint import TileRound
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
        return sum(self.round_steps(k) for k in range(len(self.rounds)))

    def round_steps(self, index: int) -> int:
        r = self.rounds[index]
        if r.tiled:  # one job: each evaluation covers the whole canvas
            return r.iterations
        return sum(
            schedule(r.iterations, len(scales(r.size, self.settings.min_size, self.settings.scale_step)))
        )

    def jobs(
        self, index: int, canvas: Tensor | None
    ) -> tuple[list[Job] | list[TileRound], Tensor | None, Tensor | None]:
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
        return [self.tile_round(index)], start, content

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


# Runs a job (a Job, or a TileRound: then its tiles' pixels by index) on its canvases (start, content).
Runner = Callable[
    [Job | TileRound, Tensor | None, Tensor | None], tuple[np.ndarray | dict[int, np.ndarray], dict]
]
# Runs a round's jobs on their canvases (start, content); returns (region, result) pairs in job order.
RoundRunner = Callable[[list[Job], Tensor | None, Tensor | None], list[tuple[Tile, np.ndarray]]]
Work = FrameWork  # or a PatchWork: the same interface


def serially(run: Runner) -> RoundRunner:
    """A round runner that runs each job in turn, in this process."""

    def run_round(jobs: list, start: Tensor | None, content: Tensor | None) -> list[tuple[Tile, np.ndarray]]:
        return [pair for job in jobs for pair in regions(job, run(job, start, content)[0])]

    return run_round


def regions(
    job: Job | TileRound, result: np.ndarray | dict[int, np.ndarray]
) -> list[tuple[Tile, np.ndarray]]:
    """(region, pixels) pairs of a job's result, in tile order."""
    if isinstance(job, TileRound):
        return [(job.tiles[i], result[i]) for i in sorted(result)]
    return [(job.region, result)]


def run_frame(
    work: Work,
    run_round: RoundRunner,
    first: int = 0,
    canvas: Tensor | None = None,
    after_round: Callable[[int, Tensor], None] | None = None,
) -> Tensor:
    """Every round of a picture from round `first` on (resuming from `canvas`, the canvas after round
    first - 1). Between rounds the canvas is on the uint8 grid, as a checkpoint or Ray would carry it,
    so a resumed picture equals an uninterrupted one. `after_round(index, canvas)` can checkpoint."""
    for index in range(first, len(work.rounds)):
        jobs, start, content = work.jobs(index, canvas)
        canvas = from_uint8(to_uint8(work.blend(index, run_round(jobs, start, content))))
        if after_round is not None:
            after_round(index, canvas)
    return canvas
