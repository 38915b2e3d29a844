"""Optical flow between video frames (OpenCV's DIS), warps along it, and where it can be trusted.

Scenes with a camera know their motion exactly; a video does not, so its
motion is estimated. DIS (Kroeger et al. 2016) is fast and dense; a pixel's
flow is trusted where the forward and backward flows agree (Sundaram et al.
2010), which leaves out occlusions and the flow's failures.
"""

from __future__ import annotations

import cv2
import numpy as np


def flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(H, W, 2) flow (dx, dy) such that `source` at p looks like `target` at p + flow(p)."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    grey = [cv2.cvtColor(np.ascontiguousarray(x), cv2.COLOR_RGB2GRAY) for x in (source, target)]
    return dis.calc(grey[0], grey[1], None)


def warp_along(image: np.ndarray, motion: np.ndarray) -> np.ndarray:
    """`image` sampled at p + motion(p) for every pixel p (bilinear; edges replicated)."""
    h, w = motion.shape[:2]
    x, y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(
        image, x + motion[..., 0], y + motion[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def consistent(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """(H, W) float mask: 1 where following `forward` then `backward` comes back to the start."""
    back = warp_along(backward, forward)
    error = np.square(forward + back).sum(-1)
    scale = np.square(forward).sum(-1) + np.square(back).sum(-1)
    h, w = forward.shape[:2]
    x, y = np.meshgrid(np.arange(w), np.arange(h))
    tx, ty = x + forward[..., 0], y + forward[..., 1]
    inside = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    return ((error <= 0.01 * scale + 0.5) & inside).astype(np.float32)


def carried(previous: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How frame `current` continues `previous`: for each pixel of `current`, the flow to where it
    was in `previous`, and the mask of pixels that flow can be trusted for."""
    back = flow(current, previous)
    return back, consistent(back, flow(previous, current))
