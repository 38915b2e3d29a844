"""What a scene's frames cost on this machine: one real job, timed, then the scene's jobs priced from it.

`plan` used to multiply the scene's steps by a constant measured once on one 2-core machine; the
same machine then ran 2x faster or 6x slower from day to day (other work on its cores). Here the
engine itself runs one job of a few steps at the scene's frame size, on this machine as it is now,
with the precision and threads a render would use, and every optimised frame is priced from it: a
shot's first frame over its scales (a step costs in proportion to the pixels), later keyframes at
full size, tiles at their own size with their margins.
"""

from __future__ import annotations

import itertools
import statistics
import time
from dataclasses import dataclass, replace
from typing import Protocol

import torch

from engine.stylize import Precision, Settings, scales, schedule, stylize
from engine.targets import Features, StyleBank, StyleTargets, resize, resize_long_side

from .cadence import is_key
from .images import load_image
from .plan import FRAME_KEYS, FramePlan
from .scene import Scene
from .tiles import grid

STEPS = 8  # timed in one job: its steps' mean, and what the job costs besides them
# Jobs timed: a step's pace moves 0.13-0.23 s from one job to the next on an idle 2-core machine, with no
# trend (BENCHMARKS.md, "plan's estimate and the host's steal"); two jobs' mean once came out 30 % fast.
TIMED_JOBS = 6
# Seconds of jobs run before timing: a core that was idle runs its first second of work up to 2x
# faster than it sustains (BENCHMARKS.md, "plan's estimate"), and a render sustains it for minutes.
WARM_SECONDS = 4.0
MEASURE_SIDE = 256  # the long side measured at most: a step's cost follows the pixels above it
# One H100, float32 (BENCHMARKS.md, 2026-11-25): tile jobs of a 1080p frame took 0.705 s per megapixel
# and 10 iterations, set-up included; below 512x512 a step costs about 7.3 ms whatever the size (the
# GPU waits on kernel launches). Not measurable here: quoted for scale.
H100_SECONDS_PER_PIXEL_STEP = 0.705 / 10 / 1e6
H100_SECONDS_PER_STEP_AT_LEAST = 0.0073


class Pricing(Protocol):
    job: float  # seconds a job costs besides its steps
    first: float  # seconds a worker's first job costs besides that (once a render, one worker)

    def steps(self, n: int, pixels: int) -> float:
        """Seconds of `n` steps on a canvas of `pixels`."""
        ...


@dataclass(frozen=True)
class Rate:
    """This machine: `job` seconds a job costs whatever its steps (its targets, the first step's
    allocations), `step` seconds a step on a canvas of `pixels`, and `first` seconds more that a
    worker's first job costs (kernels chosen and built, buffers allocated), as a render's frame 0 does."""

    job: float
    step: float
    pixels: int
    first: float = 0.0

    def steps(self, n: int, pixels: int) -> float:
        return n * self.step * pixels / self.pixels  # a step's work follows the pixels


class H100:
    job = 0.0  # inside the 0.705 s per megapixel above
    first = 0.0  # not measured there

    def steps(self, n: int, pixels: int) -> float:
        return n * max(H100_SECONDS_PER_STEP_AT_LEAST, pixels * H100_SECONDS_PER_PIXEL_STEP)


