"""What a job starts from: a round's canvases as they travel (uint8), and a job's inputs (floats, on
its worker).

Canvases cross every process boundary as uint8 (a quarter of float32's bytes, and what the frames on
disk are), so a round gives the same pixels in process, through Ray, or resumed from a checkpoint.
Floats exist only inside the process that runs the job: each job converts just its own region.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from .images import from_uint8, to_uint8
from .tiles import Tile


@dataclass(frozen=True)
class JobInputs:
    """A job's region as the optimiser takes it: (1, 3, h, w) floats in [0, 1]."""

    init: Tensor | None  # the start; None: noise
    content: Tensor | None  # the content target; None: style only
    # The temporal term: the warped previous frame (the start itself) and (1, 1, h, w) where it reaches.
    temporal: tuple[Tensor, Tensor] | None = None
    revealed: float | None = None  # share of pixels the camera brought in, where the worker warped them

    @classmethod
    def of(cls, init: Tensor | None, content: Tensor | None, revealed: float | None = None) -> JobInputs:
        """Inputs from a start that may carry the temporal term's mask as its 4th channel."""
        if init is not None and init.shape[1] == 4:
            init, mask = init[:, :3], init[:, 3:]
            return cls(init, content, (init, mask), revealed)
        return cls(init, content, None, revealed)

    def to(self, device: str) -> JobInputs:
        def moved(x: Tensor | None) -> Tensor | None:
            return x.to(device) if x is not None else None

        init = moved(self.init)
        temporal = (init, self.temporal[1].to(device)) if self.temporal is not None else None
        return JobInputs(init, moved(self.content), temporal, self.revealed)


class Inputs(Protocol):
    """Where a round's jobs find their inputs: `Canvases`, or a tile's warped window made on its
    worker (`render.frames.WarpedFrame` with the shot's camera)."""

    def at(self, region: Tile, size: tuple[int, int] | None = None, whole_content: bool = False) -> JobInputs:
        """The inputs of `region`: resampled to `size` if given (a patch seen at a coarser scale); with
        `whole_content`, the content whole at its own size (superres compares it so)."""
        ...


@dataclass(frozen=True)
class Canvases:
    """A round's canvases, shared by all its jobs: (H, W, C) uint8, C = 3, or 4 with the temporal
    term's mask. The content may be the start itself (feedback): then it is one array, stored once."""

    start: np.ndarray | None
    content: np.ndarray | None

    @classmethod
    def of(cls, start: Tensor | None, content: Tensor | None) -> Canvases:
        """Canvases from (1, C, H, W) floats, rounded to the uint8 grid."""
        start_pixels = to_uint8(start) if start is not None else None
        if content is start:
            return cls(start_pixels, start_pixels)
        return cls(start_pixels, to_uint8(content) if content is not None else None)

    @property
    def nbytes(self) -> int:
        """What the canvases take in the object store (feedback content, the start itself, once)."""
        arrays = {id(a): a.nbytes for a in (self.start, self.content) if a is not None}
        return sum(arrays.values())

    def at(self, region: Tile, size: tuple[int, int] | None = None, whole_content: bool = False) -> JobInputs:
        if size is not None:
            return JobInputs.of(_resampled(self.start, region, size), _resampled(self.content, region, size))
        content = self.content if whole_content else _crop(self.content, region)
        return JobInputs.of(_floats(_crop(self.start, region)), _floats(content))


def _crop(canvas: np.ndarray | None, region: Tile) -> np.ndarray | None:
    """A region of a canvas (before conversion: a worker converts only its own tile)."""
    if canvas is None or canvas.shape[:2] == region.size:
        return canvas
    return canvas[region.y0 : region.y1, region.x0 : region.x1]


def _floats(pixels: np.ndarray | None) -> Tensor | None:
    return from_uint8(pixels) if pixels is not None else None


def _resampled(canvas: np.ndarray | None, region: Tile, size: tuple[int, int]) -> Tensor | None:
    """`region` of a canvas resampled to `size` in uint8: (1, C, *size) floats. Working in uint8 keeps
    a worker's memory at a quarter of the region's float size."""
    if canvas is None:
        return None
    pixels = torch.from_numpy(np.ascontiguousarray(_crop(canvas, region))).permute(2, 0, 1)[None]
    if pixels.shape[-2:] != size:
        pixels = F.interpolate(pixels, size=size, mode="bicubic", antialias=True)
    return pixels.float().div(255).contiguous()
