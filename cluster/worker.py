"""The Ray actor that renders frames: it holds the network and the style-statistics cache."""

from __future__ import annotations

import os
import socket
import threading

import numpy as np
import ray
import torch

from engine.stylize import Progress
from engine.targets import StyleBank
from render.job import FrameJob, run_frame
from render.network import load_network, resolve_device


class FrameWorker:
    """Loads VGG-19 and the style images once; renders one frame job per call.

    Runs with max_concurrency=2 so the driver can poll `progress` while a
    frame renders; `render` itself is never run twice at once (a lock).
    """

    def __init__(self, styles: list[torch.Tensor], weights: str | None, device: str, threads: int) -> None:
        torch.set_num_threads(max(1, threads))
        self.device = resolve_device(device)
        self.net = load_network(weights, device=self.device)
        self.bank = StyleBank([s.to(self.device) for s in styles])
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._lock = threading.Lock()
        self._progress: tuple[int, int, int, float] = (-1, 0, 0, 0.0)  # frame, step, steps, loss

    def render(self, job: FrameJob) -> tuple[np.ndarray, dict]:
        def report(p: Progress) -> None:
            self._progress = (job.index, p.step, p.steps, p.loss)

        with self._lock:
            frame, record = run_frame(job, self.net, self.bank, report)
        return frame, record | {"worker": self.name}

    def progress(self) -> tuple[int, int, int, float]:
        return self._progress


def start_workers(styles: list[torch.Tensor], weights: str | None, device: str, count: int = 1) -> list:
    """Start `count` workers: one GPU each where the cluster has GPUs, else CPU workers sharing the cores."""
    gpus = int(ray.cluster_resources().get("GPU", 0))
    cpus = int(ray.cluster_resources().get("CPU", 1))
    use_gpu = gpus > 0 and device in ("auto", "cuda")
    threads = 1 if use_gpu else max(1, cpus // count)
    actor = ray.remote(FrameWorker).options(
        num_gpus=1 if use_gpu else 0,
        num_cpus=1 if use_gpu else threads,
        max_concurrency=2,
    )
    styles_ref = ray.put(styles)  # big inputs go through the object store once
    return [actor.remote(styles_ref, weights, "cuda" if use_gpu else "cpu", threads) for _ in range(count)]
