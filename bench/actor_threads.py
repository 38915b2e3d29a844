"""A step's pace in three kinds of Ray actor: one that runs its methods on its main thread; one with a
concurrency group (as `cluster.worker.FrameWorker` has, so the driver can poll `progress` while a job
runs), whose methods run on a thread of Ray's, with its network loaded on the main thread (as
FrameWorker did before 2026-12-02); and the same with the network loaded on a thread that ends (as
FrameWorker does now). Prints JSON.

Each round starts a local Ray, then one actor of each kind in turn (rotating which goes first), each
measuring `render.calibrate.measured_rate` on a scene `--repeats` times (4 s of warm-up, then 1 s) with
all of this machine's cores; the figures are the median step and the cores the actor's process kept
busy while it measured. Written to find why a render's later jobs ran 1.2x what `plan` measured
(BENCHMARKS.md, "Where plan's gap is"): libgomp, torch's OpenMP, spins only briefly between parallel
regions once a process holds more of its threads than there are cores, and every thread that ran
parallel work keeps a team of them.

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
    def __init__(self, threads: int, set_up_on_main_thread: bool) -> None:
        import torch

        from cluster.worker import on_a_thread_that_ends
        from render.network import load_network

        def set_up():
            torch.set_num_threads(threads)
            return load_network()

        self.network = set_up() if set_up_on_main_thread else on_a_thread_that_ends(set_up)

    def steps(self, scene_path: str, repeats: int) -> tuple[list[float], float, str]:
        import resource
        import threading
        import time

        from render.calibrate import measured_rate
        from render.network import auto_precision
        from render.plan import plan_scene
        from render.scene import load_scene

        scene = load_scene(Path(scene_path))
        plans = plan_scene(scene)
        precision = auto_precision("cpu")
        began, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
        steps = [measured_rate(scene, plans, self.network, precision, "cpu", 4.0 if i == 0 else 1.0)[0].step
                 for i in range(repeats)]  # fmt: skip
        used = resource.getrusage(resource.RUSAGE_SELF)
        cores = (used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime) / (time.perf_counter() - began)
        return steps, cores, threading.current_thread().name


def _poll(self: Measurer) -> int:
    return 0


KINDS = ("main_thread", "group_set_up_on_main_thread", "group_set_up_on_a_thread_that_ends")


def _actor(kind: str, threads: int):
    if kind == "main_thread":
        return ray.remote(Measurer).options(num_cpus=threads).remote(threads, True)
    poll = ray.method(concurrency_group="poll")(_poll)  # as FrameWorker.progress is
    cls = ray.remote(concurrency_groups={"poll": 1})(type("GroupedMeasurer", (Measurer,), {"poll": poll}))
    return cls.options(num_cpus=threads, max_concurrency=1).remote(threads, kind == KINDS[1])


def _cpu_times() -> list[int]:
    """This machine's CPU time by kind since boot (/proc/stat: user, nice, system, idle, ..., steal)."""
    return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", default=str(ROOT / "scenes" / "zoom.toml"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    threads = os.cpu_count() or 1
    init_ray("local")
    runs, before = [], _cpu_times()
    for r in range(args.rounds):
        for kind in KINDS[r % 3 :] + KINDS[: r % 3]:
            actor = _actor(kind, threads)
            steps, cores, thread = ray.get(actor.steps.remote(args.scene, args.repeats))
            ray.kill(actor)
            runs.append({"kind": kind, "thread": thread, "median_step_s": round(statistics.median(steps), 4),
                         "cores_busy": round(cores, 2), "steps_s": [round(s, 4) for s in steps]})  # fmt: skip
            print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    spent = [b - a for a, b in zip(before, _cpu_times(), strict=True)]
    print(json.dumps({
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {threads} cores",
        "steal": round(spent[7] / sum(spent), 3),
        "scene": args.scene, "runs": runs,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