def measure(
    size: tuple[int, int],
    style: torch.Tensor,
    features: Features,
    settings: Settings,
    device: str = "cpu",
    steps: int = STEPS,
    content: torch.Tensor | None = None,
    warm_seconds: float = WARM_SECONDS,
    timed_jobs: int = TIMED_JOBS,
) -> Rate:
    """Jobs of `steps` L-BFGS steps at (H, W) = `size` under `settings` (a later frame's: its loss
    weights, the temporal term), as a worker runs them once it has run one (style statistics cached,
    kernels built) and the machine's pace is the one it keeps: the mean of their steps (a render pays
    every hiccup too) and the rest. `content` is a picture (a render's own: the pace of a step depends
    on what it optimises, not only its size), else noise."""
    if content is None:
        content = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0))
    content = resize(content, size).to(device)
    temporal = (content, torch.ones(1, 1, *size, device=device))  # the warped previous frame, all valid
    bank = StyleBank([style.to(device)])
    settings = replace(settings, iterations=steps, min_size=max(size))

    def job(n: int, ticks: list[float]) -> None:
        def tick(progress: object) -> None:
            ticks.append(time.perf_counter())

        stylize(content, StyleTargets(bank), replace(settings, iterations=n), features=features,
                init=content, temporal=temporal, callback=tick)  # fmt: skip

    began = time.perf_counter()
    warm = began + warm_seconds
    job(steps, [])  # at least one: the first job builds what the others reuse
    first = time.perf_counter() - began
    while time.perf_counter() < warm:
        job(steps, [])
    jobs, intervals = [], []
    for _ in range(timed_jobs):
        ticks: list[float] = []
        began = time.perf_counter()
        job(steps, ticks)
        jobs.append(time.perf_counter() - began)
        intervals += [b - a for a, b in itertools.pairwise(ticks)]
    step, typical = statistics.fmean(intervals), statistics.median(jobs)
    return Rate(max(0.0, typical - steps * step), step, size[0] * size[1], max(0.0, first - typical))


def measured_rate(
    scene: Scene,
    plans: list[FramePlan],
    features: Features,
    precision: Precision,
    device: str = "cpu",
    warm_seconds: float = WARM_SECONDS,
) -> tuple[Rate, str]:
    """This machine's rate for `scene`, and how it was measured: jobs with a later frame's settings at
    the size its jobs run at (the frame, or a tile), at most `MEASURE_SIDE` on the long side, after
    `warm_seconds` of them (`measure`)."""
    o = scene.output
    h, w = min(o.height, o.tile), min(o.width, o.tile)
    scale = min(1.0, MEASURE_SIDE / max(h, w))
    size = (max(16, round(h * scale)), max(16, round(w * scale)))
    style = resize_long_side(load_image(next(iter(scene.styles.values())), scene.base), max(size))
    start = scene.shots[0].start.content
    content = load_image(start, scene.base) if start else style  # what the frames will look like
    later = plans[1] if len(plans) > 1 else plans[0]
    weights = {k: getattr(later, k) for k in FRAME_KEYS[1:]}
    settings = replace(Settings(precision=precision), **weights)
    rate = measure(size, style, features, settings, device, content=content, warm_seconds=warm_seconds)
    where = device if device != "cpu" else f"{torch.get_num_threads()} threads"
    how = f"{rate.step:.3g} s a step + {rate.job:.2g} s a job at {size[1]}x{size[0]}"
    how += f" (a worker's first, {rate.first:.2g} s more)"
    return rate, f"{how}, {precision.value}, {where}"


def estimate_seconds(scene: Scene, plans: list[FramePlan], pricing: Pricing) -> float:
    """Optimisation time of every frame `plans` lists, one worker, at `pricing`."""
    h, w = scene.output.height, scene.output.width
    o = scene.output
    total = pricing.first
    for p in plans:
        shot = scene.shots[p.shot]
        if not is_key(p.local, shot.length, shot.frames.cadence):
            continue  # a tween is warped, not optimised
        total += pricing.job
        if scene.patches is not None:
            total += pricing.steps(scene.patches.rounds * scene.patches.steps, scene.patches.size**2)
            continue
        sizes = scales((h, w), Settings().min_size, Settings().scale_step) if p.local == 0 else [(h, w)]
        for (sh, sw), n in zip(sizes, schedule(p.iterations, len(sizes)), strict=True):
            total += _canvas_seconds(sh, sw, o.tile, o.tile_overlap, n, pricing)
    return total


def _canvas_seconds(h: int, w: int, tile: int, overlap: int, n: int, pricing: Pricing) -> float:
    """`n` steps over an (h, w) canvas: whole, or its tiles (their margins included) above `tile`."""
    if max(h, w) <= tile:
        return pricing.steps(n, h * w)
    return sum(pricing.steps(n, (t.y1 - t.y0) * (t.x1 - t.x0)) for t in grid(h, w, tile, overlap))
