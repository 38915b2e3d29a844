"""The Work contract: what every kind of picture work (a frame's tiles, stochastic patches) promises
the code that runs it (stills in process, the scheduler on Ray). No network: a job that changes
nothing must give back its start, whatever the rounds, tiles, scales or overlaps."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from engine.stylize import Settings
from render.canvas import Canvases
from render.images import quantised, to_uint8
from render.joint import TileRound
from render.patches import PatchWork
from render.scene import Patches
from render.tiled import FrameWork
from render.work import Batch, Work, finished, regions, run_frame, serially
from tests.conftest import smooth_image

SIZE = (150, 230)


def works(init: torch.Tensor) -> dict[str, Work]:
    settings = Settings(iterations=4, min_size=64)
    later = replace(settings, min_size=max(SIZE))  # a later frame: one scale, here in tiles
    return {
        "whole frame": FrameWork(0, SIZE, settings, init, init, (1.0,), seed=3, tile=512),
        "tiled frame": FrameWork(1, SIZE, later, init, init, (1.0,), seed=3, tile=96, overlap=16),
        "patches": PatchWork(0, SIZE, settings, init, init, (1.0,), 3, Patches(size=48, rounds=4)),
    }


def unchanged(job, inputs) -> tuple:
    """A job that leaves its region as it found it: its pixels, or a change of zero."""
    if isinstance(job, TileRound):
        return {i: to_uint8(inputs.at(t).init) for i, t in enumerate(job.tiles)}, {"steps": 0}
    if job.working_size is not None:
        return np.zeros((*job.size, 3), np.float16), {"steps": 0}
    return to_uint8(inputs.at(job.region).init), {"steps": 0}


@pytest.fixture(params=["whole frame", "tiled frame", "patches"])
def work(request) -> Work:
    return works(smooth_image(1, SIZE))[request.param]


def test_steps_are_the_rounds_steps(work: Work) -> None:
    assert work.steps() == sum(work.round_steps(k) for k in range(len(work.rounds))) > 0


def test_a_round_is_jobs_over_uint8_canvases_that_cover_the_picture(work: Work) -> None:
    for index in range(len(work.rounds)):
        batch = work.jobs(index, None)
        assert isinstance(batch, Batch) and isinstance(batch.inputs, Canvases) and batch.jobs
        canvas = batch.inputs.start
        assert canvas.dtype == np.uint8 and canvas.shape[2] == 3
        covered = np.zeros(canvas.shape[:2], bool)
        for job in batch.jobs:
            for tile in job.tiles if isinstance(job, TileRound) else [job.region]:
                assert 0 <= tile.y0 < tile.y1 <= canvas.shape[0] and 0 <= tile.x0 < tile.x1 <= canvas.shape[1]
                covered[tile.y0 : tile.y1, tile.x0 : tile.x1] = True
        assert covered.all()
        assert len({job.key for job in batch.jobs}) == len(batch.jobs)  # every job has its own key


def test_jobs_that_change_nothing_give_back_the_start(work: Work) -> None:
    init = smooth_image(1, SIZE)
    out = run_frame(work, serially(unchanged))
    assert out.shape == (1, 3, *SIZE)
    assert (out - quantised(init)).abs().max() <= 1 / 255 + 1e-6


def test_the_finished_picture_is_uint8_at_its_size(work: Work) -> None:
    last = len(work.rounds) - 1
    canvas = None if last == 0 else run_frame(work, serially(unchanged))  # any canvas of the round before
    batch = work.jobs(last, canvas)
    results = [pair for job in batch.jobs for pair in regions(job, unchanged(job, batch.inputs)[0])]
    pixels = finished(work, last, results)
    assert pixels.dtype == np.uint8 and pixels.shape == (*SIZE, 3)


def test_a_round_gives_the_same_jobs_and_canvases_every_time(work: Work) -> None:
    """Same seed, same picture: the jobs (and their seeds) and the canvases repeat exactly."""
    again = works(smooth_image(1, SIZE))
    twin = next(w for w in again.values() if type(w) is type(work) and w.rounds == work.rounds)
    for index in range(len(work.rounds)):
        a, b = work.jobs(index, None), twin.jobs(index, None)
        assert a.jobs == b.jobs
        assert np.array_equal(a.inputs.start, b.inputs.start)
