"""The driver: walks each shot's frames in order, farms each frame's jobs to the worker pool, writes, encodes.

The driver owns all state that matters (frames on disk, manifest, video);
workers hold only caches. Frame t starts from frame t−1 exactly as written to
disk (uint8), so a resumed render equals an uninterrupted one. Shots are
independent chains, in flight side by side. Writing PNGs, the manifest and the
video happens on a writer thread, off the path from one frame's last tile to
the next frame's first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import ray
import torch
from torch import Tensor

from engine.stylize import Settings
from engine.targets import resize_long_side
from render.cadence import is_key
from render.coherence import Coherence, lab_stats
from render.frames import ShotCamera
from render.images import resolve, to_uint8
from render.job import frame_settings
from render.manifest import Manifest
from render.network import auto_precision, load_network, resolve_device
from render.patches import PatchWork
from render.plan import FRAME_KEYS, FramePlan
from render.render_folder import Progress, RenderFolder, WorkerProgress
from render.scene import Scene
from render.scene_inputs import SceneInputs, scene_inputs
from render.tiled import FrameWork
from render.video import VideoWriter
from render.video_input import VideoCamera, VideoSource
from render.work import Work

from .address import cluster_to_join
from .flight import Flight
from .host import CpuTimes, busy_cores, steal_since
from .outdir import check_outdir, open_outdir
from .pool import Pool, WorkerPool, WorkerStats
from .worker import FrameWorker, actor_factory

POLL_SECONDS = 0.1


@dataclass
class RenderStatus:
    frames: int  # frames in the scene
    done: int  # frames complete on disk
    active: list[str]  # where each frame in flight is, e.g. "12 r1 5/15"
    workers: list[WorkerStats]
    step: int = 0  # iteration of the first worker's job
    steps: int = 0


# How a render gets its workers: given the style images (every worker holds them), a started pool.
PoolFactory = Callable[[list[Tensor]], Pool]


def ray_pool(
    weights: Path | None, device: str, workers: int | None, actor_class: type = FrameWorker
) -> PoolFactory:
    """Workers as Ray actors (on the Ray this process has joined): one per GPU, or `workers`."""

    def start(styles: list[Tensor]) -> Pool:
        path = str(weights) if weights else None
        return WorkerPool(*actor_factory(styles, path, device, workers, actor_class))

    return start


def render_scene(
    scene: Scene,
    outdir: Path,
    *,
    address: str | None = None,
    fresh: bool = False,
    repair: bool = False,
    device: str = "auto",
    weights: Path | None = None,
    workers: int | None = None,
    on_status: Callable[[RenderStatus], None] | None = None,
    say: Callable[[str], None] = lambda message: None,
    pool: PoolFactory | None = None,
) -> Path:
    """Render every frame not yet complete in `outdir`, then finalise the video. Returns its path.
    `say` hears where a render resumes, and that a finished one is complete. The jobs run on `pool`
    (default: Ray actors, on the Ray `address` names, `cluster_to_join`).

    Everything the user gave is checked before the folder is touched; then the folder is locked for
    this render alone, and only then changed."""
    inputs = _checked_inputs(scene, workers, weights)
    folder = RenderFolder(outdir)
    old = check_outdir(scene, outdir, fresh, repair)
    if old is not None and not (fresh or repair) and old.scene == scene.resolved() and folder.finished(old):
        say(f"{outdir}: complete: all {old.frame_count} frames and the video; nothing to render")
        return folder.video(old)
    local = cluster_to_join(address) is None  # the device is this machine's only in a Ray of its own
    busy = busy_cores("rendering will be slower") if local else None  # before our Ray and workers start
    created = not outdir.exists()
    outdir.mkdir(parents=True, exist_ok=True)
    try:
        with folder.lock():
            if pool is None:
                init_ray(address)
                pool = ray_pool(weights, device, workers)
            manifest = open_outdir(scene, outdir, fresh, repair)
            if busy is not None:
                say(busy)
            began = CpuTimes.now() if local else None  # a cluster's workers run on other hosts
            base = Settings(precision=auto_precision(resolve_device(device) if local else "cpu"))
            done = _resumable(folder, manifest, say)
            flights = _flights(scene, inputs, folder, manifest, done, _work_maker(scene, base))
            video = _render(scene, inputs.styles, folder, manifest, done, flights, pool, on_status)
            slower = "it ran slower than on an idle host, and than `plan` estimated"
            if (stole := steal_since(began, "during this render", slower)) is not None:
                say(stole)
            return video
    finally:
        if created:
            with contextlib.suppress(OSError):
                outdir.rmdir()  # only if nothing was written: a render that failed at the start


def _checked_inputs(scene: Scene, workers: int | None, weights: Path | None) -> SceneInputs:
    """Every schedule, image and video of the scene, and the options, checked before any compute."""
    inputs = scene_inputs(scene)
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be at least 1, not {workers}")
    if weights is not None:
        load_network(weights)  # a bad file is the user's error: say so now, not after workers retry it
    return inputs


def _resumable(folder: RenderFolder, manifest: Manifest, say: Callable[[str], None]) -> set[int]:
    """The frames already done, intact, on disk; the manifest keeps only their records."""
    done = folder.complete_frames(manifest)
    manifest.frames = {t: r for t, r in manifest.frames.items() if t in done}  # the rest is re-rendered
    manifest.video_bytes = 0  # not final until this render finalises it
    if done:
        say(f"resuming: {len(done)} of {manifest.frame_count} frames are done; rendering the other "
            f"{manifest.frame_count - len(done)}")  # fmt: skip
    return done


def _work_maker(scene: Scene, base: Settings) -> Callable[[FramePlan, Tensor | None, Tensor | None], Work]:
    """How a frame's Work is made from its plan and inputs: tiles, or patches."""
    o = scene.output
    size = (o.height, o.width)

    def make_work(plan: FramePlan, init: Tensor | None, content: Tensor | None) -> Work:
        loss_weights = {k: getattr(plan, k) for k in FRAME_KEYS[1:]}
        frames = scene.shots[plan.shot].frames
        settings = frame_settings(base, plan.local, size, plan.iterations, **loss_weights)
        settings = replace(settings, preserve_colors=frames.preserve_colors, average=frames.average)
        if scene.patches is not None:
            return PatchWork(plan.index, size, settings, init, content, plan.style_weights, scene.seed,
                             scene.patches)  # fmt: skip
        return FrameWork(plan.index, size, settings, init, content, plan.style_weights, scene.seed,
                         tile=o.tile, overlap=o.tile_overlap)  # fmt: skip

    return make_work


