"""A pool that runs every job in this process, one at a time: a render without Ray (tests; a quick
look on a laptop). The same jobs give the same pixels as on a Ray worker with the same threads."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from engine.stylize import Progress
from engine.targets import StyleBank
from render.canvas import Inputs
from render.job import Job, suspect
from render.joint import TileRound, run_here
from render.work import Batch

from .pool import WorkerStats


class LocalPool:
    """A `cluster.pool.Pool` of one worker, this process, on `features` (VGG-19, or a stand-in).

    A suspect result (NaN, an early stop, a rising loss) is kept with a warning, not re-run: the
    quality guard's reruns are the Ray pool's (`cluster.pool.Retries`)."""

    def __init__(
        self, styles: list[Tensor], features: Callable, device: str = "cpu", threads: int = 0
    ) -> None:
        self.features, self.device = features, device
        self.bank = StyleBank([s.to(device) for s in styles])
        self.threads = threads or torch.get_num_threads()  # a job's, as a worker's (the driver uses one)
        self.stats = [WorkerStats(name="this process")]
        self.warnings: list[str] = []
        self._queue: deque[tuple[Job | TileRound, Inputs]] = deque()
        self._progress: tuple = (-1, 0, 0, 0.0)

    def share(self, value: Any) -> Any:
        return value

    def submit(self, batch: Batch) -> None:
        self._queue.extend((job, batch.inputs) for job in batch.jobs)

    def wait(self, timeout: float) -> list[tuple[Job | TileRound, Any, dict]]:
        """Run the next job (whatever `timeout`: it runs to the end)."""
        if not self._queue:
            return []
        job, inputs = self._queue.popleft()
        stats = self.stats[0]
        stats.current = job.key

        def report(p: Progress) -> None:
            self._progress = (job.frame, p.step, p.steps, p.loss)

        driver = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            result, record = run_here(job, inputs, self.features, self.bank, self.device, report)
        finally:
            torch.set_num_threads(driver)
        stats.current, stats.jobs = None, stats.jobs + 1
        stats.busy_seconds += record.get("seconds", 0.0)
        if (reason := suspect(job, record)) is not None:
            record["warning"] = reason
            self.warnings.append(f"frame {job.frame}: {reason}")
        return [(job, result, record | {"worker": stats.name, "attempts": 1})]

    def progress(self) -> list[tuple]:
        return [self._progress]
