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
import json
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
from render.atomic import write_text
from render.cadence import is_key
from render.coherence import Coherence, lab_stats
from render.folder import PROGRESS as PROGRESS_FILE
from render.folder import render_lock
from render.frames import Camerawork, WarpedFrame
from render.images import resolve, to_uint8
from render.inputs import scene_inputs
from render.job import frame_settings
from render.network import auto_precision, load_network, resolve_device
from render.patches import PatchWork
from render.plan import FRAME_KEYS, FramePlan
from render.scene import Scene
from render.store import FrameStore
from render.tiled import FrameWork
from render.video import VideoWriter
from render.video_input import VideoSource, Videowork

from .address import cluster_to_join
from .flight import Flight
from .manifest import Manifest
from .outdir import check_outdir, complete_frames, open_outdir
from .pool import WorkerPool, WorkerStats
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
    actor_class: type = FrameWorker,
) -> Path:
    """Render every frame not yet complete in `outdir`, then finalise the video. Returns its path.
    `say` hears where a render resumes, and that a finished one is complete.

    Everything the user gave is checked before the folder is touched; then the folder is locked for
    this render alone, and only then changed."""
    inputs = scene_inputs(scene)  # every schedule, image and video, before any compute
    plans, styles, starts = inputs.plans, inputs.styles, inputs.starts
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be at least 1, not {workers}")
    if weights is not None:
        load_network(weights)  # a bad file is the user's error: say so now, not after workers retry it
    old = check_outdir(scene, outdir, fresh, repair)
    if old is not None and not (fresh or repair) and finished(old, scene, outdir):
        say(f"{outdir}: complete: all {old.frame_count} frames and the video; nothing to render")
        return outdir / old.video
    created = not outdir.exists()
    outdir.mkdir(parents=True, exist_ok=True)
    try:
        with render_lock(outdir):
            init_ray(address)
            manifest = open_outdir(scene, outdir, fresh, repair)
            if (busy := busy_cores()) is not None:
                say(busy)
            return _render(scene, plans, styles, starts, outdir, manifest, address, device, weights, workers,
                           on_status, say, actor_class)  # fmt: skip
    finally:
        if created:
            with contextlib.suppress(OSError):
                outdir.rmdir()  # only if nothing was written: a render that failed at the start


