"""A picture's optimisation as rounds of jobs: the one interface that a frame's tiles (`render.tiled`)
and stochastic patches (`render.patches`) both offer, and the loop that runs it in process.

Stills run a Work here, round after round; the scheduler farms the same rounds to Ray actors
(`cluster.flight`). Nothing here knows about Ray.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from torch import Tensor

from .canvas import Inputs
from .images import quantised, to_uint8
from .job import Job
from .joint import TileRound
from .tiles import Tile

Result = np.ndarray | dict[int, np.ndarray]  # a job's: its region's, or a tiled round's tiles by index


@dataclass(frozen=True)
class Batch:
    """Jobs that can run now, and the inputs they take their regions from (one shared object)."""

    jobs: list[Job] | list[TileRound]
    inputs: Inputs


class Work(Protocol):
    """The rounds of one picture (a still or a frame)."""

    frame: int
    size: tuple[int, int]  # (H, W) of the finished picture
    rounds: Sequence[Any]
    # Whether a job's result is its region's finished pixels (so colour coherence can map them on the
    # worker), or a change that the driver adds to the round's start (patches).
    results_are_pixels: bool

    def steps(self) -> int:
        """Loss evaluations over all rounds and jobs: the length of a progress bar."""
        ...

    def round_steps(self, index: int) -> int: ...

    def jobs(self, index: int, canvas: Tensor | None) -> Batch:
        """Round `index`'s jobs, given the canvas the previous round left (None for the first)."""
        ...

    def blend(self, index: int, results: Iterable[tuple[Tile, np.ndarray]]) -> Tensor:
        """The canvas after round `index`, from its (region, result) pairs in region order."""
        ...


def finished(work: Work, index: int, results: Iterable[tuple[Tile, np.ndarray]]) -> np.ndarray:
    """The picture after its last round `index`, as written: (H, W, 3) uint8."""
    return to_uint8(work.blend(index, results))


# Runs one job on its inputs in this process: (result, record).
Runner = Callable[[Job | TileRound, Inputs], tuple[Result, dict]]
# Runs a round's jobs; returns their (region, result) pairs in job order.
RoundRunner = Callable[[Batch], list[tuple[Tile, np.ndarray]]]


def serially(run: Runner) -> RoundRunner:
    """A round runner that runs each job in turn, in this process."""

    def run_round(batch: Batch) -> list[tuple[Tile, np.ndarray]]:
        return [pair for job in batch.jobs for pair in regions(job, run(job, batch.inputs)[0])]

    return run_round


def regions(job: Job | TileRound, result: Result) -> list[tuple[Tile, np.ndarray]]:
    """(region, result) pairs of a job's result, in tile order."""
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
        canvas = quantised(work.blend(index, run_round(work.jobs(index, canvas))))
        if after_round is not None:
            after_round(index, canvas)
    return canvas
