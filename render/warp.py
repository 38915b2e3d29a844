"""The camera: zoom, rotation and translation about a centre, as exact affine warps.

A camera step maps output pixel p to source pixel c + R(−angle)·(p − c − shift) / zoom,
so zoom > 1 moves in, a positive angle turns the picture counter-clockwise
and the shift moves it right and down, in pixels. Steps compose as 3×3 matrices, so
"the fixed content seen through the camera" at frame t is one resampling of the
original image, not t resamplings of resamplings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F


@dataclass(frozen=True)
class Camera:
    zoom: float = 1.0
    angle: float = 0.0  # degrees, counter-clockwise
    translate_x: float = 0.0  # pixels, + moves the picture right
    translate_y: float = 0.0  # pixels, + moves the picture down
    center_x: float = 0.5  # transform centre, as a fraction of the width
    center_y: float = 0.5  # and of the height

    def matrix(self, width: int, height: int) -> Tensor:
        """3×3 float64 matrix taking output pixel coordinates (x, y, 1) to source coordinates."""
        if self.zoom <= 0:
            raise ValueError(f"zoom must be > 0, not {self.zoom}")
        cx, cy = self.center_x * width, self.center_y * height
        a = math.radians(self.angle)
        # The picture turns counter-clockwise on screen (y down), so sample with the inverse turn.
        cos, sin = math.cos(a), math.sin(a)
        inv_rot = torch.tensor([[cos, -sin], [sin, cos]], dtype=torch.float64) / self.zoom
        m = torch.eye(3, dtype=torch.float64)
        m[:2, :2] = inv_rot
        shift = torch.tensor([cx + self.translate_x, cy + self.translate_y], dtype=torch.float64)
        m[:2, 2] = torch.tensor([cx, cy], dtype=torch.float64) - inv_rot @ shift
        return m


IDENTITY = Camera()


def warp(image: Tensor, matrix: Tensor, border: str = "reflection") -> tuple[Tensor, Tensor]:
    """Resample (1, C, H, W) `image` through a 3×3 pixel matrix (output -> source).

    Returns the warped image and a (1, 1, H, W) mask that is 1 where the
    source pixel lay inside the image and 0 where the warp brought in
    pixels from outside (filled by `border`: "reflection", "border" or "zeros").
    """
    _, _, h, w = image.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float64) + 0.5, torch.arange(w, dtype=torch.float64) + 0.5, indexing="ij"
    )
    pts = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1) @ matrix.T  # (H, W, 3) source pixel coords
    # grid_sample wants [-1, 1] across the image edges (align_corners=False).
    grid = torch.stack([pts[..., 0] / w * 2 - 1, pts[..., 1] / h * 2 - 1], dim=-1)[None]
    grid = grid.to(image.device, image.dtype)
    warped = F.grid_sample(image, grid, mode="bicubic", padding_mode=border, align_corners=False)
    inside = (grid.abs() <= 1 + 1e-6).all(dim=-1, keepdim=True).permute(0, 3, 1, 2).to(image.dtype)
    return warped.clamp(0, 1), inside
