"""A tiled round as one job: all its tiles optimise the whole canvas's objective, shared among the
processes that run it together (`engine.joint`). One process alone runs every tile; N processes
each run a fixed share and meet twice an evaluation in a reduction.

The share depends only on the tiles and the number of processes, so the same scene, seed and
number of workers give the same pixels wherever and however often a round runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from torch import Tensor

from engine.joint import Part, shared_cells, stylize_parts
from engine.lbfgs import Reduce, alone
from engine.stylize import Progress, Settings
from engine.targets import StyleBank, StyleTargets

from .canvas import Inputs
from .coherence import ColourMap
from .job import Job, LossLog, finish, run_job
from .tiles import Tile, cores


@dataclass(frozen=True)
class TileRound:
    """Every tile of one round of a frame, optimised as one picture."""

    frame: int  # global frame index
    round: int
    tiles: tuple[Tile, ...]  # covering the canvas, overlapping
    size: tuple[int, int]  # (H, W) of the canvas
    style_weights: tuple[float, ...]
    settings: Settings  # one scale: settings.iterations evaluations of the whole canvas
    seed: int
    colour: ColourMap | None = None  # colour coherence's map for the result

    @property
    def key(self) -> tuple[int, int, int]:
        return self.frame, self.round, -1

    def ranks(self, workers: int) -> int:
        """How many processes share the round: no more than there are tiles."""
        return max(1, min(workers, len(self.tiles)))

    def share(self, rank: int, ranks: int) -> list[int]:
        """The tiles `rank` holds: the largest tile to the least loaded process, in pixels, so the
        processes finish each evaluation together (the slowest sets everyone's pace)."""
        load = [0] * ranks
        owner = {}
        for i in sorted(
            range(len(self.tiles)), key=lambda i: (-self.tiles[i].size[0] * self.tiles[i].size[1], i)
        ):
            r = min(range(ranks), key=lambda r: (load[r], r))
            owner[i] = r
            load[r] += self.tiles[i].size[0] * self.tiles[i].size[1]
        return [i for i in range(len(self.tiles)) if owner[i] == rank]


def run_round(
    job: TileRound,
    inputs: Inputs,
    features: Callable,
    bank: StyleBank | None,
    device: str = "cpu",
    rank: int = 0,
    ranks: int = 1,
    reduce: Reduce = alone,
    progress: Callable[[Progress], None] | None = None,
) -> tuple[dict[int, np.ndarray], dict]:
    """Run `rank`'s share of a round: its tiles of the round's `inputs` (canvases, or the previous frame
    warped here, tile by tile). Every rank of the round
    calls this at once with the same job. Returns each held tile's (h, w, 3) uint8 pixels by index, and
    the record (seconds, steps, losses of the whole canvas, checks)."""
    held = job.share(rank, ranks)
    tile_cores = cores(list(job.tiles))
    parts, revealed = [], []
    for i in held:
        tile = job.tiles[i]
        given = inputs.at(tile)
        if given.revealed is not None:
            revealed.append(given.revealed)
        made, core = given.to(device), tile_cores[i]
        parts.append(Part(made.init, (tile.y0, tile.x0), (core.y0, core.x0, core.y1, core.x1), made.content,
                          made.temporal))  # fmt: skip
    log = LossLog(job.settings, progress)
    collective = [0, 0.0]  # bytes sent into reductions, seconds inside them

    def counted(t: Tensor) -> Tensor:
        began = time.perf_counter()
        out = reduce(t)
        collective[0] += t.numel() * t.element_size()
        collective[1] += time.perf_counter() - began
        return out

    began = time.perf_counter()
    styled = bank is not None and sum(job.style_weights) > 0 and job.settings.style_weight > 0
    outs = stylize_parts(
        parts,
        StyleTargets(bank, job.style_weights) if styled else None,
        job.settings,
        features=features,
        picture=job.size,
        cells=shared_cells([(t.y0, t.x0, t.y1, t.x1) for t in job.tiles]),
        reduce=counted,
        callback=log,
    )
    record: dict = {"seconds": round(time.perf_counter() - began, 3), "tiles": len(held)}
    if revealed:
        record["revealed"] = sum(revealed) / len(revealed)
    record |= log.record()  # the whole canvas's losses: every rank reports the same
    record |= {"collective_bytes": collective[0], "collective_seconds": round(collective[1], 3)}
    finished = [finish(out, job.colour) for out in outs]
    record["nan"] = not all(finite for _, finite in finished) or record["nan"]
    return {i: pixels for i, (pixels, _) in zip(held, finished, strict=True)}, record


def run_here(
    job: Job | TileRound,
    inputs: Inputs,
    features: Callable,
    bank: StyleBank | None,
    device: str = "cpu",
    progress: Callable[[Progress], None] | None = None,
) -> tuple[np.ndarray | dict[int, np.ndarray], dict]:
    """Run any job in this process alone: a tiled round with every tile here."""
    if isinstance(job, TileRound):
        return run_round(job, inputs, features, bank, device, progress=progress)
    return run_job(job, inputs, features, bank, device, progress)
