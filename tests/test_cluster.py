"""Many workers on a Ray cluster (the session's `ray start` head, this process joined to it): tiled
frames, two shots side by side, and a worker killed mid-render."""

from __future__ import annotations

import functools
import json
import os
import signal
import threading
import time

import numpy as np
import pytest

from render.video import count_frames
from tests.conftest import jobs_here
from tests.helpers import cli, cli_process, pixels, until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_session")]

SCENE = """
seed = 2
[output]
width = 128
height = 96
fps = 8
tile = 128
tile_overlap = 16
[styles]
coffee = "builtin:coffee"
ihc = "builtin:ihc"
[start]
iterations = 3
[frames]
iterations = 6
[camera]
zoom = 1.04
[[shot]]
length = 4
start = { content = "builtin:astronaut", style = "ihc" }
[[shot]]
length = 4
start = { content = "builtin:rocket", style = "coffee" }
frames = { style = "coffee" }
camera = { angle = 3 }
"""
SHOT = 4  # frames in each of its two shots (their `length`)
FRAMES = 2 * SHOT
# The first shot alone: a frame's pixels do not depend on what else the workers render.
FIRST_SHOT = SCENE[: SCENE.rindex("[[shot]]")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("shots")
    scene = root / "scene.toml"
    scene.write_text(SCENE.replace("tile = 128", "tile = 96"))
    result = cli("render", str(scene), "--workers", "2")
    assert result.returncode == 0, result.stderr
    return scene, root / "scene.render"


def test_two_shots_render_side_by_side_and_join_in_order(reference):
    _, out = reference
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["shots"] == [4, 4]
    frames = manifest["frames"]
    # The second shot's first frame was done before the first shot's last: they rendered concurrently.
    assert frames["4"]["finished"] < frames["3"]["finished"]
    # 128x96 in tiles of 96: each later frame is one job that both workers share.
    assert all(len(frames[str(t)]["workers"]) == 2 for t in range(1, FRAMES) if t != 4)
    assert count_frames(out / "scene.mp4") == FRAMES
    shot_a, shot_b = pixels(out)[:4], pixels(out)[4:]
    diff_within = np.abs(shot_a[3].astype(int) - shot_a[2].astype(int)).mean()
    diff_across = np.abs(shot_b[0].astype(int) - shot_a[3].astype(int)).mean()
    assert diff_across > 2 * diff_within  # a cut between the shots, continuity inside one


def test_a_tiled_movie_stays_with_the_whole_one(reference, tmp_path, vgg):
    """The reference renders 128x96 frames in tiles of 96 (16-px overlap: 8-px margins) on two workers;
    the same scene rendered whole must stay close to it frame after frame. Feature distance (relu4_2,
    relative) to the whole movie's frames, mean over the 8 frames: 0.20 with the tiles optimising the
    whole frame's objective; 0.35 when each tile matched the style on its own (before 2026-12-01), its
    shot-2 frames drifting to 0.57 by the last."""
    import torch

    from render.images import from_uint8

    scene = tmp_path / "scene.toml"
    scene.write_text(SCENE)  # tile = 128: every frame whole
    with jobs_here(vgg):  # the untiled movie needs no Ray
        result = cli("render", str(scene))
    assert result.returncode == 0, result.stderr
    distances = []
    for whole, tiled in zip(pixels(tmp_path / "scene.render"), pixels(reference[1]), strict=True):
        with torch.no_grad():
            a, b = (vgg(from_uint8(x), ["relu4_2"])["relu4_2"] for x in (whole, tiled))
        distances.append(float((a - b).norm() / a.norm()))
    assert sum(distances) / len(distances) < 0.27, distances
    assert max(distances) < 0.45, distances


def _workers(root: int) -> list[int]:
    """The worker processes under `root` (Ray starts them under its raylet, under the process that
    started it: here the head's), not those of anything else running on the machine."""
    from bench.memory import _memory_of_tree

    return [pid for pid, (_, _, cmd) in _memory_of_tree(root).items() if "ray::FrameWorker" in cmd]


def test_killing_a_worker_mid_render_loses_nothing(reference, ray_session, tmp_path):
    """The render runs here, on the session's Ray; a thread kills one of its two workers once frame 1 is
    written (both are on frame 2, one job shared), and the render goes on to the reference's frames."""
    scene = tmp_path / "scene.toml"
    scene.write_text(FIRST_SHOT.replace("tile = 128", "tile = 96"))
    out = tmp_path / "scene.render"
    head = ray_session.process.pid
    earlier = set(_workers(head))  # earlier renders' workers, perhaps still on their way out
    victims: list[int] = []

    def kill_a_worker() -> None:
        if until(lambda: (out / "frames" / "000001.png").exists(), 120):
            victims.extend(pid for pid in _workers(head) if pid not in earlier)
            if victims:
                os.kill(victims[0], signal.SIGKILL)

    killer = threading.Thread(target=kill_a_worker, daemon=True)
    killer.start()
    result = cli("render", scene, "--workers", "2")
    killer.join()
    assert victims, "no worker process found"
    assert result.returncode == 0, result.stderr
    for mine, theirs in zip(pixels(out), pixels(reference[1])[:SHOT], strict=True):
        assert np.array_equal(mine, theirs)
    assert count_frames(out / "scene.mp4") == SHOT
    records = json.loads((out / "manifest.json").read_text())["frames"].values()
    workers = {w for r in records for w in r["workers"]}
    assert len(workers) >= 3  # the two first workers and the one that replaced the killed one


def test_a_render_joins_a_running_ray_cluster_with_address(reference, ray_head, tmp_path):
    """`ray start --head`, as a user starts a cluster, then `render --address`: the project's code
    reaches the cluster's workers through the runtime environment, and the frames are the same. The
    render is a process of its own: here the CLI would use the Ray this process has joined. It renders
    the first shot's first two frames: the start, then a frame in tiles shared by the two workers."""
    scene = tmp_path / "scene.toml"
    scene.write_text(FIRST_SHOT.replace("tile = 128", "tile = 96").replace(f"length = {SHOT}", "length = 2"))
    result = cli_process("render", scene, "--address", ray_head.address, "--workers", "2", env=ray_head.env)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "scene.render"
    for mine, theirs in zip(pixels(out), pixels(reference[1])[:2], strict=True):
        assert np.array_equal(mine, theirs)
    assert count_frames(out / "scene.mp4") == 2


def test_plan_prints_each_frame_and_the_time_measured_on_a_ray_worker(tmp_path, monkeypatch):
    from cluster import calibration, host
    from cluster.host import CpuTimes
    from tests.test_scene import GOOD, write

    # What plan prints, not how well it measures (BENCHMARKS.md): half a second of warm-up, not four.
    quick = functools.partial(calibration.measure_on_a_worker, warm_seconds=0.5)
    monkeypatch.setattr(calibration, "measure_on_a_worker", quick)
    readings = iter([CpuTimes(1000, 0), CpuTimes(2000, 200)])  # the host took 20 % while it measured
    monkeypatch.setattr(CpuTimes, "now", lambda: next(readings))
    monkeypatch.setattr(host, "cores_busy_now", lambda seconds=0.3: 1.5)  # and other work, its cores
    result = cli("plan", write(tmp_path, GOOD))
    assert result.returncode == 0, result.stderr
    assert "gave 20% of its CPU time to other machines while measuring (steal)" in result.stderr
    assert "other work keeps 1.5 of this machine's" in result.stderr
    assert "cores busy: the estimate is for a machine this busy" in result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 + 6 + 2 and "a:1.00" in lines[1] and "6 frames of 48x32" in lines[-2]
    assert "min of optimisation here" in lines[-1] and "s a job at 48x32" in lines[-1]
    assert "in a Ray worker" in lines[-1] and "min on one H100" in lines[-1]


def test_bad_weights_fail_at_once_without_retries(tmp_path):
    scene = tmp_path / "scene.toml"
    scene.write_text(SCENE)
    bad = tmp_path / "w.pt"
    bad.write_bytes(b"junk")
    started = time.time()
    result = cli("render", str(scene), "--weights", str(bad))
    assert result.returncode == 2 and "cannot load weights" in result.stderr
    assert time.time() - started < 30


def test_a_patch_still_on_ray_equals_the_one_in_process(tmp_path):
    import torch

    from cluster.stills import ray_farm
    from render.scene import Patches
    from render.still import StillJob, render_still

    def job(name: str) -> StillJob:
        return StillJob(
            tmp_path / name,
            content="builtin:astronaut",
            styles=(("builtin:coffee", 1.0),),
            size=64,  # a round of one patch at half resolution, then one of 9 at full resolution
            patches=Patches(size=32, rounds=2, steps=2, localized=True),
            seed=1,
        )

    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count())  # as many as the one actor gets: results depend on it
    try:
        here = render_still(job("here.png"))
        there = render_still(job("there.png"), farm=ray_farm(None, "cpu", 1, None))  # the session's Ray
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(here, there)


