"""What a frame's optimisation starts from: the warped previous output, its content, and the mask."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from engine.targets import resize

from .canvas import JobInputs
from .images import from_uint8, quantised
from .tiles import Tile
from .warp import warp_region

if TYPE_CHECKING:  # plan imports the scene, which imports the jobs, which import this
    from .plan import FramePlan


@dataclass
class FrameInputs:
    # (1, 3, H, W) start of the optimisation; None: noise. With the temporal loss, (1, 4, H, W):
    # the 4th channel is the mask, and the start (the warped previous frame) is also its target.
    init: Tensor | None
    content: Tensor | None  # (1, 3, H, W) content target; None: style only
    # (1, 1, H, W): 1 where the previous frame reaches, 0 where the camera revealed new pixels
    mask: Tensor | None


class ShotCamera:
    """Carries the camera along a shot: each frame's step and the cumulative warp for fixed content."""

    exact = True  # the steps are the motion, exactly

    def __init__(
        self, size: tuple[int, int], start_content: Tensor | None, border: str, anchor: float = 0.0
    ) -> None:
        self.size = size  # (H, W)
        self.anchor = anchor  # share of the fixed content in feedback content
        self.start = resize(start_content, size) if start_content is not None else None
        self.border = border
        self.total = torch.eye(3, dtype=torch.float64)  # output of frame t -> pixels of the shot's frame 0

    def step(self, plan: FramePlan) -> tuple[Tensor, Tensor]:
        """Advance to frame `plan`: (its step from the previous frame, the cumulative warp)."""
        h, w = self.size
        if plan.local == 0:
            return torch.eye(3, dtype=torch.float64), self.total
        step = plan.camera.matrix(w, h)
        self.total = self.total @ step
        return step, self.total

    def inputs(
        self,
        plan: FramePlan,
        matrices: tuple[Tensor, Tensor],
        previous: Tensor | None,
        origin: tuple[int, int] = (0, 0),
        region: tuple[int, int, int, int] | None = None,
    ) -> FrameInputs:
        """Inputs of `region` (default: the whole frame) of frame `plan`, given the crop of the
        previous frame (as written to disk) at `origin` that covers `source_region(step, region)`."""
        region = region or (0, 0, *self.size)
        y0, x0, y1, x1 = region
        if plan.local == 0:
            start = self.start[..., y0:y1, x0:x1] if self.start is not None else None
            return FrameInputs(start, start, None)
        step, total = matrices
        fixed = None
        if self.start is not None and (plan.content == "fixed" or self.border == "content" or self.anchor):
            fixed = warp_region(self.start, (0, 0), total, region, self.size, "border")[0]
        init, mask = warp_region(previous, origin, step, region, self.size, "reflection")
        if self.border == "content" and fixed is not None:
            init = init * mask + fixed * (1 - mask)
        content = {"feedback": init, "fixed": fixed, "none": None}[plan.content]
        if self.anchor and plan.content == "feedback":  # a mild pull back toward the original content
            content = torch.lerp(init, fixed, self.anchor)
        if plan.temporal_weight > 0:  # the mask travels with the start, as its 4th channel
            init = torch.cat([init, mask], dim=1)
        return FrameInputs(init, content, mask)

    def for_workers(self, content: str) -> ShotCamera:
        """What workers need to warp their own tiles: this camera, without the start image where
        the shot's later frames never read it (an 8K start is 400 MB in the object store)."""
        if content == "fixed" or self.border == "content" or self.anchor:
            return self
        lean = copy.copy(self)
        lean.start = None
        return lean

    def advance(self, plan: FramePlan, previous: Tensor | None) -> FrameInputs:
        """Step to frame `plan` and return the inputs of the whole frame."""
        return self.inputs(plan, self.step(plan), previous)

    def skip(self, plan: FramePlan) -> None:
        """Advance the cumulative camera over a frame that is already rendered."""
        self.step(plan)


@dataclass(frozen=True)
class WarpedStart:
    """A tile's start, made where the tile runs: the window of the previous frame (as written) that
    its warp reads (`origin` its place in the frame), the camera step, and the tile's region."""

    plan: FramePlan
    matrices: tuple[Tensor, Tensor]
    window: np.ndarray  # (h, w, 3) uint8 crop of the previous frame at `origin`
    origin: tuple[int, int]
    region: tuple[int, int, int, int]

    def inputs(self, camera: ShotCamera) -> FrameInputs:
        return camera.inputs(self.plan, self.matrices, from_uint8(self.window), self.origin, self.region)

    def job_inputs(self, camera: ShotCamera) -> JobInputs:
        """The tile's inputs as a job takes them: on the uint8 grid, as the driver's canvases are, with
        the share of its pixels the camera revealed."""
        made = self.inputs(camera)
        init = quantised(made.init)
        # Feedback content is the start itself.
        content = (
            init
            if made.content is made.init
            else quantised(made.content)
            if made.content is not None
            else None
        )
        return JobInputs.of(init, content, 1 - float(made.mask.mean()))


@dataclass(frozen=True)
class WarpedFrame:
    """A later frame's start, made where its tiles run: the previous frame as written and the camera
    step. Each tile warps its own region, so the driver's work per frame is a blend, not a resampling."""

    plan: FramePlan
    matrices: tuple[Tensor, Tensor]
    previous: np.ndarray  # (H, W, 3) uint8

    def at(self, region: tuple[int, int, int, int]) -> WarpedStart:
        return WarpedStart(self.plan, self.matrices, self.previous, (0, 0), region)


@dataclass(frozen=True)
class WarpedTiles:
    """The inputs (`render.canvas.Inputs`) of a later frame's tiles, made on the workers that run them:
    the previous frame as written, warped by the shot's camera one tile at a time."""

    frame: WarpedFrame
    camera: ShotCamera

    def at(self, region: Tile, size: tuple[int, int] | None = None, whole_content: bool = False) -> JobInputs:
        if size is not None or whole_content:  # patches and superres make their canvases on the driver
            raise ValueError("a warped tile is made at its own size, with its own region of the content")
        return self.frame.at((region.y0, region.x0, region.y1, region.x1)).job_inputs(self.camera)
