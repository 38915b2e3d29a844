"""One optimisation as a self-contained job (a whole frame or one tile of it): what a worker runs."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from engine.stylize import Optimizer, Progress, Settings, noise_like, stylize
from engine.targets import StyleBank, StyleTargets

from .canvas import Inputs
from .coherence import ColourMap
from .images import to_uint8
from .tiles import Tile


@dataclass(frozen=True)
class Job:
    """One optimisation of a region of a round's canvases. The canvases travel separately
    (once per round through Ray's object store), so a job is a few hundred bytes."""

    frame: int  # global frame index
    round: int  # pass over the frame (coarse-to-fine tiled frames have several)
    tile: int  # tile index within the round (0 when untiled)
    region: Tile  # where in the round's canvases
    style_weights: tuple[float, ...]
    settings: Settings
    seed: int  # the job's own seed: its pixels depend on nothing else
    # A tile's or patch's: the long side of the whole picture, as the network sees it.
    picture_side: int | None = None
    # A patch: the size its region is resampled to; the job then returns its change, not pixels.
    working_size: tuple[int, int] | None = None
    style_box: tuple[float, float, float, float] | None = None  # localized style: the style's matching part
    colour: ColourMap | None = None  # colour coherence's map for the result (not for a patch's change)

    @property
    def key(self) -> tuple[int, int, int]:
        return self.frame, self.round, self.tile

    @property
    def size(self) -> tuple[int, int]:
        return self.working_size or self.region.size


def job_seed(scene_seed: int, frame: int, round_: int = 0, tile: int = 0) -> int:
    """A per-job seed, so a job renders the same wherever and however often it runs."""
    return ((scene_seed * 1_000_003 + frame) * 1_000_033 + round_ * 10_007 + tile) % 2**63


def seeded_noise(size: tuple[int, int], seed: int) -> Tensor:
    """A noise start of (H, W) = `size` for a whole canvas, drawn from `seed` (so the jobs that share
    it agree where they overlap, and it repeats wherever it is drawn)."""
    return noise_like(size, torch.Generator().manual_seed(seed), "cpu")


def frame_settings(
    base: Settings, index: int, size: tuple[int, int], iterations: int, **weights: float
) -> Settings:
    """Frame 0 goes coarse to fine; later frames refine the warped previous frame at full size only."""
    settings = replace(base, iterations=iterations, **weights)
    return settings if index == 0 else replace(settings, min_size=max(size))


def run_job(
    job: Job,
    inputs: Inputs,
    features: Callable,
    bank: StyleBank | None,
    device: str = "cpu",
    progress: Callable[[Progress], None] | None = None,
) -> tuple[np.ndarray, dict]:
    """Run a job on its region of the round's `inputs`.

    Returns the (H, W, 3) uint8 result and its record (seconds, losses, checks); for a patch, its
    change at working size as float16 instead.
    """
    native = job.settings.content_at_native_size  # superres: the low-res content is compared whole
    given = inputs.at(job.region, job.working_size, whole_content=native)
    made = given.to(device)
    log = LossLog(job.settings, progress)
    start = time.perf_counter()
    styled = bank is not None and sum(job.style_weights) > 0 and job.settings.style_weight > 0
    out = stylize(
        made.content,
        StyleTargets(bank, job.style_weights, job.style_box) if styled else None,
        job.settings,
        features=features,
        init=made.init,
        size=job.size,
        picture_side=job.picture_side,
        generator=torch.Generator().manual_seed(job.seed),
        callback=log,
        temporal=made.temporal,
    )
    record: dict = {"seconds": round(time.perf_counter() - start, 3)}
    if given.revealed is not None:
        record["revealed"] = given.revealed
    record |= log.record()
    if job.working_size is not None:
        record["nan"] = not bool(torch.isfinite(out).all()) or record["nan"]
        change = (out.nan_to_num(0.0) - made.init) if made.init is not None else out.nan_to_num(0.0)
        return change[0].permute(1, 2, 0).to(torch.float16).cpu().numpy(), record
    pixels, finite = finish(out, job.colour)
    record["nan"] = not finite or record["nan"]
    return pixels, record


def finish(out: Tensor, colour: ColourMap | None) -> tuple[np.ndarray, bool]:
    """A result as written (NaN to 0, then colour coherence's map on the uint8 grid, then uint8), and
    whether it was finite all the way: NaN or Inf from the optimiser or from the map."""
    finite = bool(torch.isfinite(out).all())
    out = out.nan_to_num(0.0)
    if colour is not None:  # on the result as it would be written, here on the worker's device
        out = colour.on(out.mul(255).round().div(255))
        finite = finite and bool(torch.isfinite(out).all())
        out = out.nan_to_num(0.0)
    return to_uint8(out), finite


def suspect(job: Job, record: dict) -> str | None:
    """Why a finished job's result should not be trusted, or None: NaN, an early stop, a rising loss."""
    if record.get("nan") or (record.get("loss") is not None and not math.isfinite(record["loss"])):
        return "result contains NaN or Inf"
    planned = record.get("planned")
    if planned is not None and record.get("steps", 0) < planned:
        return f"optimiser stopped after {record.get('steps', 0)} of {planned} steps"
    first, last = record.get("first_loss"), record.get("loss")
    if record.get("steps", 0) >= 3 and first is not None and last is not None and last > first:
        return f"loss rose from {first:.4g} to {last:.4g}"
    return None


class LossLog:
    """A job's optimisation as its record tells it, from the engine's progress callbacks: steps, the
    first loss, and the loss and terms of the iterate the engine returns (for L-BFGS the best of the
    last scale, `engine.stylize.Best`; otherwise the last); `nan` if any evaluation was not finite."""

    def __init__(self, settings: Settings, forward: Callable[[Progress], None] | None = None) -> None:
        self.forward = forward
        self.keeps_best = settings.optimizer is Optimizer.LBFGS and not settings.average
        self.first: Progress | None = None
        self.last: Progress | None = None
        self.best: Progress | None = None  # of the current scale
        self.evaluations = 0  # at the current scale
        self.finite = True

    def __call__(self, p: Progress) -> None:
        self.first = self.first or p
        if self.last is None or p.scale != self.last.scale:
            self.best, self.evaluations = None, 0
        self.evaluations += 1
        if self.best is None or p.loss < self.best.loss:
            self.best = p
        self.finite = self.finite and math.isfinite(p.loss)
        self.last = p
        if self.forward is not None:
            self.forward(p)

    def record(self) -> dict:
        if self.last is None:
            return {"steps": 0, "planned": 0, "nan": False}
        kept = self.best if self.keeps_best and self.evaluations > 1 else self.last
        terms = {k: round(v, 6) for k, v in kept.terms.items()}
        return {"steps": self.last.step, "planned": self.last.steps, "first_loss": self.first.loss,
                "loss": kept.loss, "nan": not self.finite} | terms  # fmt: skip