def _flights(
    scene: Scene,
    inputs: SceneInputs,
    folder: RenderFolder,
    manifest: Manifest,
    done: set[int],
    make_work: Callable[[FramePlan, Tensor | None, Tensor | None], Work],
) -> list[Flight]:
    """Each shot's chain of frames, from where it resumes: after its last frame done, or with a
    cadence after its last keyframe (the frames after it come out the same)."""
    size = (scene.output.height, scene.output.width)
    store = folder.frames
    style_stats = [lab_stats(to_uint8(resize_long_side(s, 256))) for s in inputs.styles]
    flights = []
    for number, shot in enumerate(scene.shots):
        shot_plans = [p for p in inputs.plans if p.shot == number]
        if shot.start.video is not None:
            camera = VideoCamera(size, VideoSource(resolve(shot.start.video, scene.base), size))
        else:
            camera = ShotCamera(size, inputs.starts[number], shot.camera.border, shot.frames.anchor)
        resume, cadence = 0, shot.frames.cadence
        while resume < len(shot_plans) and shot_plans[resume].index in done:
            resume += 1
        while resume and not is_key(resume - 1, len(shot_plans), cadence):
            resume -= 1
            done.discard(shot_plans[resume].index)
            manifest.frames.pop(shot_plans[resume].index, None)
        for plan in shot_plans[:resume]:
            camera.skip(plan)
        previous = store.read(shot_plans[resume - 1].index) if resume else None
        first = shot_plans[0].index
        coherence = Coherence(shot.frames.color_coherence, shot.frames.color_reference, style_stats,
                              lambda local, first=first: store.read(first + local))  # fmt: skip
        flights.append(Flight(plans=shot_plans, camera=camera, make_work=make_work, tile=scene.output.tile,
                              next_index=resume, previous=previous, tiles_warp=scene.patches is None,
                              coherence=coherence, cadence=cadence))  # fmt: skip
    return flights


