"""The Ray actor that renders jobs (`cluster.worker.FrameWorker`), outside Ray where Ray adds nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_worker_leaves_no_openmp_team_on_the_thread_that_built_it():
    """Ray builds a FrameWorker on its process's main thread and runs the jobs on another thread. libgomp
    keeps a team of threads for each thread that ran parallel work and spins only briefly once the
    process holds more of them than there are cores: a team left by the set-up made every job keep 1.5
    of 2 cores busy instead of 1.95 (bench/actor_threads.py). Here, in a fresh interpreter with 2
    threads, parallel work on the building thread after the set-up must start a team of its own."""
    code = (
        "import os, torch; from cluster.worker import FrameWorker; "
        "FrameWorker([torch.rand(1, 3, 32, 32)], None, 'cpu', 2); "
        "before = set(os.listdir('/proc/self/task')); "
        "torch.rand(1 << 20).add_(1); "  # big enough for torch to split it over its threads
        "print(len(set(os.listdir('/proc/self/task')) - before))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "1"  # the team's one thread besides this one: none was left here
