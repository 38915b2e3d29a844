"""The Ray actor that renders jobs: it holds the network and the style-statistics cache."""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, TypeVar

import numpy as np
import ray
import torch

from engine.stylize import Progress
from engine.targets import StyleBank
from engine.vgg import VGG19
from render.calibrate import Rate, measured_rate
from render.canvas import Inputs
from render.frames import WarpedTiles
from render.job import Job, run_job
from render.joint import TileRound, run_round
from render.network import auto_precision, load_network, resolve_device
from render.plan import FramePlan
from render.scene import Scene

from .collective import Group, Member

T = TypeVar("T")


class FrameWorker:
    """Loads VGG-19 and the style images once; runs one job (a frame or a tile) per call.

    Runs with max_concurrency=2 so the driver can poll `progress` while a job
    runs; the driver never sends an actor a second job before the first is back.
    """

    def __init__(self, styles: list[torch.Tensor], weights: str | None, device: str, threads: int) -> None:
        # Ray calls __init__ on the process's main thread and the jobs on a thread of its own (the actor
        # has a concurrency group). torch's OpenMP (libgomp) keeps a team of threads for each thread that
        # ran parallel work, and spins only briefly between parallel regions once the process holds more
        # of its threads than there are cores: with a team left on the main thread, a job kept 1.5-1.8
        # of 2 cores busy (BENCHMARKS.md, "Why a thread of Ray's ran torch slower"). So torch's set-up
        # runs on a thread that ends, its team with it, and the jobs' thread holds the only team.
        def set_up() -> tuple[str, VGG19, StyleBank]:
            torch.set_num_threads(max(1, threads))
            device_ = resolve_device(device)
            return device_, load_network(weights, device=device_), StyleBank([s.to(device_) for s in styles])

        self.device, self.net, self.bank = on_a_thread_that_ends(set_up)
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._progress: tuple[int, int, int, float] = (-1, 0, 0, 0.0)  # frame, step, steps, loss
        self.member = Member()

    def render(self, job: Job, inputs: Inputs) -> tuple[np.ndarray, dict]:
        """Run `job` on its region of the round's inputs (shared by all the round's jobs)."""

        def report(p: Progress) -> None:
            self._progress = (job.frame, p.step, p.steps, p.loss)

        pixels, record = run_job(job, fetched(inputs), self.net, self.bank, self.device, report)
        return pixels, record | {"worker": self.name}

    def render_round(
        self, job: TileRound, rank: int, ranks: int, group: Group | None, inputs: Inputs
    ) -> tuple[dict[int, np.ndarray], dict]:
        """Run this worker's share of a tiled round, with the other `ranks` - 1 members of `group`."""

        def report(p: Progress) -> None:
            self._progress = (job.frame, p.step, p.steps, p.loss)

        try:
            reduce = self.member.reduce(group, rank, ranks)
            pixels, record = run_round(job, fetched(inputs), self.net, self.bank, self.device, rank, ranks,
                                       reduce, report)  # fmt: skip
        except BaseException:
            self.member.leave()  # the others stop waiting for this one
            raise
        return pixels, record | {"worker": self.name}

    def measure(self, scene: Scene, plans: list[FramePlan], warm_seconds: float) -> tuple[Rate, str]:
        """`plan`'s calibration: this machine's rate for `scene` as this worker runs its jobs
        (`render.calibrate.measured_rate`)."""
        precision = auto_precision(self.device)
        return measured_rate(scene, plans, self.net, precision, self.device, warm_seconds)

    @ray.method(concurrency_group="poll")
    def progress(self) -> tuple[int, int, int, float]:
        return self._progress


def on_a_thread_that_ends(work: Callable[[], T]) -> T:
    """`work()`, run on a new thread that has ended by the time this returns (its exception raised here)."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(work).result()


def fetched(inputs: Inputs) -> Inputs:
    """Inputs with the shot's camera fetched: the scheduler shares it once per shot, by reference."""
    if isinstance(inputs, WarpedTiles) and isinstance(inputs.camera, ray.ObjectRef):
        return replace(inputs, camera=ray.get(inputs.camera))
    return inputs


def worker_threads(count: int, use_gpu: bool) -> int:
    """Torch threads of each of `count` workers: one beside a GPU, else an equal share of the CPUs
    (at most one node's: an actor lives on one node)."""
    cpus = int(ray.cluster_resources().get("CPU", 1))
    node_cpus = max((int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n["Alive"]), default=1)
    return 1 if use_gpu else max(1, min(node_cpus, cpus // count))


def actor_factory(
    styles: list[torch.Tensor],
    weights: str | None,
    device: str,
    count: int | None,
    actor_class: type = FrameWorker,
) -> tuple[Callable[[], Any], int]:
    """How to start a worker, and how many: one per GPU where the cluster has GPUs (or `count`),
    else `count` CPU workers (default 1) sharing the cores."""
    gpus, cpus = int(ray.cluster_resources().get("GPU", 0)), int(ray.cluster_resources().get("CPU", 1))
    use_gpu = gpus > 0 and device in ("auto", "cuda")
    count = count or (gpus if use_gpu else 1)
    threads = worker_threads(count, use_gpu)
    # More workers than GPUs share them in equal parts: 1/ceil(count/gpus) each always packs
    # (with a share like 2/3, a third actor on two GPUs would wait forever).
    gpu_share = 1 / math.ceil(count / gpus) if use_gpu else 0
    # progress() answers from a concurrency group of its own while a job runs.
    actor = ray.remote(concurrency_groups={"poll": 1})(actor_class).options(
        num_gpus=gpu_share,
        num_cpus=1 if use_gpu else min(threads, cpus / count),
        max_concurrency=1,  # jobs run one at a time, in the order sent
        max_restarts=0,  # the pool starts a replacement itself and re-runs the lost job elsewhere
        max_task_retries=0,
    )
    styles_ref = ray.put(styles)  # big inputs go through the object store once; the closure keeps them alive

    def start() -> Any:
        return actor.remote(styles_ref, weights, "cuda" if use_gpu else "cpu", threads)

    return start, count
