"""What a frame's optimisation starts from: the warped previous output, its content, and the mask."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from engine.targets import resize

from .plan import FramePlan
from .warp import warp


@dataclass
class FrameInputs:
    init: Tensor | None  # (1, 3, H, W) start of the optimisation; None: noise
    content: Tensor | None  # (1, 3, H, W) content target; None: style only
    mask: (
        Tensor | None
    )  # (1, 1, H, W) 1 where the previous frame reaches, 0 where the camera revealed new pixels


class Camerawork:
    """Carries the camera along the frames: each step's warp and the cumulative one for fixed content."""

    def __init__(self, size: tuple[int, int], start_content: Tensor | None, border: str) -> None:
        self.size = size  # (H, W)
        self.start = resize(start_content, size) if start_content is not None else None
        self.border = border
        self.total = torch.eye(3, dtype=torch.float64)  # output of frame t -> pixels of frame 0

    def advance(self, plan: FramePlan, previous: Tensor | None) -> FrameInputs:
        """Inputs of frame `plan.index`, given the previous frame (1, 3, H, W) as written to disk."""
        h, w = self.size
        if plan.local == 0:
            return FrameInputs(self.start, self.start, None)
        step = plan.camera.matrix(w, h)
        self.total = self.total @ step
        fixed = warp(self.start, self.total, "border")[0] if self.start is not None else None
        init, mask = warp(previous, step, "reflection")
        if self.border == "content" and fixed is not None:
            init = init * mask + fixed * (1 - mask)
        content = {"feedback": init, "fixed": fixed, "none": None}[plan.content]
        return FrameInputs(init, content, mask)

    def skip(self, plan: FramePlan) -> None:
        """Advance the cumulative camera over a frame that is already rendered."""
        if plan.local > 0:
            h, w = self.size
            self.total = self.total @ plan.camera.matrix(w, h)
