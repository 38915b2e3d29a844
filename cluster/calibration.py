"""`plan`'s calibration, measured where a render's jobs run: on a render's kind of worker (a
`FrameWorker` actor, with a worker's threads and device), beside Ray's own processes.

Measured in the `plan` process itself, the same jobs ran 0.13 to 0.21 s a step from one run to the
next on an idle 2-core machine, and a render's worker then kept 0.18 to 0.21 (BENCHMARKS.md,
"plan's estimate"): a worker process is what a render pays. And the worker's kind: a FrameWorker runs
its jobs on a thread of Ray's (it has a concurrency group, for the driver's progress polls), which
ran a step 1.1-3x slower than a Ray task did until the worker stopped leaving an OpenMP team on its
main thread (BENCHMARKS.md, "Where plan's gap is", "Why a thread of Ray's ran torch slower");
whatever else differs, this measures it.
"""

from __future__ import annotations

import ray

from render.calibrate import WARM_SECONDS, Rate
from render.images import load_image
from render.plan import FramePlan
from render.scene import Scene

from .scheduler import init_ray
from .worker import actor_factory


def measure_on_a_worker(
    scene: Scene, plans: list[FramePlan], device: str, warm_seconds: float = WARM_SECONDS
) -> tuple[Rate, str]:
    """This machine's rate for `scene` (`render.calibrate.measured_rate`), from a worker of a local
    Ray as a render would start it: one worker, all its cores (or one GPU)."""
    init_ray("local")
    style = load_image(next(iter(scene.styles.values())), scene.base)  # a worker holds its styles
    start, _ = actor_factory([style], None, device, 1)
    worker = start()
    try:
        rate, how = ray.get(worker.measure.remote(scene, plans, warm_seconds))
    finally:
        ray.kill(worker)
    return rate, f"{how}, in a Ray worker"
