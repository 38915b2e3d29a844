"""One optimisation as a self-contained job (a whole frame or one tile of it): what a worker runs."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from engine.stylize import Optimizer, Progress, Settings, stylize
from engine.targets import StyleBank, StyleTargets

from .coherence import ColourMap
from .frames import Camerawork, WarpedStart
from .images import from_uint8, to_uint8
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
    canvas: int | None = None  # long side of the whole frame (as the network sees it), for a tile or patch
    # A patch: the size its region is resampled to; the job then returns its change, not pixels.
    work: tuple[int, int] | None = None
    style_box: tuple[float, float, float, float] | None = None  # localized style: the style's matching part
    colour: ColourMap | None = None  # colour coherence's map for the result (not for a patch's change)

    @property
    def key(self) -> tuple[int, int, int]:
        return self.frame, self.round, self.tile

    @property
    def size(self) -> tuple[int, int]:
        return self.work or self.region.size


def job_seed(scene_seed: int, frame: int, round_: int = 0, tile: int = 0) -> int:
    """A per-job seed, so a job renders the same wherever and however often it runs."""
    return ((scene_seed * 1_000_003 + frame) * 1_000_033 + round_ * 10_007 + tile) % 2**63


def frame_settings(
    base: Settings, index: int, size: tuple[int, int], iterations: int, **weights: float
) -> Settings:
    """Frame 0 goes coarse to fine; later frames refine the warped previous frame at full size only."""
    settings = replace(base, iterations=iterations, **weights)
    return settings if index == 0 else replace(settings, min_size=max(size))


def as_tensor(image: Tensor | np.ndarray | None) -> Tensor | None:
    """Canvases arrive as tensors (in process) or uint8 arrays (through Ray)."""
    return from_uint8(image) if isinstance(image, np.ndarray) else image


def region_of(canvas: Tensor | np.ndarray | None, region: Tile) -> Tensor | None:
    """A job's part of a canvas, as a tensor; a canvas of exactly the region's size is the region already.
    uint8 arrays (from Ray) are cropped before conversion, so a worker converts only its tile."""
    if canvas is None:
        return None
    size = canvas.shape[:2] if isinstance(canvas, np.ndarray) else canvas.shape[-2:]
    if tuple(size) != region.size:
        y0, x0, y1, x1 = region.y0, region.x0, region.y1, region.x1
        canvas = canvas[y0:y1, x0:x1] if isinstance(canvas, np.ndarray) else region.crop(canvas)
    return as_tensor(canvas)


def resize_uint8(canvas: Tensor | np.ndarray, region: Tile, size: tuple[int, int]) -> Tensor:
    """`region` of a canvas on the uint8 grid, resampled to `size` in uint8: (1, 3, *size) float.
    Working in uint8 keeps a worker's memory at a quarter of the region's float size."""
    if isinstance(canvas, Tensor):
        canvas = to_uint8(region.crop(canvas))
    else:
        canvas = canvas[region.y0 : region.y1, region.x0 : region.x1]
    pixels = torch.from_numpy(np.ascontiguousarray(canvas)).permute(2, 0, 1)[None]
    small = (
        F.interpolate(pixels, size=size, mode="bicubic", antialias=True)
        if pixels.shape[-2:] != size
        else pixels
    )
    return small.float().div(255).contiguous()


def made_here(
    start: WarpedStart | Tensor | np.ndarray | None, content: Camerawork | Tensor | np.ndarray | None
) -> tuple[Tensor | np.ndarray | None, Tensor | np.ndarray | None, float | None]:
    """A job's canvases (start, content) and the share of pixels its camera revealed (None if not
    known here). A tile whose start is a WarpedStart has the shot's camera as its content: the
    inputs are made now, quantised to uint8 as the driver's canvases are."""
    if not isinstance(start, WarpedStart):
        return start, content, None
    inputs = start.inputs(content)
    init = from_uint8(to_uint8(inputs.init))
    if inputs.content is inputs.init:  # feedback content is the start itself
        target = init
    else:
        target = from_uint8(to_uint8(inputs.content)) if inputs.content is not None else None
    return init, target, 1 - float(inputs.mask.mean())


def run_job(
    job: Job,
    start: WarpedStart | Tensor | np.ndarray | None,
    content: Camerawork | Tensor | np.ndarray | None,
    features: Callable,
    bank: StyleBank | None,
    device: str = "cpu",
    progress: Callable[[Progress], None] | None = None,
) -> tuple[np.ndarray, dict]:
    """Run a job on its region of the round's `start` and `content` canvases (None: noise / no content).

    Returns the (H, W, 3) uint8 result and its record (seconds, losses, checks); for a patch, its
    change at working size as float16 instead.
    """
    start, content, revealed = made_here(start, content)
    if job.work is not None:  # a patch sees its region at 2^-k; the resampling is in uint8, like the canvases
        init = resize_uint8(start, job.region, job.work) if start is not None else None
        content = resize_uint8(content, job.region, job.work) if content is not None else None
    else:
        init = region_of(start, job.region)
        native = job.settings.content_at_native_size  # superres: the low-res content is compared whole
        content = as_tensor(content) if native else region_of(content, job.region)
    temporal = None
    if init is not None and init.shape[1] == 4:  # the start's 4th channel: the pixels carried over
        init, mask = init[:, :3], init[:, 3:]
        temporal = (init.to(device), mask.to(device))
    log = LossLog(job.settings, progress)
    start = time.perf_counter()
    styled = bank is not None and sum(job.style_weights) > 0 and job.settings.style_weight > 0
    out = stylize(
        content.to(device) if content is not None else None,
        StyleTargets(bank, job.style_weights, job.style_box) if styled else None,
        job.settings,
        features=features,
        init=init.to(device) if init is not None else None,
        size=job.size,
        canvas=job.canvas,
        generator=torch.Generator().manual_seed(job.seed),
        callback=log,
        temporal=temporal,
    )
    record: dict = {"seconds": round(time.perf_counter() - start, 3)}
    if revealed is not None:
        record["revealed"] = revealed
    record |= log.record()
    if job.work is not None:
        record["nan"] = not bool(torch.isfinite(out).all()) or record["nan"]
        change = (out.nan_to_num(0.0) - init) if init is not None else out.nan_to_num(0.0)
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
