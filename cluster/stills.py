"""A still's rounds on Ray actors: every job of a round (tiles, or patches) in flight at once."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from torch import Tensor

from render.still import Farm
from render.tiles import Tile
from render.work import Batch, regions

from .pool import WorkerPool
from .scheduler import init_ray
from .worker import actor_factory

POLL_SECONDS = 0.1


def ray_farm(weights: str | None, device: str, workers: int | None, address: str | None) -> Farm:
    """A farm on local Ray (or the cluster at `address`), its actors started when the still begins."""

    def start(styles: list[Tensor], finished: Callable[[dict], None]) -> Callable:
        init_ray(address)
        pool = WorkerPool(*actor_factory(styles, weights, device, workers))

        def run_round(batch: Batch) -> list[tuple[Tile, np.ndarray]]:
            pool.submit(batch)
            results: dict = {}
            while len(results) < len(batch.jobs):
                for job, pixels, record in pool.wait(POLL_SECONDS):
                    results[job.key] = regions(job, pixels)
                    finished(record)
            return [pair for job in batch.jobs for pair in results[job.key]]

        return run_round

    return start
