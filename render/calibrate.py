"""What a scene's frames cost on this machine: a few real optimiser steps, timed, then the scene's steps.

`plan` used to multiply the scene's steps by a constant measured once on one 2-core machine; the
same machine then ran 2x faster or 6x slower from day to day (other work on its cores). Here the
engine itself runs a few steps at the scene's frame size, on this machine as it is now, with the
precision and threads a render would use, and every optimised frame's steps are priced from them:
a shot's first frame over its scales (a step costs in proportion to the pixels), later keyframes at
full size, tiles at their own size with their margins.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from engine.stylize import Precision, Settings, scales, schedule, stylize
from engine.targets import Features, StyleBank, StyleTargets, resize_long_side

from .cadence import is_key
from .images import load_image
from .plan import FramePlan
from .scene import Scene
from .tiles import grid

STEPS = 3  # timed, after one that warms the caches up
MEASURE_SIDE = 256  # the long side measured at most: a step's cost follows the pixels above it
# One H100, float32 (BENCHMARKS.md, 2026-11-25): tile jobs of a 1080p frame took 0.705 s per megapixel
# and 10 iterations, set-up included; below 512x512 a step costs about 7.3 ms whatever the size (the
# GPU waits on kernel launches). Not measurable here: quoted for scale.
H100_SECONDS_PER_PIXEL_STEP = 0.705 / 10 / 1e6
H100_SECONDS_PER_STEP_AT_LEAST = 0.0073


def h100_step(pixels: int) -> float:
    return max(H100_SECONDS_PER_STEP_AT_LEAST, pixels * H100_SECONDS_PER_PIXEL_STEP)


def measured_step(
    scene: Scene, features: Features, precision: Precision, device: str = "cpu"
) -> tuple[Callable[[int], float], str]:
    """This machine's step time for `scene`, as a function of the canvas's pixels, and how it was
    measured: `STEPS` steps at the size its jobs run at (the frame, or a tile), at most `MEASURE_SIDE`
    on the long side, scaled by pixels beyond it."""
    o = scene.output
    h, w = min(o.height, o.tile), min(o.width, o.tile)
    scale = min(1.0, MEASURE_SIDE / max(h, w))
    size = (max(16, round(h * scale)), max(16, round(w * scale)))
    style = resize_long_side(load_image(next(iter(scene.styles.values())), scene.base), max(size))
    seconds = seconds_per_step(size, style, features, precision, device)
    per_pixel = seconds / (size[0] * size[1])
    threads = torch.get_num_threads()
    where = device if device != "cpu" else f"{threads} threads"
    how = f"{seconds:.3g} s a step at {size[1]}x{size[0]} in {precision.value}, {where}"
    return (lambda pixels: per_pixel * pixels), how


def seconds_per_step(
    size: tuple[int, int],
    style: torch.Tensor,
    features: Features,
    precision: Precision,
    device: str = "cpu",
    steps: int = STEPS,
) -> float:
    """Seconds one L-BFGS step takes at (H, W) = `size` on this machine: the mean of `steps`."""
    content = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0)).to(device)
    style = style.to(device)
    settings = Settings(iterations=steps + 1, min_size=max(size), precision=precision)
    ticks: list[float] = []
    with torch.no_grad():
        targets = StyleTargets(StyleBank([style]))
    stylize(content, targets, settings, features=features, init=content, callback=lambda p: ticks.append(
        time.perf_counter()))  # fmt: skip
    return (ticks[-1] - ticks[0]) / steps


def estimate_seconds(scene: Scene, plans: list[FramePlan], step: Callable[[int], float]) -> float:
    """Optimisation time of every frame `plans` lists, one worker, from `step(pixels)`: the seconds of
    one step on a canvas of that many pixels."""
    h, w = scene.output.height, scene.output.width
    o = scene.output
    total = 0.0
    for p in plans:
        shot = scene.shots[p.shot]
        if not is_key(p.local, shot.length, shot.frames.cadence):
            continue  # a tween is warped, not optimised
        if scene.patches is not None:
            total += scene.patches.rounds * scene.patches.steps * step(scene.patches.size**2)
            continue
        sizes = scales((h, w), Settings().min_size, Settings().scale_step) if p.local == 0 else [(h, w)]
        for (sh, sw), n in zip(sizes, schedule(p.iterations, len(sizes)), strict=True):
            total += n * _canvas_seconds(sh, sw, o.tile, o.tile_overlap, step)
    return total


def _canvas_seconds(h: int, w: int, tile: int, overlap: int, step: Callable[[int], float]) -> float:
    """One step over an (h, w) canvas: whole, or its tiles (their margins included) above `tile`."""
    if max(h, w) <= tile:
        return step(h * w)
    return sum(step((t.y1 - t.y0) * (t.x1 - t.x0)) for t in grid(h, w, tile, overlap))
