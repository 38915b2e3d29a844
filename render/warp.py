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


def _coords(matrix: Tensor, region: tuple[int, int, int, int], step: tuple[int, int] = (1, 1)) -> Tensor:
    """Source pixel coordinates (x, y) of the region's pixel centres (every `step` (dy, dx)), (h, w, 2).

    float32 keeps a 8K frame's coordinates to about 1e-3 px, plenty for bicubic
    sampling, at half the cost of float64; the 3×3 matrix itself stays float64.
    """
    y0, x0, y1, x1 = region
    m = matrix.to(torch.float32)
    xs = torch.arange(x0, x1, max(1, step[1]), dtype=torch.float32) + 0.5
    ys = torch.arange(y0, y1, max(1, step[0]), dtype=torch.float32) + 0.5
    # x' = a·x + b·y + c, y' = d·x + e·y + f, as outer sums: no (h, w, 3) @ (3, 3) product.
    px = (m[0, 0] * xs)[None, :] + (m[0, 1] * ys + m[0, 2])[:, None]
    py = (m[1, 0] * xs)[None, :] + (m[1, 1] * ys + m[1, 2])[:, None]
    return torch.stack([px, py], dim=-1)


def _fold(pts: Tensor, size: tuple[int, int], border: str) -> Tensor:
    """Bring coordinates from outside the frame inside: mirrored ("reflection") or clamped ("border")."""
    h, w = size
    limits = torch.tensor([w, h], dtype=pts.dtype)
    if border == "border":
        return torch.minimum(pts.clamp_min(0), limits)
    period = pts.remainder(2 * limits)
    return torch.where(period > limits, 2 * limits - period, period)


def source_region(
    matrix: Tensor, region: tuple[int, int, int, int], size: tuple[int, int], border: str = "reflection"
) -> tuple[int, int, int, int]:
    """The part of the source frame that warping `region` reads: (y0, x0, y1, x1) with room for bicubic."""
    h, w = size
    y0, x0, y1, x1 = region
    # An affine map's extremes over the grid are at its corners; if those lie inside the frame, no
    # point is folded and the corners alone give the box (the same float32 values, so exactly).
    corners = _coords(matrix, (y0, x0, y1, x1), (y1 - y0 - 1, x1 - x0 - 1)).reshape(-1, 2)
    lo, hi = corners.min(0).values, corners.max(0).values
    if not (lo.min() >= 0 and hi[0] <= w and hi[1] <= h):
        pts = _fold(_coords(matrix, region), size, border).reshape(-1, 2)
        lo, hi = pts.min(0).values, pts.max(0).values
    x0, y0 = (int(v) - 3 for v in lo.floor().tolist())
    x1, y1 = (int(v) + 3 for v in hi.ceil().tolist())
    return max(0, y0), max(0, x0), min(h, y1), min(w, x1)


def warp_region(
    source: Tensor,
    origin: tuple[int, int],
    matrix: Tensor,
    region: tuple[int, int, int, int],
    size: tuple[int, int],
    border: str = "reflection",
) -> tuple[Tensor, Tensor]:
    """Warp one region of a frame, reading only `source`, a crop of the previous frame at `origin` (y, x).

    `source` must hold `source_region(matrix, region, size)`. The whole-frame
    warp is the same computation with the whole frame as region and source,
    so a tile's warp does not depend on how the frame around it was computed.
    Returns the warped region (1, C, h, w) and the mask of pixels whose source
    lay inside the frame (1, 1, h, w).
    """
    h, w = size
    pts = _coords(matrix, region)
    inside = ((pts >= 0) & (pts <= torch.tensor([w, h], dtype=pts.dtype))).all(dim=-1)
    if not inside.all():  # folding leaves points inside the frame as they are
        pts = _fold(pts, size, border)
    sh, sw = source.shape[-2:]
    local = pts - torch.tensor([origin[1], origin[0]], dtype=pts.dtype)
    # grid_sample wants [-1, 1] across the source's edges (align_corners=False).
    grid = torch.stack([local[..., 0] / sw * 2 - 1, local[..., 1] / sh * 2 - 1], dim=-1)[None]
    warped = F.grid_sample(
        source, grid.to(source), mode="bicubic", padding_mode="border", align_corners=False
    )
    return warped.clamp(0, 1), inside[None, None].to(source.dtype)


def warp(image: Tensor, matrix: Tensor, border: str = "reflection") -> tuple[Tensor, Tensor]:
    """Resample a whole (1, C, H, W) frame through a 3×3 pixel matrix (output -> source).

    Pixels the warp brings in from outside the frame are filled by `border`
    ("reflection" or "border") and marked 0 in the returned (1, 1, H, W) mask.
    """
    h, w = image.shape[-2:]
    return warp_region(image, (0, 0), matrix, (0, 0, h, w), (h, w), border)
