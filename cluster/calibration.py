"""`plan`'s calibration, measured where a render's jobs run: in a Ray worker process, with a worker's
threads and device, beside Ray's own processes.

Measured in the `plan` process itself, the same jobs ran 0.13 to 0.21 s a step from one run to the
next on an idle 2-core machine, and a render's worker then kept 0.18 to 0.21 (BENCHMARKS.md,
"plan's estimate"): a worker process is what a render pays.
"""

from __future__ import annotations

import ray
import torch

from render.calibrate import WARM_SECONDS, Rate, measured_rate
from render.network import auto_precision, load_network
from render.plan import FramePlan
from render.scene import Scene

from .scheduler import init_ray
from .worker import worker_threads


def measure_on_a_worker(
    scene: Scene, plans: list[FramePlan], device: str, warm_seconds: float = WARM_SECONDS
) -> tuple[Rate, str]:
    """This machine's rate for `scene` (`render.calibrate.measured_rate`), from a worker of a local
    Ray as a render would start it: one worker, all its cores (or one GPU)."""
    init_ray("local")
    gpu = device == "cuda"
    threads = worker_threads(1, gpu)
    task = ray.remote(num_cpus=1 if gpu else threads, num_gpus=1 if gpu else 0)(_measure)
    rate, how = ray.get(task.remote(scene, plans, device, threads, warm_seconds))
    return rate, f"{how}, in a Ray worker"


def _measure(
    scene: Scene, plans: list[FramePlan], device: str, threads: int, warm_seconds: float
) -> tuple[Rate, str]:
    torch.set_num_threads(threads)
    network = load_network(device=device)
    return measured_rate(scene, plans, network, auto_precision(device), device, warm_seconds)
