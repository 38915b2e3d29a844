"""A step's pace in a Ray actor that runs its methods on its main thread, against one with a concurrency
group (as `cluster.worker.FrameWorker` has, so the driver can poll `progress` while a job runs), whose
methods run on a thread of Ray's. Prints JSON.

Each round starts a local Ray, then one actor of each kind in turn (alternating which goes first), each
measuring `render.calibrate.measured_rate` on a scene `--repeats` times (4 s of warm-up, then 1 s) with
all of this machine's cores; the figure is the median step. Written to find why a render's later jobs
ran 1.2x what `plan` measured (BENCHMARKS.md, "Where plan's gap is").

Usage: python bench/actor_threads.py [--scene scenes/zoom.toml] [--rounds 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
from pathlib import Path

import ray

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cluster.scheduler import init_ray  # noqa: E402


class Measurer:
    def __init__(self, threads: int) -> None:
        import torch

        from render.network import load_network

        torch.set_num_threads(threads)
        self.network = load_network()

    def steps(self, scene_path: str, repeats: int) -> tuple[list[float], str]:
        import threading

        from render.calibrate import measured_rate
        from render.network import auto_precision
        from render.plan import plan_scene
        from render.scene import load_scene

        scene = load_scene(Path(scene_path))
        plans = plan_scene(scene)
        precision = auto_precision("cpu")
        steps = [measured_rate(scene, plans, self.network, precision, "cpu", 4.0 if i == 0 else 1.0)[0].step
                 for i in range(repeats)]  # fmt: skip
        return steps, threading.current_thread().name


def _poll(self: Measurer) -> int:
    return 0


def _actor(kind: str, threads: int):
    if kind == "main_thread":
        return ray.remote(Measurer).options(num_cpus=threads).remote(threads)
    poll = ray.method(concurrency_group="poll")(_poll)  # as FrameWorker.progress is
    cls = ray.remote(concurrency_groups={"poll": 1})(type("GroupedMeasurer", (Measurer,), {"poll": poll}))
    return cls.options(num_cpus=threads, max_concurrency=1).remote(threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", default=str(ROOT / "scenes" / "zoom.toml"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    threads = os.cpu_count() or 1
    init_ray("local")
    runs = []
    for r in range(args.rounds):
        kinds = ("main_thread", "concurrency_group")[:: 1 if r % 2 == 0 else -1]
        for kind in kinds:
            actor = _actor(kind, threads)
            steps, thread = ray.get(actor.steps.remote(args.scene, args.repeats))
            ray.kill(actor)
            runs.append({"kind": kind, "thread": thread, "median_step_s": round(statistics.median(steps), 4),
                         "steps_s": [round(s, 4) for s in steps]})  # fmt: skip
            print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    print(json.dumps({
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {threads} cores",
        "scene": args.scene, "runs": runs,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
