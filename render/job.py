"""One frame's optimisation as a self-contained job: what a worker receives and runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from engine.stylize import Progress, Settings, stylize
from engine.targets import StyleBank, StyleTargets

from .images import to_uint8


@dataclass(frozen=True)
class FrameJob:
    index: int
    size: tuple[int, int]  # (H, W)
    init: Tensor | None  # (1, 3, H, W) or None for noise
    content: Tensor | None  # (1, 3, H, W) or None
    style_weights: tuple[float, ...]
    settings: Settings
    seed: int  # the frame's own seed: its pixels depend on nothing else


def frame_seed(scene_seed: int, index: int) -> int:
    """A per-frame seed, so a frame renders the same wherever and however often it runs."""
    return (scene_seed * 1_000_003 + index) % 2**63


def frame_settings(
    base: Settings, index: int, size: tuple[int, int], iterations: int, **weights: float
) -> Settings:
    """Frame 0 goes coarse to fine; later frames refine the warped previous frame at full size only."""
    settings = replace(base, iterations=iterations, **weights)
    return settings if index == 0 else replace(settings, min_size=max(size))


def run_frame(
    job: FrameJob, features: Callable, bank: StyleBank, progress: Callable[[Progress], None] | None = None
) -> tuple[np.ndarray, dict]:
    """Render a job; return the (H, W, 3) uint8 frame and its record (loss, seconds)."""
    device = bank.images[0].device
    last: list[Progress] = []

    def callback(p: Progress) -> None:
        last[:] = [p]
        if progress is not None:
            progress(p)

    start = time.perf_counter()
    styled = sum(job.style_weights) > 0 and job.settings.style_weight > 0
    out = stylize(
        job.content.to(device) if job.content is not None else None,
        StyleTargets(bank, job.style_weights) if styled else None,
        job.settings,
        features=features,
        init=job.init.to(device) if job.init is not None else None,
        size=job.size,
        generator=torch.Generator().manual_seed(job.seed),
        callback=callback,
    )
    record = {"seconds": round(time.perf_counter() - start, 3), "loss": last[0].loss if last else None}
    if last:
        record |= {k: round(v, 6) for k, v in last[0].terms.items()}
    return to_uint8(out), record