class FrameSink:
    """Where finished frames go, on a thread beside the driver's: each frame's PNG, its record in the
    manifest, and the video, which takes the frames in order as soon as there is no gap before them.
    A failed write stops the render at the next `check`, not at the end."""

    def __init__(self, folder: RenderFolder, manifest: Manifest, video: VideoWriter, done: set[int]) -> None:
        self.folder, self.manifest, self.video, self.done = folder, manifest, video, done
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stylereel-writer")
        self._pending: list[Future] = []
        self._encoded = 0  # frames handed to the encoder, in order

    def start(self) -> None:
        """The frames already on disk at the start go into the video first."""
        self._writer.submit(self._encode, None).result()

    def put(self, plan: FramePlan, pixels: np.ndarray, record: dict) -> None:
        self._pending.append(self._writer.submit(self._write, plan, pixels, record))

    def check(self) -> None:
        for future in [f for f in self._pending if f.done()]:
            future.result()
            self._pending.remove(future)

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        for future in self._pending:
            future.result()
        self.video.close()

    def abort(self, error: BaseException) -> None:
        """Stop: the frames written stay; the video so far is discarded."""
        self._writer.shutdown(wait=True, cancel_futures=True)
        self.video.close(error)

    def _write(self, plan: FramePlan, pixels: np.ndarray, record: dict) -> None:
        record["sha256"] = self.folder.frames.write(plan.index, pixels)
        self.manifest.frames[plan.index] = record
        self.done.add(plan.index)
        self.folder.save_manifest(self.manifest)
        self._encode((plan.index, pixels))

    def _encode(self, latest: tuple[int, np.ndarray] | None) -> None:
        while (t := self._encoded) in self.done:
            fresh = latest is not None and latest[0] == t  # the frame just written: no need to read it back
            self.video.write(latest[1] if fresh else self.folder.frames.read(t))
            self._encoded += 1


def _render(
    scene: Scene,
    styles: list[Tensor],
    folder: RenderFolder,
    manifest: Manifest,
    done: set[int],
    flights: list[Flight],
    start_pool: PoolFactory,
    on_status: Callable[[RenderStatus], None] | None,
) -> Path:
    """Drive the flights on the pool into the frame sink, then finalise the manifest and video."""
    pool = start_pool(styles)
    for shot, flight in zip(scene.shots, flights, strict=True):
        if flight.tiles_warp:  # its tiles' workers warp their own starts with this camera, sent once
            flight.camera_for_workers = pool.share(flight.camera.for_workers(shot.frames.content))
    o = scene.output
    audio = resolve(o.audio, scene.base) if o.audio else None
    video = VideoWriter(folder.video(manifest), o.width, o.height, Fraction(o.fps), o.codec, o.crf,
                        preset=o.preset, audio=audio)  # fmt: skip
    folder.save_manifest(manifest)  # once everything that can refuse the render has run
    sink = FrameSink(folder, manifest, video, done)
    # The driver's tensor work is many small operations between Ray calls (cells of a blend, colour
    # statistics); torch's pool would parallelise each across cores, and its threads spin-wait after
    # every one: most of a core, taken from the workers beside the driver. One thread does it in less CPU.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        sink.start()
        _drive(flights, pool, sink, folder, on_status)
        sink.close()
    except BaseException as e:
        sink.abort(e)
        raise
    finally:
        torch.set_num_threads(threads)
        folder.clear_progress()
    if pool.warnings:
        manifest.warnings = pool.warnings
    manifest.video_bytes = folder.video(manifest).stat().st_size  # final: see RenderFolder.finished
    folder.save_manifest(manifest)
    return folder.video(manifest)


