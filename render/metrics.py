"""How well a movie holds together: temporal warping error, flicker, drift, and style over the frames.

warp_error: mean absolute difference (0..1) between frame t and frame t−1
    warped onto it, over the pixels the warp carries over. Rendered folders
    record each frame's exact camera step; for a bare video the motion is
    estimated with optical flow on the frames themselves (a weaker measure).
flicker: mean absolute change of mean luminance from one frame to the next.
luminance, saturation: per-frame means (LAB L/100, HSV S): their drift is
    the last 50 frames' mean over the first 50's, minus 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from skimage.color import rgb2hsv, rgb2lab

from .atomic import atomic_path
from .flow import carried, warp_along
from .images import from_uint8
from .render_folder import RenderFolder
from .warp import warp

WINDOW = 50  # frames at each end compared for drift


@dataclass
class FrameMetrics:
    frame: int
    luminance: float
    saturation: float
    warp_error: float | None = None  # None for a shot's first frame
    style: float | None = None


def rendered_frames(outdir: Path) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """(pixels, camera step from the previous frame or None) of each frame in a render folder, up to the
    first missing one."""
    from PIL import Image

    folder = RenderFolder(outdir)
    manifest = folder.load_manifest()
    for t in range(manifest.frame_count if manifest is not None else 0):
        path = folder.frames.path(t)
        if t not in manifest.frames or not path.is_file():
            return
        step = manifest.frames[t].get("step")
        yield np.asarray(Image.open(path).convert("RGB")), (np.asarray(step) if step is not None else None)


def video_frames(path: Path) -> Iterator[tuple[np.ndarray, None]]:
    import av

    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24"), None


def measure(
    frames: Iterable[tuple[np.ndarray, np.ndarray | None]], known_motion: bool, style_score=None
) -> list[FrameMetrics]:
    """Per-frame metrics. `known_motion`: the steps are exact camera warps (None between shots);
    else motion is estimated by optical flow. `style_score(pixels) -> float`, if given, scores each frame."""
    out: list[FrameMetrics] = []
    previous = None
    for t, (pixels, step) in enumerate(frames):
        lab = rgb2lab(pixels)
        m = FrameMetrics(t, float(lab[..., 0].mean() / 100), float(rgb2hsv(pixels)[..., 1].mean()))
        if previous is not None and (step is not None or not known_motion):
            m.warp_error = warp_error(previous, pixels, step)
        if style_score is not None:
            m.style = float(style_score(pixels))
        out.append(m)
        previous = pixels
    return out


def warp_error(previous: np.ndarray, current: np.ndarray, step: np.ndarray | None) -> float:
    if step is not None:
        warped, mask = warp(from_uint8(previous), torch.as_tensor(step, dtype=torch.float64))
        diff = (warped - from_uint8(current)).abs().mean(dim=1, keepdim=True)
        return float((diff * mask).sum() / mask.sum().clamp_min(1))
    back, mask = carried(previous, current)
    warped = warp_along(previous, back).astype(np.float32)
    diff = np.abs(warped - current.astype(np.float32)).mean(-1) / 255
    return float((diff * mask).sum() / max(1.0, mask.sum()))


def summary(metrics: list[FrameMetrics]) -> dict:
    def mean(values: list) -> float | None:
        values = [v for v in values if v is not None]
        return round(float(np.mean(values)), 6) if values else None

    lum = [m.luminance for m in metrics]
    sat = [m.saturation for m in metrics]
    n = min(WINDOW, len(metrics) // 2) or 1
    result = {
        "frames": len(metrics),
        "warp_error": mean([m.warp_error for m in metrics]),
        "flicker": mean([abs(b - a) for a, b in zip(lum, lum[1:], strict=False)]),
        "luminance_drift": round(float(np.mean(lum[-n:]) / np.mean(lum[:n]) - 1), 6),
        "saturation_drift": round(float(np.mean(sat[-n:]) / max(1e-6, np.mean(sat[:n])) - 1), 6),
    }
    if any(m.style is not None for m in metrics):
        result["style"] = mean([m.style for m in metrics])
    return result


def plot(metrics: list[FrameMetrics], path: Path, title: str) -> None:
    """A PNG of the per-frame figures over the frames, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [m.frame for m in metrics]
    rows = [("warp error", [m.warp_error for m in metrics]), ("luminance", [m.luminance for m in metrics]),
            ("saturation", [m.saturation for m in metrics])]  # fmt: skip
    if any(m.style is not None for m in metrics):
        rows.append(("style", [m.style for m in metrics]))
    fig, axes = plt.subplots(len(rows), 1, figsize=(8, 1.8 * len(rows)), sharex=True)
    for ax, (name, values) in zip(axes, rows, strict=True):
        ax.plot(t, [np.nan if v is None else v for v in values], lw=1)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0].set_title(title)
    axes[-1].set_xlabel("frame")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def as_json(metrics: list[FrameMetrics]) -> list[dict]:
    return [asdict(m) for m in metrics]
