"""Cluster benchmark: prints JSON.

Scaling of a 1920x1080 zoom render over 1, 2, 4 and 8 workers on a simulated
multi-node Ray cluster (ray.cluster_utils.Cluster, one CPU per node). Each
evaluation of the network is replaced by a sleep calibrated to GPU time per
pixel, so the scheduler, object transfers, the collectives of a tiled round
(gloo, at their real sizes, every evaluation), blending, warping, PNG writing
and encoding are all real and only the GPU's work is stood in for.
Also: the driver's own work per frame (warp, blend, PNG, encode), timed alone.

With --gpu: no stand-in. Real FrameWorkers on this machine's GPU, 1, 2, 4 actors
sharing it (local Ray): tiles per second per GPU, the throughput of N actors
against one, and the GPU seconds per megapixel that calibrate the sleep above.

Usage: python bench/cluster.py [--frames N] [--gpu-seconds S] [--workers 1,2,4,8] [--gpu]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import ray
import torch
from ray.cluster_utils import Cluster

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cluster.collective import Member  # noqa: E402
from cluster.scheduler import init_ray, ray_pool, render_scene  # noqa: E402
from cluster.worker import FrameWorker, fetched  # noqa: E402
from engine.joint import shared_cells  # noqa: E402
from render.canvas import Inputs  # noqa: E402
from render.coherence import ColourMap, lab_stats  # noqa: E402
from render.frames import ShotCamera  # noqa: E402
from render.images import from_uint8, to_uint8  # noqa: E402
from render.job import Job  # noqa: E402
from render.joint import TileRound  # noqa: E402
from render.plan import plan_scene  # noqa: E402
from render.scene import load_scene  # noqa: E402
from render.store import FrameStore  # noqa: E402
from render.tiled import FrameWork  # noqa: E402
from render.tiles import Blender  # noqa: E402
from render.video import VideoWriter  # noqa: E402

SCENE = """
seed = 1
[output]
width = 1920
height = 1080
fps = 24
frames = {frames}
tile = {tile}
tile_overlap = {overlap}
preset = "medium"  # x264's own default, as the figures before 2026-12-01 were encoded
[styles]
ihc = "builtin:ihc"
[start]
content = "builtin:rocket"
iterations = 10
[frames]
iterations = 10
[camera]
zoom = 1.01
angle = 0.2
"""


class SleepWorker:
    """Stands in for FrameWorker: sleeps as long as a GPU would take, returns the start image."""

    seconds_per_megapixel = 1.5  # GPU seconds for 10 iterations on a megapixel; set by main()

    def __init__(self, styles, weights, device, threads) -> None:  # noqa: ANN001
        torch.set_num_threads(max(1, threads))  # as FrameWorker: its own warps use the node's cores only
        self.name = f"sleep:{os.getpid()}"
        self.member = Member()

    def render_round(
        self,
        job: TileRound,
        rank: int,
        ranks: int,
        group,  # noqa: ANN001
        inputs: Inputs,
    ) -> tuple[dict[int, np.ndarray], dict]:
        """A share of a tiled round: per evaluation, the network's time for the share as a sleep, then
        the round's real collectives at their real sizes (VGG-19's sums, the shared pixels' gradients,
        L-BFGS's dots)."""
        reduce = self.member.reduce(group, rank, ranks)
        held = job.share(rank, ranks)
        megapixels = sum(job.tiles[i].size[0] * job.tiles[i].size[1] for i in held) / 1e6
        per_evaluation = self.seconds_per_megapixel * megapixels / 10
        sums = torch.zeros(sum(c * c + c + 1 for c in (64, 128, 256, 512, 512)) + 4)  # what engine.joint sums
        shared = torch.zeros(sum(3 * (y1 - y0) * (x1 - x0) for y0, x0, y1, x1 in
                                 shared_cells([(t.y0, t.x0, t.y1, t.x1) for t in job.tiles])))  # fmt: skip
        began, waited, sent = time.perf_counter(), 0.0, 0
        for i in range(job.settings.iterations):
            time.sleep(per_evaluation)
            t = time.perf_counter()
            for buffer in (sums, shared, torch.zeros(3 * (2 * min(i, 50) + 3), dtype=torch.float64)):
                reduce(buffer)
                sent += buffer.numel() * buffer.element_size()
            waited += time.perf_counter() - t
        inputs = fetched(inputs)  # as FrameWorker does: a later frame's tiles are warped here
        pixels = {i: to_uint8(inputs.at(job.tiles[i]).init) for i in held}
        steps = job.settings.iterations
        record = {"seconds": time.perf_counter() - began, "steps": steps, "planned": steps, "loss": 1.0,
                  "first_loss": 2.0, "tiles": len(held), "collective_bytes": sent,
                  "collective_seconds": waited}  # fmt: skip
        return pixels, record | {"worker": self.name}

    def render(self, job: Job, inputs: Inputs) -> tuple[np.ndarray, dict]:
        h, w = job.size
        seconds = self.seconds_per_megapixel * (h * w) / 1e6 * job.settings.iterations / 10
        time.sleep(seconds)
        init = fetched(inputs).at(job.region).init  # as in FrameWorker
        image = init if init is not None else torch.full((1, 3, h, w), 0.5)
        steps = job.settings.iterations
        record = {"seconds": seconds, "steps": steps, "planned": steps, "first_loss": 2.0, "loss": 1.0}
        return to_uint8(image), record | {"worker": self.name}

    @ray.method(concurrency_group="poll")
    def progress(self) -> tuple[int, int, int, float]:
        return (-1, 0, 0, 0.0)