def _drive(
    flights: list[Flight],
    pool: Pool,
    sink: FrameSink,
    folder: RenderFolder,
    on_status: Callable[[RenderStatus], None] | None,
) -> None:
    """Until every shot is done: open frames, send their jobs, take results (the next jobs go out
    before any writing), hand finished frames to the sink, report progress twice a second."""
    last_status = 0.0
    while not all(f.done for f in flights):
        for flight in flights:
            for batch in flight.open():
                pool.submit(batch)
        for job, result, record in pool.wait(POLL_SECONDS):
            flight = next(f for f in flights if any(fr.plan.index == job.frame for fr in f.frames))
            batches, finished = flight.result(job, result, record)
            for batch in batches:
                pool.submit(batch)
            for plan, pixels, frame_record in finished:
                sink.put(plan, pixels, frame_record)
        sink.check()
        if on_status is not None and time.perf_counter() - last_status > 0.5:
            last_status = time.perf_counter()
            status = _status(flights, pool, sink.manifest, len(sink.done))
            on_status(status)
            folder.save_progress(_progress(status))


def _status(flights: list[Flight], pool: Pool, manifest: Manifest, done: int) -> RenderStatus:
    active = [
        f"{fr.plan.index} r{fr.round} {len(fr.results)}/{len(fr.tiles)}" for fl in flights for fr in fl.frames
    ]
    progress = pool.progress()
    step, steps = (progress[0][1], progress[0][2]) if progress else (0, 0)
    return RenderStatus(manifest.frame_count, done, active, pool.stats, step, steps)


def _progress(status: RenderStatus) -> Progress:
    """The progress file's record of `status`, now."""
    workers = [
        WorkerProgress(w.name, w.jobs, round(w.busy_seconds, 1), w.failures, w.excluded, w.current,
                       round(w.since, 1))
        for w in status.workers
    ]  # fmt: skip
    return Progress(time.time(), status.done, status.frames, status.active, workers)


def init_ray(address: str | None) -> None:
    """Join the cluster that --address names, else RAY_ADDRESS (as inside `ray job submit`), or start a
    Ray of this process's own (`--address local`, or neither); see `address.cluster_to_join`."""
    if ray.is_initialized():
        return
    from .address import JOB_CONFIG, cluster_to_join, runtime_env_for

    kwargs = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False}
    target = cluster_to_join(address)
    if target is not None:
        # Nodes need only the dependencies: the project's own packages travel with the job.
        import cluster
        import engine
        import render

        if target.address.split("://")[-1].startswith(("127.", "localhost")):
            kwargs["_node_ip_address"] = (
                "127.0.0.1"  # a cluster on this machine's loopback (tests, benchmarks)
            )
        runtime_env, lists_job_modules = runtime_env_for([engine, render, cluster])
        if lists_job_modules:  # the job's py_modules and ours: ray.init refuses a key both have unless told
            os.environ["RAY_OVERRIDE_JOB_RUNTIME_ENV"] = "1"
        try:
            ray.init(address=target.address, runtime_env=runtime_env, **kwargs)
        except (ConnectionError, ray.exceptions.AuthenticationError) as e:
            why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ValueError(f"{target.given}: cannot join the Ray cluster: {why}") from None
    else:
        # A Ray of our own on this machine only: "local" ignores a cluster that `ray start` (or a
        # stale /tmp/ray/ray_current_cluster) advertises, which ray.init() would otherwise join. Inside
        # a submitted job (--address local) it must not take the job's runtime_env too: its working_dir
        # is a package in the cluster's store, which our Ray's workers would fail to download.
        os.environ.pop(JOB_CONFIG, None)
        ray.init(address="local", num_cpus=os.cpu_count(), _node_ip_address="127.0.0.1", **kwargs)
    if threading.current_thread() is threading.main_thread():
        # Ray's own handler exits at once, mid-write; SIGTERM stops a render as Ctrl-C does: the frames
        # written stay, the video so far is discarded, and running the command again resumes.
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