def _render(
    scene: Scene,
    plans: list[FramePlan],
    styles: list[Tensor],
    starts: list[Tensor | None],
    outdir: Path,
    manifest: Manifest,
    address: str | None,
    device: str,
    weights: Path | None,
    workers: int | None,
    on_status: Callable[[RenderStatus], None] | None,
    say: Callable[[str], None],
    actor_class: type,
) -> Path:
    size = (scene.output.height, scene.output.width)
    store = FrameStore(outdir)
    done = complete_frames(store, manifest, size)
    manifest.frames = {t: r for t, r in manifest.frames.items() if t in done}  # the rest is re-rendered
    manifest.video_bytes = 0  # not final until this render finalises it
    if done:
        say(f"resuming: {len(done)} of {scene.frame_count} frames are done; rendering the other "
            f"{scene.frame_count - len(done)}")  # fmt: skip
    local = cluster_to_join(address) is None  # the device is this machine's only in a Ray of its own
    base = Settings(precision=auto_precision(resolve_device(device) if local else "cpu"))

    o = scene.output

    def make_work(plan: FramePlan, init: Tensor | None, content: Tensor | None) -> FrameWork | PatchWork:
        loss_weights = {k: getattr(plan, k) for k in FRAME_KEYS[1:]}
        frames = scene.shots[plan.shot].frames
        settings = frame_settings(base, plan.local, size, plan.iterations, **loss_weights)
        settings = replace(settings, preserve_colors=frames.preserve_colors, average=frames.average)
        if scene.patches is not None:
            return PatchWork(plan.index, size, settings, init, content, plan.style_weights, scene.seed,
                             scene.patches)  # fmt: skip
        return FrameWork(plan.index, size, settings, init, content, plan.style_weights, scene.seed,
                         tile=o.tile, overlap=o.tile_overlap)  # fmt: skip

    style_stats = [lab_stats(to_uint8(resize_long_side(s, 256))) for s in styles]
    flights = []
    for number, shot in enumerate(scene.shots):
        shot_plans = [p for p in plans if p.shot == number]
        if shot.start.video is not None:
            camera = Videowork(size, VideoSource(resolve(shot.start.video, scene.base), size))
        else:
            camera = Camerawork(size, starts[number], shot.camera.border, shot.frames.anchor)
        resume, cadence = 0, shot.frames.cadence
        while resume < len(shot_plans) and shot_plans[resume].index in done:
            resume += 1
        while resume and not is_key(resume - 1, len(shot_plans), cadence):
            resume -= 1  # a cadence restarts from a keyframe; the frames after it come out the same
            done.discard(shot_plans[resume].index)
            manifest.frames.pop(shot_plans[resume].index, None)
        for plan in shot_plans[:resume]:
            camera.skip(plan)
        previous = store.read(shot_plans[resume - 1].index) if resume else None
        first = shot_plans[0].index
        coherence = Coherence(shot.frames.color_coherence, shot.frames.color_reference, style_stats,
                              lambda local, first=first: store.read(first + local))  # fmt: skip
        flights.append(Flight(shot_plans, camera, make_work, o.tile, resume, previous, scene.patches is None,
                              coherence, cadence))  # fmt: skip

    for shot, flight in zip(scene.shots, flights, strict=True):
        if flight.tiles_warp:  # its tiles' workers warp their own starts with this camera, sent once
            flight.shared_camera = ray.put(flight.camera.for_workers(shot.frames.content))
    pool = WorkerPool(*actor_factory(styles, str(weights) if weights else None, device, workers, actor_class))
    audio = resolve(o.audio, scene.base) if o.audio else None
    video = VideoWriter(outdir / manifest.video, o.width, o.height, Fraction(o.fps), o.codec, o.crf,
                        preset=o.preset, audio=audio)  # fmt: skip
    manifest.save(outdir)  # once everything that can refuse the render has run
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stylereel-writer")
    encoded = 0  # frames handed to the encoder, in order
    pending_writes: list[Future] = []

    def write(plan: FramePlan, pixels: np.ndarray, record: dict) -> None:
        nonlocal encoded
        record["sha256"] = store.write(plan.index, pixels)
        manifest.frames[plan.index] = record
        done.add(plan.index)
        manifest.save(outdir)
        while encoded in done:
            video.write(store.read(encoded) if encoded != plan.index else pixels)
            encoded += 1

    # The driver's tensor work is many small operations between Ray calls (cells of a blend, colour
    # statistics); torch's pool would parallelise each across cores, and its threads spin-wait after
    # every one: most of a core, taken from the workers beside the driver. One thread does it in less CPU.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        writer.submit(write_existing, video, store, done).result()
        encoded = _prefix(done)
        last_status = 0.0
        while not all(f.done for f in flights):
            for flight in flights:
                submit_batches(pool, flight.open())
            for job, pixels, record in pool.wait(POLL_SECONDS):
                flight = next(f for f in flights if any(fr.plan.index == job.frame for fr in f.frames))
                batches, finished = flight.result(job, pixels, record)
                submit_batches(pool, batches)  # the next jobs go out before any writing
                for plan, frame_pixels, frame_record in finished:
                    pending_writes.append(writer.submit(write, plan, frame_pixels, frame_record))
            for future in [f for f in pending_writes if f.done()]:
                future.result()  # a failed write stops the render here, not at the end
                pending_writes.remove(future)
            if on_status is not None and time.perf_counter() - last_status > 0.5:
                last_status = time.perf_counter()
                status = _status(flights, pool, manifest, len(done))
                on_status(status)
                _save_progress(outdir, status)
        writer.shutdown(wait=True)
        for future in pending_writes:
            future.result()
        video.close()
    except BaseException as e:
        writer.shutdown(wait=True, cancel_futures=True)
        video.close(e)
        raise
    finally:
        torch.set_num_threads(threads)
        (outdir / PROGRESS_FILE).unlink(missing_ok=True)
    if pool.warnings:
        manifest.warnings = pool.warnings
    manifest.video_bytes = (outdir / manifest.video).stat().st_size  # the video is final: see `finished`
    manifest.save(outdir)
    return outdir / manifest.video


