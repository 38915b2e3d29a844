"""The driver: walks a scene's frames in order, farms each frame to a worker, writes and encodes.

The driver owns all state that matters (frames on disk, manifest, video);
workers hold only caches. Frame t starts from frame t−1 exactly as written
to disk (uint8), so a resumed render equals an uninterrupted one.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import ray

from engine.stylize import Settings
from render.frames import Camerawork
from render.images import from_uint8, load_image
from render.job import FrameJob, frame_seed, frame_settings
from render.network import auto_precision, resolve_device
from render.plan import FramePlan, plan_scene
from render.scene import Scene
from render.store import FrameStore
from render.video import VideoWriter

from .manifest import NAME as MANIFEST
from .manifest import Manifest, scene_changes
from .worker import start_workers

POLL_SECONDS = 0.25


@dataclass
class RenderStatus:
    frame: int  # frame being rendered
    frames: int  # frames in the scene
    done: int  # frames complete on disk
    step: int  # iteration within the frame
    steps: int
    seconds_per_frame: float | None


def default_outdir(scene: Scene) -> Path:
    return scene.base / f"{scene.stem}.render"


def completed_frames(store: FrameStore, manifest: Manifest | None, size: tuple[int, int]) -> int:
    """Length of the prefix of frames that are on disk, decode, and match the manifest's hashes."""
    if manifest is None:
        return 0
    for t in range(manifest.frame_count):
        record = manifest.frames.get(t)
        if record is None or store.read(t, size, record.get("sha256")) is None:
            return t
    return manifest.frame_count


def prepare_outdir(scene: Scene, outdir: Path, fresh: bool) -> Manifest:
    """Check the output folder against the scene before anything is written; return the manifest to use."""
    resolved = scene.resolved()
    old = Manifest.load(outdir) if outdir.is_dir() else None
    if old is not None and old.scene_hash != scene.digest() and not fresh:
        changes = scene_changes(old.scene, resolved)
        raise ValueError(
            f"{outdir} was rendered from a different scene ({'; '.join(changes[:5]) or 'settings differ'}); "
            "use --fresh to start over or -o for another folder"
        )
    if old is not None and not fresh:
        return old
    if fresh and outdir.is_dir():
        shutil.rmtree(outdir / "frames", ignore_errors=True)
        (outdir / MANIFEST).unlink(missing_ok=True)
    return Manifest(scene.digest(), resolved, scene.seed, scene.frame_count, f"{scene.stem}.mp4")


def render_scene(
    scene: Scene,
    outdir: Path,
    *,
    address: str | None = None,
    fresh: bool = False,
    device: str = "auto",
    weights: Path | None = None,
    on_status: Callable[[RenderStatus], None] | None = None,
) -> Path:
    """Render every frame not yet complete in `outdir`, then finalise the video. Returns its path."""
    plans = plan_scene(scene)  # every schedule is checked before any compute
    styles = [load_image(source, scene.base) for source in scene.styles.values()]
    content = load_image(scene.start.content, scene.base) if scene.start.content else None
    manifest = prepare_outdir(scene, outdir, fresh)
    outdir.mkdir(parents=True, exist_ok=True)
    manifest.save(outdir)

    size = (scene.output.height, scene.output.width)
    store = FrameStore(outdir)
    done = completed_frames(store, manifest, size)
    manifest.frames = {t: r for t, r in manifest.frames.items() if t < done}  # the rest is re-rendered
    base = Settings(precision=auto_precision(resolve_device(device)))
    camera = Camerawork(size, content, scene.camera.border)
    for plan in plans[:done]:
        camera.skip(plan)

    _init_ray(address)
    worker = start_workers(styles, str(weights) if weights else None, device)[0]
    out = outdir / manifest.video
    with VideoWriter(out, scene.output.width, scene.output.height, Fraction(scene.output.fps),
                     scene.output.codec, scene.output.crf) as video:  # fmt: skip
        previous = None
        for t in range(done):  # frames already on disk go into the video first
            frame = store.read(t)
            video.write(frame)
            previous = frame
        for plan in plans[done:]:
            inputs = camera.advance(plan, from_uint8(previous) if previous is not None else None)
            job = FrameJob(
                plan.index, size, inputs.init, inputs.content, plan.style_weights,
                _settings(base, plan, size), frame_seed(scene.seed, plan.index),
            )  # fmt: skip
            frame, record = _run(worker, job, manifest, on_status)
            record["sha256"] = store.write(plan.index, frame)
            if inputs.mask is not None:
                record["revealed"] = round(
                    1 - float(inputs.mask.mean()), 4
                )  # share of pixels the camera brought in
            manifest.frames[plan.index] = record
            manifest.save(outdir)
            video.write(frame)
            previous = frame
    return out


def _settings(base: Settings, plan: FramePlan, size: tuple[int, int]) -> Settings:
    weights = {
        "content_weight": plan.content_weight,
        "style_weight": plan.style_weight,
        "tv_weight": plan.tv_weight,
    }
    return frame_settings(base, plan.index, size, plan.iterations, **weights)


def _run(worker, job: FrameJob, manifest: Manifest, on_status) -> tuple:
    """Submit one frame and wait, polling the worker's progress for the status line."""
    ref = worker.render.remote(job)
    times = [r["seconds"] for r in manifest.frames.values() if "seconds" in r]
    per_frame = sum(times) / len(times) if times else None
    while True:
        ready, _ = ray.wait([ref], timeout=POLL_SECONDS)
        if ready:
            return ray.get(ref)
        if on_status is not None:
            index, step, steps, _ = ray.get(worker.progress.remote())
            if index != job.index:
                step, steps = 0, job.settings.iterations
            on_status(
                RenderStatus(job.index, manifest.frame_count, len(manifest.frames), step, steps, per_frame)
            )


def _init_ray(address: str | None) -> None:
    if ray.is_initialized():
        return
    # Workers import the project from the driver's working directory tree.
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    kwargs = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False,
              "configure_logging": True}  # fmt: skip
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(num_cpus=os.cpu_count(), **kwargs)
