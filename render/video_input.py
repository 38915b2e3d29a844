"""A video as a scene's content: its frames, and the previous output carried along its optical flow.

`VideoCamera` stands in for `ShotCamera` in a shot whose `start.video` is set:
frame t's content is the video's frame t; its start is output t−1 warped
along the flow from video frame t to t−1 (estimated on the source video,
where motion is real), with the video frame itself where the flow is not to
be trusted. The mask of trusted pixels drives the temporal loss.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import torch
from torch import Tensor

from engine.targets import resize

from .flow import carried, warp_along
from .frames import FrameInputs
from .images import from_uint8, to_uint8
from .plan import FramePlan


class VideoSource:
    """The frames of a video file at a given (H, W), decoded in order as they are asked for."""

    def __init__(self, path: Path, size: tuple[int, int]) -> None:
        self.path, self.size = path, size
        self._open()

    def _open(self) -> None:
        self._container = av.open(str(self.path))
        self._frames = self._container.decode(video=0)
        self._next = 0  # index of the frame the decoder gives next
        self._cache: dict[int, Tensor] = {}

    def frame(self, t: int) -> Tensor:
        """Frame t as (1, 3, H, W) in [0, 1]."""
        if t in self._cache:
            return self._cache[t]
        if t < self._next:  # backwards (a resumed shot): decode from the start again
            self._container.close()
            self._open()
        while self._next <= t:
            try:
                decoded = next(self._frames)
            except StopIteration:
                raise ValueError(f"{self.path}: has only {self._next} frames, frame {t} asked for") from None
            image = from_uint8(decoded.to_ndarray(format="rgb24"))
            self._cache = {k: v for k, v in self._cache.items() if k >= self._next - 1}  # keep two
            self._cache[self._next] = resize(image, self.size)
            self._next += 1
        return self._cache[t]


class VideoCamera:
    """A shot's inputs from a video (same interface as ShotCamera, without a camera)."""

    exact = False  # motion is estimated, not known

    def __init__(self, size: tuple[int, int], source: VideoSource) -> None:
        self.size, self.source = size, source
        self.identity = torch.eye(3, dtype=torch.float64)

    def step(self, plan: FramePlan) -> tuple[Tensor, Tensor]:
        return self.identity, self.identity

    def skip(self, plan: FramePlan) -> None:
        pass

    def inputs(self, plan: FramePlan, matrices, previous: Tensor | None, *_) -> FrameInputs:
        frame = self.source.frame(plan.local)
        if plan.local == 0 or previous is None:
            return FrameInputs(frame, frame, None)
        back, trusted = carried(to_uint8(self.source.frame(plan.local - 1)), to_uint8(frame))
        mask = torch.from_numpy(trusted)[None, None]
        init = from_uint8(warp_along(np.ascontiguousarray(to_uint8(previous)), back))
        init = init * mask + frame * (1 - mask)  # where the flow fails, start from the video itself
        if plan.temporal_weight > 0:
            init = torch.cat([init, mask], dim=1)
        return FrameInputs(init, frame, mask)