def finished(manifest: Manifest, scene: Scene, outdir: Path) -> bool:
    """Whether a render of `scene` in `outdir` has nothing left to do: its video is the one it
    finalised (the size recorded then), made with these settings, and every frame is intact (the
    check a resume makes)."""
    video = outdir / manifest.video
    size = (scene.output.height, scene.output.width)
    return (
        manifest.video_bytes > 0
        and video.is_file()
        and video.stat().st_size == manifest.video_bytes
        and manifest.scene == scene.resolved()
        and len(complete_frames(FrameStore(outdir), manifest, size)) == manifest.frame_count
    )


def write_existing(video: VideoWriter, store: FrameStore, done: set[int]) -> None:
    """Frames already on disk at the start of the scene go into the video first."""
    for t in range(_prefix(done)):
        video.write(store.read(t))


def _prefix(done: set[int]) -> int:
    n = 0
    while n in done:
        n += 1
    return n


def submit_batches(pool: WorkerPool, batches: list) -> None:
    """Send jobs out; a batch's canvases go into the object store once, as uint8; its jobs crop them."""
    for jobs, start, content in batches:
        if isinstance(start, WarpedFrame):  # the previous frame, once; the content is the camera's ref
            pool.submit(jobs[0], (ray.put(start), content))
            continue
        start_ref = ray.put(to_uint8(start)) if start is not None else None
        content_ref = (
            start_ref if content is start else ray.put(to_uint8(content)) if content is not None else None
        )
        canvases = (start_ref, content_ref)  # feedback content is the start itself: stored once
        for job in jobs:
            pool.submit(job, canvases)


def _status(flights: list[Flight], pool: WorkerPool, manifest: Manifest, done: int) -> RenderStatus:
    active = [
        f"{fr.plan.index} r{fr.round} {len(fr.results)}/{len(fr.tiles)}" for fl in flights for fr in fl.frames
    ]
    progress = pool.progress()
    step, steps = (progress[0][1], progress[0][2]) if progress else (0, 0)
    return RenderStatus(manifest.frame_count, done, active, pool.stats, step, steps)


def _save_progress(outdir: Path, status: RenderStatus) -> None:
    workers = [
        {"name": w.name, "jobs": w.jobs, "busy_seconds": round(w.busy_seconds, 1), "failures": w.failures,
         "excluded": w.excluded, "current": w.current, "since": round(w.since, 1)}
        for w in status.workers
    ]  # fmt: skip
    data = {"time": time.time(), "done": status.done, "frames": status.frames, "active": status.active,
            "workers": workers}  # fmt: skip
    write_text(outdir / PROGRESS_FILE, json.dumps(data, indent=1))


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


def busy_cores(load: float | None = None, cores: int | None = None) -> str | None:
    """A warning when other work keeps this machine's cores busy (the last minute's load average at
    least its core count): renders then run several times slower, with no other sign of why."""
    load = os.getloadavg()[0] if load is None else load
    cores = cores or os.cpu_count() or 1
    if load < cores:
        return None
    return (
        f"warning: this machine's {cores} cores are busy (load {load:.1f}): rendering will be slower; "
        "see OMP_NUM_THREADS in the README"
    )