def test_a_patch_scene_renders_on_ray(tmp_path):
    scene = tmp_path / "scene.toml"
    scene.write_text(PATCH_SCENE)
    result = cli("render", str(scene), "--workers", "2")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "scene.render"
    assert count_frames(out / "scene.mp4") == 2
    frames = json.loads((out / "manifest.json").read_text())["frames"]
    assert all(r["jobs"] > 2 for r in frames.values())  # 2 rounds of several patches each


PATCH_SCENE = """
[output]
width = 96
height = 64
frames = 2
[styles]
coffee = "builtin:coffee"
[start]
content = "builtin:astronaut"
[camera]
zoom = 1.04
[patches]
size = 32
rounds = 2
steps = 2
localized = true
"""


class _SuspectActor:
    """Stands in for a worker: every result it returns contains NaN."""

    class _Render:
        def remote(self, job, inputs):
            import ray

            record = {"seconds": 0.1, "steps": job.settings.iterations, "planned": job.settings.iterations,
                      "nan": True, "seed": job.seed}  # fmt: skip
            return ray.put((np.zeros((*job.size, 3), np.uint8), record))

    render = _Render()


def test_a_suspect_result_is_rerun_with_another_seed_then_more_iterations():
    from cluster.pool import WorkerPool
    from engine.stylize import Settings
    from render.job import Job
    from render.tiles import Tile
    from render.work import Batch

    pool = WorkerPool(_SuspectActor, 1)
    pool.submit(Batch([Job(3, 0, 0, Tile(0, 0, 8, 8), (1.0,), Settings(iterations=5), seed=11)], None))
    done = []
    while not done:
        done = pool.wait(1.0)
    ((job, _, record),) = done
    assert record["reruns"] == ["result contains NaN or Inf"] * 2 and record["attempts"] == 3
    assert record["seed"] != 11 and record["steps"] == 10  # another seed, then twice the iterations
    assert "also after 2 reruns" in record["warning"] and pool.warnings
