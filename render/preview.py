"""An animatic of a scene: every frame's start as a render makes it, with no optimisation.

A shot's frame 0 is its start image (or the noise a render's optimisation starts from); every later
frame is the frame before it, as written (uint8), carried by that frame's camera step through the
render's own `ShotCamera`: the same warp and the same filling of the borders the camera reveals. A
video shot shows its video's frames, as a render takes them for content. Below the output's size,
each camera step is the output's step seen at the smaller size (the same motion of the picture), so
the path is the render's. A small caption names the frame and the style blend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from engine.stylize import Settings, noise_like, scales
from engine.targets import resize

from .folder import VIDEO_SUFFIXES, check_output_file
from .frames import ShotCamera
from .images import from_uint8, resolve, to_uint8
from .job import job_seed
from .plan import FramePlan
from .scene import Scene
from .scene_inputs import SceneInputs, scene_inputs
from .video import VideoWriter
from .video_input import VideoSource
from .warp import Camera

DEFAULT_LONG_SIDE = 256
MIN_LONG_SIDE = 16  # a scene's own smallest side
CAPTION_PAD = 2  # pixels around the caption's text


def preview_size(width: int, height: int, long_side: int = DEFAULT_LONG_SIDE) -> tuple[int, int]:
    """(H, W) of a preview: the output's aspect with `long_side` pixels on the long side, each side
    rounded to even (yuv420p); the output's own size if that is smaller."""
    if long_side < MIN_LONG_SIDE:
        raise ValueError(f"--size must be at least {MIN_LONG_SIDE} pixels, not {long_side}")
    scale = min(1.0, long_side / max(width, height))
    h, w = (max(2, 2 * round(side * scale / 2)) for side in (height, width))
    return h, w


@dataclass(frozen=True)
class ScaledCamera:
    """A camera step of the output seen in a frame of another size: S⁻¹·M·S, with S taking the
    preview's pixel coordinates to the output's, moves the picture exactly as M moves the output
    (a translation in pixels shrinks with the frame; zoom, angle and centre do not change)."""

    camera: Camera
    output: tuple[int, int]  # (H, W) the camera's pixels belong to

    def matrix(self, width: int, height: int) -> Tensor:
        h, w = self.output
        to_output = torch.diag(torch.tensor([w / width, h / height, 1.0], dtype=torch.float64))
        to_preview = torch.diag(torch.tensor([width / w, height / h, 1.0], dtype=torch.float64))
        return to_preview @ self.camera.matrix(w, h) @ to_output


def preview_frames(
    scene: Scene, size: tuple[int, int], inputs: SceneInputs | None = None
) -> Iterator[tuple[FramePlan, np.ndarray]]:
    """Each frame's plan and its (H, W, 3) uint8 pixels at `size` (H, W), without the caption."""
    inputs = inputs or scene_inputs(scene)
    output = (scene.output.height, scene.output.width)
    for number, shot in enumerate(scene.shots):
        plans = [p for p in inputs.plans if p.shot == number]
        if size != output:  # the same motion at the preview's size
            plans = [replace(p, camera=ScaledCamera(p.camera, output)) for p in plans]  # type: ignore[arg-type]
        if shot.start.video is not None:
            video = VideoSource(resolve(shot.start.video, scene.base), size)
            for plan in plans:
                yield plan, to_uint8(video.frame(plan.local))
            continue
        start = inputs.starts[number]
        camera = ShotCamera(size, start, shot.camera.border, shot.frames.anchor)
        previous = None
        for plan in plans:
            if plan.local == 0:
                first = camera.start if camera.start is not None else _start_noise(scene, plan, size, output)
                previous = to_uint8(first)
            else:  # the start the render gives this frame, from the one before as written
                made = camera.advance(plan, from_uint8(previous))
                previous = to_uint8(made.init[:, :3])  # a 4th channel is the temporal loss's mask
            yield plan, previous


def _start_noise(scene: Scene, plan: FramePlan, size: tuple[int, int], output: tuple[int, int]) -> Tensor:
    """A shot without start.content: the noise an (untiled) render's first frame starts from, drawn at
    its coarsest scale from the job's seed, resized to `size`."""
    settings = Settings()  # the render's scales: its base settings keep these defaults
    coarsest = scales(output, settings.min_size, settings.scale_step)[0]
    generator = torch.Generator().manual_seed(job_seed(scene.seed, plan.index, 0))
    return resize(noise_like(coarsest, generator, "cpu"), size)


def caption(plan: FramePlan, names: list[str]) -> str:
    """'12  ihc 0.75 | hubble 0.25': the frame's index in the scene and its styles with weight > 0,
    the one that leads first."""
    blend = [(name, w) for name, w in zip(names, plan.style_weights, strict=True) if w > 0]
    blend.sort(key=lambda pair: -pair[1])  # stable: equal weights keep the [styles] order
    return f"{plan.index}  " + " | ".join(f"{name} {w:.2f}" for name, w in blend)


@cache
def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default()  # ships inside Pillow: nothing is downloaded


def overlay_rows(height: int) -> slice:
    """The rows of a frame `height` pixels high that the caption's strip covers (its bottom)."""
    bottom = _font().getbbox("0|gy")[3]
    return slice(max(0, height - bottom - 2 * CAPTION_PAD), height)


def overlay(pixels: np.ndarray, text: str) -> np.ndarray:
    """A copy of (H, W, 3) uint8 `pixels` with `text` in white on a dark strip along the bottom."""
    out = pixels.copy()
    rows = overlay_rows(out.shape[0])
    strip = Image.fromarray(out[rows] // 4)  # darkened, so the picture still shows through
    ImageDraw.Draw(strip).text((CAPTION_PAD, CAPTION_PAD), text, fill=(255, 255, 255), font=_font())
    out[rows] = np.asarray(strip)
    return out


def default_path(scene: Scene) -> Path:
    return scene.base / f"{scene.stem}.preview.mp4"


def write_preview(
    scene: Scene,
    path: Path | None = None,
    long_side: int = DEFAULT_LONG_SIDE,
    captions: bool = True,
    on_frame: Callable[[int], None] | None = None,
) -> Path:
    """Write the scene's animatic to `path` (default SCENE.preview.mp4 beside the scene) with the
    scene's fps, codec and soundtrack, atomically. Returns the path. `on_frame` hears each frame's
    index once it is encoded."""
    o = scene.output
    size = preview_size(o.width, o.height, long_side)
    inputs = scene_inputs(scene)  # the scene first, as `render` checks it before its folder
    path = Path(path) if path is not None else default_path(scene)
    check_output_file(path, VIDEO_SUFFIXES, "video")
    names = list(scene.styles)
    audio = resolve(o.audio, scene.base) if o.audio else None
    # Many small operations: torch's pool would spread each over the cores and spin between them,
    # ten times slower than one thread on a busy 2-core machine (as the render's driver finds).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with VideoWriter(path, size[1], size[0], Fraction(o.fps), o.codec, o.crf, preset=o.preset,
                         audio=audio) as video:  # fmt: skip
            for plan, pixels in preview_frames(scene, size, inputs):
                video.write(overlay(pixels, caption(plan, names)) if captions else pixels)
                if on_frame is not None:
                    on_frame(plan.index)
    finally:
        torch.set_num_threads(threads)
    return path
