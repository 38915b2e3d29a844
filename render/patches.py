"""Stochastic multiscale patches and localized style: pictures far larger than the network's working size.

Each round draws a scale 2^k (k binomial; the rounds then run coarse to
fine, a round at 2^k taking min(4, 2^k) times the steps) and a seeded grid
offset, and covers the whole canvas with square regions of `size`·2^k pixels that
overlap their neighbours. Every region is resampled down to the working
size, optimised for a few steps against the content and style seen at that
scale, and the change is upsampled and added back with feathered weights.
Large style features thus reach large pictures, no job needs more memory
than one patch, and a round's patches run in parallel. Every pixel lies in
some patch of every round, so the edges get as many updates as the middle;
values are clamped to [0, 1] after each round, so nothing overflows.

With `localized`, a patch's style targets are the statistics of the
matching region of the style image (positions scale proportionally), so
style becomes location dependent (Gatys-style "localized style").

A `PatchWork` is a `render.work.Work`, as a tiled frame is, so stills, scenes
and the Ray scheduler run it the same way.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from engine.stylize import Settings
from engine.targets import resize

from .canvas import Canvases
from .images import quantised
from .job import Job, job_seed, seeded_noise
from .scene import Patches
from .tiles import MIN_SPAN, Blender, Tile, cover
from .work import Batch


@dataclass(frozen=True)
class PatchRound:
    size: tuple[int, int]  # (H, W) of the canvas
    k: int  # regions are size·2^k pixels, seen at 2^-k
    region: tuple[int, int]  # (H, W) of each patch's region of the canvas
    working_size: tuple[int, int]  # (H, W) the network sees
    overlap: int  # between neighbouring regions, in canvas pixels
    offset: tuple[int, int]
    iterations: int
    tiled: bool = True  # in the sense of FrameWork's rounds: several jobs


def draw_scale(seed: int, frame: int, index: int, top: int, bias: float) -> int:
    """The scale exponent of round `index`: Binomial(top, bias), from the round's own seed."""
    rng = random.Random(job_seed(seed, frame, index))
    return sum(rng.random() < bias for _ in range(top))


@dataclass
class PatchWork:
    """The patch rounds of one picture (a still or a frame): a `render.work.Work`."""

    results_are_pixels = False  # each job returns its region's change at working size

    frame: int
    size: tuple[int, int]  # (H, W) of the finished picture
    settings: Settings
    init: Tensor | None  # (1, 3, H, W) start, or None for noise
    content: Tensor | None  # (1, 3, h, w) content target (any size), or None
    style_weights: tuple[float, ...]
    seed: int
    patches: Patches

    def __post_init__(self) -> None:
        h, w = self.size
        p = self.patches
        if min(h, w) < MIN_SPAN:
            raise ValueError(
                f"patches: a {h}x{w} picture is too small; patches need {MIN_SPAN} pixels a side"
            )
        # The coarsest scale sees the whole picture, unless its short side would get too thin.
        top = max(0, math.ceil(math.log2(max(h, w) / p.size)))
        while top and min(h, w, p.size * 2**top) / 2**top < MIN_SPAN:
            top -= 1
        # Scales are drawn per round, then taken coarse to fine: the large structures form first, as in
        # the engine's own multi-scale schedule, and a coarse round (few patches) gets more steps.
        drawn = sorted(
            (draw_scale(self.seed, self.frame, i, top, p.scale_bias) for i in range(p.rounds)), reverse=True
        )
        self.rounds = []
        for index, k in enumerate(drawn):
            side = p.size * 2**k
            region = (min(h, side), min(w, side))
            working = tuple(max(MIN_SPAN, round(r / 2**k)) for r in region)
            overlap = max(1, p.size // 8) * 2**k
            rng = random.Random(job_seed(self.seed, self.frame, index, 1))
            offset = tuple(rng.randrange(max(1, r - overlap)) for r in region)
            self.rounds.append(
                PatchRound(self.size, k, region, working, overlap, offset, p.steps * min(4, 2**k))
            )
        self._starts: dict[int, Tensor] = {}

    def regions(self, index: int) -> list[Tile]:
        r = self.rounds[index]
        (h, w), (rh, rw) = self.size, r.region
        ys = cover(h, rh, r.overlap, r.offset[0], inside=True)
        xs = cover(w, rw, r.overlap, r.offset[1], inside=True)
        return [Tile(y0, x0, y1, x1) for y0, y1 in ys for x0, x1 in xs]

    def steps(self) -> int:
        return sum(self.round_steps(k) for k in range(len(self.rounds)))

    def round_steps(self, index: int) -> int:
        return self.rounds[index].iterations * len(self.regions(index))

    def jobs(self, index: int, canvas: Tensor | None) -> Batch:
        """Round `index`'s jobs and the full-size canvases they resample their regions from."""
        r = self.rounds[index]
        start = canvas if canvas is not None else self.init
        if start is None:  # low-frequency noise: a patch seen at any scale starts from texture, not grey
            small = tuple(max(1, round(s * self.patches.size / max(self.size))) for s in self.size)
            start = seeded_noise(small, job_seed(self.seed, self.frame))
        start = quantised(resize(start, self.size))  # as through Ray (uint8): same pixels either way
        content = quantised(resize(self.content, self.size)) if self.content is not None else None
        self._starts[index] = start[:, :3]  # a 4th channel (the temporal loss's mask) is only an input
        settings = replace(self.settings, iterations=r.iterations, min_size=max(r.working_size))
        h, w = self.size
        jobs = []
        for i, t in enumerate(self.regions(index)):
            box = (t.y0 / h, t.x0 / w, t.y1 / h, t.x1 / w) if self.patches.localized else None
            jobs.append(Job(self.frame, index, i, t, self.style_weights, settings,
                            job_seed(self.seed, self.frame, index, i), picture_side=round(max(h, w) / 2**r.k),
                            working_size=r.working_size, style_box=box))  # fmt: skip
        return Batch(jobs, Canvases.of(start, content))

    def blend(self, index: int, results) -> Tensor:
        """The canvas after round `index`: its start plus the feathered mean of the patches' changes."""
        r = self.rounds[index]
        start = self._starts.pop(index)
        blender = Blender(*self.size, r.overlap)
        for tile, change in results:
            blender.add(tile, upsample(change, tile.size))
        return quantised(start + blender.result())


def upsample(change: np.ndarray, size: tuple[int, int]) -> Tensor:
    """A patch's (h, w, 3) change at working size, smoothly resampled to its region: (1, 3, H, W)."""
    x = torch.from_numpy(change.astype(np.float32)).permute(2, 0, 1)[None]
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