def completions(outdir: Path) -> tuple[list[float], list[dict]]:
    """After the first frame (which is coarse to fine): the frames' completion times, sorted, and their
    manifest records."""
    frames = json.loads((outdir / "manifest.json").read_text())["frames"]
    later = [frames[k] for k in frames if k != "0"]
    return sorted(f["finished"] for f in later), later


def steady(outdir: Path) -> dict:
    """The mean time between frame completions after the first, and the mean of the job seconds a frame
    took as the workers measured them."""
    done, later = completions(outdir)
    return {
        "seconds_per_frame": round((done[-1] - done[0]) / (len(done) - 1), 3),
        "job_seconds_per_frame": round(sum(f["job_seconds"] for f in later) / len(later), 3),
    }


class BusySampler(threading.Thread):
    """Samples the machine's busy CPU seconds and this process's (the driver's) every 0.2 s, to measure
    them over the steady frames only."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            self.samples.append((time.time(), machine_busy_seconds(), time.process_time()))

    def between(self, t0: float, t1: float) -> tuple[float, float]:
        """(machine, driver) CPU seconds from t0 to t1."""
        times, *seconds = zip(*self.samples, strict=True)
        return tuple(float(np.interp(t1, times, s) - np.interp(t0, times, s)) for s in seconds)


def driver_overhead(scene_path: Path, outdir: Path) -> dict:
    """The driver's own work on one 1080p frame, each part timed on its own, on one thread as in
    render_scene."""
    torch.set_num_threads(1)
    scene = load_scene(scene_path)
    plans = plan_scene(scene)
    size = (1080, 1920)
    frame = FrameStore(outdir).read(1)
    camera = ShotCamera(size, None, "reflection")
    t = time.perf_counter()
    inputs = camera.advance(plans[1], from_uint8(frame))
    warp = time.perf_counter() - t
    o = scene.output
    work = FrameWork(2, size, plan_settings(), inputs.init, inputs.content, (1.0,), 1, o.tile, o.tile_overlap)
    t = time.perf_counter()
    batch = work.jobs(0, None)  # its canvases as they go to the object store
    canvases = batch.inputs
    cut = time.perf_counter() - t
    [job] = batch.jobs  # the round: every tile, one job shared by the workers
    results = [(tile, to_uint8(canvases.at(tile).init)) for tile in job.tiles]  # RGB, no mask
    t = time.perf_counter()
    blender = Blender(*size, o.tile_overlap)
    for tile, result in results:
        blender.add(tile, result)
    pixels = to_uint8(blender.result())
    blend = time.perf_counter() - t
    t = time.perf_counter()
    stats = lab_stats(pixels)  # the driver's part of colour coherence
    colour = time.perf_counter() - t
    t = time.perf_counter()
    ColourMap.between(stats, stats, scene.shots[0].frames.color_coherence)(pixels)
    colour_map = time.perf_counter() - t  # spread over the workers, one tile each
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        FrameStore(Path(tmp)).write(0, pixels)
        png = time.perf_counter() - t
        with VideoWriter(Path(tmp) / "v.mp4", 1920, 1080) as video:
            t = time.perf_counter()
            for _ in range(5):
                video.write(pixels)
            encode = (time.perf_counter() - t) / 5
    return {
        # A frame whose inputs the driver makes (a shot's first, cadence, video): it warps it whole and
        # quantises its canvases; a later frame's tiles are warped by their workers.
        "warp_whole_frame_s": round(warp, 4),
        "cut_tiles_and_quantise_s": round(cut, 4),
        "canvas_bytes_per_round": sum(
            {id(p): p.nbytes for p in (canvases.start, canvases.content) if p is not None}.values()
        ),
        # Every frame: its tiles blended once all are back, its colour statistics (and the frame into
        # the object store for the next frame's workers, not timed here).
        "blend_tiles_s": round(blend, 4),
        "colour_statistics_s": round(colour, 4),
        "on_critical_path_s": round(blend + colour, 4),
        "colour_map_in_workers_s": round(colour_map, 4),
        "png_write_s": round(png, 4),
        "encode_s": round(encode, 4),
        "off_critical_path_s (writer thread)": round(png + encode, 4),
    }


def plan_settings():
    from engine.stylize import Settings

    return Settings(iterations=10, min_size=1920)


def render_each(
    scene_path: Path, counts: list[int], tmp: Path, address: str | None = None, device: str = "cpu"
) -> dict[int, dict]:
    """Render the scene afresh with each worker count; steady seconds per frame and wall time."""
    scene = load_scene(scene_path)
    results = {}
    for n in counts:
        out = tmp / f"w{n}.render"
        start, sampler = time.perf_counter(), BusySampler()
        sampler.start()
        init_ray(address)
        worker = FrameWorker if device == "cuda" else SleepWorker  # real jobs on a GPU; here, stand-ins
        render_scene(scene, out, address=address, device=device, pool=ray_pool(None, device, n, worker))
        wall = time.perf_counter() - start
        sampler.stop.set()
        sampler.join()
        ray.shutdown()
        done, _ = completions(out)
        busy, driver = sampler.between(done[0], done[-1])
        results[n] = steady(out) | {
            "wall_s": round(wall, 1),
            # Every process of the simulated cluster shares this machine's cores: when this is near 1
            # over the steady frames, seconds_per_frame measures the machine, not the scheduler.
            "steady_machine_cpu_busy": round(busy / ((done[-1] - done[0]) * (os.cpu_count() or 1)), 3),
            "steady_machine_cpu_s_per_frame": round(busy / (len(done) - 1), 3),
            # The driver's CPU time (all its threads) per frame: on a real cluster, where workers have
            # CPUs of their own, the frame rate cannot pass 1 / this.
            "steady_driver_cpu_s_per_frame": round(driver / (len(done) - 1), 3),
        }
    return results


def machine_busy_seconds() -> float:
    """CPU seconds this machine has spent busy (all cores, all processes) since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=7)
    parser.add_argument("--gpu-seconds", type=float, default=1.5, help="per megapixel and 10 iterations")
    parser.add_argument("--workers", default=None, help="default 1,2,4,8 (--gpu: 1,2,4)")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--gpu", action="store_true", help="real workers sharing this machine's GPU")
    args = parser.parse_args()
    SleepWorker.seconds_per_megapixel = args.gpu_seconds
    counts = [int(n) for n in (args.workers or ("1,2,4" if args.gpu else "1,2,4,8")).split(",")]
    blank = FrameWork(1, (1080, 1920), plan_settings(), None, None, (1.0,), 1, args.tile, args.overlap)
    tiles = blank.tile_round(0).tiles
    report = {
        "date": datetime.date.today().isoformat(),
        "frame": f"1920x1080, tiles {args.tile} overlap {args.overlap}",
        "tiles_per_frame": len(tiles),
    }
    with tempfile.TemporaryDirectory() as tmp:
        scene_path = Path(tmp) / "zoom1080.toml"
        scene_path.write_text(SCENE.format(frames=args.frames, tile=args.tile, overlap=args.overlap))
        if args.gpu:
            results = render_each(scene_path, counts, Path(tmp), device="cuda")
            one = results[counts[0]]["seconds_per_frame"]  # counts[0] is 1: one actor alone
            megapixels = sum(t.size[0] * t.size[1] for t in tiles) / 1e6
            for r in results.values():
                r["tiles_per_second"] = round(len(tiles) / r["seconds_per_frame"], 2)
                r["throughput_vs_one_actor"] = round(one / r["seconds_per_frame"], 3)
                r["gpu_busy"] = round(r["job_seconds_per_frame"] / r["seconds_per_frame"], 3)
            print(json.dumps(report | {
                "machine": f"{torch.cuda.get_device_name()}, {os.cpu_count()} cpus, local Ray",
                "actors_sharing_one_gpu": results,
                # What the sleep stands in for: a job's own time, as one worker measured it.
                "gpu_seconds_per_megapixel_10_iterations": round(
                    results[counts[0]]["job_seconds_per_frame"] / megapixels, 3
                ),
            }, indent=2))  # fmt: skip
            return
        # All simulated nodes run on this machine (Ray binds them to its own interface address; the
        # cluster utility does not start on the loopback address). Nothing leaves the machine.
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
        for _ in range(max(counts)):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        results = render_each(scene_path, counts, Path(tmp), cluster.address)
        overhead = driver_overhead(scene_path, Path(tmp) / f"w{counts[0]}.render")
        cluster.shutdown()
    base = results[counts[0]]["seconds_per_frame"] * counts[0]
    for n, r in results.items():
        r["efficiency"] = round(base / (n * r["seconds_per_frame"]), 3)
    print(json.dumps(report | {
        "machine": f"{os.cpu_count()} cpus, simulated {max(counts)}-node Ray cluster",
        "gpu_seconds_per_megapixel_10_iterations": args.gpu_seconds,
        "scaling": results,
        "driver_per_frame": overhead,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
