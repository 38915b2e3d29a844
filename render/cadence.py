"""Cadence: optimise every Nth frame and make the ones between by warping their two keyframes.

The camera is known, so the warps are exact: a frame between keyframes k0
and k1 is k0 carried forward along the camera path and k1 carried back,
blended by how far along it lies, each only where its warp reaches.
"""

from __future__ import annotations

from functools import reduce

import torch
from torch import Tensor

from .warp import warp


def is_key(local: int, length: int, cadence: int) -> bool:
    """Whether frame `local` of a shot of `length` frames is optimised (the last one always is)."""
    return local % cadence == 0 or local == length - 1


def tweens(first: Tensor, last: Tensor, steps: list[Tensor]) -> list[Tensor]:
    """The frames strictly between keyframes `first` and `last` (each (1, 3, H, W)), where `steps[i]`
    is the camera step (output -> source pixels) from frame i to frame i + 1 after `first`."""
    n = len(steps)
    identity = torch.eye(3, dtype=torch.float64)
    product = lambda ms: reduce(torch.matmul, ms, identity)  # noqa: E731
    out = []
    for j in range(1, n):
        a, mask_a = warp(first, product(steps[:j]))  # frame j's pixels, as frame k0 saw them
        b, mask_b = warp(last, torch.linalg.inv(product(steps[j:])))  # ... and as frame k1 sees them
        u = j / n
        wa, wb = (1 - u) * mask_a, u * mask_b
        total = wa + wb
        blend = (wa * a + wb * b) / total.clamp_min(1e-6)
        out.append(torch.where(total > 0, blend, a))
    return out
